import type { SipRequest, SipResponse } from '../../src/message/index.js';
import {
  TransactionLayer,
  type ClientTransaction,
  type ClientTransactionHandlers,
  type InviteServerTransaction,
  type ServerTransaction,
  type TransactionTimeoutError,
  type TransactionUser,
} from '../../src/transaction/index.js';
import { LoopTransport } from '../../src/testing/loop-transport.js';
import type { Destination, TransportError } from '../../src/transport/types.js';
import { FakeClock } from '../../src/util/clock.js';
import type { TimerConfig } from '../../src/transaction/timers.js';

// The scripted messages are part of sipway/testing.
export { incomingRequest, outgoingRequest, parseBytes, parseText, responseTo } from '../../src/testing/messages.js';

export const UDP_DEST: Destination = { transport: 'udp', address: '192.0.2.20', port: 5060 };
export const TCP_DEST: Destination = { transport: 'tcp', address: '192.0.2.20', port: 5060 };

/** A TransactionUser that records every upcall and lets a test react to new requests. */
export class RecordingUser implements TransactionUser {
  readonly requests: Array<{ request: SipRequest; st: ServerTransaction }> = [];
  readonly acks: Array<{ ack: SipRequest; st: InviteServerTransaction | undefined }> = [];
  readonly strays: SipResponse[] = [];
  readonly errors: Array<{ st: ServerTransaction; err: TransportError | TransactionTimeoutError }> = [];
  readonly answered: Array<{ request: SipRequest; response: SipResponse; st: ServerTransaction }> = [];

  constructor(private readonly react: (request: SipRequest, st: ServerTransaction) => void = () => {}) {}

  onRequest(request: SipRequest, st: ServerTransaction): void {
    this.requests.push({ request, st });
    this.react(request, st);
  }
  onAck(ack: SipRequest, st: InviteServerTransaction | undefined): void {
    this.acks.push({ ack, st });
  }
  onStrayResponse(response: SipResponse): void {
    this.strays.push(response);
  }
  onServerTransactionError(st: ServerTransaction, err: TransportError | TransactionTimeoutError): void {
    this.errors.push({ st, err });
  }
  onAnswered(request: SipRequest, response: SipResponse, st: ServerTransaction): void {
    this.answered.push({ request, response, st });
  }
}

/** Client handlers that record what the transaction reported, and when. */
export class RecordingHandlers implements ClientTransactionHandlers<ClientTransaction> {
  readonly responses: SipResponse[] = [];
  readonly timeouts: number[] = [];
  readonly transportErrors: TransportError[] = [];

  constructor(private readonly clock: FakeClock) {}

  onResponse(response: SipResponse): void {
    this.responses.push(response);
  }
  onTimeout(): void {
    this.timeouts.push(this.clock.now());
  }
  onTransportError(err: TransportError): void {
    this.transportErrors.push(err);
  }
}

export function setup(options: { maxTransactions?: number; user?: RecordingUser; timers?: Partial<TimerConfig> } = {}) {
  const clock = new FakeClock();
  const sender = new LoopTransport({ clock });
  const layer = new TransactionLayer({ sender, clock, maxTransactions: options.maxTransactions, timers: options.timers });
  const user = options.user ?? new RecordingUser();
  layer.setUser(user);
  return { clock, sender, layer, user };
}

/** Lets promise rejections from the fake sender reach the transactions. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
