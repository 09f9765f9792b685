import { channel } from 'node:diagnostics_channel';
import { createResponse, type AnyMessage, type SipRequest, type SipResponse } from '../message/index.js';
import { responseDestination } from '../transport/response-route.js';
import type { Destination, MessageSender, TransportError } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { FixedDelayQueue } from '../util/fixed-delay-queue.js';
import { ConfigError, SipError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { InviteClientTransaction } from './invite-client.js';
import { InviteServerTransaction } from './invite-server.js';
import { ackMatchesFinalResponse, clientKey, clientKeyOfResponse, rfc2543AckKey, serverKey } from './matching.js';
import { NonInviteClientTransaction } from './non-invite-client.js';
import { NonInviteServerTransaction } from './non-invite-server.js';
import { buildCancel } from './requests.js';
import { resolveTimerConfig, type TimerConfig } from './timers.js';
import type { AnyTransaction, ClientTransactionHandlers, TransactionEnv, TransactionTimeoutError, WaitTimers } from './transaction.js';

export type ClientTransaction = InviteClientTransaction | NonInviteClientTransaction;
export type ServerTransaction = InviteServerTransaction | NonInviteServerTransaction;

/** The element above the transaction layer (UA core, proxy core): the layer calls it, never the other way round. */
export interface TransactionUser {
  /** A new request (never an ACK); answer it through `st.respond`. A CANCEL arrives here too (see findInviteForCancel). */
  onRequest(request: SipRequest, st: ServerTransaction): void;
  /**
   * An ACK for a 2xx: either matching no transaction (RFC 3261, where it carries a new branch) or matching an INVITE
   * server transaction in Accepted (RFC 6026). ACKs for non-2xx responses are absorbed by their transaction.
   */
  onAck(ack: SipRequest, st: InviteServerTransaction | undefined): void;
  /** A response no client transaction matched (§17.1.3), e.g. a 2xx retransmission a stateful proxy forwards (§16.7). */
  onStrayResponse(response: SipResponse): void;
  /** A server transaction failed: its response could not be sent (§17.2.4) or no ACK came before Timer H (§17.2.1). */
  onServerTransactionError?(st: ServerTransaction, err: TransportError | TransactionTimeoutError): void;
  /**
   * A server transaction sent its final response, whoever made it (the TU, a service, the transaction's own 100 is
   * not final): one call per request, with the request, which the transaction may let go of right after.
   */
  onAnswered?(request: SipRequest, response: SipResponse, st: ServerTransaction): void;
}

export interface TransactionLayerOptions {
  sender: MessageSender;
  clock: Clock;
  timers?: Partial<TimerConfig>;
  logger?: Logger;
  /** Live client plus server transactions; a new request beyond it is answered 503 statelessly. Default 100000. */
  maxTransactions?: number;
}

export interface TransactionStats {
  clientTransactions: number;
  serverTransactions: number;
  retransmissions: number;
  timeouts: number;
  /** New requests answered 503 because maxTransactions was reached. */
  rejected: number;
}

/** Published on the `sipway:transaction` diagnostics channel. */
export interface TransactionEvent {
  event: 'created' | 'state' | 'terminated';
  id: string;
  side: 'client' | 'server';
  method: string;
  state: string;
}

export const TRANSACTION_CHANNEL = 'sipway:transaction';
const transactionChannel = channel(TRANSACTION_CHANNEL);

export const DEFAULT_MAX_TRANSACTIONS = 100_000;
/** Seconds an overloaded server asks clients to wait before retrying (§21.5.4, §20.33). */
const OVERLOAD_RETRY_AFTER_S = 5;

const IGNORE_RESPONSES: ClientTransactionHandlers<ClientTransaction> = {
  onResponse() {},
  onTimeout() {},
  onTransportError() {},
};

/**
 * RFC 3261 §17: creates, indexes and feeds the client and server transactions of one SIP element. Everything it
 * holds belongs to the instance, so two layers in one process (a UAC and a UAS in a test, two servers) never meet.
 */
export class TransactionLayer {
  private readonly sender: MessageSender;
  private readonly logger: Logger;
  private readonly maxTransactions: number;
  private readonly env: TransactionEnv;
  private user: TransactionUser | undefined;
  private readonly clients = new Map<string, ClientTransaction>();
  private readonly servers = new Map<string, ServerTransaction>();
  /** RFC 2543 INVITE server transactions by their ACK key (§17.2.3), beside their entry in `servers`. */
  private readonly rfc2543Invites = new Map<string, InviteServerTransaction>();
  /** §9.1: CANCELs asked for before any provisional response, sent when one arrives. */
  private readonly pendingCancels = new Map<InviteClientTransaction, ClientTransactionHandlers<ClientTransaction>>();
  private readonly counters = { retransmissions: 0, timeouts: 0, rejected: 0 };
  /** One queue per wait duration in use (a handful: T4, linger, D's). */
  private readonly waitQueues = new Map<number, FixedDelayQueue<AnyTransaction>>();

  constructor(options: TransactionLayerOptions) {
    const max = options.maxTransactions ?? DEFAULT_MAX_TRANSACTIONS;
    if (!Number.isInteger(max) || max < 1) throw new ConfigError('maxTransactions', `must be a positive integer (got ${max})`);
    this.maxTransactions = max;
    this.sender = options.sender;
    this.logger = options.logger ?? silentLogger();
    this.env = {
      sender: options.sender,
      clock: options.clock,
      timers: resolveTimerConfig(options.timers),
      logger: this.logger,
      waits: this.waitTimers(options.clock),
      observer: {
        stateChanged: (t) => this.stateChanged(t),
        retransmitted: () => this.counters.retransmissions++,
        timedOut: () => this.counters.timeouts++,
        serverFailed: (t, err) => {
          const user = this.user;
          if (user?.onServerTransactionError) this.guard('onServerTransactionError', () => user.onServerTransactionError!(t as ServerTransaction, err));
          else this.logger.warn({ transaction: t.id, err }, 'server transaction failed');
        },
        answered: (t, request, response) => {
          const user = this.user;
          if (user?.onAnswered) this.guard('onAnswered', () => user.onAnswered!(request, response, t as ServerTransaction));
        },
      },
    };
  }

  private waitTimers(clock: Clock): WaitTimers {
    const expire = (t: AnyTransaction, tag: number): void => t.waitExpired(tag);
    const failed = (err: unknown): void => this.logger.error({ err }, 'ending a transaction at its wait timer threw');
    return {
      add: (ms, t, tag) => {
        let queue = this.waitQueues.get(ms);
        if (queue === undefined) this.waitQueues.set(ms, (queue = new FixedDelayQueue(clock, ms, expire, failed)));
        queue.add(t, tag);
      },
    };
  }

  /** Attaches the transaction user; messages received before are dropped. */
  setUser(user: TransactionUser): void {
    this.user = user;
  }

  /** Feeds one parsed message from the transport layer. */
  receive(message: AnyMessage): void {
    const user = this.user;
    if (!user) {
      this.logger.warn('message received before a transaction user was attached; dropped');
      return;
    }
    if (!message.isRequest) {
      const key = clientKeyOfResponse(message);
      const ct = key === undefined ? undefined : this.clients.get(key);
      if (ct) ct.receiveResponse(message);
      else this.guard('onStrayResponse', () => user.onStrayResponse(message));
      return;
    }
    if (message.method === 'ACK') {
      this.receiveAck(message, user);
      return;
    }
    const key = serverKey(message);
    const existing = this.servers.get(key);
    if (existing) {
      existing.receiveRetransmission();
      return;
    }
    if (this.clients.size + this.servers.size >= this.maxTransactions) {
      this.counters.rejected++;
      void this.sendStateless(createResponse(message, 503, { headers: [['Retry-After', String(OVERLOAD_RETRY_AFTER_S)]] }), message);
      return;
    }
    const st = message.method === 'INVITE' ? new InviteServerTransaction(this.env, key, message) : new NonInviteServerTransaction(this.env, key, message);
    this.servers.set(key, st);
    this.publish('created', st);
    if (st instanceof InviteServerTransaction) {
      if (!message.via.hasRfc3261Branch) {
        st.rfc2543Key = rfc2543AckKey(message);
        this.rfc2543Invites.set(st.rfc2543Key, st);
      }
      st.start();
    }
    this.guard('onRequest', () => user.onRequest(message, st));
  }

  private receiveAck(ack: SipRequest, user: TransactionUser): void {
    let st: InviteServerTransaction | undefined;
    if (ack.via.hasRfc3261Branch) {
      const found = this.servers.get(serverKey(ack));
      st = found instanceof InviteServerTransaction ? found : undefined;
    } else {
      const found = this.rfc2543Invites.get(rfc2543AckKey(ack));
      st = found && ackMatchesFinalResponse(ack, found.finalToTag) ? found : undefined;
    }
    if (st && !st.receiveAck()) return;
    this.guard('onAck', () => user.onAck(ack, st));
  }

  /**
   * §9.2: the INVITE server transaction a CANCEL refers to (the CANCEL matched as if its method were INVITE), or
   * undefined when there is none any more (the TU then answers the CANCEL 481).
   */
  findInviteForCancel(cancel: SipRequest): InviteServerTransaction | undefined {
    const st = this.servers.get(serverKey(cancel, 'INVITE'));
    return st instanceof InviteServerTransaction ? st : undefined;
  }

  /**
   * Starts a client transaction for `request`, which already carries its Via with a fresh branch (see addVia).
   * Throws on a programming error (ACK, no RFC 3261 branch, CSeq method differing, branch in use) and SipError 503
   * when maxTransactions is reached.
   */
  sendRequest(request: SipRequest, destination: Destination, handlers: ClientTransactionHandlers<ClientTransaction>): ClientTransaction {
    if (this.clients.size + this.servers.size >= this.maxTransactions) {
      throw new SipError(503, 'Service Unavailable', 'TRANSACTION_LIMIT', [['Retry-After', String(OVERLOAD_RETRY_AFTER_S)]]);
    }
    return this.startClient(request, destination, handlers);
  }

  private startClient(request: SipRequest, destination: Destination, handlers: ClientTransactionHandlers<ClientTransaction>): ClientTransaction {
    // §17.1.1.3, §13.2.2.4: an ACK is never a transaction of its own; the TU sends the ACK for a 2xx directly.
    if (request.method === 'ACK') throw new Error('an ACK is not sent in a client transaction');
    if (request.cseq.method !== request.method) throw new Error(`CSeq method ${request.cseq.method} differs from ${request.method}`);
    const via = request.via;
    if (!via.hasRfc3261Branch) throw new Error('the request needs a top Via with an RFC 3261 branch (see addVia)');
    const key = clientKey(via.branch!, request.method);
    if (this.clients.has(key)) throw new Error(`branch ${via.branch} is already used by a ${request.method} transaction`);
    // The transactions isolate their upcalls (a throwing TU is logged): no wrapper per transaction.
    const ct =
      request.method === 'INVITE'
        ? new InviteClientTransaction(this.env, key, request, destination, handlers)
        : new NonInviteClientTransaction(this.env, key, request, destination, handlers);
    this.clients.set(key, ct);
    this.publish('created', ct);
    ct.start();
    return ct;
  }

  /**
   * §9.1: cancels a pending INVITE. The CANCEL goes, in its own non-INVITE client transaction, to where the INVITE went,
   * once a provisional response has shown that the INVITE arrived (queued until then). Returns false when the INVITE
   * already has a final response, so there is nothing to cancel. CANCELs are not held to maxTransactions: they end
   * transactions rather than add work.
   */
  cancel(invite: InviteClientTransaction, handlers: ClientTransactionHandlers<ClientTransaction> = IGNORE_RESPONSES): boolean {
    if (invite.state === 'Calling') {
      this.pendingCancels.set(invite, handlers);
      return true;
    }
    if (invite.state !== 'Proceeding') return false;
    if (!this.clients.has(clientKey(invite.request.via.branch!, 'CANCEL'))) this.sendCancel(invite, handlers);
    return true;
  }

  private sendCancel(invite: InviteClientTransaction, handlers: ClientTransactionHandlers<ClientTransaction>): void {
    this.startClient(buildCancel(invite.request), invite.destination, handlers);
    invite.cancelSent();
  }

  /**
   * Sends a response outside any transaction (§8.2 rejections before a transaction exists, §16.11 stateless
   * forwarding). With the request it answers, the response goes where §18.2.2 says; without, the transport derives
   * the destination from the top Via. Never rejects: a failure is logged, there is no one else to tell.
   */
  async sendStateless(response: SipResponse, request?: SipRequest): Promise<void> {
    try {
      await this.sender.send(response, request ? responseDestination(request) : undefined);
    } catch (err) {
      this.logger.warn({ err, status: response.status }, 'stateless response not sent');
    }
  }

  stats(): TransactionStats {
    return { clientTransactions: this.clients.size, serverTransactions: this.servers.size, ...this.counters };
  }

  /** Terminates every transaction and its timers without sending anything (shutdown). */
  close(): void {
    for (const t of [...this.clients.values(), ...this.servers.values()]) t.terminate();
    for (const queue of this.waitQueues.values()) queue.clear();
    this.pendingCancels.clear();
  }

  private stateChanged(t: AnyTransaction): void {
    if (t.state === 'Terminated') {
      this.forget(t);
      this.publish('terminated', t);
    } else this.publish('state', t);
    if (t instanceof InviteClientTransaction) this.flushPendingCancel(t);
  }

  private flushPendingCancel(invite: InviteClientTransaction): void {
    const handlers = this.pendingCancels.get(invite);
    if (handlers === undefined || invite.state === 'Calling') return;
    this.pendingCancels.delete(invite);
    if (invite.state === 'Proceeding') this.sendCancel(invite, handlers);
  }

  private forget(t: AnyTransaction): void {
    const index: Map<string, AnyTransaction> = t.side === 'client' ? this.clients : this.servers;
    if (index.get(t.id) === t) index.delete(t.id);
    if (t instanceof InviteServerTransaction && t.rfc2543Key !== undefined && this.rfc2543Invites.get(t.rfc2543Key) === t) {
      this.rfc2543Invites.delete(t.rfc2543Key);
    }
  }

  private publish(event: TransactionEvent['event'], t: AnyTransaction): void {
    if (!transactionChannel.hasSubscribers) return;
    const message: TransactionEvent = { event, id: t.id, side: t.side, method: t.method, state: t.state };
    transactionChannel.publish(message);
  }

  /** Upcalls into the TU are isolated: a throwing TU must not break a timer callback or the transport's receive loop. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err, callback: what }, 'transaction user callback threw');
    }
  }
}
