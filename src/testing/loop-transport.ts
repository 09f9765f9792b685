import { parseMessage, serialize, type AnyMessage } from '../message/index.js';
import type { BoundListener, Destination, MessageSender, TransportError, TransportName } from '../transport/types.js';
import type { Clock } from '../util/clock.js';

export interface LoopTransportOptions {
  /** Stamps each sent message and delays delivery; a FakeClock makes a whole exchange run without sleeps. */
  clock: Clock;
  /** This end's address: the host of its listeners and the source its peer sees. Default 192.0.2.10. */
  address?: string;
  /** Time a delivered message spends on the wire. Default 0: delivered on the clock's next tick. */
  latencyMs?: number;
}

export interface LoopedMessage {
  message: AnyMessage;
  destination: Destination | undefined;
  /** Milliseconds since the transport was created, on its clock. */
  at: number;
  /** The `lose` rule dropped it before it reached the peer. */
  lost: boolean;
}

/** What a loop transport delivers to: a TransactionLayer has this shape. */
export interface LoopPeer {
  receive(message: AnyMessage): void;
}

/**
 * A transport without sockets, for tests of the layers above it (the idea of pjsip's loop transport): everything
 * handed to it is recorded, and when it is connected to a peer each message is serialised, parsed again and
 * delivered there after `latencyMs`, with the source a UDP transport would record. It can lose chosen messages
 * and fail every send, the two faults the transaction layer must survive.
 */
export class LoopTransport implements MessageSender {
  readonly sent: LoopedMessage[] = [];
  /** When set, every send rejects with it after being recorded (a refused connection, a closed flow). */
  failure: TransportError | undefined;
  /** Returns true for a message the network loses on its way to the peer. */
  lose: (message: AnyMessage) => boolean = () => false;
  readonly address: string;
  private readonly clock: Clock;
  private readonly latencyMs: number;
  private readonly start: number;
  private peer: LoopPeer | undefined;

  constructor(options: LoopTransportOptions) {
    this.clock = options.clock;
    this.address = options.address ?? '192.0.2.10';
    this.latencyMs = options.latencyMs ?? 0;
    this.start = this.clock.now();
  }

  /** From now on what is sent reaches `peer` too (not only the record). */
  deliverTo(peer: LoopPeer): void {
    this.peer = peer;
  }

  send(message: AnyMessage, destination?: Destination, bytes?: Buffer): Promise<void> {
    const lost = this.peer !== undefined && this.lose(message);
    this.sent.push({ message, destination, at: this.clock.now() - this.start, lost });
    if (this.failure) return Promise.reject(this.failure);
    if (this.peer && !lost) this.carry(bytes ?? serialize(message), destination?.transport ?? 'udp', this.peer);
    return Promise.resolve();
  }

  /** A retransmission is recorded as the message its bytes parse to. */
  resend(bytes: Buffer, destination: Destination): Promise<void> {
    return this.send(parseOrThrow(bytes, 'resend'), destination, bytes);
  }

  isReliable(transport: string): boolean {
    return transport !== 'udp';
  }

  listenerFor(transport: TransportName): BoundListener {
    return { transport, host: this.address, port: 5060, advertised: `${this.address}:5060` };
  }

  requests(method: string): LoopedMessage[] {
    return this.sent.filter((s) => s.message.isRequest && s.message.method === method);
  }

  /** Responses sent, all or those with `status`. */
  responses(status?: number): LoopedMessage[] {
    return this.sent.filter((s) => !s.message.isRequest && (status === undefined || s.message.status === status));
  }

  private carry(bytes: Buffer, transport: TransportName, peer: LoopPeer): void {
    this.clock.setTimer(this.latencyMs, () => {
      const message = parseOrThrow(bytes, 'delivery');
      message.source = {
        transport,
        address: this.address,
        port: 5060,
        localAddress: '0.0.0.0',
        localPort: 5060,
        flowId: `${transport}:0.0.0.0:5060`,
        receivedAt: this.clock.now(),
      };
      peer.receive(message);
    });
  }
}

function parseOrThrow(bytes: Buffer, what: string): AnyMessage {
  const r = parseMessage(bytes);
  if (!r.ok) throw new Error(`LoopTransport ${what}: bytes that do not parse: ${r.error.toString()}`);
  return r.message;
}
