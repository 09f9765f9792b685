import { isToken, parseUint, UINT32_MAX } from './chars.js';
import type { SipRequest } from './message.js';
import { parseNameAddrList } from './name-addr.js';
import { HeaderSyntaxError, ParseError, type ParseErrorCode } from './parse-error.js';
import { splitList } from './scanner.js';
import { parseViaList } from './via.js';

/**
 * Full syntax check of a request beyond the hot headers the parser checks (like Kamailio's sanity module): every Via,
 * Contact, Route/Record-Route, Date, Expires and option-tag list. Run by elements that act on the request; a proxy
 * that only relays may skip what it does not read.
 */
export function validateRequest(req: SipRequest): ParseError | undefined {
  const h = req.headers;
  const check = (code: ParseErrorCode, fn: () => void): ParseError | undefined => {
    try {
      fn();
      return undefined;
    } catch (e) {
      if (e instanceof HeaderSyntaxError) return new ParseError(code, e.message);
      throw e;
    }
  };
  let e: ParseError | undefined;
  for (const v of h.getAll('via')) if ((e = check('VIA', () => parseViaList(v)))) return e;
  for (const v of h.getAll('contact')) {
    if (v.trim() === '*') continue;
    if ((e = check('CONTACT', () => parseNameAddrList(v, 'Contact')))) return e;
  }
  for (const name of ['route', 'record-route'] as const) {
    for (const v of h.getAll(name)) if ((e = check('ROUTE', () => parseNameAddrList(v, name === 'route' ? 'Route' : 'Record-Route')))) return e;
  }
  const date = h.get('date');
  if (date !== undefined && !isRfc1123GmtDate(date)) return new ParseError('DATE', 'Date must be an RFC 1123 date in GMT');
  const expires = h.get('expires');
  // Values above 2^32-1 are legal syntax; the registrar treats them as its maximum (RFC 4475 scalar02).
  if (expires !== undefined && parseUint(expires, Number.MAX_SAFE_INTEGER) < 0 && !/^\d+$/.test(expires)) {
    return new ParseError('HEADER_SYNTAX', 'Expires must be a number of seconds');
  }
  for (const name of ['require', 'proxy-require', 'supported']) {
    for (const tag of h.list(name)) if (!isToken(tag)) return new ParseError('HEADER_SYNTAX', `bad option tag in ${name}`);
  }
  return undefined;
}

/** §8.2 / RFC 4475 mismatch01: the CSeq method must equal the request method. */
export function cseqMatchesMethod(req: SipRequest): boolean {
  return req.cseq.method === req.method;
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** SIP-date (§25.1): rfc1123-date, and only "GMT" as the zone (RFC 4475 baddate). */
export function isRfc1123GmtDate(s: string): boolean {
  const m = /^([A-Z][a-z]{2}), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(s.trim());
  return m !== null && DAYS.includes(m[1]!) && MONTHS.includes(m[3]!) && Number(m[5]) < 24 && Number(m[6]) < 60 && Number(m[7]) < 61;
}

/** Option tags of a Require-like header, split and trimmed. */
export function optionTags(req: SipRequest, header: string): string[] {
  return req.headers.list(header).flatMap((v) => splitList(v).map((t) => t.trim()).filter((t) => t.length > 0));
}

export { UINT32_MAX };
