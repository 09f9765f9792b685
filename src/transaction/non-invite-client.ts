import type { SipRequest, SipResponse } from '../message/index.js';
import type { Destination, TransportError } from '../transport/types.js';
import { Transaction, type ClientTransactionHandlers, type TransactionEnv } from './transaction.js';

export type NonInviteClientState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';

/** The non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6). */
export class NonInviteClientTransaction extends Transaction<NonInviteClientState> {
  readonly side = 'client' as const;

  constructor(
    env: TransactionEnv,
    id: string,
    request: SipRequest,
    readonly destination: Destination,
    private readonly handlers: ClientTransactionHandlers<NonInviteClientTransaction>,
  ) {
    super(env, id, request, 'Trying', destination.transport);
  }

  start(): void {
    // Over a stream the connection's loss tells at once; a datagram's path is watched once it goes unanswered.
    if (this.reliable) this.watchPath(this.destination);
    this.transmit(this.request, this.destination, false);
    if (!this.reliable) this.scheduleTimerE(this.durations.E);
    this.startTimer('F', this.durations.F, () => {
      this.env.observer.timedOut(this);
      this.transition('Terminated');
      this.handlers.onTimeout(this);
    });
  }

  /**
   * §17.1.2.2: Timer E doubles up to T2 while Trying; once a provisional response shows the request arrived, the
   * retransmissions only keep stateless proxies' state alive and go out every T2.
   */
  private scheduleTimerE(interval: number): void {
    this.startTimer('E', interval, () => {
      if (this.state === 'Trying') this.watchPath(this.destination);
      this.transmit(this.request, this.destination, true);
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
      this.startTimer('K', this.durations.K, () => this.transition('Terminated'));
    }
    this.handlers.onResponse(response, this);
  }

  protected transportFailed(err: TransportError): void {
    this.transition('Terminated');
    this.handlers.onTransportError(err, this);
  }
}
