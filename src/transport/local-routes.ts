import { createSocket } from 'node:dgram';
import type { Clock } from '../util/clock.js';
import { addressBits, addressFamily, isWildcard, normalizeAddress } from './address.js';
import type { BoundListener, ListenSpec } from './types.js';

/** A bound listener with what choosing a socket needs: its family, advertised host and the address it is bound to. */
export interface BoundEntry {
  listener: BoundListener;
  family: 4 | 6;
  /** sent-by host and port as advertised (no brackets). */
  host: string;
  advertisedPort: number;
  /** The address actually bound (0.0.0.0 / :: for a wildcard). */
  localAddress: string;
}

const ROUTE_TTL_MS = 5 * 60_000;
const MAX_ROUTES = 4096;

/**
 * Which local address the kernel would send from to reach a destination (Kamailio's `mhomed`): learned once per
 * destination by connecting a throw-away UDP socket, which sends nothing, and kept for a few minutes. Only needed
 * when several listeners of one transport and family are bound to specific addresses: the socket that sends a
 * request must be the one whose address the request's Via and Record-Route name.
 */
export class LocalRoutes {
  private readonly known = new Map<string, { local: string | undefined; at: number }>();
  private readonly learning = new Map<string, Promise<void>>();

  constructor(private readonly clock: Clock) {}

  /** The local address learned for `address` (undefined: unknown, or the kernel has no route). */
  localAddressFor(address: string): string | undefined {
    const hit = this.known.get(address);
    if (!hit || this.clock.now() - hit.at > ROUTE_TTL_MS) return undefined;
    return hit.local;
  }

  /** Learns the local address for `address`; never rejects (no route is remembered as unknown). */
  learn(address: string): Promise<void> {
    const hit = this.known.get(address);
    if (hit && this.clock.now() - hit.at <= ROUTE_TTL_MS) return Promise.resolve();
    const pending = this.learning.get(address);
    if (pending) return pending;
    const family = addressFamily(address);
    if (family === undefined) return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
      const finish = (local: string | undefined): void => {
        if (this.known.size >= MAX_ROUTES) this.known.delete(this.known.keys().next().value!);
        this.known.set(address, { local, at: this.clock.now() });
        this.learning.delete(address);
        try {
          socket.close();
        } catch {
          // Already closed after an error.
        }
        resolve();
      };
      socket.on('error', () => finish(undefined));
      // The discard port: connect() on UDP only asks the kernel for a route; nothing is sent.
      socket.connect(9, address, () => {
        let local: string | undefined;
        try {
          local = normalizeAddress(socket.address().address);
        } catch {
          local = undefined;
        }
        finish(local);
      });
    });
    this.learning.set(address, done);
    return done;
  }
}

/**
 * The listener to send to `address` from, among `candidates` (one transport and family): the one bound to the
 * address the kernel would send from (when learned), else one bound to the destination itself (a message to
 * ourselves), else one of the same scope (loopback to loopback, others never from loopback) sharing the longest
 * address prefix with the destination, else the first.
 */
export function chooseListener(candidates: readonly BoundEntry[], address: string, routes: LocalRoutes): BoundEntry | undefined {
  if (candidates.length <= 1) return candidates[0];
  const dest = normalizeAddress(address);
  const exact = candidates.find((c) => c.localAddress === dest);
  if (exact) return exact;
  const local = routes.localAddressFor(dest);
  if (local !== undefined) {
    const routed = candidates.find((c) => c.localAddress === local) ?? candidates.find((c) => isWildcard(c.localAddress));
    if (routed) return routed;
  }
  const loopback = isLoopback(dest);
  const sameScope = candidates.filter((c) => isWildcard(c.localAddress) || isLoopback(c.localAddress) === loopback);
  const pool = sameScope.length > 0 ? sameScope : candidates;
  let best = pool[0]!;
  let bestBits = -1;
  for (const c of pool) {
    const bits = isWildcard(c.localAddress) ? 0 : commonPrefixBits(c.localAddress, dest);
    if (bits > bestBits) [best, bestBits] = [c, bits];
  }
  return best;
}

/** Whether choosing among `candidates` needs the kernel's route: two or more bound to specific addresses. */
export function needsRoute(candidates: readonly BoundEntry[]): boolean {
  let specific = 0;
  for (const c of candidates) if (!isWildcard(c.localAddress)) specific++;
  return specific > 1;
}

export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

function commonPrefixBits(a: string, b: string): number {
  const fa = addressFamily(a);
  if (fa === undefined || fa !== addressFamily(b)) return 0;
  const ba = addressBits(a);
  const bb = addressBits(b);
  let n = 0;
  while (n < ba.length && ba[n] === bb[n]) n++;
  return n;
}


/** The candidates for a transport and address family. */
export function candidatesFor(entries: readonly BoundEntry[], spec: Pick<ListenSpec, 'transport'>, family: 4 | 6): BoundEntry[] {
  const same = entries.filter((e) => e.listener.transport === spec.transport && e.family === family);
  // A dual-stack IPv6 wildcard socket reaches IPv4 peers too.
  if (same.length > 0 || family === 6) return same;
  return entries.filter((e) => e.listener.transport === spec.transport && e.family === 6 && isWildcard(e.localAddress));
}
