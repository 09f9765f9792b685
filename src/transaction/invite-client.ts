import { serialize, type SipRequest, type SipResponse } from '../message/index.js';
import type { Destination, TransportError } from '../transport/types.js';
import { buildNon2xxAck } from './requests.js';
import { Transaction, type ClientTransactionHandlers, type TransactionEnv } from './transaction.js';

export type InviteClientState = 'Calling' | 'Proceeding' | 'Completed' | 'Accepted' | 'Terminated';

/**
 * The INVITE client transaction: RFC 3261 §17.1.1 (Figure 5) as updated by RFC 6026 §7.2 (Figure 3), where a 2xx moves
 * the transaction to Accepted instead of Terminated so that 2xx retransmissions still reach the TU (which ACKs them)
 * rather than being treated as strays.
 */
export class InviteClientTransaction extends Transaction<InviteClientState> {
  readonly side = 'client' as const;
  /**
   * The ACK for a non-2xx final response, as sent: what retransmissions of that response get (§17.1.1.2; see
   * keptForRetransmission).
   */
  private ackBytes: string | undefined;
  /** The INVITE as sent, for Timer A's retransmissions; let go with a final response. */
  private bytes: Buffer | undefined;

  constructor(
    env: TransactionEnv,
    id: string,
    request: SipRequest,
    /** Where the INVITE went; the ACK and any CANCEL go to the same place (§17.1.1.3, §9.1). */
    readonly destination: Destination,
    private handlers: ClientTransactionHandlers<InviteClientTransaction>,
  ) {
    super(env, id, request, 'Calling', destination.transport);
  }

  /**
   * Hands the transaction's remaining upcalls to other handlers: a TU that has finished with its request (a proxy
   * whose response context has answered) lets go of its state, while late responses still reach whoever forwards them.
   */
  replaceHandlers(handlers: ClientTransactionHandlers<InviteClientTransaction>): void {
    this.handlers = handlers;
  }

  start(): void {
    // Over a stream the connection's loss tells at once; a datagram's path is watched once it goes unanswered.
    if (this.reliable) this.watchPath(this.destination);
    // Serialised once: retransmissions send the same bytes.
    this.bytes = serialize(this.request);
    this.transmit(this.request, this.destination, false, this.bytes);
    if (!this.reliable) this.scheduleTimerA(this.durations.A);
    this.startTimer('B', this.durations.B, () => this.timeout());
  }

  /** §17.1.1.2: Timer A doubles on every firing, with no cap, until Timer B ends the Calling state. */
  private scheduleTimerA(interval: number): void {
    this.startTimer('A', interval, () => {
      this.watchPath(this.destination);
      this.retransmitBytes(this.bytes!, this.destination);
      this.scheduleTimerA(2 * interval);
    });
  }

  /**
   * §9.1: once a CANCEL has been sent, the INVITE waits at most 64*T1 for its final response; a UAS that never answers
   * must not keep this transaction alive forever.
   */
  cancelSent(): void {
    if (this.state === 'Proceeding') this.startTimer('Cancelled', this.durations.B, () => this.timeout());
  }

  private timeout(): void {
    this.env.observer.timedOut(this);
    this.transition('Terminated');
    this.upcall('onTimeout', () => this.handlers.onTimeout(this));
  }

  receiveResponse(response: SipResponse): void {
    const status = response.status;
    switch (this.state) {
      case 'Calling':
      case 'Proceeding':
        this.stopWatchingPath();
        this.stopTimer('A');
        this.stopTimer('B');
        if (status < 200) {
          this.transition('Proceeding');
        } else if (status < 300) {
          // RFC 6026 §8.4: Accepted absorbs nothing; it keeps the transaction so that 2xx retransmissions match it.
          this.stopTimer('Cancelled');
          this.transition('Accepted');
          // Accepted only passes 2xx on to the TU for 32 s: the INVITE is not needed any more.
          this.releaseRequest();
          this.bytes = undefined;
          this.waitThenTerminate('M', this.durations.M);
        } else {
          this.stopTimer('Cancelled');
          this.transition('Completed');
          const ack = buildNon2xxAck(this.request, response);
          const ackBytes = serialize(ack);
          this.ackBytes = this.keptForRetransmission(ackBytes);
          this.transmit(ack, this.destination, false, ackBytes);
          // Completed resends the ACK's bytes for up to 32 s (Timer D): neither the INVITE nor the ACK is kept.
          this.releaseRequest();
          this.bytes = undefined;
          this.waitThenTerminate('D', this.durations.D);
        }
        this.deliver(response);
        return;
      case 'Completed':
        // §17.1.1.2: a retransmitted final response means our ACK was lost.
        if (status >= 300) {
          if (this.ackBytes !== undefined) this.retransmitBytes(this.ackBytes, this.destination);
        }
        // A 2xx here comes from another branch of a fork; the TU must see it to ACK and end that dialog.
        else if (status >= 200) this.deliver(response);
        return;
      case 'Accepted':
        // RFC 6026 §8.4: 2xx retransmissions and 2xx from other forks go to the TU, which ACKs them.
        if (status >= 200 && status < 300) this.deliver(response);
        return;
      case 'Terminated':
        return;
    }
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
