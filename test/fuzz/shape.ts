/**
 * The fuzzer's own reading of a SIP message's structure (RFC 3261 §7): leading newlines, start line, header fields,
 * body. It is independent of sipway's parser on purpose (a parser fuzzed with its own idea of the grammar would only
 * be tested against itself), and it accepts anything: a seed that is not a valid message still has lines to mutate.
 * Text is held as latin1 strings, one character per octet, so that every byte round-trips.
 */

export interface Field {
  /** The name as written, without the colon; '' for a line that had no colon (kept verbatim in `value`). */
  name: string;
  /** What stands between name and value: ':' with its surrounding whitespace. */
  separator: string;
  /** The value as written, folded continuation lines included. */
  value: string;
}

export interface Shape {
  /** CR/LF octets before the start line (keep-alives, §7.5). */
  leading: string;
  startLine: string;
  fields: Field[];
  /** The line ending the seed uses (CRLF, or a bare LF in sloppy seeds). */
  eol: string;
  /** Whether the header section ended with an empty line (RFC 4475 baddn as archived does not). */
  terminated: boolean;
  body: string;
}

function toLatin1(bytes: Buffer): string {
  return bytes.toString('latin1');
}

function fromLatin1(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** Reads any bytes as a Shape; never fails. */
export function readShape(bytes: Buffer): Shape {
  const text = toLatin1(bytes);
  let pos = 0;
  while (pos < text.length && (text[pos] === '\r' || text[pos] === '\n')) pos++;
  const leading = text.slice(0, pos);
  const crlfEnd = text.indexOf('\r\n\r\n', pos);
  const lfEnd = text.indexOf('\n\n', pos);
  let headEnd: number;
  let bodyStart: number;
  if (crlfEnd >= 0 && (lfEnd < 0 || crlfEnd < lfEnd)) {
    headEnd = crlfEnd;
    bodyStart = crlfEnd + 4;
  } else if (lfEnd >= 0) {
    headEnd = lfEnd;
    bodyStart = lfEnd + 2;
  } else {
    headEnd = text.length;
    bodyStart = text.length;
  }
  const head = text.slice(pos, headEnd);
  const eol = head.includes('\r\n') || !head.includes('\n') ? '\r\n' : '\n';
  const lines = head.split(/\r?\n/);
  const startLine = lines.shift() ?? '';
  const fields: Field[] = [];
  for (const line of lines) {
    const last = fields[fields.length - 1];
    if (last && (line.startsWith(' ') || line.startsWith('\t'))) {
      last.value += eol + line;
      continue;
    }
    const m = /^([^:]*?)([ \t]*:[ \t]*)(.*)$/s.exec(line);
    if (m) fields.push({ name: m[1]!, separator: m[2]!, value: m[3]! });
    else fields.push({ name: '', separator: '', value: line });
  }
  return { leading, startLine, fields, eol, terminated: headEnd < text.length, body: text.slice(bodyStart) };
}

export function writeShape(shape: Shape): Buffer {
  const { eol } = shape;
  let text = shape.leading + shape.startLine + eol;
  for (const f of shape.fields) text += (f.name === '' && f.separator === '' ? f.value : f.name + f.separator + f.value) + eol;
  if (shape.terminated) text += eol + shape.body;
  return fromLatin1(text);
}

export function cloneShape(shape: Shape): Shape {
  return { ...shape, fields: shape.fields.map((f) => ({ ...f })) };
}

const COMPACT: Record<string, string> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  r: 'refer-to',
  u: 'allow-events',
  x: 'session-expires',
};

/** The field's name in lower case and long form (compact forms expanded), for choosing targets. */
export function canonical(field: Field): string {
  const n = field.name.trim().toLowerCase();
  return COMPACT[n] ?? n;
}

export function fieldsNamed(shape: Shape, name: string): Field[] {
  return shape.fields.filter((f) => canonical(f) === name);
}

/** Sets every Content-Length to the body's length (adding one when there is none). */
export function fixContentLength(shape: Shape): void {
  const length = String(shape.body.length);
  const cl = fieldsNamed(shape, 'content-length');
  if (cl.length === 0) shape.fields.push({ name: 'Content-Length', separator: ': ', value: length });
  for (const f of cl) f.value = length;
}

export function isRequestLine(line: string): boolean {
  return !line.startsWith('SIP/');
}
