import type { AnyMessage, SipRequest, SipResponse } from '../message/index.js';
import { TransportError, type Destination, type MessageSender } from '../transport/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { timerDurations, type TimerConfig, type TimerDurations } from './timers.js';

/** What every state machine needs from the layer that owns it. */
export interface TransactionEnv {
  sender: MessageSender;
  clock: Clock;
  timers: TimerConfig;
  logger: Logger;
  observer: TransactionObserver;
  /** Where the wait timers run (see Transaction.waitThenTerminate). */
  waits: WaitTimers;
}

/**
 * The wait timers (D, I, J, K, L, M) of every transaction of a layer. They all end the transaction and run for one
 * of a few fixed durations, so they are queued instead of each holding a clock timer: a completed call lingers 32 s
 * and at 1,000 calls/s that is 100,000 transactions waiting.
 */
export interface WaitTimers {
  add(ms: number, t: AnyTransaction, tag: number): void;
}

/** The timers that only wait out retransmissions and then end the transaction. */
export type WaitTimerName = 'D' | 'I' | 'J' | 'K' | 'L' | 'M';

/** How a transaction reports to the layer that owns it (index upkeep, counters, diagnostics, server-side failures). */
export interface TransactionObserver {
  stateChanged(t: AnyTransaction): void;
  retransmitted(t: AnyTransaction): void;
  timedOut(t: AnyTransaction): void;
  /** A server transaction failed (§17.2.4 transport error, §17.2.1 Timer H); client failures go to their handlers. */
  serverFailed(t: AnyTransaction, err: TransportError | TransactionTimeoutError): void;
  /** A server transaction handed its final response to the transport, while it still holds the request. */
  answered(t: AnyTransaction, request: SipRequest, response: SipResponse): void;
}

/** What a TU passes when it starts a client transaction; every call carries the transaction it concerns. */
export interface ClientTransactionHandlers<T> {
  onResponse(response: SipResponse, ct: T): void;
  /** Timer B or F (§17.1.1.2, §17.1.2.2): the TU answers with a 408 of its own making. */
  onTimeout(ct: T): void;
  /** §17.1.4: the request could not be sent; the transaction is terminated. */
  onTransportError(err: TransportError, ct: T): void;
}

/** §17.2.1: Timer H fired, so the ACK for a non-2xx final response never came. */
export class TransactionTimeoutError extends Error {
  constructor(readonly timer: 'H') {
    super(`Timer ${timer} fired: no ACK for the final response`);
    this.name = 'TransactionTimeoutError';
  }
}

/**
 * The clock timers of RFC 3261 (retransmission and timeout; the wait timers are WaitTimerName), plus the 200 ms
 * 100-Trying delay and the §9.1 wait after a CANCEL.
 */
export type TimerName = 'A' | 'B' | 'E' | 'F' | 'G' | 'H' | 'Trying' | 'Cancelled';

export type AnyTransaction = Transaction<string>;

/**
 * Shared plumbing of the four §17 state machines: state, named timers on the injected clock, and sending with
 * transport errors turned into state-machine input. Subclasses hold the transitions.
 */
export abstract class Transaction<S extends string> {
  abstract readonly side: 'client' | 'server';
  /** §17.1.1.2 / §17.2.1: retransmissions happen only on unreliable transports. */
  readonly reliable: boolean;
  protected readonly durations: Readonly<TimerDurations>;
  private current: S | 'Terminated';
  /** Running timers as name, handle pairs: rarely more than two, and a Map per transaction costs more than it saves. */
  private running: Array<TimerName | TimerHandle> | undefined;
  /** One listener is the rule (the proxy's), so it is held without an array until a second comes. */
  private terminatedListeners: (() => void) | Array<() => void> | undefined;
  /** Tells a wait timer's current entry from one made stale by termination. */
  private waitTag = 0;
  /** Ends the watch of the path (watchPath) while one runs. */
  private unwatchPath: (() => void) | undefined;

  readonly method: string;
  readonly callId: string;
  private req: SipRequest | undefined;

  constructor(
    protected readonly env: TransactionEnv,
    /** The index key (§17.1.3 / §17.2.3), unique among live transactions of one side. */
    readonly id: string,
    request: SipRequest,
    initial: S,
    transport: string,
  ) {
    this.req = request;
    this.method = request.method;
    this.callId = request.callId;
    this.current = initial;
    this.reliable = env.sender.isReliable(transport);
    this.durations = timerDurations(env.timers, this.reliable);
  }

  get state(): S | 'Terminated' {
    return this.current;
  }

  /**
   * The request the transaction was made for. A non-INVITE server transaction lets go of it once its final response
   * is sent (Completed waits 32 s for retransmissions over UDP and needs only the response's bytes): reading it then
   * is a programming error.
   */
  get request(): SipRequest {
    if (this.req === undefined) throw new Error(`transaction ${this.id}: the request was released after the final response`);
    return this.req;
  }

  /** Whether the request is still held (see `request`). */
  get holdsRequest(): boolean {
    return this.req !== undefined;
  }

  protected releaseRequest(): void {
    this.req = undefined;
  }

  /** Called once when the transaction reaches Terminated (at once if it already has). */
  onTerminated(listener: () => void): void {
    if (this.current === 'Terminated') listener();
    else if (this.terminatedListeners === undefined) this.terminatedListeners = listener;
    else if (typeof this.terminatedListeners === 'function') this.terminatedListeners = [this.terminatedListeners, listener];
    else this.terminatedListeners.push(listener);
  }

  /** Ends the transaction without further messages (layer shutdown). */
  terminate(): void {
    this.transition('Terminated');
  }

  protected transition(next: S | 'Terminated'): void {
    if (this.current === next || this.current === 'Terminated') return;
    this.current = next;
    if (next === 'Terminated') {
      this.waitTag++;
      const running = this.running;
      this.running = undefined;
      if (running) for (let i = 1; i < running.length; i += 2) (running[i] as TimerHandle).cancel();
      this.stopWatchingPath();
    }
    this.env.observer.stateChanged(this);
    if (next === 'Terminated' && this.terminatedListeners) {
      const listeners = this.terminatedListeners;
      this.terminatedListeners = undefined;
      if (typeof listeners === 'function') this.upcall('onTerminated', listeners);
      else for (const l of listeners) this.upcall('onTerminated', l);
    }
  }

  /** Starts (or restarts) a timer. A zero duration fires at once: the reliable-transport value of D, I, J, K. */
  protected startTimer(name: TimerName, ms: number, fire: () => void): void {
    this.stopTimer(name);
    // A send that failed synchronously may have terminated the transaction just before its timers were due to start.
    if (this.current === 'Terminated') return;
    if (ms <= 0) {
      fire();
      return;
    }
    const handle = this.env.clock.setTimer(ms, () => {
      this.forget(name);
      fire();
    });
    (this.running ??= []).push(name, handle);
  }

  /**
   * Starts a wait timer (D, I, J, K, L, M), the last timer of a transaction: when it fires the transaction ends. A zero
   * duration (reliable transports) ends it at once.
   */
  protected waitThenTerminate(_name: WaitTimerName, ms: number): void {
    if (this.current === 'Terminated') return;
    if (ms <= 0) {
      this.transition('Terminated');
      return;
    }
    this.env.waits.add(ms, this, ++this.waitTag);
  }

  /** A wait timer's queue entry is due: ends the transaction unless the entry was made stale. */
  waitExpired(tag: number): void {
    if (tag === this.waitTag && this.current !== 'Terminated') this.transition('Terminated');
  }

  protected stopTimer(name: TimerName): void {
    (this.forget(name) as TimerHandle | undefined)?.cancel();
  }

  /** Removes a timer from the running ones; returns its handle. */
  private forget(name: TimerName): TimerHandle | undefined {
    const running = this.running;
    const i = running === undefined ? -1 : running.indexOf(name);
    if (i < 0) return undefined;
    const handle = running![i + 1] as TimerHandle;
    // A transaction waiting out its last timer keeps no array.
    if (running!.length === 2) this.running = undefined;
    else running!.splice(i, 2);
    return handle;
  }

  /**
   * Has the transport report a fault of the path to `destination` found after sending (an ICMP error, a connection
   * lost before the peer answered, MessageSender.watchPath) as a transport error of this transaction, so that a next
   * hop that is gone fails it at once rather than at Timer B or F. Until stopWatchingPath or termination.
   */
  protected watchPath(destination: Destination): void {
    if (this.unwatchPath || this.current === 'Terminated' || !this.env.sender.watchPath) return;
    this.unwatchPath = this.env.sender.watchPath(destination, (err) => {
      this.unwatchPath = undefined;
      if (this.current !== 'Terminated') this.transportFailed(err);
    });
  }

  /** A response has shown that the path works. */
  protected stopWatchingPath(): void {
    const unwatch = this.unwatchPath;
    this.unwatchPath = undefined;
    unwatch?.();
  }

  /** An upcall into the TU, isolated: a throwing TU must not break a timer callback or the transport's receive loop. */
  protected upcall(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.env.logger.error({ err, callback: what, transaction: this.id }, 'transaction user callback threw');
    }
  }

  /** Hands a message to the transport; a rejection becomes a transport error of this transaction (§17.1.4, §17.2.4). */
  protected transmit(message: AnyMessage, destination: Destination, retransmission: boolean, bytes?: Buffer): void {
    if (retransmission) this.env.observer.retransmitted(this);
    this.sending(() => this.env.sender.send(message, destination, bytes), destination);
  }

  /**
   * Serialised bytes to keep for retransmissions while the transaction waits out its last timer: none over reliable
   * transports, which do not retransmit. Held as a latin1 string, byte for byte: a slice of serialize()'s buffer
   * would keep the whole 8 KB pool it came from alive for the 32 s of Timer J or D, some 2 KB per completed request
   * at 1,000 calls/s instead of the message's own few hundred bytes.
   */
  protected keptForRetransmission(bytes: Buffer): string | undefined {
    return this.reliable ? undefined : bytes.toString('latin1');
  }

  /** Sends serialised bytes again (a retransmission of a message whose parsed form is gone). */
  protected retransmitBytes(bytes: Buffer | string, destination: Destination): void {
    this.env.observer.retransmitted(this);
    const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    this.sending(() => this.env.sender.resend(buffer, destination), destination);
  }

  private sending(send: () => Promise<void>, destination: Destination): void {
    const fail = (e: unknown): void => this.transportFailed(asTransportError(e, destination));
    try {
      send().catch(fail);
    } catch (e) {
      fail(e);
    }
  }

  /**
   * Reported even when the transaction has already terminated (a final response over TCP terminates the transaction
   * the moment it is handed over), so that the TU always learns that a message was lost.
   */
  protected abstract transportFailed(err: TransportError): void;
}

function asTransportError(e: unknown, destination: Destination): TransportError {
  if (e instanceof TransportError) return e;
  return new TransportError('write', e instanceof Error ? e.message : String(e), destination);
}

/** A TU handing a server transaction an impossible status is a programming error, not peer input. */
export function assertResponseStatus(status: number): void {
  if (!Number.isInteger(status) || status < 100 || status > 699) throw new RangeError(`response status ${status} is not in 100..699`);
}
