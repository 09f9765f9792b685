import { serialize, type SipRequest, type SipResponse } from '../message/index.js';
import type { Destination, TransportError } from '../transport/types.js';
import { Transaction, type ClientTransactionHandlers, type TransactionEnv } from './transaction.js';

export type NonInviteClientState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';

/** The non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6). */
export class NonInviteClientTransaction extends Transaction<NonInviteClientState> {
  readonly side = 'client' as const;
  private bytes: Buffer | undefined;

  constructor(
    env: TransactionEnv,
    id: string,
    request: SipRequest,
    readonly destination: Destination,
    private handlers: ClientTransactionHandlers<NonInviteClientTransaction>,
  ) {
    super(env, id, request, 'Trying', destination.transport);
  }

  /**
   * Hands the transaction's remaining upcalls to other handlers: a TU that has finished with its request (a proxy
   * whose response context has answered) lets go of its state, while late responses still reach whoever forwards them.
   */
  replaceHandlers(handlers: ClientTransactionHandlers<NonInviteClientTransaction>): void {
    this.handlers = handlers;
  }

  start(): void {
    // Over a stream the connection's loss tells at once; a datagram's path is watched once it goes unanswered.
    if (this.reliable) this.watchPath(this.destination);
    // Serialised once: retransmissions send the same bytes.
    this.bytes = serialize(this.request);
    this.transmit(this.request, this.destination, false, this.bytes);
    if (!this.reliable) this.scheduleTimerE(this.durations.E);
    this.startTimer('F', this.durations.F, () => {
      this.env.observer.timedOut(this);
      this.transition('Terminated');
      this.upcall('onTimeout', () => this.handlers.onTimeout(this));
    });
  }

  /**
   * §17.1.2.2: Timer E doubles up to T2 while Trying; once a provisional response shows the request arrived, the
   * retransmissions only keep stateless proxies' state alive and go out every T2.
   */
  private scheduleTimerE(interval: number): void {
    this.startTimer('E', interval, () => {
      if (this.state === 'Trying') this.watchPath(this.destination);
      this.retransmitBytes(this.bytes!, this.destination);
      this.scheduleTimerE(this.state === 'Trying' ? Math.min(2 * interval, this.durations.T2) : this.durations.T2);
    });
  }

  receiveResponse(response: SipResponse): void {
    if (this.state !== 'Trying' && this.state !== 'Proceeding') return; // Completed absorbs retransmissions (§17.1.2.2).
    this.stopWatchingPath();
    if (response.status < 200) {
      this.transition('Proceeding');
    } else {
      this.stopTimer('E');
      this.stopTimer('F');
      this.transition('Completed');
      // Completed only absorbs retransmissions of the response (Timer K): nothing of the request is needed.
      this.releaseRequest();
      this.bytes = undefined;
      this.waitThenTerminate('K', this.durations.K);
    }
    this.deliver(response);
  }

  /** A response for the TU; a throwing TU is logged, never allowed to break the caller (the receive loop). */
  private deliver(response: SipResponse): void {
    this.upcall('onResponse', () => this.handlers.onResponse(response, this));
  }

  protected transportFailed(err: TransportError): void {
    this.transition('Terminated');
    this.upcall('onTransportError', () => this.handlers.onTransportError(err, this));
  }
}
