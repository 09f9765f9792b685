import { SipResponse, type SipRequest } from '../message/index.js';
import { addVia, type TransactionLayer } from '../transaction/index.js';
import { hostPort, type Destination, type MessageSender } from '../transport/index.js';

/** A final status without a response of the peer's: 408 (nothing answered) or 503 (not sent, nowhere to go). */
export interface LocalOutcome {
  status: 408 | 503;
  reason: string;
}

/**
 * Sends `request` to `to` in a client transaction (our Via on top) and waits for its final response. Timeouts and
 * transport failures come back as a LocalOutcome, never as a rejection. `onFinal` sees every final response of the
 * transaction, retransmitted 2xx included (an INVITE's caller ACKs each).
 */
export function exchange(
  transactions: TransactionLayer,
  sender: MessageSender,
  request: SipRequest,
  to: Destination,
  onFinal?: (response: SipResponse) => void,
): Promise<SipResponse | LocalOutcome> {
  return new Promise((resolve) => {
    try {
      addVia(request, sender, to);
      transactions.sendRequest(request, to, {
        onResponse: (response) => {
          if (response.status < 200) return;
          onFinal?.(response);
          resolve(response);
        },
        onTimeout: () => resolve({ status: 408, reason: `Request Timeout - no answer from ${to.transport}:${hostPort(to.address, to.port)}` }),
        onTransportError: (err) => resolve({ status: 503, reason: `Service Unavailable - ${err.message}` }),
      });
    } catch (err) {
      resolve({ status: 503, reason: `Service Unavailable - ${(err as Error).message}` });
    }
  });
}

/** How exchangeWithCredentials ended. */
export interface AuthenticatedOutcome {
  response: SipResponse | LocalOutcome;
  /** The request that got it: a retry carries credentials and a CSeq one higher per round. */
  request: SipRequest;
  /** Challenges answered with a retry. */
  retries: number;
  /** A 401/407 that `answer` could not answer (credentials refused, no supported challenge). */
  unanswered: boolean;
}

/**
 * exchange(), answering up to `rounds` 401/407 challenges with `answer` (a digest client's retry, §22.2), each retry in
 * a new transaction. Without `answer`, or once the rounds are spent, a challenge is the final response.
 */
export async function exchangeWithCredentials(
  transactions: TransactionLayer,
  sender: MessageSender,
  first: SipRequest,
  to: Destination,
  answer: ((request: SipRequest, challenge: SipResponse) => SipRequest | undefined) | undefined,
  rounds: number,
  onFinal?: (response: SipResponse, request: SipRequest) => void,
): Promise<AuthenticatedOutcome> {
  let request = first;
  for (let retries = 0; ; retries++) {
    const sent = request;
    const response = await exchange(transactions, sender, sent, to, onFinal && ((r) => onFinal(r, sent)));
    const challenged = response instanceof SipResponse && (response.status === 401 || response.status === 407);
    if (!challenged || answer === undefined || retries >= rounds) return { response, request: sent, retries, unanswered: false };
    const retry = answer(sent, response);
    if (retry === undefined) return { response, request: sent, retries, unanswered: true };
    request = retry;
  }
}
