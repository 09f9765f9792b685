import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { bindProblem, UnavailableError } from '../util/errors.js';
import { randomToken } from '../util/ids.js';
import { addressFamily, formatListenSpec } from './address.js';
import { TransportError, type ListenSpec } from './types.js';

export const DEFAULT_UDP_BUFFER_BYTES = 4 * 1024 * 1024;

export type DatagramHandler = (bytes: Buffer, remote: RemoteInfo, endpoint: UdpEndpoint) => void;

/**
 * One UDP listening socket. Requests and responses are sent from the socket the peer talks to, so that NATs and
 * symmetric-response peers see replies from the address they sent to (RFC 3581 §4). Its flow id stands for the
 * socket: a Destination carrying it is sent from this socket.
 */
export class UdpEndpoint {
  readonly flowId: string;
  readonly family: 4 | 6;
  private readonly socket: Socket;
  private bound: { address: string; port: number } | undefined;

  constructor(
    readonly spec: ListenSpec,
    onDatagram: DatagramHandler,
    /**
     * Socket buffer size asked of the kernel (capped by net.core.rmem_max / wmem_max). The default 208 KiB overflows
     * within milliseconds at a few thousand messages per second; every overflow is a lost request and a retransmission.
     */
    bufferBytes = DEFAULT_UDP_BUFFER_BYTES,
    /** Several workers sharing the socket give it one id; by default a random one, so a restart changes it. */
    flowId = `udp-${randomToken(16)}`,
  ) {
    this.flowId = flowId;
    this.family = addressFamily(spec.host) ?? 4;
    this.socket = createSocket({ type: this.family === 6 ? 'udp6' : 'udp4', recvBufferSize: bufferBytes, sendBufferSize: bufferBytes });
    this.socket.on('message', (bytes, remote) => onDatagram(bytes, remote, this));
    // ICMP unreachable and similar errors on an unconnected socket say nothing about the next datagram.
    this.socket.on('error', () => undefined);
  }

  get localAddress(): string {
    return this.bound?.address ?? this.spec.host;
  }

  get localPort(): number {
    return this.bound?.port ?? this.spec.port;
  }

  /**
   * `exclusive`: in a cluster worker, a socket of this process alone (a worker's own port) rather than one the
   * primary shares among the workers.
   */
  bind(exclusive = false): Promise<void> {
    return new Promise((resolve, reject) => {
      // A worker's own port is chosen by transport.workerPorts, a shared one by the listener.
      const field = exclusive ? 'transport.workerPorts' : 'listen';
      const onError = (err: Error): void => reject(new UnavailableError(field, bindProblem(formatListenSpec(this.spec), err)));
      this.socket.once('error', onError);
      this.socket.bind({ port: this.spec.port, address: this.spec.host, exclusive }, () => {
        this.socket.off('error', onError);
        const a = this.socket.address();
        this.bound = { address: a.address, port: a.port };
        resolve();
      });
    });
  }

  send(bytes: Buffer, address: string, port: number): Promise<void> {
    // A dual-stack IPv6 socket reaches IPv4 peers through their mapped address.
    const to = this.family === 6 && addressFamily(address) === 4 ? `::ffff:${address}` : address;
    if (!this.bound) return Promise.reject(new TransportError('closed', `udp socket ${formatListenSpec(this.spec)} is closed`));
    return new Promise((resolve, reject) => {
      this.socket.send(bytes, port, to, (err) => (err ? reject(new TransportError('write', `udp send to ${address}:${port} failed: ${err.message}`)) : resolve()));
    });
  }

  close(): Promise<void> {
    if (!this.bound) return Promise.resolve();
    this.bound = undefined;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
