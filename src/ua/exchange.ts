import type { SipRequest, SipResponse } from '../message/index.js';
import { addVia, type TransactionLayer } from '../transaction/index.js';
import { hostPort, type Destination, type MessageSender } from '../transport/index.js';

/** A final status without a response of the peer's: 408 (nothing answered) or 503 (not sent, nowhere to go). */
export interface LocalOutcome {
  status: 408 | 503;
  reason: string;
}

/**
 * Sends `request` to `to` in a client transaction (our Via on top) and waits for its final response. Timeouts and
 * transport failures come back as a LocalOutcome, never as a rejection.
 */
export function exchange(transactions: TransactionLayer, sender: MessageSender, request: SipRequest, to: Destination): Promise<SipResponse | LocalOutcome> {
  return new Promise((resolve) => {
    try {
      addVia(request, sender, to);
      transactions.sendRequest(request, to, {
        onResponse: (response) => {
          if (response.status >= 200) resolve(response);
        },
        onTimeout: () => resolve({ status: 408, reason: `Request Timeout - no answer from ${to.transport}:${hostPort(to.address, to.port)}` }),
        onTransportError: (err) => resolve({ status: 503, reason: `Service Unavailable - ${err.message}` }),
      });
    } catch (err) {
      resolve({ status: 503, reason: `Service Unavailable - ${(err as Error).message}` });
    }
  });
}
