import { isIP } from 'node:net';
import { tryParseUri, uriEquals, type SipRequest, type SipResponse, type SipUri, type TelUri } from '../message/index.js';
import type { LookupResult, Target as Located } from '../registrar/index.js';
import type { SubscriberStore } from '../store/index.js';
import { DEFAULT_PORTS, isInvalidName, isReliableTransport, normalizeAddress, type Destination, type Flow, type TransportName } from '../transport/index.js';
import type { RouteFlow } from './route-processing.js';
import type { ProxyIdentity } from './identity.js';

/** One element of the target set (§16.5) and how to reach it. */
export interface Target {
  /** The Request-URI of the branch (§16.6 step 2). */
  uri: SipUri | TelUri;
  /** Route values to preload, in order: the Path of a registration (RFC 3327 §5.3). */
  routeSet: string[];
  /** A next hop that skips resolution: the flow or address a binding registered from (NAT, RFC 5626 §5.3). */
  destination?: Destination;
  /** Preference (q), for serial forking and redirects. */
  q: number;
  /** When the binding behind this target expires (ms since the epoch), for the expires of a redirect Contact. */
  expiresAt?: number;
}

export type TargetPlan =
  | { kind: 'targets'; targets: Target[]; located: boolean }
  /** `located`: the answer comes from a location lookup (a user of ours who is not online). */
  | { kind: 'reply'; status: number; located: boolean; reason?: string };

/** The location service as the proxy uses it (the registrar's lookup). */
export interface LocationService {
  lookup(uri: SipUri): Promise<LookupResult>;
}

export interface TargetOptions {
  identity: ProxyIdentity;
  location?: LocationService;
  /** Tells a known user without bindings (480) from an unknown one (404). */
  subscribers?: SubscriberStore;
  /** Whether a transport flow (connection) still exists. */
  isFlowAlive?: (flowId: string) => boolean;
  /** Where a request for a flow goes; undefined when the flow is gone (TransportLayer.flowDestination). */
  flowDestination?: (flow: Flow) => Destination | undefined;
}

/**
 * §16.5 target set determination for a request after §16.4: a request still carrying a Route goes where the Route
 * says with its Request-URI unchanged; a Request-URI in a served domain is replaced by the bindings of the location
 * service; anything else is its own single target.
 */
export async function determineTargets(req: SipRequest, options: TargetOptions, routeFlow?: RouteFlow): Promise<TargetPlan> {
  const uri = req.uri;
  if (uri.type === 'absolute') return { kind: 'reply', status: 416, located: false };
  if (routeFlow?.kind === 'flow') return flowTarget(uri, routeFlow.flow, options);
  // Also where a routing policy skipped validate(): a forged token never falls back to the Request-URI.
  if (routeFlow?.kind === 'forged') return { kind: 'reply', status: 403, located: false, reason: 'Forbidden - invalid flow token' };
  if (req.headers.has('route')) return only(uri);
  const aliased = aliasTarget(uri);
  if (aliased) return { kind: 'targets', targets: [aliased], located: false };
  // RFC 6761 §6.4: a name under .invalid never resolves (a WebSocket client's Contact); only its flow reaches it.
  if (uri.type === 'sip' && isInvalidName(uri.hostname)) return { kind: 'reply', status: 480, located: false, reason: 'Temporarily Unavailable - no flow to the .invalid host' };
  return locate(uri, options);
}

/** Kamailio's alias protocol numbers: 1 UDP, 2 TCP, 3 TLS, (4 SCTP), 5 WS, 6 WSS. */
const ALIAS_TRANSPORTS: Record<string, TransportName> = { '1': 'udp', '2': 'tcp', '3': 'tls', '5': 'ws', '6': 'wss' };

/**
 * Interoperation with a Kamailio edge that marks the Contacts of phones behind NAT with `add_contact_alias()`:
 * a Request-URI `sip:bob@192.168.1.5:5060;alias=203.0.113.9~40312~1` goes to the address, port and transport of the
 * alias, which is then taken out of the Request-URI (its `handle_ruri_alias()`). sipway's own dialogs need no
 * alias: they carry the flow in the route set (flow tokens).
 */
function aliasTarget(uri: SipUri | TelUri): Target | undefined {
  if (uri.type !== 'sip') return undefined;
  const alias = uri.params.get('alias');
  if (typeof alias !== 'string') return undefined;
  const [address = '', port = '', proto = ''] = alias.split('~');
  const transport = ALIAS_TRANSPORTS[proto];
  const p = Number(port);
  if (!transport || isIP(address) === 0 || !Number.isInteger(p) || p < 1 || p > 65535) return undefined;
  const ruri = uri.clone();
  ruri.params.delete('alias');
  return { uri: ruri, routeSet: [], q: 1, destination: { transport, address: normalizeAddress(address), port: p } };
}

/**
 * RFC 5626 §5.3: a request whose route set names a phone's flow goes over that flow, whatever its Request-URI; a
 * flow that has gone is a 430 (Flow Failed), and the phone's next request opens a new one.
 */
function flowTarget(uri: SipUri | TelUri, flow: Flow, options: TargetOptions): TargetPlan {
  const destination = options.flowDestination?.(flow);
  if (!destination) return { kind: 'reply', status: 430, located: false, reason: 'Flow Failed' };
  return { kind: 'targets', targets: [{ uri, routeSet: [], q: 1, destination }], located: false };
}


/** A URI that is its own single target. */
function only(uri: SipUri | TelUri): TargetPlan {
  return { kind: 'targets', targets: [{ uri, routeSet: [], q: 1 }], located: false };
}

/**
 * §16.5 targets of a URI without a Route: the bindings of a user of a served domain (404/480/430 when there are
 * none), the URI itself for other domains.
 */
export async function locate(uri: SipUri | TelUri, options: TargetOptions): Promise<TargetPlan> {
  // Without a Route, a tel: number has nowhere to go until a routing policy names a gateway.
  if (uri.type === 'tel') return { kind: 'reply', status: 404, located: false };
  const { identity } = options;
  if (!identity.isServedDomain(uri.host)) {
    // A user at one of our own addresses rather than a served domain: nobody to find, and forwarding would loop.
    if (identity.isLocalHost(uri.hostname, uri.port)) return { kind: 'reply', status: 404, located: false };
    return only(uri);
  }
  if (uri.user === undefined || !options.location) return { kind: 'reply', status: 404, located: false };
  const found = await options.location.lookup(uri);
  const alive = found.targets.filter((t) => !t.flowFailed);
  if (alive.length === 0) {
    // RFC 5626 §5.3: every binding is an Outbound flow that has gone.
    if (found.allFlowsFailed) return { kind: 'reply', status: 430, located: true };
    const user = uri.userUnescaped!;
    const known = options.subscribers ? (await options.subscribers.get(user, uri.host)) !== undefined : false;
    return { kind: 'reply', status: known ? 480 : 404, located: true };
  }
  const targets: Target[] = [];
  for (const t of alive) {
    const contact = tryParseUri(t.binding.contact);
    if (contact?.type !== 'sip' && contact?.type !== 'tel') continue;
    const target: Target = { uri: contact, routeSet: t.binding.path, q: t.binding.q, expiresAt: t.binding.expiresAt };
    const destination = registeredFlow(t, contact, options.isFlowAlive);
    if (destination) target.destination = destination;
    targets.push(target);
  }
  if (targets.length === 0) return { kind: 'reply', status: 480, located: true };
  return { kind: 'targets', targets, located: true };
}

/**
 * Where to send a request for a binding when its Contact cannot be used as it stands, i.e. where the REGISTER came
 * from (received-based routing, as a NAT-aware proxy does):
 * - an Outbound registration (RFC 5626 §5.3): always its flow;
 * - a registration over a connection that is still open: that connection (a UA behind NAT, or over WebSocket with
 *   its `.invalid` Contact, can be reached no other way);
 * - over UDP: the source when the Contact names the same host with another port (NAT port mapping), or a private
 *   address the REGISTER did not come from (a UA behind NAT), or the source itself (so that the request leaves by
 *   the socket the REGISTER came in on). A public Contact registered from elsewhere (a third-party registration)
 *   is used as it is.
 * Behind a Path the edge proxy holds the flow, so the Path is followed instead.
 */
function registeredFlow(t: Located, contact: SipUri | TelUri, isFlowAlive: ((flowId: string) => boolean) | undefined): Destination | undefined {
  const b = t.binding;
  if (b.path.length > 0) return undefined;
  const transport = b.source.transport as TransportName;
  if (!(transport in DEFAULT_PORTS)) return undefined;
  const source: Destination = { transport, address: b.source.address, port: b.source.port };
  if (b.flowId !== undefined) source.flowId = b.flowId;
  if (t.outbound) return source;
  if (isReliableTransport(transport)) {
    const open = b.flowId !== undefined && (isFlowAlive?.(b.flowId) ?? true);
    return open ? source : undefined;
  }
  if (contact.type !== 'sip' || isIP(contact.hostname) === 0) return undefined;
  const host = normalizeAddress(contact.hostname);
  const port = contact.port ?? DEFAULT_PORTS[transport];
  if (host === normalizeAddress(source.address)) {
    if (port !== source.port) return source;
    // The Contact is where the REGISTER came from: sent there over the socket it came in on, whatever port a worker
    // would send its own requests from (transport.workerPorts). Phones may accept requests from their registrar's
    // address and port only.
    const sameTransport = contact.scheme === 'sip' && (contact.transportParam ?? 'udp') === transport;
    return sameTransport && b.flowId !== undefined ? source : undefined;
  }
  return isPrivateAddress(host) ? source : undefined;
}

/** RFC 1918, RFC 6598 (carrier-grade NAT), link-local, and IPv6 unique-local / link-local addresses. */
export function isPrivateAddress(address: string): boolean {
  if (isIP(address) === 6) return /^f[cd]/i.test(address) || /^fe[89ab]/i.test(address);
  const [a, b] = address.split('.').map(Number) as [number, number];
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254);
}

/**
 * §16.5 recursion on a 3xx: its sip/sips Contacts not in `tried` (a URI is never added to the target set twice),
 * best q first. None for a 3xx whose Contacts cannot be read.
 */
export function redirectTargets(res: SipResponse, tried: ReadonlyArray<SipUri | TelUri>): Target[] {
  let contacts;
  try {
    contacts = res.contacts;
  } catch {
    return [];
  }
  const targets: Target[] = [];
  for (const c of contacts) {
    if (c.uri.type !== 'sip' || [...tried, ...targets.map((t) => t.uri)].some((u) => uriEquals(u, c.uri))) continue;
    const q = Number(c.params.get('q') ?? '1');
    targets.push({ uri: c.uri, routeSet: [], q: Number.isFinite(q) ? q : 1 });
  }
  return targets.sort((x, y) => y.q - x.q);
}

/** The Contact values of a redirect (§8.3, §21.3.3): each target with its q and remaining lifetime. */
export function redirectContacts(targets: readonly Target[], now: number): Array<[string, string]> {
  return targets.map((t) => {
    let value = `<${t.uri.toString()}>`;
    if (t.q !== 1) value += `;q=${t.q}`;
    if (t.expiresAt !== undefined) value += `;expires=${Math.max(0, Math.ceil((t.expiresAt - now) / 1000))}`;
    return ['Contact', value];
  });
}
