/**
 * Character classes of RFC 3261 §25.1, as lookup tables indexed by char code: the parser tests characters in tight
 * loops and a table lookup is cheaper than a regular expression or a chain of comparisons.
 */
function table(chars: string, ranges: Array<[number, number]> = []): Uint8Array {
  const t = new Uint8Array(128);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  for (const [a, b] of ranges) for (let i = a; i <= b; i++) t[i] = 1;
  return t;
}

const ALNUM: Array<[number, number]> = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x61, 0x7a],
];

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~", ALNUM);
/** word adds the separators a Call-ID may carry (§25.1 word). */
export const WORD = table("-.!%*_+`'~()<>:\\\"/[]?{}", ALNUM);
/** unreserved / escaped / user-unreserved: characters of a user part (plus % for escapes). */
export const USER = table("-_.!~*'()&=+$,;?/%", ALNUM);
/** password characters (§25.1 password). */
export const PASSWORD = table("-_.!~*'()&=+$,%", ALNUM);
/** paramchar (§25.1 uri-parameter): param-unreserved / unreserved / escaped. */
export const PARAMCHAR = table("[]/:&+$-_.!~*'()%", ALNUM);
/** hname/hvalue characters (§25.1 header): hnv-unreserved / unreserved / escaped. */
export const HCHAR = table("[]/?:+$-_.!~*'()%", ALNUM);
/** hostname characters; '_' is not legal in DNS host names but appears in deployed SIP, so it is tolerated. */
export const HOSTCHAR = table('-._', ALNUM);
/** URI scheme characters after the first letter (RFC 3986 §3.1). */
export const SCHEME = table('+-.', ALNUM);
/** Characters allowed in an IPv6 reference (validated further by shape). */
export const IPV6CHAR = table(':.', [
  [0x30, 0x39],
  [0x41, 0x46],
  [0x61, 0x66],
]);

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return false;
  }
  return true;
}

export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Linear whitespace including CR/LF, for values that have already been unfolded or are being scanned raw. */
export function isLws(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

export function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isLws(s.charCodeAt(a))) a++;
  while (b > a && isLws(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Percent-decodes %HH escapes (RFC 3261 §19.1.2). Invalid escapes are kept literally; NULs are kept (RFC 4475 escnull). */
export function unescape(s: string): string {
  if (s.indexOf('%') < 0) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length + 0 && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      bytes.push(parseInt(s.substr(i + 1, 2), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(s[i]!, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

export function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Parses an unsigned decimal no larger than `max`; leading zeros are legal (RFC 4475 wsinv: "0068").
 * Returns -1 for anything else, so callers never use an out-of-range or non-numeric value (RFC 4475 ncl, scalar02).
 */
export function parseUint(s: string, max: number): number {
  if (!isDigits(s)) return -1;
  let i = 0;
  while (i < s.length - 1 && s.charCodeAt(i) === 0x30) i++;
  if (s.length - i > 16) return -1;
  const v = Number(s.slice(i));
  return v <= max ? v : -1;
}

export const UINT32_MAX = 4294967295;

/** Quotes a string for use as a quoted-string (§25.1), escaping '"' and '\'. */
export function quote(s: string): string {
  return '"' + s.replace(/(["\\])/g, '\\$1') + '"';
}
