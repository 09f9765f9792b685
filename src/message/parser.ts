import { isDigits, parseUint, TOKEN, WORD } from './chars.js';
import { canonicalHeaderName, SINGLE_HEADERS } from './header-names.js';
import { HeaderField, Headers } from './headers.js';
import { DEFAULT_LIMITS, type MessageLimits } from './limits.js';
import { SipRequest, SipResponse, type AnyMessage } from './message.js';
import { parseCSeq } from './cseq.js';
import { parseNameAddr } from './name-addr.js';
import { HeaderSyntaxError, ParseError, type ParseErrorCode } from './parse-error.js';
import { parseUri, type Uri } from './uri.js';
import { parseVia } from './via.js';
import { splitList } from './scanner.js';

export interface ParseOptions {
  limits?: MessageLimits;
  /**
   * Stream transports frame by Content-Length, which is then mandatory (§18.3, §20.14); on a datagram a missing
   * Content-Length means "the rest of the datagram" and surplus octets after the body are ignored (RFC 4475 dblreq).
   */
  stream?: boolean;
}

export type ParseResult =
  | { ok: true; message: AnyMessage }
  /** `message` is present when the start line and headers could be read: enough to answer a request statelessly. */
  | { ok: false; error: ParseError; message?: AnyMessage };

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

/** Finds the end of a line: index of CR (of CRLF) or of a bare LF, and where the next line starts. */
function lineEnd(buf: Buffer, from: number, limit: number): [end: number, next: number] {
  const lf = buf.indexOf(LF, from);
  if (lf < 0 || lf >= limit) return [-1, -1];
  return lf > from && buf[lf - 1] === CR ? [lf - 1, lf + 1] : [lf, lf + 1];
}

function err(code: ParseErrorCode, reason: string, offset = -1, status: 400 | 505 | 513 = 400): ParseError {
  return new ParseError(code, reason, status, offset);
}

/**
 * Parses one SIP message from `buf` (RFC 3261 §7, §25). Never throws: every fault becomes a ParseError.
 * Hot headers (top Via, CSeq, Call-ID, From/To, Max-Forwards, Content-Length) are parsed and validated here;
 * everything else stays raw until first read.
 */
export function parseMessage(buf: Buffer, options: ParseOptions = {}): ParseResult {
  const limits = options.limits ?? DEFAULT_LIMITS;
  try {
    return parseUnchecked(buf, limits, options.stream === true);
  } catch (e) {
    // Defence in depth: nothing a peer sends may throw out of the parser.
    return { ok: false, error: err('START_LINE', `unparsable message (${(e as Error).message})`) };
  }
}

function parseUnchecked(buf: Buffer, limits: MessageLimits, stream: boolean): ParseResult {
  let pos = 0;
  // §7.5: leading CRLFs before the start line are ignored (keep-alives, sloppy senders).
  while (pos < buf.length && (buf[pos] === CR || buf[pos] === LF)) pos++;
  const [slEnd, slNext] = lineEnd(buf, pos, buf.length);
  if (slEnd < 0) return { ok: false, error: err('START_LINE', 'no complete start line', pos) };
  const startLine = buf.toString('utf8', pos, slEnd);

  let message: AnyMessage;
  let startError: ParseError | undefined;
  if (startLine.startsWith('SIP/')) {
    const r = parseStatusLine(startLine);
    if (r instanceof ParseError) return { ok: false, error: r };
    message = new SipResponse(r.status, r.reason);
  } else {
    const r = parseRequestLine(startLine);
    if (r instanceof ParseError) {
      // The request cannot be turned into an object, but its headers may still let us answer (400 or 505).
      startError = r;
      message = new SipRequest('UNKNOWN', PLACEHOLDER_URI);
    } else message = new SipRequest(r.method, r.uri, undefined, undefined, r.version);
  }

  // Header section.
  const fields: HeaderField[] = [];
  pos = slNext;
  let headerEnd = -1;
  let bodyStart = -1;
  let firstError: ParseError | undefined = startError;
  const fail = (e: ParseError): void => {
    if (firstError === undefined) firstError = e;
  };
  while (pos < buf.length) {
    const [end, next] = lineEnd(buf, pos, buf.length);
    if (end < 0) break;
    if (end === pos) {
      headerEnd = pos;
      bodyStart = next;
      break;
    }
    const c = buf[pos]!;
    if (c === SP || c === HTAB) {
      fail(err('HEADER_SYNTAX', 'continuation line without a header', pos));
      pos = next;
      continue;
    }
    // A field ends at the first line end not followed by whitespace (folding, §7.3.1).
    let fieldEnd = end;
    let fieldNext = next;
    while (fieldNext < buf.length && (buf[fieldNext] === SP || buf[fieldNext] === HTAB)) {
      const [e2, n2] = lineEnd(buf, fieldNext, buf.length);
      if (e2 < 0) break;
      fieldEnd = e2;
      fieldNext = n2;
    }
    if (fieldEnd - pos > limits.maxHeaderLineLength) {
      return tooLarge(message, fields, 'HEADER_TOO_LONG', `header line longer than ${limits.maxHeaderLineLength} bytes`, pos);
    }
    if (fields.length >= limits.maxHeaders) {
      return tooLarge(message, fields, 'TOO_MANY_HEADERS', `more than ${limits.maxHeaders} header fields`, pos);
    }
    const colon = buf.indexOf(0x3a, pos);
    let nameEnd = colon;
    while (nameEnd > pos && (buf[nameEnd - 1] === SP || buf[nameEnd - 1] === HTAB)) nameEnd--;
    let validName = colon >= 0 && colon < fieldEnd && nameEnd > pos;
    for (let i = pos; validName && i < nameEnd; i++) {
      const ch = buf[i]!;
      if (ch >= 128 || TOKEN[ch] !== 1) validName = false;
    }
    if (!validName) {
      fail(err('HEADER_SYNTAX', `malformed header line '${buf.toString('latin1', pos, Math.min(fieldEnd, pos + 40))}'`, pos));
    } else {
      const name = canonicalHeaderName(buf.toString('latin1', pos, nameEnd));
      fields.push(new HeaderField(name, undefined, buf, pos, fieldEnd, colon + 1));
    }
    pos = fieldNext;
  }

  const headers = new Headers(fields);
  message.headers = headers;

  if (headerEnd < 0) {
    // A datagram that ends inside the header section (RFC 4475 baddn as archived) cannot be framed.
    return { ok: false, error: err('HEADER_TERMINATOR', 'header section not terminated by an empty line', pos), message };
  }
  if (firstError) return { ok: false, error: firstError, message };

  // Body framing (§18.3, §20.14).
  const clFields = fields.filter((f) => f.name === 'content-length');
  let contentLength = -1;
  for (const f of clFields) {
    const v = parseUint(f.value, Number.MAX_SAFE_INTEGER);
    if (v < 0) return { ok: false, error: err('CONTENT_LENGTH', `bad Content-Length '${f.value.slice(0, 20)}'`, f.lineStart), message };
    if (contentLength >= 0 && v !== contentLength) {
      return { ok: false, error: err('CONTENT_LENGTH', 'conflicting Content-Length values', f.lineStart), message };
    }
    contentLength = v;
  }
  const available = buf.length - bodyStart;
  if (contentLength < 0) {
    if (stream) return { ok: false, error: err('CONTENT_LENGTH', 'missing Content-Length on a stream transport'), message };
    contentLength = available;
  }
  if (contentLength > limits.maxBodySize) {
    return tooLarge(message, fields, 'BODY_TOO_LARGE', `body larger than ${limits.maxBodySize} bytes`, bodyStart);
  }
  if (contentLength > available) {
    return { ok: false, error: err('BODY_TRUNCATED', `Content-Length ${contentLength} exceeds the ${available} octets present`), message };
  }
  if (bodyStart + contentLength > limits.maxMessageSize) {
    return tooLarge(message, fields, 'TOO_LARGE', `message larger than ${limits.maxMessageSize} bytes`, 0);
  }
  message.body = contentLength === 0 ? EMPTY_BODY : buf.subarray(bodyStart, bodyStart + contentLength);

  const hot = parseHotHeaders(message, limits);
  if (hot) return { ok: false, error: hot, message };
  return { ok: true, message };
}

const EMPTY_BODY = Buffer.alloc(0);
const PLACEHOLDER_URI: Uri = parseUri('sip:invalid');

function tooLarge(message: AnyMessage, fields: HeaderField[], code: ParseErrorCode, reason: string, offset: number): ParseResult {
  message.headers = new Headers(fields);
  return { ok: false, error: err(code, reason, offset, 513), message };
}

interface RequestLine {
  method: string;
  uri: Uri;
  version: string;
}

/** Request-Line = Method SP Request-URI SP SIP-Version (§25.1): exactly one SP between elements (RFC 4475 lwsstart, trws). */
function parseRequestLine(line: string): RequestLine | ParseError {
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || line.indexOf(' ', sp2 + 1) >= 0 || /[\t]/.test(line)) {
    // Still distinguish an unsupported version so that the answer can be 505.
    const version = sp2 > 0 ? line.slice(line.lastIndexOf(' ') + 1) : '';
    if (version && version.toUpperCase() !== 'SIP/2.0' && isOtherSipVersion(version)) return err('VERSION', `version ${version} not supported`, 0, 505);
    return err('START_LINE', 'malformed Request-Line (elements must be separated by exactly one SP)', 0);
  }
  const method = line.slice(0, sp1);
  const uriText = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  for (let i = 0; i < method.length; i++) {
    const c = method.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return err('START_LINE', 'malformed method', i);
  }
  if (version.toUpperCase() !== 'SIP/2.0') {
    if (isOtherSipVersion(version)) return err('VERSION', `version ${version} not supported`, sp2 + 1, 505);
    return err('START_LINE', `malformed SIP-Version '${version.slice(0, 16)}'`, sp2 + 1);
  }
  let uri: Uri;
  try {
    uri = parseUri(uriText);
  } catch (e) {
    return err('REQUEST_URI', (e as Error).message, sp1 + 1);
  }
  // §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 escruri).
  if (uri.type === 'sip' && uri.headers.length > 0) return err('REQUEST_URI', 'headers are not allowed in the Request-URI', sp1 + 1);
  return { method, uri, version: 'SIP/2.0' };
}

function isOtherSipVersion(v: string): boolean {
  return /^SIP\/\d+\.\d+$/i.test(v);
}

/** Status-Line = SIP-Version SP Status-Code SP Reason-Phrase; the reason may be empty (RFC 4475 noreason). */
function parseStatusLine(line: string): { status: number; reason: string } | ParseError {
  const sp1 = line.indexOf(' ');
  if (sp1 < 0) return err('START_LINE', 'malformed Status-Line', 0);
  const version = line.slice(0, sp1);
  if (version.toUpperCase() !== 'SIP/2.0') {
    return isOtherSipVersion(version) ? err('VERSION', `version ${version} not supported`, 0, 505) : err('START_LINE', 'malformed SIP-Version', 0);
  }
  const sp2 = line.indexOf(' ', sp1 + 1);
  const code = sp2 < 0 ? line.slice(sp1 + 1) : line.slice(sp1 + 1, sp2);
  // Exactly three digits in 100..699 (RFC 4475 bigcode).
  if (code.length !== 3 || !isDigits(code)) return err('STATUS_CODE', `bad status code '${code.slice(0, 12)}'`, sp1 + 1);
  const status = Number(code);
  if (status < 100 || status > 699) return err('STATUS_CODE', `status code ${status} out of range`, sp1 + 1);
  return { status, reason: sp2 < 0 ? '' : line.slice(sp2 + 1) };
}

/** Parses and validates the headers every layer needs on every message, and seeds the message's typed views. */
function parseHotHeaders(message: AnyMessage, limits: MessageLimits): ParseError | undefined {
  const h = message.headers;
  for (const name of SINGLE_HEADERS) {
    if (h.count(name) > 1) return err('DUPLICATE_HEADER', `more than one ${name} header`);
  }
  const viaFields = h.getAll('via');
  if (viaFields.length === 0) return err('MISSING_HEADER', 'missing Via');
  let viaCount = 0;
  for (const v of viaFields) viaCount += splitList(v).length;
  if (viaCount > limits.maxVias) return new ParseError('TOO_MANY_VIAS', `more than ${limits.maxVias} Via values`, 513);
  try {
    const top = parseVia(splitList(viaFields[0]!)[0]!);
    message.seedView('via', top);
  } catch (e) {
    return err('VIA', (e as HeaderSyntaxError).message);
  }
  for (const name of ['call-id', 'cseq', 'from', 'to'] as const) {
    if (!h.has(name)) return err('MISSING_HEADER', `missing ${HEADER_LABEL[name]}`);
  }
  const callId = h.get('call-id')!;
  if (!isCallId(callId)) return err('CALL_ID', 'malformed Call-ID');
  try {
    const cseq = parseCSeq(h.get('cseq')!);
    message.seedView('cseq', cseq);
  } catch (e) {
    return err('CSEQ', (e as HeaderSyntaxError).message);
  }
  for (const name of ['from', 'to'] as const) {
    try {
      message.seedView(name, parseNameAddr(h.get(name)!, HEADER_LABEL[name]));
    } catch (e) {
      return err(name === 'from' ? 'FROM' : 'TO', (e as HeaderSyntaxError).message);
    }
  }
  const mf = h.get('max-forwards');
  if (mf !== undefined && parseUint(mf, 255) < 0) return err('MAX_FORWARDS', `bad Max-Forwards '${mf.slice(0, 16)}'`);
  return undefined;
}

const HEADER_LABEL = { 'call-id': 'Call-ID', cseq: 'CSeq', from: 'From', to: 'To' } as const;

/** Call-ID = word [ "@" word ] (§25.1). */
function isCallId(s: string): boolean {
  if (s.length === 0) return false;
  let at = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x40) {
      if (at || i === 0 || i === s.length - 1) return false;
      at = true;
    } else if (c >= 128 || WORD[c] !== 1) return false;
  }
  return true;
}
