import { USER, type SipUri } from '../message/index.js';

/**
 * The location-service key of an address-of-record (RFC 3261 §10.3 step 5: URI parameters removed, escapes
 * unescaped). One spelling per AOR, which is also a valid URI so that GRUUs and the proxy can build on it:
 *
 *   'sip:' + user (unescaped, then re-escaped canonically) + '@' + lower-case host
 *
 * - sips: AORs share the sip: key: the scheme says how to reach the user, not who the user is.
 * - Port, password, URI parameters and headers are dropped.
 * - The user part stays case-sensitive (§19.1.4); its escapes are decoded and then only the characters that may
 *   not appear literally in a user part (§25.1 `user`) are escaped again, as upper-case %HH of their UTF-8 bytes.
 *   So `sip:%61lice@Example.COM:5060;transport=tcp` and `sip:alice@example.com` are the same AOR.
 */
export function canonicalAor(uri: SipUri): string {
  return aorOf(uri.userUnescaped, uri.host);
}

/** The canonical AOR of an unescaped user name in a domain (e.g. an authenticated username in its realm). */
export function aorOf(user: string | undefined, host: string): string {
  const domain = host.toLowerCase();
  return user === undefined ? `sip:${domain}` : `sip:${percentEncode(user, USER)}@${domain}`;
}

/** The domain of a canonical AOR. */
export function aorDomain(aor: string): string {
  // '@' in a user part is always escaped in the canonical form, so the last one separates the domain.
  const at = aor.lastIndexOf('@');
  return at < 0 ? aor.slice('sip:'.length) : aor.slice(at + 1);
}

/** %HH-escapes (upper-case, UTF-8 bytes) every character outside `allowed` (a chars.ts table), and '%' itself. */
export function percentEncode(value: string, allowed: Uint8Array): string {
  if (/^[A-Za-z0-9]*$/.test(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const literal = byte < 128 && allowed[byte] === 1 && byte !== 0x25;
    out += literal ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}
