import assert from 'node:assert/strict';
import { parseMessage, type AnyMessage, type SipRequest, type SipResponse } from '../../src/message/index.js';
import {
  TransactionLayer,
  type ClientTransaction,
  type ClientTransactionHandlers,
  type InviteServerTransaction,
  type ServerTransaction,
  type TransactionTimeoutError,
  type TransactionUser,
} from '../../src/transaction/index.js';
import type { BoundListener, Destination, MessageSender, TransportError, TransportName } from '../../src/transport/types.js';
import { FakeClock } from '../../src/util/clock.js';

export const UDP_DEST: Destination = { transport: 'udp', address: '192.0.2.20', port: 5060 };
export const TCP_DEST: Destination = { transport: 'tcp', address: '192.0.2.20', port: 5060 };

export interface Sent {
  message: AnyMessage;
  destination: Destination | undefined;
  /** Milliseconds since the sender was created, on the fake clock. */
  at: number;
}

/** Records what the transaction layer hands to the transport; can be told to fail every send. */
export class FakeSender implements MessageSender {
  readonly sent: Sent[] = [];
  failure: TransportError | undefined;
  private readonly start: number;

  constructor(private readonly clock: FakeClock) {
    this.start = clock.now();
  }

  send(message: AnyMessage, destination?: Destination): Promise<void> {
    this.sent.push({ message, destination, at: this.clock.now() - this.start });
    return this.failure ? Promise.reject(this.failure) : Promise.resolve();
  }

  /** Retransmitted bytes are recorded as the message they were made from. */
  resend(bytes: Buffer, destination: Destination): Promise<void> {
    const r = parseMessage(bytes);
    assert.ok(r.ok, 'resend got bytes that parse');
    return this.send(r.message, destination);
  }

  isReliable(transport: string): boolean {
    return transport !== 'udp';
  }

  listenerFor(transport: TransportName): BoundListener {
    return { transport, host: '192.0.2.10', port: 5060, advertised: '192.0.2.10:5060' };
  }

  requests(method: string): Sent[] {
    return this.sent.filter((s) => s.message.isRequest && s.message.method === method);
  }

  responses(status?: number): Sent[] {
    return this.sent.filter((s) => !s.message.isRequest && (status === undefined || s.message.status === status));
  }
}

/** A TransactionUser that records every upcall and lets a test react to new requests. */
export class RecordingUser implements TransactionUser {
  readonly requests: Array<{ request: SipRequest; st: ServerTransaction }> = [];
  readonly acks: Array<{ ack: SipRequest; st: InviteServerTransaction | undefined }> = [];
  readonly strays: SipResponse[] = [];
  readonly errors: Array<{ st: ServerTransaction; err: TransportError | TransactionTimeoutError }> = [];

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

export function setup(options: { maxTransactions?: number; user?: RecordingUser } = {}) {
  const clock = new FakeClock();
  const sender = new FakeSender(clock);
  const layer = new TransactionLayer({ sender, clock, maxTransactions: options.maxTransactions });
  const user = options.user ?? new RecordingUser();
  layer.setUser(user);
  return { clock, sender, layer, user };
}

/** Parses a message written with bare LFs (as in a test source), failing the test if it does not parse. */
export function parse<T extends AnyMessage = AnyMessage>(text: string): T {
  const r = parseMessage(Buffer.from(text.replace(/\r?\n/g, '\r\n')));
  assert.ok(r.ok, r.ok ? '' : r.error.toString());
  return r.message as T;
}

export function parseBytes<T extends AnyMessage = AnyMessage>(bytes: Buffer): T {
  const r = parseMessage(bytes);
  assert.ok(r.ok, r.ok ? '' : r.error.toString());
  return r.message as T;
}

interface RequestOptions {
  via?: string;
  toTag?: string;
  cseq?: number;
  route?: string;
}

/** A request as a UAC core builds it, without Via (addVia puts ours on top). */
export function outgoingRequest(method: string, options: RequestOptions = {}): SipRequest {
  const to = `<sip:bob@example.com>${options.toTag ? `;tag=${options.toTag}` : ''}`;
  // The parser insists on a Via; a request the UAC core builds has none until addVia.
  const request = parse<SipRequest>(
    [
      `${method} sip:bob@example.com SIP/2.0`,
      `Via: ${options.via ?? 'SIP/2.0/UDP placeholder.invalid'}`,
      'Max-Forwards: 70',
      ...(options.route ? [`Route: ${options.route}`] : []),
      `From: "Alice" <sip:alice@example.org>;tag=a1`,
      `To: ${to}`,
      'Call-ID: c1@example.org',
      `CSeq: ${options.cseq ?? 1} ${method}`,
      'Contact: <sip:alice@192.0.2.10>',
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
  if (!options.via) request.headers.remove('via');
  return request;
}

/** A request as received from a peer at 192.0.2.1 (the Via the transport has already stamped). */
export function incomingRequest(method: string, options: RequestOptions & { branch?: string; transport?: string } = {}): SipRequest {
  const via = options.via ?? `SIP/2.0/${options.transport ?? 'UDP'} 192.0.2.1:5060;branch=${options.branch ?? 'z9hG4bKclient1'}`;
  return parse<SipRequest>(
    [
      `${method} sip:bob@example.com SIP/2.0`,
      `Via: ${via}`,
      'Max-Forwards: 70',
      `From: <sip:alice@example.org>;tag=a1`,
      `To: <sip:bob@example.com>${options.toTag ? `;tag=${options.toTag}` : ''}`,
      'Call-ID: c1@example.org',
      `CSeq: ${options.cseq ?? 1} ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

/** A response to `request` as the peer sends it back (Via list and dialog headers copied). */
export function responseTo(request: SipRequest, status: number, toTag = 'b1'): SipResponse {
  const via = request.headers.getAll('via').map((v) => `Via: ${v}`);
  const to = request.toTag || status === 100 ? request.headers.get('to')! : `${request.headers.get('to')!};tag=${toTag}`;
  return parse<SipResponse>(
    [
      `SIP/2.0 ${status} Whatever`,
      ...via,
      `From: ${request.headers.get('from')!}`,
      `To: ${to}`,
      `Call-ID: ${request.callId}`,
      `CSeq: ${request.headers.get('cseq')!}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

/** Lets promise rejections from the fake sender reach the transactions. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
