import { isIP } from 'node:net';
import { removeTopVia, type SipRequest, type SipResponse } from '../message/index.js';
import { TransportError, viaDestination, type Destination } from '../transport/index.js';
import { parseBranch, statelessBranch } from './branch-id.js';
import type { Forwarder, ProxySender, RecordRouting } from './forwarding.js';
import type { ProxyIdentity } from './identity.js';
import type { Target } from './target.js';

/**
 * §16.11: forwards a request to one target with the branch computed from the request alone, so that its
 * retransmissions, and the CANCEL or non-2xx ACK that follow it, leave with the same branch. Tries the resolved
 * addresses in order until one accepts the message; returns whether one did.
 */
export async function forwardStatelessly(
  forwarder: Forwarder,
  sender: ProxySender,
  work: SipRequest,
  target: Target,
  hash: string,
  recordRoute: RecordRouting | undefined,
): Promise<boolean> {
  const prepared = await forwarder.prepare(work, target).catch((e: unknown) => {
    if (e instanceof TransportError) return undefined;
    throw e;
  });
  if (!prepared) return false;
  for (const hop of prepared.hops) {
    try {
      await sender.send(forwarder.build(prepared, hop, statelessBranch(hash), recordRoute), hop);
      return true;
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
      forwarder.markFailed(hop);
    }
  }
  return false;
}

export type StrayVerdict = { forward: Destination } | { drop: 'not-ours' | 'late' | 'no-via' | 'broadcast' };

/**
 * What to do with a response that matched no client transaction (the transport has already checked that its top
 * Via names us). Forwarded, with our Via removed, to where the next Via says (§18.2.2): responses to statelessly
 * forwarded requests (§16.11), and 2xx responses to an INVITE, which a stateful proxy forwards even after its client
 * transaction has ended (§16.7 step 5, RFC 6026 §7.2). Anything else is a late answer to a branch already complete.
 * Never towards a broadcast, multicast or unspecified address (RFC 4475 bcast): that would be an amplifier.
 */
export function strayVerdict(res: SipResponse, identity: ProxyIdentity): StrayVerdict {
  const via = res.via;
  const branch = parseBranch(via.branch);
  if (!branch || !identity.isOurSentBy(via)) return { drop: 'not-ours' };
  const invite2xx = res.cseq.method === 'INVITE' && res.status >= 200 && res.status < 300;
  if (!branch.stateless && !invite2xx) return { drop: 'late' };
  removeTopVia(res);
  if (!res.headers.has('via')) return { drop: 'no-via' };
  const destination = viaDestination(res);
  if (isUnroutable(destination.address)) return { drop: 'broadcast' };
  return { forward: destination };
}

/** The limited broadcast, multicast (224.0.0.0/4, ff00::/8) and unspecified addresses. */
export function isUnroutable(address: string): boolean {
  const a = address.startsWith('[') ? address.slice(1, -1) : address;
  const family = isIP(a);
  if (family === 6) return a === '::' || /^ff/i.test(a);
  if (family !== 4) return false;
  const first = Number(a.split('.')[0]);
  return a === '255.255.255.255' || a === '0.0.0.0' || (first >= 224 && first <= 239);
}
