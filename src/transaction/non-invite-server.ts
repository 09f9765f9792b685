import { serialize, type SipRequest, type SipResponse } from '../message/index.js';
import { responseDestination } from '../transport/response-route.js';
import type { Destination, TransportError } from '../transport/types.js';
import { assertResponseStatus, Transaction, type TransactionEnv } from './transaction.js';

export type NonInviteServerState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';

/** The non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8). */
export class NonInviteServerTransaction extends Transaction<NonInviteServerState> {
  readonly side = 'server' as const;
  readonly destination: Destination;
  /** The latest provisional response, for retransmitted requests in Proceeding. */
  private lastProvisional: SipResponse | undefined;
  /** The final response as sent, for retransmitted requests in Completed (see keptForRetransmission). */
  private finalBytes: string | undefined;

  constructor(env: TransactionEnv, id: string, request: SipRequest) {
    const destination = responseDestination(request);
    super(env, id, request, 'Trying', destination.transport);
    this.destination = destination;
  }

  /** A retransmission of the request: absorbed in Trying, answered with the latest response afterwards (§17.2.2). */
  receiveRetransmission(): void {
    if (this.state === 'Terminated') return;
    if (this.finalBytes !== undefined) this.retransmitBytes(this.finalBytes, this.destination);
    else if (this.lastProvisional) this.transmit(this.lastProvisional, this.destination, true);
  }

  /** Sends a response from the TU (100..699). Once a final response is sent, later ones are discarded (§17.2.2). */
  respond(response: SipResponse): void {
    const status = response.status;
    assertResponseStatus(status);
    if (this.state !== 'Trying' && this.state !== 'Proceeding') {
      this.env.logger.debug({ transaction: this.id, state: this.state, status }, 'response discarded by non-INVITE server transaction');
      return;
    }
    if (status < 200) {
      this.lastProvisional = response;
      this.transition('Proceeding');
      this.transmit(response, this.destination, false);
      return;
    }
    // A REGISTER flood keeps tens of thousands of these in Completed: the bytes are all Timer J needs.
    const bytes = serialize(response);
    this.finalBytes = this.keptForRetransmission(bytes);
    this.lastProvisional = undefined;
    this.transition('Completed');
    this.transmit(response, this.destination, false, bytes);
    this.env.observer.answered(this, this.request, response);
    this.releaseRequest();
    // Timer J keeps the final response around for retransmitted requests (zero over reliable transports).
    this.waitThenTerminate('J', this.durations.J);
  }

  protected transportFailed(err: TransportError): void {
    this.transition('Terminated');
    this.env.observer.serverFailed(this, err);
  }
}
