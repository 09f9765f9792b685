import type { IncomingMessage } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { hostPort, normalizeAddress } from './address.js';
import type { AdmissionSlot } from './connection-admission.js';
import { SocketConnection, WsConnection, type Connection, type ConnectionContext, type ConnectionOrigin, type StreamTransport } from './connection.js';
import { TransportError } from './types.js';
import { WS_RECEIVE_LIMITS } from './ws-frames.js';

export interface ClientTls {
  rejectUnauthorized: boolean;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface DialOptions {
  transport: StreamTransport;
  address: string;
  port: number;
  /** The name the destination was given by, for TLS SNI and certificate identity (RFC 5922); undefined for an IP. */
  servername: string | undefined;
  /** Bind the client socket to our listener's address on multi-homed hosts. */
  localAddress: string | undefined;
  /** TLS client settings for tls and wss: verification, trusted CAs, our certificate, minimum version. */
  tls: ClientTls;
  timeoutMs: number;
  ctx: ConnectionContext;
  /** The place the connection holds in the connection limits. */
  slot: AdmissionSlot;
}

/** Opens an outbound connection; rejects with TransportError('connect') on failure or after `timeoutMs`. */
export function dial(o: DialOptions): Promise<Connection> {
  const target = `${o.transport}:${hostPort(o.address, o.port)}`;
  return new Promise((resolve, reject) => {
    let settled = false;
    let abort: () => void = () => undefined;
    const timer = o.ctx.clock.setTimer(o.timeoutMs, () => fail(new Error(`timed out after ${o.timeoutMs} ms`)));
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      abort();
      // OpenSSL's own message spans lines and names its source files; its reason says what happened.
      const why = (err as Error & { reason?: unknown }).reason;
      const what = typeof why === 'string' ? `TLS: ${why}` : err.message;
      reject(new TransportError('connect', `cannot connect to ${target}: ${what}`, { transport: o.transport, address: o.address, port: o.port }));
    };
    const succeed = (conn: Connection): void => {
      if (settled) return conn.destroy();
      settled = true;
      timer.cancel();
      resolve(conn);
    };
    const common = { host: o.address, port: o.port, localAddress: o.localAddress };
    // The peer is the one dialled; only the local end is read from the socket, once connected.
    const origin = (socket: Socket | undefined): ConnectionOrigin => ({
      ends: { remoteAddress: o.address, remotePort: o.port, localAddress: normalizeAddress(socket?.localAddress), localPort: socket?.localPort ?? 0 },
      slot: o.slot,
      inbound: false,
    });
    switch (o.transport) {
      case 'tcp': {
        const socket = tcpConnect(common, () => succeed(new SocketConnection('tcp', socket, origin(socket), o.ctx)));
        abort = () => socket.destroy();
        socket.once('error', fail);
        break;
      }
      case 'tls': {
        const socket = tlsConnect({ ...common, ...o.tls, servername: o.servername }, () =>
          succeed(new SocketConnection('tls', socket, origin(socket), o.ctx)),
        );
        abort = () => socket.destroy();
        socket.once('error', fail);
        break;
      }
      case 'ws':
      case 'wss': {
        const scheme = o.transport;
        // ws hands its options to tls.connect, which takes servername although ClientOptions does not declare it.
        const options: ClientOptions & { servername?: string } = {
          localAddress: o.localAddress,
          ...o.tls,
          servername: o.servername,
          maxPayload: o.ctx.limits.maxMessageSize,
          ...WS_RECEIVE_LIMITS,
        };
        const ws = new WebSocket(`${scheme}://${hostPort(o.address, o.port)}/`, 'sip', options);
        let socket: Socket | undefined;
        ws.once('upgrade', (res: IncomingMessage) => (socket = res.socket));
        ws.once('open', () => succeed(new WsConnection(scheme, ws, socket!, origin(socket), o.ctx)));
        ws.on('error', fail);
        abort = () => ws.terminate();
        break;
      }
    }
  });
}
