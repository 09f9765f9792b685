import { Server as HttpServer, type IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { WebSocketServer } from 'ws';
import { bindProblem, UnavailableError } from '../util/errors.js';
import { formatListenSpec } from './address.js';
import type { ConnectionAdmission } from './connection-admission.js';
import { socketEnds, SocketConnection, WsConnection, type Connection, type ConnectionContext, type ConnectionOrigin, type StreamTransport } from './connection.js';
import { WS_RECEIVE_LIMITS } from './ws-frames.js';
import type { ListenSpec } from './types.js';

export interface StreamListenerSetup {
  ctx: ConnectionContext;
  admission: ConnectionAdmission;
  /** Required for tls and wss listeners. */
  secureContext: SecureContext | undefined;
  /** Whether TLS clients are asked for a certificate, and whether one is required (TlsOptions.verifyClient). */
  verifyClient: 'none' | 'request' | 'require';
  /** Bound on the TLS and WebSocket handshakes of an accepted socket. */
  handshakeTimeoutMs: number;
  accepted(conn: Connection): void;
}

/** RFC 7118 §4.1: the handshake must negotiate the `sip` subprotocol; returns the client's spelling of it. */
function sipSubprotocol(offered: Iterable<string>): string | undefined {
  for (const p of offered) if (p.trim().toLowerCase() === 'sip') return p.trim();
  return undefined;
}

/**
 * A TCP, TLS, WS or WSS listener. Every kind starts as a plain TCP accept, so connection limits are enforced before
 * any handshake work; TLS is then layered on the accepted socket, and WebSocket upgrades are handled by an HTTP
 * parser that never listens itself.
 */
export class StreamListener {
  private readonly server: Server;
  private readonly transport: StreamTransport;
  private upgrades: HttpServer | undefined;
  /** Sockets handed to the HTTP parser, waiting for their WebSocket upgrade. */
  private readonly pendingUpgrades = new WeakMap<Socket, { origin: ConnectionOrigin; established: (conn: Connection) => void }>();
  private readonly handshaking = new Set<Socket>();
  private bound: { address: string; port: number } | undefined;

  constructor(
    readonly spec: ListenSpec,
    private readonly setup: StreamListenerSetup,
  ) {
    this.transport = spec.transport as StreamTransport;
    this.server = createServer((socket) => this.accept(socket));
    this.server.on('error', () => undefined);
    if (this.transport === 'ws' || this.transport === 'wss') this.upgrades = this.upgradeServer();
  }

  get localAddress(): string {
    return this.bound?.address ?? this.spec.host;
  }

  get localPort(): number {
    return this.bound?.port ?? this.spec.port;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new UnavailableError('listen', bindProblem(formatListenSpec(this.spec), err)));
      this.server.once('error', onError);
      this.server.listen(this.spec.port, this.spec.host, () => {
        this.server.off('error', onError);
        const a = this.server.address();
        if (a && typeof a === 'object') this.bound = { address: a.address, port: a.port };
        resolve();
      });
    });
  }

  /** Stops accepting and drops sockets still in their handshake; established connections are closed by the layer. */
  close(): Promise<void> {
    if (!this.bound) return Promise.resolve();
    this.bound = undefined;
    for (const socket of this.handshaking) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(raw: Socket): void {
    raw.on('error', () => undefined);
    const counters = this.setup.ctx.counters;
    // The peer's address is read now or never: a socket reset before we got to it has none (its bytes go unread).
    const ends = socketEnds(raw);
    if (!ends) {
      counters.connectionsLostBeforeAccept++;
      raw.destroy();
      return;
    }
    const slot = this.setup.admission.admit(ends.remoteAddress, () => raw.destroy());
    if (!slot) {
      raw.destroy();
      return;
    }
    raw.once('close', () => slot.release());
    try {
      this.establish(raw, { ends, slot, inbound: true });
    } catch {
      // Nothing thrown while setting up a peer's connection may escape the accept callback.
      raw.destroy();
    }
  }

  private establish(raw: Socket, origin: ConnectionOrigin): void {
    if (this.transport === 'tcp') {
      this.setup.accepted(new SocketConnection('tcp', raw, origin, this.setup.ctx));
      return;
    }
    const counters = this.setup.ctx.counters;
    let done = false;
    const failed = (): void => {
      if (done) return;
      done = true;
      counters.handshakeFailures++;
      raw.destroy();
    };
    const deadline = this.setup.ctx.clock.setTimer(this.setup.handshakeTimeoutMs, failed);
    this.handshaking.add(raw);
    raw.once('close', () => {
      deadline.cancel();
      this.handshaking.delete(raw);
    });
    const established = (conn: Connection): void => {
      done = true;
      deadline.cancel();
      this.handshaking.delete(raw);
      this.setup.accepted(conn);
    };
    const secure = this.transport === 'tls' || this.transport === 'wss';
    if (!secure) {
      this.pendingUpgrades.set(raw, { origin, established });
      this.upgrades!.emit('connection', raw);
      return;
    }
    const verify = this.setup.verifyClient;
    const tls = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.setup.secureContext,
      requestCert: verify !== 'none',
      rejectUnauthorized: verify === 'require',
    });
    // Before 'secure' an error is a failed handshake (garbage, a refused certificate); after it, the flow's end.
    tls.on('error', () => (done ? raw.destroy() : failed()));
    // 'secure' is the server-side handshake completion event of a TLSSocket (what tls.Server builds on).
    tls.once('secure', () => {
      // 'request': a client may come without a certificate, but not with one that does not verify.
      if (verify === 'request' && !tls.authorized && Object.keys(tls.getPeerCertificate()).length > 0) {
        failed();
        return;
      }
      if (this.transport === 'tls') {
        established(new SocketConnection('tls', tls, origin, this.setup.ctx));
        return;
      }
      this.pendingUpgrades.set(tls, { origin, established });
      this.upgrades!.emit('connection', tls);
    });
  }

  private upgradeServer(): HttpServer {
    const http = new HttpServer();
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.setup.ctx.limits.maxMessageSize,
      ...WS_RECEIVE_LIMITS,
      handleProtocols: (offered) => sipSubprotocol(offered) ?? false,
    });
    http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const pending = this.pendingUpgrades.get(socket);
      const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',');
      if (!pending || sipSubprotocol(offered) === undefined) {
        this.setup.ctx.counters.handshakeFailures++;
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        pending.established(new WsConnection(this.transport as 'ws' | 'wss', ws, socket, pending.origin, this.setup.ctx));
      });
    });
    // A plain HTTP request on a SIP WebSocket port: tell the client what this port speaks.
    http.on('request', (_req, res) => {
      res.writeHead(426, { Upgrade: 'websocket', Connection: 'close', 'Sec-WebSocket-Protocol': 'sip' });
      res.end();
    });
    http.on('clientError', (_err, socket: Socket) => {
      this.setup.ctx.counters.handshakeFailures++;
      socket.destroy();
    });
    return http;
  }
}
