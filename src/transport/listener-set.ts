import type { Clock } from '../util/clock.js';
import { addressFamily, advertisedHost, hostPort, isWildcard, normalizeAddress } from './address.js';
import { candidatesFor, chooseListener, LocalRoutes, needsRoute, type BoundEntry } from './local-routes.js';
import type { BoundListener, Destination, ListenSpec, TransportName } from './types.js';

/** What a connection looks like to ListenerSet: its transport and local end. */
export interface LocalEnd {
  transport: TransportName;
  localAddress: string;
  localPort: number;
}

/**
 * The bound listeners and what they advertise: which one a message to a destination leaves by (so that its Via and
 * Record-Route name that socket), and which sent-by values are ours (§18.1.2). UDP entries come first, in the order
 * of the transport layer's UDP sockets, so that an entry's index is its socket's.
 */
export class ListenerSet {
  private bound: BoundEntry[] = [];
  /** Every worker's own ports (transport.workerPorts): sent-by values of ours too. */
  private workerBound: BoundEntry[] = [];
  private udpCount = 0;
  /** The kernel's choice of local address per destination, for servers with several addresses. */
  private readonly routes: LocalRoutes;

  constructor(
    clock: Clock,
    /** Via sent-by host for listeners bound to a wildcard address (config advertisedHost). */
    private readonly wildcardHost: string | undefined,
  ) {
    this.routes = new LocalRoutes(clock);
  }

  /** The bound listeners, UDP ones first (`udpCount` of them), and the workers' own ports. */
  set(udp: Array<{ spec: ListenSpec; localAddress: string; localPort: number }>, streams: typeof udp, workerPorts: typeof udp): void {
    this.udpCount = udp.length;
    this.bound = [...udp, ...streams].map((l) => this.describe(l.spec, l.localAddress, l.localPort));
    this.workerBound = workerPorts.map((l) => this.describe(l.spec, l.localAddress, l.localPort));
  }

  listeners(): BoundListener[] {
    return this.bound.map((b) => b.listener);
  }

  /** The listeners, and with worker ports every worker's own: everything our Vias may name. */
  viaListeners(): BoundListener[] {
    return this.workerBound.length === 0 ? this.listeners() : [...this.listeners(), ...this.workerBound.map((b) => b.listener)];
  }

  /** The first listener of a transport (and family): a default sent-by. */
  first(transport: TransportName, family?: 4 | 6): BoundListener | undefined {
    return this.bound.find((b) => b.listener.transport === transport && (family === undefined || b.family === family))?.listener;
  }

  /** Index of the UDP socket (and entry) that sends to `address` when no flow names one; see chooseListener. */
  udpIndexFor(address: string): number | undefined {
    const entry = chooseListener(candidatesFor(this.bound.slice(0, this.udpCount), { transport: 'udp' }, addressFamily(address) ?? 4), address, this.routes);
    return entry === undefined ? undefined : this.bound.indexOf(entry);
  }

  udpEntry(index: number): BoundEntry | undefined {
    return index < this.udpCount ? this.bound[index] : undefined;
  }

  /** The stream listener a new connection to `address` is opened from (its address becomes the local one). */
  streamEntryFor(transport: TransportName, address: string): BoundEntry | undefined {
    return chooseListener(candidatesFor(this.bound, { transport }, addressFamily(address) ?? 4), address, this.routes);
  }

  /** The listener an open connection belongs to: the one that accepted it, or for one we opened, the one on its address. */
  entryOfConnection(conn: LocalEnd): BoundEntry | undefined {
    const same = this.bound.filter((b) => b.listener.transport === conn.transport);
    return (
      same.find((b) => b.localAddress === conn.localAddress && b.listener.port === conn.localPort) ??
      same.find((b) => b.localAddress === conn.localAddress) ??
      same.find((b) => isWildcard(b.localAddress))
    );
  }

  /** A worker's own port beside UDP listener `index` (transport.workerPorts), when there are such ports. */
  workerEntry(position: number): BoundEntry | undefined {
    return this.workerBound[position];
  }

  /**
   * Learns which local address the kernel sends from to each destination where that decides between listeners
   * (several bound to specific addresses). Undefined when there is nothing to learn (the common case: no promise).
   */
  learnRoutes(destinations: readonly Destination[]): Promise<void> | undefined {
    const learning: Array<Promise<void>> = [];
    for (const d of destinations) {
      if (d.flowId !== undefined) continue;
      const family = addressFamily(d.address);
      if (family !== undefined && needsRoute(candidatesFor(this.bound, d, family))) learning.push(this.routes.learn(d.address));
    }
    return learning.length === 0 ? undefined : Promise.all(learning).then(() => undefined);
  }

  /** §18.1.2: whether host:port is the sent-by of one of our listeners (advertised, or bound). */
  isOurSentBy(host: string, port: number): boolean {
    const h = normalizeAddress(host);
    const ours = (b: BoundEntry): boolean => (b.advertisedPort === port && b.host.toLowerCase() === h) || (b.listener.port === port && b.localAddress === h);
    return this.bound.some(ours) || this.workerBound.some(ours);
  }

  private describe(spec: ListenSpec, localAddress: string, port: number): BoundEntry {
    const family = addressFamily(localAddress) ?? 4;
    const [host, advertisedPort] = spec.advertise ? splitAdvertise(spec.advertise, port) : [advertisedHost(localAddress, this.wildcardHost), port];
    return { listener: { ...spec, port, advertised: hostPort(host, advertisedPort) }, family, host, advertisedPort, localAddress: normalizeAddress(localAddress) };
  }
}

/** `203.0.113.1:5060`, `[2001:db8::1]`, `sip.example.com` of a listener's `advertise`: host and port (default: bound). */
function splitAdvertise(advertise: string, boundPort: number): [string, number] {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(advertise);
  if (!m) return [advertise, boundPort];
  return [m[1] ?? m[2]!, m[3] === undefined ? boundPort : Number(m[3])];
}
