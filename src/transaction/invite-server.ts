import { createResponse, type SipRequest, type SipResponse } from '../message/index.js';
import { responseDestination } from '../transport/response-route.js';
import type { Destination, TransportError } from '../transport/types.js';
import { TRYING_DELAY_MS } from './timers.js';
import { assertResponseStatus, Transaction, TransactionTimeoutError, type TransactionEnv } from './transaction.js';

export type InviteServerState = 'Proceeding' | 'Completed' | 'Confirmed' | 'Accepted' | 'Terminated';

/**
 * The INVITE server transaction: RFC 3261 §17.2.1 (Figure 7) as updated by RFC 6026 §7.1 (Figure 5): a 2xx moves it
 * to Accepted, where it absorbs INVITE retransmissions, lets the TU retransmit its 2xx, and passes matching ACKs up,
 * until Timer L.
 */
export class InviteServerTransaction extends Transaction<InviteServerState> {
  readonly side = 'server' as const;
  /** §18.2.2 (computed once: the request's Via and source do not change). */
  readonly destination: Destination;
  private provisional: SipResponse | undefined;
  private final: SipResponse | undefined;
  /** The final response's To tag (null: it had none), kept when the response itself is let go (Accepted). */
  private finalTag: string | null | undefined;
  /** RFC 2543 requests: the key their ACK is matched by (§17.2.3), set by the layer that indexes it. */
  rfc2543Key: string | undefined;

  constructor(env: TransactionEnv, id: string, request: SipRequest) {
    const destination = responseDestination(request);
    super(env, id, request, 'Proceeding', destination.transport);
    this.destination = destination;
  }

  /** The To tag of the final response sent (null: none), undefined before it: what an RFC 2543 ACK must carry (§17.2.3). */
  get finalToTag(): string | null | undefined {
    return this.finalTag;
  }

  start(): void {
    // §17.2.1: a 100 stops the client's Timer A retransmissions when the TU is slow to answer.
    this.startTimer('Trying', TRYING_DELAY_MS, () => this.respond(createResponse(this.request, 100)));
  }

  /** A retransmission of the INVITE (§17.2.1): resend the latest response, if any, and absorb it. */
  receiveRetransmission(): void {
    if (this.state === 'Proceeding' && this.provisional) this.transmit(this.provisional, this.destination, true);
    else if (this.state === 'Completed') this.transmit(this.final!, this.destination, true);
  }

  /** An ACK matched this transaction. Returns whether it goes to the TU: only in Accepted (the ACK for a 2xx). */
  receiveAck(): boolean {
    if (this.state === 'Accepted') return true;
    if (this.state === 'Completed') {
      this.stopTimer('G');
      this.stopTimer('H');
      this.transition('Confirmed');
      // Confirmed only absorbs ACKs: neither the request nor the response is needed any more.
      this.final = undefined;
      this.provisional = undefined;
      this.releaseRequest();
      // Timer I absorbs ACK retransmissions that are still in flight.
      this.waitThenTerminate('I', this.durations.I);
    }
    return false;
  }

  /** Sends a response from the TU (100..699). Responses that the state no longer allows are discarded. */
  respond(response: SipResponse): void {
    const status = response.status;
    assertResponseStatus(status);
    if (this.state === 'Accepted' && status >= 200 && status < 300) {
      // §13.3.1.4: the TU core itself retransmits its 2xx until the ACK arrives; they pass straight through.
      this.transmit(response, this.destination, false);
      return;
    }
    if (this.state !== 'Proceeding') {
      this.env.logger.debug({ transaction: this.id, state: this.state, status }, 'response discarded by INVITE server transaction');
      return;
    }
    this.stopTimer('Trying');
    if (status < 200) {
      this.provisional = response;
      this.transmit(response, this.destination, false);
      return;
    }
    this.finalTag = response.toTag ?? null;
    if (status < 300) {
      this.transition('Accepted');
      this.transmit(response, this.destination, false);
      this.env.observer.answered(this, this.request, response);
      // Accepted absorbs INVITE retransmissions and passes ACKs up for 32 s, which takes neither the request nor the
      // responses: at 1,000 calls/s holding them was most of the proxy's memory.
      this.provisional = undefined;
      this.releaseRequest();
      this.waitThenTerminate('L', this.durations.L);
      return;
    }
    this.final = response;
    this.transition('Completed');
    this.transmit(response, this.destination, false);
    this.env.observer.answered(this, this.request, response);
    if (!this.reliable) this.scheduleTimerG(this.durations.G);
    this.startTimer('H', this.durations.H, () => {
      this.env.observer.timedOut(this);
      this.transition('Terminated');
      this.env.observer.serverFailed(this, new TransactionTimeoutError('H'));
    });
  }

  /** §17.2.1: Timer G doubles up to T2 until the ACK arrives or Timer H gives up. */
  private scheduleTimerG(interval: number): void {
    this.startTimer('G', interval, () => {
      this.transmit(this.final!, this.destination, true);
      this.scheduleTimerG(Math.min(2 * interval, this.durations.T2));
    });
  }

  protected transportFailed(err: TransportError): void {
    this.transition('Terminated');
    this.env.observer.serverFailed(this, err);
  }
}
