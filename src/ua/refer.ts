import { parseNameAddr, type SipUri } from '../message/index.js';

/** Replaces (RFC 3891 §6.1): the dialog a new INVITE takes the place of, as its sender sees it. */
export interface ReplacesTarget {
  callId: string;
  /** The receiver's own tag in the replaced dialog (§3: matched against its local tag). */
  toTag: string;
  /** The other party's tag in that dialog (matched against the remote tag). */
  fromTag: string;
  earlyOnly: boolean;
}

/** The Refer-To of a REFER (RFC 3515 §2.1): where to send the new request, and the Replaces it must carry. */
export interface ReferTarget {
  /** The target URI without its header part. */
  uri: SipUri;
  replaces: ReplacesTarget | undefined;
  /** Other headers the URI asks the new request to carry (RFC 3261 §19.1.1), unescaped. */
  headers: Array<[string, string]>;
}

/** Parses a Replaces header value (RFC 3891 §6.1): call-id ;to-tag= ;from-tag= [;early-only]. */
export function parseReplaces(value: string | undefined): ReplacesTarget | undefined {
  if (value === undefined) return undefined;
  const [callId, ...params] = value.split(';').map((s) => s.trim());
  if (!callId) return undefined;
  let toTag: string | undefined;
  let fromTag: string | undefined;
  let earlyOnly = false;
  for (const p of params) {
    const eq = p.indexOf('=');
    const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? '' : p.slice(eq + 1).trim();
    if (name === 'to-tag') toTag = val;
    else if (name === 'from-tag') fromTag = val;
    else if (name === 'early-only') earlyOnly = true;
  }
  if (!toTag || !fromTag) return undefined;
  return { callId, toTag, fromTag, earlyOnly };
}

/**
 * Parses a Refer-To value (RFC 3515 §2.1, a name-addr or addr-spec): the target and the headers embedded in its URI
 * (an attended transfer's Replaces among them). Undefined when it is not a SIP URI we can call.
 */
export function parseReferTo(value: string | undefined): ReferTarget | undefined {
  if (value === undefined) return undefined;
  let uri: SipUri;
  try {
    const na = parseNameAddr(value, 'Refer-To');
    if (na.uri.type !== 'sip') return undefined;
    uri = na.uri.clone() as SipUri;
  } catch {
    return undefined;
  }
  const headers: Array<[string, string]> = [];
  let replaces: ReplacesTarget | undefined;
  for (const [name, raw] of uri.headers) {
    let v: string;
    try {
      v = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (name.toLowerCase() === 'replaces') replaces = parseReplaces(v);
    else headers.push([name, v]);
  }
  uri.headers = [];
  return { uri, replaces, headers };
}

/**
 * A Refer-To value for `target`, with a Replaces of the dialog (`callId`, `localTag` = our tag in it, `remoteTag`)
 * when the transfer is attended: the transfer target must find the dialog by its own tags, so to-tag is the remote
 * tag (the target's) and from-tag ours (RFC 3891 §3, RFC 5589 §7).
 */
export function referTo(target: string, replacing?: { callId: string; localTag: string; remoteTag: string }): string {
  if (replacing === undefined) return `<${target}>`;
  const replaces = `${replacing.callId};to-tag=${replacing.remoteTag};from-tag=${replacing.localTag}`;
  return `<${target}${target.includes('?') ? '&' : '?'}Replaces=${encodeURIComponent(replaces)}>`;
}

/** A message/sipfrag body (RFC 3420) with a status line, the progress of a referred request (RFC 3515 §2.4.5). */
export function sipfrag(status: number, reason: string): string {
  return `SIP/2.0 ${status} ${reason}\r\n`;
}

/** The status of the status line a sipfrag body starts with; undefined when it has none. */
export function sipfragStatus(body: string): number | undefined {
  const m = /^SIP\/2\.0\s+(\d{3})\b/.exec(body.trimStart());
  return m ? Number(m[1]) : undefined;
}

/** The sipfrag content type (RFC 3420 §2). */
export const SIPFRAG = 'message/sipfrag;version=2.0';
