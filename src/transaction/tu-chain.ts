import { createResponse, type SipRequest, type SipResponse } from '../message/index.js';
import type { TransportError } from '../transport/types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { InviteServerTransaction } from './invite-server.js';
import type { ServerTransaction, TransactionUser } from './transaction-layer.js';
import type { TransactionTimeoutError } from './transaction.js';

/**
 * One element of a transaction user (pjsip's modules, drachtio's middleware): it claims what is its own and lets the
 * rest go on down the chain. A claim returns true; a module that claims a request answers it through `st`.
 */
export interface TransactionUserModule {
  /** For logs: which module claimed what, which one threw. */
  readonly name: string;
  /** A new request (never an ACK). */
  claimRequest?(request: SipRequest, st: ServerTransaction): boolean;
  /** An ACK for a 2xx (st: the INVITE server transaction in Accepted it matched, if any). */
  claimAck?(ack: SipRequest, st: InviteServerTransaction | undefined): boolean;
  /** A response that matched no client transaction. */
  claimStrayResponse?(response: SipResponse): boolean;
  /** A server transaction failed; every module that watches is told. */
  serverTransactionFailed?(st: ServerTransaction, err: TransportError | TransactionTimeoutError): void;
  /** A server transaction sent its final response; every module that watches is told (logs, accounting). */
  answered?(request: SipRequest, response: SipResponse, st: ServerTransaction): void;
}

/** What happened to messages no module claimed. */
export interface ChainStats {
  unclaimedRequests: number;
  unclaimedAcks: number;
  unclaimedResponses: number;
}

/**
 * The transaction user as an ordered chain of modules: the first that claims a message has it. A request no module
 * claims is answered 500 (a chain without a catch-all is a configuration fault, not the peer's); an ACK or a stray
 * response nobody claims is counted and dropped (§17.1.3, §13.3.2.4: nothing answers those). A module that throws is
 * logged and counts as not claiming, so the next one still gets its chance.
 */
export class TransactionUserChain implements TransactionUser {
  private readonly counters: ChainStats = { unclaimedRequests: 0, unclaimedAcks: 0, unclaimedResponses: 0 };
  private readonly watchAnswers: TransactionUserModule[];

  constructor(
    readonly modules: readonly TransactionUserModule[],
    private readonly logger: Logger = silentLogger(),
  ) {
    this.watchAnswers = modules.filter((m) => m.answered !== undefined);
    // onAnswered costs a call per request only when some module listens (the request log at info level).
    if (this.watchAnswers.length === 0) this.onAnswered = undefined;
  }

  stats(): ChainStats {
    return { ...this.counters };
  }

  onRequest(request: SipRequest, st: ServerTransaction): void {
    for (const m of this.modules) if (m.claimRequest && this.claims(m, 'claimRequest', () => m.claimRequest!(request, st))) return;
    this.counters.unclaimedRequests++;
    this.logger.error({ method: request.method, callId: request.callId }, 'no module of the transaction user took the request');
    st.respond(createResponse(request, 500, { reason: 'Server Internal Error - no service for this request' }));
  }

  onAck(ack: SipRequest, st: InviteServerTransaction | undefined): void {
    for (const m of this.modules) if (m.claimAck && this.claims(m, 'claimAck', () => m.claimAck!(ack, st))) return;
    this.counters.unclaimedAcks++;
  }

  onStrayResponse(response: SipResponse): void {
    for (const m of this.modules) if (m.claimStrayResponse && this.claims(m, 'claimStrayResponse', () => m.claimStrayResponse!(response))) return;
    this.counters.unclaimedResponses++;
    this.logger.debug({ status: response.status, callId: response.callId }, 'stray response dropped');
  }

  onServerTransactionError(st: ServerTransaction, err: TransportError | TransactionTimeoutError): void {
    let told = false;
    for (const m of this.modules) {
      if (!m.serverTransactionFailed) continue;
      told = true;
      this.claims(m, 'serverTransactionFailed', () => (m.serverTransactionFailed!(st, err), false));
    }
    if (!told) this.logger.warn({ method: st.method, callId: st.callId, err: err.message }, 'server transaction failed');
  }

  onAnswered?: (request: SipRequest, response: SipResponse, st: ServerTransaction) => void = (request, response, st) => {
    for (const m of this.watchAnswers) this.claims(m, 'answered', () => (m.answered!(request, response, st), false));
  };

  private claims(m: TransactionUserModule, what: string, fn: () => boolean): boolean {
    try {
      return fn();
    } catch (err) {
      this.logger.error({ err, module: m.name, callback: what }, 'transaction user module threw');
      return false;
    }
  }
}
