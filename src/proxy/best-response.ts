import type { SipResponse } from '../message/index.js';

/** §16.7 step 6: 4xx responses that tell the client how to retry, preferred within their class. */
const RETRY_INFORMATION = new Set([401, 407, 415, 420, 484]);

/**
 * §16.7 step 6: the response to forward once every branch has a final response. A 6xx if there is one (the first
 * received); otherwise the lowest class, and within 4xx the responses that say how to resubmit (401, 407, 415,
 * 420, 484), then the lowest status. Undefined for an empty set (the caller then answers 408). Stable: among equal
 * candidates the first received wins.
 */
export function selectBest(responses: readonly SipResponse[]): SipResponse | undefined {
  let best: SipResponse | undefined;
  for (const r of responses) if (!best || rank(r) < rank(best)) best = r;
  return best;
}

function rank(r: SipResponse): number {
  const s = r.status;
  const cls = Math.floor(s / 100);
  if (cls === 6) return 0;
  const preferred = cls === 4 && RETRY_INFORMATION.has(s) ? 0 : 1;
  return cls * 10_000 + preferred * 1_000 + s;
}

/**
 * §16.7 step 7: a 401 or 407 going upstream carries the challenges of every 401 and 407 of the context, so that
 * the client can answer all the realms at once.
 */
export function aggregateChallenges(best: SipResponse, responses: readonly SipResponse[]): void {
  if (best.status !== 401 && best.status !== 407) return;
  for (const r of responses) {
    if (r === best || (r.status !== 401 && r.status !== 407)) continue;
    for (const name of ['www-authenticate', 'proxy-authenticate']) {
      for (const value of r.headers.getAll(name)) best.headers.append(name, value);
    }
  }
}
