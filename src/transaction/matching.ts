import { unescape, type SipRequest, type SipResponse, type Uri, type Via } from '../message/index.js';

/**
 * Transaction matching as index keys: every lookup is one Map access on a string built from the message, never a
 * scan over live transactions. RFC 3261 keys are short (branch, sent-by, method); the RFC 2543 fallback key is a
 * JSON array of the fields §17.2.3 compares, in a canonical form so that equal values give equal strings.
 */

/** §17.1.3: a response matches the client transaction whose request had the same top-Via branch and CSeq method. */
export function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

export function clientKeyOfResponse(response: SipResponse): string | undefined {
  const branch = response.via.branch;
  return branch ? clientKey(branch, response.cseq.method) : undefined;
}

/**
 * §17.2.3: the server transaction a request belongs to. With an RFC 3261 branch: branch, top-Via sent-by and method,
 * where an ACK belongs to the INVITE. Otherwise (no magic cookie, or nothing after it: RFC 4475 inv2543, badbranch)
 * the RFC 2543 rules: Request-URI, To tag, From tag, Call-ID, CSeq number, top Via, and the method.
 * `method` overrides the request's own (§9.2: a CANCEL is matched as if it were the request it cancels).
 */
export function serverKey(request: SipRequest, method: string = request.method === 'ACK' ? 'INVITE' : request.method): string {
  const via = request.via;
  if (via.hasRfc3261Branch) return `${via.branch}|${via.host.toLowerCase()}:${via.port ?? ''}|${method}`;
  return rfc2543Key(request, method, request.toTag ?? null);
}

/**
 * §17.2.3, RFC 2543 ACK: it matches an INVITE on the fields above except the To tag, which must instead equal the
 * tag of the response the transaction sent (checked with `ackMatchesFinalResponse` once the candidate is found).
 * Both the INVITE and the ACK compute this key, so an INVITE server transaction is indexed under it too.
 */
export function rfc2543AckKey(request: SipRequest): string {
  return rfc2543Key(request, 'ACK', null);
}

/** The final response's To tag (the one an RFC 2543 ACK must carry), or undefined when none was sent yet. */
export function ackMatchesFinalResponse(ack: SipRequest, finalToTag: string | null | undefined): boolean {
  return finalToTag !== undefined && (finalToTag ?? undefined) === ack.toTag;
}

function rfc2543Key(request: SipRequest, method: string, toTag: string | null): string {
  return (
    '2543' +
    JSON.stringify([method, uriKey(request.uri), toTag, request.fromTag ?? null, request.callId, request.cseq.seq, viaKey(request.via)])
  );
}

/**
 * A canonical form of a Request-URI for §19.1.4 equality: case-insensitive scheme and host, unescaped user and
 * password, and the parameters that must match whenever either URI has them. Other parameters are left out because
 * §19.1.4 ignores one that appears in only one URI; two URIs differing only in the value of such a parameter thus
 * compare equal here, which for retransmissions of one request cannot happen.
 */
function uriKey(uri: Uri): unknown[] {
  switch (uri.type) {
    case 'sip': {
      const key: unknown[] = [uri.scheme, unescape(uri.user ?? ''), unescape(uri.password ?? ''), uri.host.toLowerCase(), uri.port ?? null];
      for (const name of ['user', 'ttl', 'method', 'maddr', 'transport']) {
        const v = uri.params.get(name);
        key.push(v === undefined ? null : unescape(v ?? '').toLowerCase());
      }
      return key;
    }
    case 'tel':
      return ['tel', uri.digits.toLowerCase(), ...sortedParams(uri.params.entries(), true)];
    case 'absolute':
      return [uri.scheme.toLowerCase(), uri.rest];
  }
}

/** The top Via as a value: transport and host are case-insensitive, parameter order is irrelevant. */
function viaKey(via: Via): unknown[] {
  return [via.protocol, via.transport, via.host.toLowerCase(), via.port ?? null, ...sortedParams(via.params.entries(), false)];
}

function sortedParams(entries: ReadonlyArray<readonly [string, string | null]>, foldValues: boolean): string[] {
  return entries
    .map(([n, v]) => `${n.toLowerCase()}=${v === null ? '' : foldValues ? v.toLowerCase() : v}`)
    .sort();
}
