import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { hostPort } from './address.js';
import { TransportError } from './types.js';

/** What a path fault tells its watchers; called from a socket callback, so it must not throw. */
export type PathFault = (err: TransportError) => void;

type SendDone = (err: Error | null) => void;

/** At most this many destinations are probed at once per UDP socket; past it a destination is simply not watched. */
export const MAX_UDP_PROBES = 1024;

/**
 * How long a destination a probe found unreachable stays known as such. Linux rate-limits the ICMP errors it sends to
 * one peer (net.ipv4.icmp_ratelimit, about one a second), so of many transactions to a destination that is gone, those
 * that start watching just after the error would otherwise wait for a later retransmission (1.5 s, 3.5 s ...).
 */
export const UNREACHABLE_MEMORY_MS = 2000;

/**
 * Linux hands an ICMP error (port or host unreachable) for a datagram to the socket that sent it only when that socket
 * is connected to the destination: the listening socket, which sends to everyone, never learns that a next hop is
 * gone, and a transaction to it waits for Timer B or F (32 s). So for a destination that has not answered in time, a
 * socket is connected to it from the listener's own address and port (SO_REUSEADDR on both), and what is sent there
 * goes through it. The 5-tuple on the wire is unchanged (NATs and phones that accept only their registrar's port see
 * nothing new), and the kernel prefers the connected socket for datagrams from that peer, which are handed on as if the
 * listener had read them. The first ICMP error fails every watcher of the destination; once none is left the socket
 * is closed.
 */
export class UdpProbes {
  private readonly probes = new Map<string, Probe>();
  /** Probes no longer used that still read what was queued for them (see Probe.close). */
  private readonly draining = new Set<Probe>();
  /** Destinations a probe found unreachable lately: the error, and until when it holds (UNREACHABLE_MEMORY_MS). */
  private readonly recent = new Map<string, { error: TransportError; until: number }>();
  /** Probes that could not be made (the listener is not shareable, the limit was reached). */
  unavailable = 0;

  constructor(
    private readonly type: 'udp4' | 'udp6',
    /** The listener's bound address and port, which every probe binds too. */
    private readonly local: () => { address: string; port: number } | undefined,
    private readonly onDatagram: (bytes: Buffer, remote: RemoteInfo) => void,
    /** Sends from the listener itself. */
    private readonly fallback: (address: string, port: number, bytes: Buffer, done: SendDone) => void,
  ) {}

  get size(): number {
    return this.probes.size;
  }

  /** Watches the path to `address:port` (as the socket sends to it) until the returned function is called. */
  watch(address: string, port: number, fault: PathFault): () => void {
    const key = hostPort(address, port);
    const known = this.recent.get(key);
    if (known !== undefined) {
      if (known.until > performance.now()) return reportLater(fault, known.error);
      this.recent.delete(key);
    }
    let probe = this.probes.get(key);
    if (!probe) {
      const local = this.local();
      if (!local || this.probes.size >= MAX_UDP_PROBES) {
        this.unavailable++;
        return () => undefined;
      }
      probe = new Probe(
        this.type,
        local,
        address,
        port,
        this.onDatagram,
        () => {
          if (this.probes.get(key) === probe) this.probes.delete(key);
          this.draining.add(probe!);
        },
        () => this.draining.delete(probe!),
        (bytes, done) => this.fallback(address, port, bytes, done),
        (error) => this.remember(key, error),
      );
      this.probes.set(key, probe);
    }
    return probe.add(fault);
  }

  /**
   * Sends through the probe of the destination, if it has one (returns false otherwise): a datagram sent while the
   * probe is still connecting waits for it, so that its ICMP error reaches the probe.
   */
  send(address: string, port: number, bytes: Buffer, done: SendDone): boolean {
    const probe = this.probes.get(hostPort(address, port));
    return probe !== undefined && probe.send(bytes, done);
  }

  closeAll(): void {
    for (const p of [...this.probes.values(), ...this.draining]) p.close(true);
    this.draining.clear();
    this.recent.clear();
  }

  private remember(key: string, error: TransportError): void {
    const now = performance.now();
    if (this.recent.size >= MAX_UDP_PROBES) {
      for (const [k, r] of this.recent) if (r.until <= now) this.recent.delete(k);
      // Still full of live entries: the oldest goes (a Map iterates in insertion order).
      if (this.recent.size >= MAX_UDP_PROBES) this.recent.delete(this.recent.keys().next().value!);
    }
    this.recent.delete(key);
    this.recent.set(key, { error, until: now + UNREACHABLE_MEMORY_MS });
  }
}

/**
 * A fault already known, told on the next turn of the event loop: the watcher is in the middle of a retransmission
 * and must not be terminated under its own feet. Cancelled by the returned function.
 */
function reportLater(fault: PathFault, error: TransportError): () => void {
  const timer = setImmediate(() => fault(error));
  return () => clearImmediate(timer);
}

/**
 * Where a closing probe points before it closes: datagrams from its destination go to the listener again, while what
 * the kernel had already queued on the probe is still read. The discard port; a datagram from there is handed on too.
 */
const PARKING_PORT = 9;

/** Turns of the event loop a closing probe waits for its last queued datagrams at most (each turn reads its socket). */
const MAX_DRAIN_TURNS = 64;

class Probe {
  private readonly socket: Socket;
  private readonly watchers = new Set<PathFault>();
  private connected = false;
  /** Datagrams handed over while connecting; the listener sends them if the probe cannot be made. */
  private waiting: Array<[Buffer, SendDone]> | undefined = [];
  private closed = false;
  /** Until bound, an error says nothing about the path (the listener does not share its port). */
  private bound = false;
  /** The address the socket connects to (IPv4 peers of an IPv6 socket through their mapped address). */
  private readonly to: string;
  /** Datagrams read so far: a closing probe closes its socket after a turn of the event loop that read none. */
  private received = 0;
  private released = false;

  constructor(
    type: 'udp4' | 'udp6',
    local: { address: string; port: number },
    private readonly address: string,
    private readonly port: number,
    onDatagram: (bytes: Buffer, remote: RemoteInfo) => void,
    private readonly onClose: () => void,
    private readonly onReleased: () => void,
    private readonly fallback: (bytes: Buffer, done: SendDone) => void,
    private readonly onUnreachable: (error: TransportError) => void,
  ) {
    this.to = type === 'udp6' && !address.includes(':') ? `::ffff:${address}` : address;
    this.socket = createSocket({ type, reuseAddr: true });
    this.socket.on('message', (bytes, remote) => {
      this.received++;
      onDatagram(bytes, remote);
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.failed(err));
    this.socket.bind({ address: local.address, port: local.port, exclusive: true }, () => {
      if (this.closed) return this.release();
      this.bound = true;
      try {
        this.socket.connect(port, this.to, (err?: Error) => {
          if (err) return this.failed(err as NodeJS.ErrnoException);
          if (this.closed) return this.drain();
          this.connected = true;
          const waiting = this.waiting ?? [];
          this.waiting = undefined;
          for (const [bytes, done] of waiting) this.socket.send(bytes, done);
        });
      } catch (err) {
        this.failed(err as NodeJS.ErrnoException);
      }
    });
  }

  add(fault: PathFault): () => void {
    this.watchers.add(fault);
    return () => {
      this.watchers.delete(fault);
      if (this.watchers.size === 0) this.close();
    };
  }

  send(bytes: Buffer, done: SendDone): boolean {
    if (this.closed) return false;
    if (this.connected) this.socket.send(bytes, done);
    else this.waiting?.push([bytes, done]);
    return true;
  }

  /**
   * Stops sending through the probe. The kernel hands every datagram from the destination to the connected probe, and
   * closing its socket would throw away those it has queued but the event loop not yet read (a request, the answer a
   * transaction waits for): `drain` lets the socket go only once it has read them. `now` (the listener closes too)
   * skips that.
   */
  close(now = false): void {
    if (this.closed) {
      if (now) this.release();
      return;
    }
    this.closed = true;
    const wasConnected = this.connected;
    this.connected = false;
    const waiting = this.waiting ?? [];
    this.waiting = undefined;
    for (const [bytes, done] of waiting) this.fallback(bytes, done);
    this.onClose();
    // Still connecting: the connect callback drains.
    if (now || !this.bound) this.release();
    else if (wasConnected) this.drain();
  }

  /**
   * Points the socket away from the destination (new datagrams go to the listener), then closes it after a turn of
   * the event loop in which it read nothing: that turn's poll found its queue empty.
   */
  private drain(): void {
    try {
      this.socket.disconnect();
      this.socket.connect(PARKING_PORT, this.to, (err?: Error) => {
        if (err) return this.release();
        let turns = 0;
        let seen = this.received;
        const check = (): void => {
          if (this.released) return;
          if (this.received === seen || ++turns >= MAX_DRAIN_TURNS) return this.release();
          seen = this.received;
          setImmediate(check);
        };
        // The first turn may begin after this turn's poll: wait for one whole turn before looking.
        setImmediate(() => {
          seen = this.received;
          setImmediate(check);
        });
      });
    } catch {
      this.release();
    }
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.onReleased();
    try {
      this.socket.close();
    } catch {
      // never bound, or already closed
    }
  }

  private failed(err: NodeJS.ErrnoException): void {
    if (this.closed) return this.release();
    const error = this.bound ? unreachable(err, this.address, this.port) : undefined;
    const watchers = [...this.watchers];
    this.watchers.clear();
    this.close();
    if (!error) return;
    this.onUnreachable(error);
    for (const w of watchers) w(error);
  }
}

/** The socket errors that say a destination cannot be reached, in the words of a reason phrase. */
const PATH_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'port unreachable',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EACCES: 'destination prohibited',
  EPERM: 'destination prohibited',
};

/** The error of a datagram to `address:port` that the network refused, naming the fault; undefined for other errors. */
export function unreachable(err: NodeJS.ErrnoException, address: string, port: number): TransportError | undefined {
  const what = PATH_ERRORS[err.code ?? ''];
  return what ? new TransportError('unreachable', `${what} (udp:${hostPort(address, port)})`, { transport: 'udp', address, port }) : undefined;
}
