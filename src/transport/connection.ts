import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { StreamFramer, type MessageLimits, type ParseError } from '../message/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { randomToken } from '../util/ids.js';
import { hostPort, normalizeAddress } from './address.js';
import type { AdmissionSlot } from './connection-admission.js';
import { ReadDeadline } from './read-deadline.js';
import { TransportError, type TransportName } from './types.js';
import { WsFrameTracker } from './ws-frames.js';

export type StreamTransport = Exclude<TransportName, 'udp'>;

/** What a connection reports to the transport layer; called from socket callbacks, so implementations must not throw. */
export interface ConnectionEvents {
  /** One framed SIP message (stream) or one WebSocket message. */
  message(conn: Connection, bytes: Buffer): void;
  /** The stream cannot be framed any further (§18.3); `head` is the header section when there is one. */
  framingError(conn: Connection, error: ParseError, head: Buffer | undefined): void;
  closed(conn: Connection): void;
}

/** What streams count for TransportLayer.stats(). */
export interface StreamCounters {
  /** Connections closed for not completing a message within messageReadTimeoutMs. */
  connectionsTimedOut: number;
  /** Accepted sockets already reset by the peer, whose address could no longer be read: closed unread. */
  connectionsLostBeforeAccept: number;
  /** TLS or WebSocket handshakes that failed or timed out. */
  handshakeFailures: number;
  /** WebSocket protocol errors (bad frames, messages over the size limit); the connection is closed. */
  streamProtocolErrors: number;
  /** Octets of TCP/TLS messages begun but not complete, over all connections (a gauge, not a count). */
  partialMessageBytes: number;
}

export interface ConnectionContext {
  events: ConnectionEvents;
  clock: Clock;
  idleTimeoutMs: number;
  /** From the first byte of a message until it is complete; for inbound TCP/TLS also from accept to the first message. */
  messageReadTimeoutMs: number;
  limits: MessageLimits;
  counters: StreamCounters;
  /** Put after the transport in flow ids (`tcp-w1.…`): which of several workers holds the connection. */
  flowTag?: string;
}

/**
 * The two ends of a connection, read once when it is accepted or made. A socket the peer has already reset no longer
 * has a peer address (getpeername fails on a closed socket), so these are never read later.
 */
export interface SocketEnds {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}

/** The ends of a socket; undefined when the peer's address cannot be read (the peer has already reset it). */
export function socketEnds(socket: Socket): SocketEnds | undefined {
  const remoteAddress = socket.remoteAddress;
  const remotePort = socket.remotePort;
  if (remoteAddress === undefined || remotePort === undefined) return undefined;
  return { remoteAddress: normalizeAddress(remoteAddress), remotePort, localAddress: normalizeAddress(socket.localAddress), localPort: socket.localPort ?? 0 };
}

/** Where a connection comes from and what it holds of the connection limits. */
export interface ConnectionOrigin {
  ends: SocketEnds;
  slot: AdmissionSlot;
  /** Accepted from a peer (rather than opened by us): its first message is due within messageReadTimeoutMs. */
  inbound: boolean;
}

/** RFC 5626 §4.4.1: a double-CRLF ping is answered with a single CRLF pong. */
const PONG = Buffer.from('\r\n');
/** A peer that stops reading must not make us buffer without end; past this the connection is dropped. */
const MAX_PENDING_WRITE = 1024 * 1024;
/** How long a graceful close may wait for the peer before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

/**
 * One stream flow (RFC 5626 §3: the connection is the flow), inbound or outbound. Idle connections are closed after
 * `idleTimeoutMs` without traffic either way; activity only stamps a time, and the single timer re-arms itself for
 * the remainder, so busy connections cost no timer churn. A message begun must be complete within
 * `messageReadTimeoutMs` (ReadDeadline), however slowly its bytes keep coming.
 */
export abstract class Connection {
  readonly flowId: string;
  readonly closed: Promise<void>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  protected readonly deadline: ReadDeadline;
  private lastActivity: number;
  private idleTimer: TimerHandle | undefined;
  private graceTimer: TimerHandle | undefined;
  private markClosed!: () => void;
  private state: 'open' | 'closing' | 'closed' = 'open';

  protected constructor(
    readonly transport: StreamTransport,
    private readonly origin: ConnectionOrigin,
    protected readonly ctx: ConnectionContext,
  ) {
    ({ remoteAddress: this.remoteAddress, remotePort: this.remotePort, localAddress: this.localAddress, localPort: this.localPort } = origin.ends);
    this.flowId = `${transport}-${ctx.flowTag ?? ''}${randomToken(16)}`;
    this.lastActivity = ctx.clock.now();
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    this.armIdle(ctx.idleTimeoutMs);
    this.deadline = new ReadDeadline(ctx.clock, ctx.messageReadTimeoutMs, () => {
      ctx.counters.connectionsTimedOut++;
      this.destroy();
    });
  }

  /** Open and writable: neither side has started to close it. */
  get isOpen(): boolean {
    return this.state === 'open' && this.writable;
  }

  protected abstract get writable(): boolean;

  /** Writes one whole message (or a pong); resolves once the socket has taken it. */
  abstract write(bytes: Buffer): Promise<void>;
  /** Graceful close: flush, say goodbye, destroy after a grace period. */
  protected abstract end(): void;
  abstract destroy(): void;

  close(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    // Closing is our decision; what the peer still sends is not held to the read deadline.
    this.deadline.stop();
    this.end();
    this.graceTimer = this.ctx.clock.setTimer(CLOSE_GRACE_MS, () => this.destroy());
  }

  protected touch(): void {
    this.lastActivity = this.ctx.clock.now();
  }

  protected pong(): void {
    this.write(PONG).catch(() => undefined);
  }

  /** A whole message has arrived: the peer speaks SIP, and the next message has its own deadline. */
  protected messageComplete(): void {
    this.deadline.complete();
    this.origin.slot.established();
  }

  /** Called once by subclasses when the underlying socket has closed. */
  protected onClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.idleTimer?.cancel();
    this.graceTimer?.cancel();
    this.deadline.stop();
    this.origin.slot.release();
    this.ctx.events.closed(this);
    this.markClosed();
  }

  /** The socket error that ended the connection (ECONNRESET...), if one did. */
  protected failure: string | undefined;

  /** Why the connection is gone, for a transaction that was waiting on it. */
  lostError(): TransportError {
    const how = this.failure === 'ECONNRESET' ? 'reset by the peer' : this.failure ? `lost (${this.failure})` : 'closed';
    return new TransportError('unreachable', `${this.transport} connection to ${hostPort(this.remoteAddress, this.remotePort)} ${how} before an answer`);
  }

  protected closedError(): TransportError {
    return new TransportError('closed', `${this.transport} connection to ${this.remoteAddress}:${this.remotePort} is closed`);
  }

  private armIdle(ms: number): void {
    this.idleTimer = this.ctx.clock.setTimer(ms, () => {
      const idle = this.ctx.clock.now() - this.lastActivity;
      if (idle >= this.ctx.idleTimeoutMs) this.close();
      else this.armIdle(this.ctx.idleTimeoutMs - idle);
    });
  }
}

/** TCP or TLS: a byte stream framed by Content-Length (§18.3). */
export class SocketConnection extends Connection {
  private readonly framer: StreamFramer;

  constructor(
    transport: 'tcp' | 'tls',
    private readonly socket: Socket,
    origin: ConnectionOrigin,
    ctx: ConnectionContext,
  ) {
    super(transport, origin, ctx);
    this.framer = new StreamFramer(
      {
        message: (bytes) => {
          this.messageComplete();
          ctx.events.message(this, bytes);
        },
        ping: () => this.pong(),
        error: (error, head) => ctx.events.framingError(this, error, head),
      },
      ctx.limits,
    );
    socket.setNoDelay(true);
    // A peer that connects must say something (Kamailio's tcp_msg_data_timeout): its first message is due as if begun.
    if (origin.inbound) this.deadline.begin();
    socket.on('data', (chunk: Buffer) => {
      this.touch();
      const pending = this.framer.pendingBytes;
      this.framer.push(chunk);
      ctx.counters.partialMessageBytes += this.framer.pendingBytes - pending;
      if (this.framer.pendingBytes > 0) this.deadline.begin();
    });
    // Errors (resets, TLS alerts) are followed by 'close'; the listener keeps them from becoming uncaught.
    socket.on('error', (err: NodeJS.ErrnoException) => (this.failure ??= err.code ?? err.message));
    socket.on('close', () => {
      ctx.counters.partialMessageBytes -= this.framer.pendingBytes;
      this.onClosed();
    });
  }

  protected get writable(): boolean {
    return this.socket.writable;
  }

  write(bytes: Buffer): Promise<void> {
    if (!this.isOpen) return Promise.reject(this.closedError());
    if (this.socket.writableLength > MAX_PENDING_WRITE) {
      this.destroy();
      return Promise.reject(new TransportError('write', `peer ${this.remoteAddress}:${this.remotePort} is not reading; connection dropped`));
    }
    this.touch();
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (err) => (err ? reject(new TransportError('write', err.message)) : resolve()));
    });
  }

  protected end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** WebSocket (RFC 7118 §5): each WebSocket message carries exactly one SIP message, so no stream framing. */
export class WsConnection extends Connection {
  constructor(
    transport: 'ws' | 'wss',
    private readonly ws: WebSocket,
    socket: Socket,
    origin: ConnectionOrigin,
    ctx: ConnectionContext,
  ) {
    super(transport, origin, ctx);
    // ws frames the messages; the frame boundaries seen here hold the peer to the message read deadline. No deadline
    // for the first message: a browser may open its WebSocket well before it registers.
    const frames = new WsFrameTracker();
    socket.on('data', (chunk: Buffer) => {
      frames.push(chunk);
      if (frames.inMessage) this.deadline.begin();
      else this.deadline.complete();
    });
    ws.on('message', (data) => {
      this.touch();
      this.messageComplete();
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      // Browser stacks keep the connection alive with a CRLFCRLF message and expect a CRLF back, as on TCP.
      if (isOnlyNewlines(bytes)) {
        if (bytes.includes('\r\n\r\n')) this.pong();
        return;
      }
      ctx.events.message(this, bytes);
    });
    // WebSocket-level pings (answered by ws itself) are traffic too.
    ws.on('ping', () => this.touch());
    // Protocol errors (oversize frames close with 1009, bad UTF-8 with 1007) are followed by 'close'.
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code?.startsWith('WS_ERR_')) ctx.counters.streamProtocolErrors++;
      this.failure ??= err.code ?? err.message;
    });
    ws.on('close', () => this.onClosed());
  }

  protected get writable(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  write(bytes: Buffer): Promise<void> {
    if (!this.isOpen) return Promise.reject(this.closedError());
    if (this.ws.bufferedAmount > MAX_PENDING_WRITE) {
      this.destroy();
      return Promise.reject(new TransportError('write', `peer ${this.remoteAddress}:${this.remotePort} is not reading; connection dropped`));
    }
    this.touch();
    // Text frames must be valid UTF-8; a SIP message with a binary body goes in a binary frame (RFC 7118 §5.1).
    return new Promise((resolve, reject) => {
      this.ws.send(bytes, { binary: !isUtf8(bytes) }, (err) => (err ? reject(new TransportError('write', err.message)) : resolve()));
    });
  }

  protected end(): void {
    this.ws.close(1001, 'going away');
  }

  destroy(): void {
    this.ws.terminate();
  }
}

export function isOnlyNewlines(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x0d && b !== 0x0a) return false;
  return true;
}
