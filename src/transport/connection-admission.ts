import type { Clock } from '../util/clock.js';

export interface AdmissionLimits {
  /** All stream sockets, inbound and outbound, including ones still in their TLS / WebSocket handshake. */
  maxConnections: number;
  /** Inbound sockets from one source IP address. */
  maxConnectionsPerSource: number;
  /** Of maxConnections, the sockets only addresses with an established flow may take. */
  reservedConnections: number;
}

/** What admission counts for TransportLayer.stats(). */
export interface AdmissionCounters {
  connectionsRejected: number;
  connectionsEvicted: number;
}

/** One admitted socket's place in the limits. */
export interface AdmissionSlot {
  /** The socket has delivered a complete message: it, and its address, are established. */
  established(): void;
  /** Frees the place (idempotent: eviction frees it before the socket's close event). */
  release(): void;
}

/** How long an address that had an established flow keeps its claim on the reserve after the flow closed. */
const REMEMBER_ESTABLISHED_MS = 60 * 60 * 1000;

class Slot implements AdmissionSlot {
  proven = false;
  released = false;

  constructor(
    private readonly admission: ConnectionAdmission,
    readonly source: string | undefined,
    readonly evict: () => void,
  ) {}

  established(): void {
    this.admission.prove(this);
  }

  release(): void {
    this.admission.free(this);
  }
}

/**
 * The inbound sockets that have not delivered a complete message yet, by source address, oldest first within each,
 * with the addresses ranked by how many such sockets they hold (buckets by count, so that the heaviest is found in
 * constant time however many addresses there are).
 */
class Unestablished {
  private readonly bySource = new Map<string, Set<Slot>>();
  private readonly byCount = new Map<number, Set<string>>();
  private top = 0;
  size = 0;

  count(source: string): number {
    return this.bySource.get(source)?.size ?? 0;
  }

  add(slot: Slot, source: string): void {
    let slots = this.bySource.get(source);
    if (!slots) this.bySource.set(source, (slots = new Set()));
    slots.add(slot);
    this.size++;
    this.rank(source, slots.size - 1, slots.size);
  }

  delete(slot: Slot, source: string): void {
    const slots = this.bySource.get(source);
    if (!slots?.delete(slot)) return;
    this.size--;
    if (slots.size === 0) this.bySource.delete(source);
    this.rank(source, slots.size + 1, slots.size);
  }

  /** The oldest socket of the address holding the most, with that number. */
  heaviest(): { slot: Slot; count: number } | undefined {
    if (this.top === 0) return undefined;
    const source = this.byCount.get(this.top)!.values().next().value!;
    return { slot: this.bySource.get(source)!.values().next().value!, count: this.top };
  }

  private rank(source: string, from: number, to: number): void {
    const old = this.byCount.get(from);
    old?.delete(source);
    if (old?.size === 0) this.byCount.delete(from);
    if (to > 0) {
      let bucket = this.byCount.get(to);
      if (!bucket) this.byCount.set(to, (bucket = new Set()));
      bucket.add(source);
    }
    if (to > this.top) this.top = to;
    while (this.top > 0 && !this.byCount.has(this.top)) this.top--;
  }
}

/**
 * Which stream sockets may be open (Kamailio's tcp_max_connections and tcp_accept_iplimit, with a reserve).
 *
 * - An inbound socket is counted from accept, before any handshake, so that half-open handshakes count too.
 * - One source address may hold at most maxConnectionsPerSource sockets; the one over is refused.
 * - The table is never full for a peer that has shown it speaks SIP: when a new socket finds no room, a socket that
 *   has not yet delivered a complete message is closed to make room, the oldest of the address holding the most
 *   such sockets, and only if that address holds more of them than the newcomer's. A new client (holding none)
 *   can always displace an attacker's slow or silent connections; attackers, once evenly spread, cannot displace
 *   each other (their extra connections are refused at once, which costs far less than accepting them), and a
 *   client's own new connection, being the newest of an address holding one, is the last to go.
 * - The last reservedConnections places are kept for addresses with an established flow open (or one closed within
 *   the last hour): a phone whose address the server knows can reconnect even when strangers fill the rest.
 * - Connections we open ourselves are established from the start.
 */
export class ConnectionAdmission {
  private total = 0;
  private readonly perSource = new Map<string, number>();
  private readonly unproven = new Unestablished();
  /** Addresses with established sockets open, and how many. */
  private readonly established = new Map<string, number>();
  /** Addresses whose last established socket closed, with when; oldest first, bounded. */
  private readonly remembered = new Map<string, number>();

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly clock: Clock,
    private readonly counters: AdmissionCounters,
  ) {}

  /** Sockets counted against maxConnections. */
  get sockets(): number {
    return this.total;
  }

  /** Sockets that have not delivered a complete message yet. */
  get unestablished(): number {
    return this.unproven.size;
  }

  /**
   * A place for a socket: `source` is the peer's IP for inbound sockets, undefined for ones we open; `evict` closes
   * the socket should its place be needed. Undefined (and counted) when there is none.
   */
  admit(source: string | undefined, evict: () => void): AdmissionSlot | undefined {
    if (source !== undefined && (this.perSource.get(source) ?? 0) >= this.limits.maxConnectionsPerSource) return this.refuse();
    const known = source === undefined || this.isKnown(source);
    const limit = known ? this.limits.maxConnections : this.limits.maxConnections - this.limits.reservedConnections;
    if (this.total >= limit && !this.makeRoom(this.total - limit + 1, source)) return this.refuse();
    const slot = new Slot(this, source, evict);
    this.total++;
    if (source === undefined) slot.proven = true;
    else {
      this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
      this.unproven.add(slot, source);
    }
    return slot;
  }

  /** @internal Slot.established */
  prove(slot: Slot): void {
    if (slot.proven || slot.released) return;
    slot.proven = true;
    if (slot.source !== undefined) this.unproven.delete(slot, slot.source);
    if (slot.source !== undefined) {
      this.established.set(slot.source, (this.established.get(slot.source) ?? 0) + 1);
      this.remembered.delete(slot.source);
    }
  }

  /** @internal Slot.release */
  free(slot: Slot): void {
    if (slot.released) return;
    slot.released = true;
    this.total--;
    const source = slot.source;
    if (source === undefined) return;
    this.unproven.delete(slot, source);
    const n = (this.perSource.get(source) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(source);
    else this.perSource.set(source, n);
    if (!slot.proven) return;
    const e = (this.established.get(source) ?? 1) - 1;
    if (e > 0) {
      this.established.set(source, e);
      return;
    }
    this.established.delete(source);
    this.remember(source);
  }

  private isKnown(source: string): boolean {
    if (this.established.has(source)) return true;
    const since = this.remembered.get(source);
    if (since === undefined) return false;
    if (this.clock.now() - since < REMEMBER_ESTABLISHED_MS) return true;
    this.remembered.delete(source);
    return false;
  }

  private remember(source: string): void {
    this.remembered.set(source, this.clock.now());
    // Bounded like the table itself: the oldest memories go first.
    while (this.remembered.size > this.limits.maxConnections) this.remembered.delete(this.remembered.keys().next().value!);
  }

  /** Closes `count` sockets without a complete message (see the class comment); false when that is not allowed. */
  private makeRoom(count: number, newcomer: string | undefined): boolean {
    for (let i = 0; i < count; i++) {
      const victim = this.unproven.heaviest();
      const holds = newcomer === undefined ? 0 : this.unproven.count(newcomer);
      if (!victim || victim.count <= holds) return false;
      this.free(victim.slot);
      this.counters.connectionsEvicted++;
      victim.slot.evict();
    }
    return true;
  }

  private refuse(): undefined {
    this.counters.connectionsRejected++;
    return undefined;
  }
}
