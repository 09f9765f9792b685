import { HCHAR, HOSTCHAR, IPV6CHAR, PARAMCHAR, PASSWORD, SCHEME, USER, unescape } from './chars.js';
import { HeaderSyntaxError } from './parse-error.js';
import { Params } from './params.js';

export type HostKind = 'domain' | 'ipv4' | 'ipv6';

/** sip: and sips: URIs (RFC 3261 §19.1). Fields keep the written form; comparison unescapes (§19.1.4). */
export class SipUri {
  readonly type = 'sip' as const;

  constructor(
    public scheme: 'sip' | 'sips',
    public user: string | undefined,
    public password: string | undefined,
    /** As written; IPv6 references keep their brackets. */
    public host: string,
    public port: number | undefined,
    public params: Params = new Params(),
    public headers: Array<[string, string]> = [],
  ) {}

  get hostKind(): HostKind {
    return hostKind(this.host);
  }

  /** The host without IPv6 brackets, as a socket API wants it. */
  get hostname(): string {
    return this.host.charCodeAt(0) === 0x5b ? this.host.slice(1, -1) : this.host;
  }

  /** The user part with %HH escapes decoded (RFC 4475 esc01, escnull: NULs are kept). */
  get userUnescaped(): string | undefined {
    return this.user === undefined ? undefined : unescape(this.user);
  }

  get transportParam(): string | undefined {
    const t = this.params.get('transport');
    return t ? t.toLowerCase() : undefined;
  }

  /** §16.4 / RFC 3261 loose routing: a Route URI with `lr` means the next hop is a loose router. */
  get lr(): boolean {
    return this.params.has('lr');
  }

  clone(): SipUri {
    return new SipUri(
      this.scheme,
      this.user,
      this.password,
      this.host,
      this.port,
      this.params.clone(),
      this.headers.map(([n, v]) => [n, v]),
    );
  }

  toString(): string {
    let s = this.scheme + ':';
    if (this.user !== undefined) {
      s += this.user;
      if (this.password !== undefined) s += ':' + this.password;
      s += '@';
    }
    s += this.host;
    if (this.port !== undefined) s += ':' + this.port;
    if (this.params.size > 0) s += this.params.toString();
    if (this.headers.length > 0) s += '?' + this.headers.map(([n, v]) => `${n}=${v}`).join('&');
    return s;
  }
}

/** tel: URIs (RFC 3966): the number and its parameters. */
export class TelUri {
  readonly type = 'tel' as const;
  constructor(
    public number: string,
    public params: Params = new Params(),
  ) {}

  get isGlobal(): boolean {
    return this.number.startsWith('+');
  }

  /** Digits only, visual separators removed (RFC 3966 §5.1.1), for comparison and routing. */
  get digits(): string {
    return this.number.replace(/[-.()]/g, '');
  }

  clone(): TelUri {
    return new TelUri(this.number, this.params.clone());
  }

  toString(): string {
    return 'tel:' + this.number + this.params.toString();
  }
}

/** Any other absolute URI (RFC 3261 §19, RFC 3986): kept opaque so that it can be carried and compared, never routed. */
export class AbsoluteUri {
  readonly type = 'absolute' as const;
  constructor(
    public scheme: string,
    public rest: string,
  ) {}

  clone(): AbsoluteUri {
    return new AbsoluteUri(this.scheme, this.rest);
  }

  toString(): string {
    return this.scheme + ':' + this.rest;
  }
}

export type Uri = SipUri | TelUri | AbsoluteUri;

export function hostKind(host: string): HostKind {
  if (host.charCodeAt(0) === 0x5b) return 'ipv6';
  return isIPv4(host) ? 'ipv4' : 'domain';
}

function isIPv4(s: string): boolean {
  let parts = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0) return false;
      parts++;
      digits = 0;
      value = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) return false;
    } else return false;
  }
  return parts === 3 && digits > 0;
}

function fail(what: string, uri: string): never {
  throw new HeaderSyntaxError(`${what} in URI '${uri.length > 80 ? uri.slice(0, 80) + '...' : uri}'`);
}

/**
 * Parses a URI. Throws HeaderSyntaxError for a malformed sip/sips/tel URI; any other well-formed scheme is kept opaque.
 * Whitespace, '<' and '>' are never part of a URI (RFC 4475 ltgtruri, lwsruri, badaspec).
 */
export function parseUri(s: string): Uri {
  const colon = s.indexOf(':');
  if (colon <= 0) fail('missing scheme', s);
  const c0 = s.charCodeAt(0);
  if (!((c0 >= 0x41 && c0 <= 0x5a) || (c0 >= 0x61 && c0 <= 0x7a))) fail('bad scheme', s);
  for (let i = 1; i < colon; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || SCHEME[c] !== 1) fail('bad scheme', s);
  }
  const scheme = s.slice(0, colon).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(s, scheme, colon + 1);
  if (scheme === 'tel') return parseTelUri(s, colon + 1);
  for (let i = colon + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x3c || c === 0x3e || c === 0x22 || c >= 0x7f) fail('illegal character', s);
  }
  if (colon + 1 >= s.length) fail('empty URI body', s);
  return new AbsoluteUri(s.slice(0, colon), s.slice(colon + 1));
}

export function tryParseUri(s: string): Uri | undefined {
  try {
    return parseUri(s);
  } catch {
    return undefined;
  }
}

function parseSipUri(s: string, scheme: 'sip' | 'sips', start: number): SipUri {
  let user: string | undefined;
  let password: string | undefined;
  let pos = start;
  // '@' cannot appear unescaped in any later component, so the first one ends the userinfo (RFC 4475 intmeth,
  // semiuri: the user part may contain ';', '?' and '/').
  const at = s.indexOf('@', start);
  if (at >= 0) {
    let pw = -1;
    for (let i = start; i < at; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x3a) {
        pw = i;
        break;
      }
      if (c >= 128 || USER[c] !== 1) fail('illegal character in user part', s);
    }
    if (pw >= 0) {
      for (let i = pw + 1; i < at; i++) {
        const c = s.charCodeAt(i);
        if (c >= 128 || PASSWORD[c] !== 1) fail('illegal character in password', s);
      }
      user = s.slice(start, pw);
      password = s.slice(pw + 1, at);
    } else user = s.slice(start, at);
    if (user.length === 0) fail('empty user part', s);
    pos = at + 1;
  }

  // host
  let host: string;
  if (s.charCodeAt(pos) === 0x5b) {
    const close = s.indexOf(']', pos);
    if (close < 0) fail('unterminated IPv6 reference', s);
    const inner = s.slice(pos + 1, close);
    if (!isIPv6Like(inner)) fail('bad IPv6 reference', s);
    host = s.slice(pos, close + 1);
    pos = close + 1;
  } else {
    const hs = pos;
    while (pos < s.length) {
      const c = s.charCodeAt(pos);
      if (c >= 128 || HOSTCHAR[c] !== 1) break;
      pos++;
    }
    host = s.slice(hs, pos);
    if (host.length === 0) fail('missing host', s);
  }

  let port: number | undefined;
  if (s.charCodeAt(pos) === 0x3a) {
    const ps = ++pos;
    let v = 0;
    while (pos < s.length) {
      const c = s.charCodeAt(pos);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      pos++;
    }
    // RFC 5118 §4.2 ipv6-bad: an unbracketed IPv6 address lands here with a non-numeric "port".
    if (pos === ps || pos - ps > 5 || v > 65535) fail('bad port', s);
    port = v;
  }

  const params = new Params();
  while (s.charCodeAt(pos) === 0x3b) {
    const ns = ++pos;
    while (pos < s.length) {
      const c = s.charCodeAt(pos);
      if (c >= 128 || PARAMCHAR[c] !== 1) break;
      pos++;
    }
    const name = s.slice(ns, pos);
    if (name.length === 0) fail('empty parameter', s);
    let value: string | null = null;
    if (s.charCodeAt(pos) === 0x3d) {
      const vs = ++pos;
      while (pos < s.length) {
        const c = s.charCodeAt(pos);
        if (c >= 128 || PARAMCHAR[c] !== 1) break;
        pos++;
      }
      value = s.slice(vs, pos);
    }
    params.set(name, value);
  }

  const headers: Array<[string, string]> = [];
  if (s.charCodeAt(pos) === 0x3f) {
    pos++;
    for (;;) {
      const ns = pos;
      while (pos < s.length) {
        const c = s.charCodeAt(pos);
        if (c >= 128 || HCHAR[c] !== 1) break;
        pos++;
      }
      const name = s.slice(ns, pos);
      if (name.length === 0 || s.charCodeAt(pos) !== 0x3d) fail('bad header in URI', s);
      const vs = ++pos;
      while (pos < s.length) {
        const c = s.charCodeAt(pos);
        if (c >= 128 || HCHAR[c] !== 1) break;
        pos++;
      }
      headers.push([name, s.slice(vs, pos)]);
      if (s.charCodeAt(pos) !== 0x26) break;
      pos++;
    }
  }
  if (pos !== s.length) fail(`unexpected '${s[pos]}'`, s);
  return new SipUri(scheme, user, password, host, port, params, headers);
}

/**
 * IPv6 reference content. RFC 5118 §4.10: RFC 3261's ABNF admitted a third colon before an embedded IPv4 address;
 * the RFC lets a robust receiver tolerate it, so only the character set and a minimal shape are checked here.
 */
function isIPv6Like(s: string): boolean {
  if (s.length < 2 || s.indexOf(':') < 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || IPV6CHAR[c] !== 1) return false;
  }
  return true;
}

const TEL_CHARS = /^[0-9A-Fa-f*#+\-.()pPwW]+$/;

function parseTelUri(s: string, start: number): TelUri {
  const semi = s.indexOf(';', start);
  const number = semi < 0 ? s.slice(start) : s.slice(start, semi);
  if (!TEL_CHARS.test(number)) fail('bad telephone number', s);
  const params = new Params();
  if (semi >= 0) {
    for (const part of s.slice(semi + 1).split(';')) {
      if (part.length === 0) fail('empty parameter', s);
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? null : part.slice(eq + 1);
      if (!/^[A-Za-z0-9-]+$/.test(name) || (value !== null && /[\s<>"]/.test(value))) fail('bad parameter', s);
      params.set(name, value);
    }
  }
  return new TelUri(number, params);
}

/** Parameters that must match when present in either URI (RFC 3261 §19.1.4). */
const SIGNIFICANT_PARAMS = ['user', 'ttl', 'method', 'maddr', 'transport'];

function eqUnescaped(a: string | undefined, b: string | undefined, caseInsensitive: boolean): boolean {
  if (a === undefined || b === undefined) return a === b;
  const ua = unescape(a);
  const ub = unescape(b);
  return caseInsensitive ? ua.toLowerCase() === ub.toLowerCase() : ua === ub;
}

/** URI equivalence per RFC 3261 §19.1.4 (and RFC 3966 §4 for tel). */
export function uriEquals(a: Uri, b: Uri): boolean {
  if (a.type === 'sip' && b.type === 'sip') {
    if (a.scheme !== b.scheme) return false;
    if (!eqUnescaped(a.user, b.user, false) || !eqUnescaped(a.password, b.password, false)) return false;
    if (a.host.toLowerCase() !== b.host.toLowerCase()) return false;
    // An explicit default port is not the same as no port (§19.1.4).
    if (a.port !== b.port) return false;
    for (const name of SIGNIFICANT_PARAMS) {
      if (!eqUnescaped(a.params.get(name) ?? undefined, b.params.get(name) ?? undefined, true)) return false;
      if (a.params.has(name) !== b.params.has(name)) return false;
    }
    for (const [name, value] of a.params.entries()) {
      if (!b.params.has(name)) continue;
      if (!eqUnescaped(value ?? '', b.params.get(name) ?? '', true)) return false;
    }
    if (a.headers.length !== b.headers.length) return false;
    for (const [name, value] of a.headers) {
      const other = b.headers.find(([n]) => n.toLowerCase() === name.toLowerCase());
      if (!other || !eqUnescaped(value, other[1], false)) return false;
    }
    return true;
  }
  if (a.type === 'tel' && b.type === 'tel') {
    if (a.digits.toLowerCase() !== b.digits.toLowerCase()) return false;
    if (a.params.size !== b.params.size) return false;
    for (const [name, value] of a.params.entries()) {
      const v = b.params.get(name);
      if (v === undefined || (v ?? '').toLowerCase() !== (value ?? '').toLowerCase()) return false;
    }
    return true;
  }
  if (a.type === 'absolute' && b.type === 'absolute') {
    return a.scheme.toLowerCase() === b.scheme.toLowerCase() && a.rest === b.rest;
  }
  return false;
}
