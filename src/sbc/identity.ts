import type { NameAddr, SipRequest } from '../message/index.js';
import { isOwnHeader } from './config.js';

/** RFC 3323 §4.1.1.3: the From of a caller who asked for privacy. */
export const ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>';

/** Who the caller is, as the SBC presents it on the second leg. */
export interface IdentityOptions {
  /** The user name the caller proved with digest on the first leg (its domain is the From's host, our realm). */
  authenticatedUser: string | undefined;
  /** The second leg's target is inside the trust domain (RFC 3325 §2.3): it may see P-Asserted-Identity. */
  trusted: boolean;
  /** The caller's own P-Asserted-Identity is believed (it came from a trusted source, a carrier's trunk). */
  trustedSource: boolean;
}

export interface SecondLegIdentity {
  /** The second leg's From (name-addr, no tag): the caller's, or anonymous when the caller asked for privacy. */
  from: string;
  /** P-Asserted-Identity and Privacy for a trusted target; nothing of them for an untrusted one. */
  headers: Array<[string, string]>;
  /** The identity asserted, whether or not it went (for logs and `sipway calls`). */
  asserted: string | undefined;
}

/**
 * The identity rules at the trust boundary (RFC 3323, RFC 3325), kept small:
 * - the asserted identity is the authenticated user (`<sip:user@domain>`, with the From's display name), else the
 *   caller's own P-Asserted-Identity if its source is trusted, else none: a phone's claim is never believed;
 * - a caller asking for privacy (`Privacy: id`, `user` or `header`) gets an anonymous From on the second leg;
 * - P-Asserted-Identity goes only to a trusted target, with the caller's Privacy header so that the trust domain
 *   honours it further on (RFC 3325 §7); an untrusted target gets neither.
 */
export function secondLegIdentity(invite: SipRequest, options: IdentityOptions): SecondLegIdentity {
  const privacy = privacyOf(invite);
  const wantsPrivacy = privacy.some((p) => p === 'id' || p === 'user' || p === 'header' || p === 'critical');
  const from = invite.from;
  let asserted: string | undefined;
  const uri = from.uri;
  if (options.authenticatedUser !== undefined && uri.type === 'sip') {
    const display = from.displayNameText;
    asserted = `${display ? `${quoted(display)} ` : ''}<${uri.scheme}:${escapeUser(options.authenticatedUser)}@${uri.host.toLowerCase()}>`;
  } else if (options.trustedSource) {
    asserted = invite.headers.get('p-asserted-identity');
  }
  const headers: Array<[string, string]> = [];
  if (options.trusted && asserted !== undefined) {
    headers.push(['P-Asserted-Identity', asserted]);
    if (privacy.length > 0) headers.push(['Privacy', privacy.join(';')]);
  }
  return { from: wantsPrivacy ? ANONYMOUS_FROM : untagged(from), headers, asserted };
}

/** The caller's Privacy values (RFC 3323 §4.2), lower case: `Privacy: id; header` gives ['id', 'header']. */
export function privacyOf(invite: SipRequest): string[] {
  return invite.headers
    .getAll('privacy')
    .flatMap((v) => v.split(/[;,]/))
    .map((p) => p.trim().toLowerCase())
    .filter((p) => p !== '' && p !== 'none');
}

/**
 * The header fields of the caller's INVITE (`work`: after the policy's edits) that go on to the second leg: those
 * named in `pass` and not in `deny`; never one each leg makes for itself (Via, Contact, Record-Route ...).
 */
export function passedHeaders(work: SipRequest, pass: readonly string[], deny: readonly string[]): Array<[string, string]> {
  const denied = new Set(deny.map((d) => d.toLowerCase()));
  const seen = new Set<string>();
  const out: Array<[string, string]> = [];
  for (const name of pass) {
    const key = name.toLowerCase();
    if (denied.has(key) || isOwnHeader(key) || seen.has(key)) continue;
    seen.add(key);
    for (const value of work.headers.getAll(name)) out.push([name, value]);
  }
  return out;
}

function untagged(from: NameAddr): string {
  const copy = from.clone();
  copy.tag = undefined;
  return copy.toString();
}

function quoted(display: string): string {
  return `"${display.replace(/(["\\])/g, '\\$1')}"`;
}

/** RFC 3261 §25.1 user part: unreserved, escaped and user-unreserved characters; anything else %-escaped. */
function escapeUser(user: string): string {
  return user.replace(/[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/g, (c) => [...Buffer.from(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}
