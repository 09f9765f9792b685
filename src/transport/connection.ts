import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { StreamFramer, type MessageLimits, type ParseError } from '../message/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { randomToken } from '../util/ids.js';
import { normalizeAddress } from './address.js';
import { TransportError, type TransportName } from './types.js';

export type StreamTransport = Exclude<TransportName, 'udp'>;

/** What a connection reports to the transport layer; called from socket callbacks, so implementations must not throw. */
export interface ConnectionEvents {
  /** One framed SIP message (stream) or one WebSocket message. */
  message(conn: Connection, bytes: Buffer): void;
  /** The stream cannot be framed any further (§18.3); `head` is the header section when there is one. */
  framingError(conn: Connection, error: ParseError, head: Buffer | undefined): void;
  closed(conn: Connection): void;
}

export interface ConnectionContext {
  events: ConnectionEvents;
  clock: Clock;
  idleTimeoutMs: number;
  limits: MessageLimits;
  /** Put after the transport in flow ids (`tcp-w1.…`): which of several workers holds the connection. */
  flowTag?: string;
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
 * the remainder, so busy connections cost no timer churn.
 */
export abstract class Connection {
  readonly flowId: string;
  readonly closed: Promise<void>;
  private lastActivity: number;
  private idleTimer: TimerHandle | undefined;
  private graceTimer: TimerHandle | undefined;
  private markClosed!: () => void;
  private state: 'open' | 'closing' | 'closed' = 'open';

  protected constructor(
    readonly transport: StreamTransport,
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly localAddress: string,
    readonly localPort: number,
    protected readonly ctx: ConnectionContext,
  ) {
    this.flowId = `${transport}-${ctx.flowTag ?? ''}${randomToken(16)}`;
    this.lastActivity = ctx.clock.now();
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    this.armIdle(ctx.idleTimeoutMs);
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
    this.end();
    this.graceTimer = this.ctx.clock.setTimer(CLOSE_GRACE_MS, () => this.destroy());
  }

  protected touch(): void {
    this.lastActivity = this.ctx.clock.now();
  }

  protected pong(): void {
    this.write(PONG).catch(() => undefined);
  }

  /** Called once by subclasses when the underlying socket has closed. */
  protected onClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.idleTimer?.cancel();
    this.graceTimer?.cancel();
    this.ctx.events.closed(this);
    this.markClosed();
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
    ctx: ConnectionContext,
  ) {
    super(transport, normalizeAddress(socket.remoteAddress), socket.remotePort ?? 0, normalizeAddress(socket.localAddress), socket.localPort ?? 0, ctx);
    this.framer = new StreamFramer(
      {
        message: (bytes) => ctx.events.message(this, bytes),
        ping: () => this.pong(),
        error: (error, head) => ctx.events.framingError(this, error, head),
      },
      ctx.limits,
    );
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.touch();
      this.framer.push(chunk);
    });
    // Errors (resets, TLS alerts) are followed by 'close'; the listener keeps them from becoming uncaught.
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClosed());
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
    ctx: ConnectionContext,
  ) {
    super(transport, normalizeAddress(socket.remoteAddress), socket.remotePort ?? 0, normalizeAddress(socket.localAddress), socket.localPort ?? 0, ctx);
    ws.on('message', (data) => {
      this.touch();
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
    ws.on('error', () => undefined);
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
