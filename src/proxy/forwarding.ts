import {
  addRecordRoute,
  decrementMaxForwards,
  prependVia,
  removeTopRoute,
  SipRequest,
  type SipUri,
  type TelUri,
} from '../message/index.js';
import { normalizeAddress, TransportError, type BoundListener, type Destination, type Flow, type FlowTokens, type MessageSender, type SipResolver } from '../transport/index.js';
import type { Target } from './target.js';

/** What forwarding needs from the transport layer: sending, and the listeners our Via / Record-Route name. */
export interface ProxySender extends MessageSender {
  listeners(): BoundListener[];
  /** Where a request for a flow goes, undefined when the flow is gone (TransportLayer.flowDestination). */
  flowDestination?(flow: Flow): Destination | undefined;
  /** Learns the kernel's local address for destinations where it decides the listener (TransportLayer.learnRoutes). */
  learnRoutes?(destinations: readonly Destination[]): Promise<void> | undefined;
}

/** A request copy for one target (§16.6 steps 1-6) and the next hops to try for it, best first (step 7). */
export interface PreparedBranch {
  copy: SipRequest;
  hops: Destination[];
  /** The hop is a phone's own flow (a registered binding, or a flow token): record-route with a token for it. */
  toFlow: boolean;
}

/** How a forwarded request record-routes (§16.6 step 4); undefined: it does not. */
export interface RecordRouting {
  /** The listener the request came in on, for the second Record-Route of RFC 5658 when it leaves by another. */
  inbound: BoundListener | undefined;
  /** The flow of a phone that sent the request itself, to put in a flow token (RFC 5626 §5.3). */
  inboundFlow: Flow | undefined;
}

export interface ForwarderOptions {
  sender: ProxySender;
  /** RFC 3263 next-hop resolution. */
  resolver: SipResolver;
  /** Flow tokens in Record-Route (RFC 5626 §5.3); without them in-dialog requests follow the Request-URI. */
  tokens?: FlowTokens;
}

/**
 * §16.6 request forwarding, split where the network comes in: `prepare` makes the copy for a target and resolves
 * its next hop (asynchronous, once per target); `build` stamps the copy for one hop with Record-Route and our Via
 * (synchronous, once per attempt: a failover to the next address is a new branch, RFC 3263 §4.3).
 */
export class Forwarder {
  constructor(private readonly options: ForwarderOptions) {}

  async prepare(work: SipRequest, target: Target): Promise<PreparedBranch> {
    // Step 1: copy. The header list is the edit list: untouched fields stay slices of the received bytes.
    const ruri = target.uri.clone();
    const copy = new SipRequest(work.method, ruri, work.headers.clone(), work.body, work.version);
    // Step 3.
    decrementMaxForwards(copy);
    // Step 6: a preloaded route set (Path) goes in front of any Route the request has.
    for (let i = target.routeSet.length - 1; i >= 0; i--) copy.headers.prepend('route', target.routeSet[i]!);
    const top = copy.routes[0];
    let nextHop: SipUri | TelUri = ruri;
    if (top && top.uri.type === 'sip') {
      if (top.uri.lr) nextHop = top.uri;
      else {
        // Step 6, strict router next: the Request-URI goes to the end of the Route set and the router's URI
        // becomes the Request-URI, which is also the next hop.
        removeTopRoute(copy);
        copy.headers.append('route', `<${ruri.toString()}>`);
        copy.uri = top.uri;
        nextHop = top.uri;
      }
    }
    // Step 7. A tel: URI names a number, not a host: only a Route (a gateway) takes it anywhere.
    let hops: Destination[] = [];
    if (target.destination) hops = [target.destination];
    else if (nextHop.type === 'sip') {
      hops = await this.options.resolver.resolve(nextHop);
      // Nothing in DNS, or DNS failed (unreachable, refused, silent, garbage): the reason says which name.
      if (hops.length === 0) throw new TransportError('connect', `no address for ${nextHop.host} (DNS)`);
    }
    // With several addresses of our own, the one the kernel sends from decides the Via and Record-Route.
    const learning = this.options.sender.learnRoutes?.(hops);
    if (learning) await learning;
    return { copy, hops, toFlow: target.destination !== undefined };
  }

  /**
   * Step 4 and step 8 for one hop: Record-Route naming the interface the request leaves by (and, when that is not
   * the one it came in on, first the incoming one, RFC 5658 §4), then our Via with `branch`. Throws
   * TransportError('no-listener') when no listener can send to the hop.
   *
   * A phone's flow on either side goes into a flow token in the Record-Route value facing it (RFC 5626 §5.3), so
   * that the requests of the dialog towards that phone go over its flow (a NAT binding, a TLS or WebSocket
   * connection) rather than to its Contact. With a token on both sides there are two values even on one
   * interface: each side's route set then starts with the value carrying its own flow.
   */
  build(prepared: PreparedBranch, hop: Destination, branch: string, rr: RecordRouting | undefined): SipRequest {
    const { copy } = prepared;
    const out = this.options.sender.listenerFor(hop);
    if (!out) throw new TransportError('no-listener', `no ${hop.transport} listener to forward from`, hop);
    const req = new SipRequest(copy.method, copy.uri, copy.headers.clone(), copy.body, copy.version);
    if (rr) {
      const sips = copy.uri.type === 'sip' && copy.uri.scheme === 'sips';
      const tokens = this.options.tokens;
      const outToken = tokens && prepared.toFlow ? tokens.encode(hopFlow(hop, out)) : undefined;
      const inToken = tokens && rr.inboundFlow ? tokens.encode(rr.inboundFlow) : undefined;
      const inbound = rr.inbound ?? out;
      const two = inbound.transport !== out.transport || inbound.advertised !== out.advertised || (outToken !== undefined && inToken !== undefined);
      if (two) addRecordRoute(req, recordRouteValue(inbound, sips, inToken));
      addRecordRoute(req, recordRouteValue(out, sips, two ? outToken : (outToken ?? inToken)));
    }
    // rport as in our own requests (RFC 3581): responses find their way back if we sit behind a NAT.
    const sentBy = this.options.sender.viaSentBy?.(hop, out) ?? out.advertised;
    prependVia(req, `SIP/2.0/${hop.transport.toUpperCase()} ${sentBy};branch=${branch};rport`);
    return req;
  }

  markFailed(hop: Destination): void {
    this.options.resolver.markFailed(hop);
  }
}

/**
 * `<sip:host:port;lr>` for a listener, with the transport named unless it is UDP (§19.1.2 default), and a flow
 * token as the user part when given. §16.6 step 4: a sips Request-URI needs a sips Record-Route, which our secure
 * listeners can give.
 */
export function recordRouteValue(l: BoundListener, sips: boolean, flowToken?: string): string {
  const secure = sips && (l.transport === 'tls' || l.transport === 'wss');
  let params = ';lr';
  if (l.transport === 'wss' && secure) params += ';transport=ws';
  else if (l.transport !== 'udp' && !secure) params += `;transport=${l.transport}`;
  const user = flowToken === undefined ? '' : `${flowToken}@`;
  return `<${secure ? 'sips' : 'sip'}:${user}${l.advertised}${params}>`;
}

/** The flow a hop to a phone's flow stands for: its peer, and the socket (listener) it is reached from. */
function hopFlow(hop: Destination, out: BoundListener): Flow {
  const flow: Flow = { transport: hop.transport, address: normalizeAddress(hop.address), port: hop.port, localAddress: normalizeAddress(out.host), localPort: out.port };
  if (hop.transport !== 'udp' && hop.flowId !== undefined) flow.connectionId = hop.flowId;
  return flow;
}
