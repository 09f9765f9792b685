import type { AnyMessage, SipRequest, SipResponse } from '../message/index.js';

export type TransportName = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** Where to send a message. For stream transports an existing connection to that address is reused. */
export interface Destination {
  transport: TransportName;
  address: string;
  port: number;
  /** Send over this exact flow (connection) if it is still open (responses §18.2.2, RFC 5626 flows). */
  flowId?: string;
}

/** A listening endpoint as configured (`udp:127.0.0.1:5060`). */
export interface ListenSpec {
  transport: TransportName;
  host: string;
  port: number;
  /**
   * host[:port] to name in Via and Record-Route instead of the bound address (a server behind 1:1 NAT, Kamailio's
   * `advertise`); the port defaults to the bound one.
   */
  advertise?: string;
}

/** A bound listening endpoint: the actual port when 0 was asked for, and what goes into our Via / Record-Route. */
export interface BoundListener extends ListenSpec {
  /** host[:port] to advertise (IPv6 in brackets). */
  advertised: string;
}

/** TLS of the tls:/wss: listeners and of the connections we open (PEM contents, not file names). */
export interface TlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA bundle trusted for peers' certificates, both directions; default Node's built-in roots. */
  ca?: string | Buffer;
  /** Ask clients for a certificate: not at all (default), verified when sent, or required. */
  verifyClient?: 'none' | 'request' | 'require';
  /** Verify the certificates of servers we connect to (default true). */
  verifyServer?: boolean;
  /** What we present when we connect out (mutual TLS). */
  clientCert?: string | Buffer;
  clientKey?: string | Buffer;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** `unreachable`: a send went out but the network said the destination cannot be reached (ICMP, a reset). */
export type TransportErrorKind = 'connect' | 'write' | 'closed' | 'unreachable' | 'refused-destination' | 'no-listener';

export class TransportError extends Error {
  constructor(
    readonly kind: TransportErrorKind,
    message: string,
    readonly destination?: Destination,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

/** What the transaction layer (and stateless elements) need from the transport layer. */
export interface MessageSender {
  /**
   * Sends a request (to `destination`) or a response (per §18.2.2 from its top Via and the request's source when
   * `destination` is omitted). Resolves when handed to the socket; rejects with TransportError (§17.1.4, §18.4).
   * `bytes`: the message already serialised by the caller (not serialised again).
   */
  send(message: AnyMessage, destination?: Destination, bytes?: Buffer): Promise<void>;
  /**
   * Sends again what `serialize()` made of a message sent to `destination` before (a retransmission): the sender of a
   * retransmission need not keep the parsed message. `bytes` given to send() are its serialisation.
   */
  resend(bytes: Buffer, destination: Destination): Promise<void>;
  /** Whether a transport is reliable (no retransmissions at the transaction layer, §17.1.1.2). */
  isReliable(transport: string): boolean;
  /**
   * Given a destination: the listener whose socket `send` will use for it, which our Via sent-by and Record-Route
   * must name. Given a transport (and family): the first listener of that transport, for a default sent-by.
   * Undefined when no listener serves it.
   */
  listenerFor(destination: Destination | TransportName, family?: 4 | 6): BoundListener | undefined;
  /**
   * The sent-by for our Via in a request to `destination` that `listener` (from listenerFor) sends: the listener's
   * advertised address, or a worker's own port when requests leave from there. Without it: `listener.advertised`.
   */
  viaSentBy?(destination: Destination, listener: BoundListener): string;
  /** Every sent-by our Vias may name, when more than the listeners' (worker ports). Without it: listenerFor's. */
  viaListeners?(): BoundListener[];
  /**
   * Reports, once, a fault of the path to `destination` found after a send went out: an ICMP error for a datagram, a
   * connection reset or closed before the peer answered. Until the returned function is called. Without it (or
   * where the path cannot be watched) only the transaction's timers tell.
   */
  watchPath?(destination: Destination, onFault: (err: TransportError) => void): () => void;
}

/** Receives every parsed message from the transport layer (requests already carry received/rport, RFC 3581). */
export interface MessageReceiver {
  onMessage(message: AnyMessage): void;
}

export type { SipRequest, SipResponse };
