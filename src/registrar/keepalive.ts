import { tryParseUri, type SipRequest, type SipUri } from '../message/index.js';
import { type Binding, bindingKey, type LocationStore } from '../store/index.js';
import { addVia, newRequest, type TransactionLayer } from '../transaction/index.js';
import { hostPort, normalizeAddress, type Destination, type MessageSender } from '../transport/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { ConfigError } from '../util/errors.js';
import { newCallId } from '../util/ids.js';
import type { Logger } from '../util/logger.js';

export interface NatKeepaliveOptions {
  location: LocationStore;
  transactions: Pick<TransactionLayer, 'sendRequest'>;
  sender: MessageSender;
  clock: Clock;
  logger: Logger;
  /** One probe per NATed binding per interval. Default 30 s: below the UDP mapping lifetime of common NATs. */
  intervalMs?: number;
  /** Consecutive unanswered probes after which the binding is removed. Default 3. */
  maxFailures?: number;
  /** Probes awaiting their answer at once; beyond it a round slows down rather than bursts. Default 200. */
  maxInFlight?: number;
  /** From URI of the probes. Default `sip:` + the advertised UDP listener. */
  fromUri?: string;
  /** Probe only bindings this node accepted (their flow is this node's socket); all bindings when absent. */
  nodeId?: string;
  /** Call-IDs for the probes; a worker of several makes ones its own (their answers are steered by Call-ID). */
  newCallId?: () => string;
}

export const DEFAULT_KEEPALIVE_INTERVAL_MS = 30_000;
export const DEFAULT_KEEPALIVE_MAX_FAILURES = 3;
export const DEFAULT_KEEPALIVE_MAX_IN_FLIGHT = 200;

/** Bindings (or AORs) read between two yields to the event loop while a round walks the store. */
const WALK_SLICE = 500;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Timers below this are not worth their cost: a large round sends several probes per tick instead. */
const MIN_TICK_MS = 10;

/** Default ports of RFC 3261 §19.1.2, for a Contact that names none. */
const DEFAULT_SIP_PORT = 5060;
const DEFAULT_SIPS_PORT = 5061;

/**
 * Whether a binding sits behind a NAT, judged from its registration: the REGISTER came from another address or
 * port than its Contact names (RFC 3581 made us see the NAT's side), or the UA asked for Outbound (reg-id, RFC
 * 5626 §4.2, or `ob` in its Contact URI, §5.4), which it does because it expects to be behind one. A Contact
 * naming a host name, not an address, counts as NATed: it cannot be compared, and a needless probe costs little.
 */
export function isBehindNat(binding: Binding): boolean {
  if (binding.regId !== undefined) return true;
  const contact = tryParseUri(binding.contact);
  if (contact?.type !== 'sip') return false;
  if (contact.params.has('ob')) return true;
  const port = contact.port ?? (contact.scheme === 'sips' ? DEFAULT_SIPS_PORT : DEFAULT_SIP_PORT);
  return normalizeAddress(contact.hostname) !== normalizeAddress(binding.source.address) || port !== binding.source.port;
}

interface Probe {
  binding: Binding;
  contact: SipUri;
}

/** Consecutive failures of one binding, for the registration (Call-ID, CSeq) they were counted against. */
interface FailureCount {
  callId: string;
  cseq: number;
  failures: number;
}

/**
 * Keeps NAT mappings of UDP registrations open and notices phones that have gone (Kamailio's nathelper
 * "sipping"): every interval, an OPTIONS to each NATed UDP binding, sent to the address and port the REGISTER came
 * from over the socket it arrived on, so that it crosses the NAT through the mapping the registration opened. Any
 * response, even an error, proves the phone and the mapping alive; Timer F (64*T1) or a transport error counts a
 * failure, and after maxFailures in a row the binding is removed.
 *
 * Only UDP: a stream flow's death is seen when its connection closes (TransportLayer.isFlowAlive), and the
 * transport layer offers no way to send a CRLF ping on a connection. Bindings registered through a Path are
 * skipped too: the flow ends at the edge proxy, which keeps it alive (RFC 5626 §5.3).
 *
 * Each round walks the store (page by page where it can, else listAors and a lookup per AOR, yielding to the
 * event loop between slices) and spreads its probes over the interval, with
 * at most maxInFlight unanswered at a time. A binding whose probe is still unanswered gets none in the next round.
 */
export class NatKeepalive {
  private readonly intervalMs: number;
  private readonly maxFailures: number;
  private readonly maxInFlight: number;
  private readonly failures = new Map<string, FailureCount>();
  private readonly inFlight = new Set<string>();
  private timer: TimerHandle | undefined;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private queue: Probe[] = [];
  private roundStarted = 0;

  constructor(private readonly options: NatKeepaliveOptions) {
    this.intervalMs = positiveInteger('keepalive.intervalMs', options.intervalMs, DEFAULT_KEEPALIVE_INTERVAL_MS);
    this.maxFailures = positiveInteger('keepalive.maxFailures', options.maxFailures, DEFAULT_KEEPALIVE_MAX_FAILURES);
    this.maxInFlight = positiveInteger('keepalive.maxInFlight', options.maxInFlight, DEFAULT_KEEPALIVE_MAX_IN_FLIGHT);
  }

  /** The first round starts one interval from now. Once stopped, an instance stays stopped. */
  start(): void {
    if (this.state !== 'new') throw new Error('NatKeepalive.start() may be called once');
    this.state = 'running';
    this.schedule(this.intervalMs, () => void this.round());
  }

  /** Stops probing; answers to probes already sent are ignored. */
  stop(): void {
    this.state = 'stopped';
    this.timer?.cancel();
    this.timer = undefined;
    this.queue = [];
  }

  /** Probes unanswered right now. */
  get probesInFlight(): number {
    return this.inFlight.size;
  }

  private schedule(ms: number, fn: () => void): void {
    this.timer = this.options.clock.setTimer(ms, fn);
  }

  private async round(): Promise<void> {
    this.roundStarted = this.options.clock.now();
    try {
      this.queue = await this.candidates();
    } catch (err) {
      this.options.logger.error({ err }, 'keep-alive: cannot read the location store; next round in one interval');
      this.queue = [];
    }
    if (this.state !== 'running') return;
    const seen = new Set(this.queue.map((p) => identity(p.binding)));
    // A binding that expired or was removed since its last failure is forgotten, so the map stays bounded.
    for (const id of this.failures.keys()) if (!seen.has(id) && !this.inFlight.has(id)) this.failures.delete(id);
    const tickMs = this.queue.length === 0 ? this.intervalMs : Math.max(MIN_TICK_MS, this.intervalMs / this.queue.length);
    const perTick = Math.max(1, Math.ceil((this.queue.length * tickMs) / this.intervalMs));
    this.tick(tickMs, perTick);
  }

  private tick(tickMs: number, perTick: number): void {
    for (let sent = 0; sent < perTick && this.queue.length > 0 && this.inFlight.size < this.maxInFlight; sent++) {
      this.probe(this.queue.shift()!);
    }
    if (this.queue.length > 0) {
      this.schedule(tickMs, () => this.tick(tickMs, perTick));
      return;
    }
    const nextRound = Math.max(0, this.roundStarted + this.intervalMs - this.options.clock.now());
    this.schedule(nextRound, () => void this.round());
  }

  private async candidates(): Promise<Probe[]> {
    const { location } = this.options;
    const out: Probe[] = [];
    // The walk yields to the event loop between slices: at 100,000 bindings it must not stall calls for a second.
    if (location.page) {
      let cursor: string | undefined;
      do {
        const page = await location.page(cursor, WALK_SLICE);
        for (const binding of page.bindings) this.consider(binding, out);
        cursor = page.cursor;
        await yieldToEventLoop();
      } while (cursor !== undefined && this.state === 'running');
      return out;
    }
    let n = 0;
    for (const aor of await location.listAors()) {
      for (const binding of await location.lookup(aor)) this.consider(binding, out);
      if (++n % WALK_SLICE === 0) await yieldToEventLoop();
    }
    return out;
  }

  private consider(binding: Binding, out: Probe[]): void {
    const { nodeId } = this.options;
    if (binding.source.transport !== 'udp' || binding.path.length > 0 || !isBehindNat(binding)) return;
    if (nodeId !== undefined && binding.node !== undefined && binding.node !== nodeId) return;
    if (this.inFlight.has(identity(binding))) return;
    const contact = tryParseUri(binding.contact);
    if (contact?.type === 'sip') out.push({ binding, contact });
  }

  private probe({ binding, contact }: Probe): void {
    const { source } = binding;
    const destination: Destination = { transport: 'udp', address: source.address, port: source.port };
    if (binding.flowId !== undefined) destination.flowId = binding.flowId;
    const id = identity(binding);
    try {
      const request = this.buildProbe(binding, contact);
      addVia(request, this.options.sender, destination);
      this.inFlight.add(id);
      let settled = false;
      const settle = (alive: boolean, why: string): void => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(id);
        if (this.state === 'running') this.outcome(binding, alive, why);
      };
      this.options.transactions.sendRequest(request, destination, {
        onResponse: (res) => settle(true, `${res.status}`),
        onTimeout: () => settle(false, 'no response (Timer F)'),
        onTransportError: (err) => settle(false, err.message),
      });
    } catch (err) {
      // Not the phone's fault (no UDP listener, transaction limit reached): no failure is counted.
      this.inFlight.delete(id);
      this.options.logger.warn({ err, aor: binding.aor, contact: binding.contact }, 'keep-alive: probe not sent');
    }
  }

  /** §11: an OPTIONS to the Contact; Max-Forwards 1 because it is meant for the phone, not for anything beyond. */
  private buildProbe(binding: Binding, contact: SipUri): SipRequest {
    const from = this.options.fromUri ?? `sip:${this.options.sender.listenerFor('udp')?.advertised ?? 'localhost'}`;
    return newRequest('OPTIONS', contact, { from: `<${from}>`, to: `<${binding.aor}>`, maxForwards: 1, callId: (this.options.newCallId ?? newCallId)() });
  }

  private outcome(binding: Binding, alive: boolean, why: string): void {
    const id = identity(binding);
    if (alive) {
      this.failures.delete(id);
      return;
    }
    const known = this.failures.get(id);
    // A refresh (new Call-ID or CSeq) since the last failure proved the phone alive then: count afresh.
    const sameRegistration = known !== undefined && known.callId === binding.callId && known.cseq === binding.cseq;
    const failures = sameRegistration ? known.failures + 1 : 1;
    this.options.logger.debug({ aor: binding.aor, contact: binding.contact, failures, why }, 'keep-alive: probe failed');
    if (failures < this.maxFailures) {
      this.failures.set(id, { callId: binding.callId, cseq: binding.cseq, failures });
      return;
    }
    this.failures.delete(id);
    void this.remove(binding, failures);
  }

  /** Removes the binding only if it is still the registration that failed: a REGISTER since then has revived it. */
  private async remove(binding: Binding, failures: number): Promise<void> {
    const key = bindingKey(binding);
    try {
      const removed = await this.options.location.modify(binding.aor, (current) => {
        const next = current.filter((b) => !(bindingKey(b) === key && b.callId === binding.callId && b.cseq === binding.cseq));
        return { next, result: next.length < current.length };
      });
      if (removed) {
        const { transport, address, port } = binding.source;
        this.options.logger.info(
          { aor: binding.aor, contact: binding.contact, source: `${transport}:${hostPort(address, port)}`, failures },
          'keep-alive: binding removed, the phone stopped answering',
        );
      }
    } catch (err) {
      this.options.logger.error({ err, aor: binding.aor }, 'keep-alive: could not remove a dead binding');
    }
  }
}

function identity(b: Binding): string {
  return `${b.aor}\n${bindingKey(b)}`;
}

function positiveInteger(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new ConfigError(field, `must be a positive integer (got ${v})`);
  return v;
}
