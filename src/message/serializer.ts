import { headerSpelling } from './header-names.js';
import type { HeaderField } from './headers.js';
import type { AnyMessage } from './message.js';

const CRLF = '\r\n';

function startLine(m: AnyMessage): string {
  return m.isRequest ? `${m.method} ${m.uri.toString()} ${m.version}\r\n` : `${m.version} ${m.status} ${m.reason}\r\n`;
}

/**
 * Serialises a message into one exactly sized Buffer. Header fields still backed by the received bytes are copied
 * as written (folding and all); fields created or changed in code are written as `Name: value`. Content-Length is
 * always made to match the body (§20.14), whatever the header list says.
 */
export function serialize(m: AnyMessage): Buffer {
  const line = startLine(m);
  const fields = m.headers.fields;
  const bodyLength = m.body.length;
  const clText = String(bodyLength);
  let size = Buffer.byteLength(line) + 2 + bodyLength;
  let sawContentLength = false;
  const texts: Array<string | undefined> = new Array(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f.name === 'content-length') {
      if (sawContentLength) continue;
      sawContentLength = true;
      if (f.isRaw && f.value === clText) size += f.lineEnd - f.lineStart + 2;
      else size += Buffer.byteLength((texts[i] = `Content-Length: ${clText}`)) + 2;
      continue;
    }
    if (f.isRaw) size += f.lineEnd - f.lineStart + 2;
    else size += Buffer.byteLength((texts[i] = fieldText(f))) + 2;
  }
  const clTrailer = sawContentLength ? undefined : `Content-Length: ${clText}\r\n`;
  if (clTrailer) size += clTrailer.length;

  const out = Buffer.allocUnsafe(size);
  let pos = out.write(line, 0, 'utf8');
  let wroteContentLength = false;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f.name === 'content-length') {
      if (wroteContentLength) continue;
      wroteContentLength = true;
    }
    const text = texts[i];
    if (text !== undefined) pos += out.write(text, pos, 'utf8');
    else pos += f.source!.copy(out, pos, f.lineStart, f.lineEnd);
    out[pos++] = 0x0d;
    out[pos++] = 0x0a;
  }
  if (clTrailer) pos += out.write(clTrailer, pos, 'latin1');
  out[pos++] = 0x0d;
  out[pos++] = 0x0a;
  if (bodyLength > 0) pos += m.body.copy(out, pos);
  return pos === size ? out : out.subarray(0, pos);
}

function fieldText(f: HeaderField): string {
  return `${headerSpelling(f.name)}: ${f.value}`;
}

/** Text form for logs and tests (bodies decoded as UTF-8). */
export function messageToString(m: AnyMessage): string {
  return serialize(m).toString('utf8');
}

export { CRLF };
