import type { SipRequest, Via } from '../message/index.js';
import { loopHash, parseBranch } from './branch-id.js';

/**
 * §16.3 steps 3-4 for a request the server would route (the §16.3 syntax, scheme and Proxy-Require checks run in
 * the server core before the proxy is asked). Returns the status to answer with, or undefined to go on.
 */
export function checkForwardable(req: SipRequest, isOurSentBy: (via: Via) => boolean): 483 | 482 | undefined {
  // Step 3: a request that has used up its hops is not forwarded (RFC 4475 zeromf).
  if (req.maxForwards === 0) return 483;
  // Step 4: a Via we wrote means the request has been here before: a loop when everything that decided our
  // processing then is the same now, a spiral (e.g. after a Request-URI rewrite downstream) otherwise.
  if (isLooped(req, isOurSentBy)) return 482;
  return undefined;
}

/**
 * Our Via carries the hash of the request as we received it, whose top Via then is the one right below ours now;
 * recomputing the hash over the request as it arrives now, with that Via, tells a loop from a spiral.
 */
export function isLooped(req: SipRequest, isOurSentBy: (via: Via) => boolean): boolean {
  const vias = req.vias;
  for (let i = 0; i + 1 < vias.length; i++) {
    const via = vias[i]!;
    const ours = parseBranch(via.branch);
    if (ours && isOurSentBy(via) && loopHash(req, vias[i + 1]!) === ours.hash) return true;
  }
  return false;
}
