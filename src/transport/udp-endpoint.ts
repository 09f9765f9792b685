import cluster from 'node:cluster';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { bindProblem, UnavailableError } from '../util/errors.js';
import { randomToken } from '../util/ids.js';
import { addressFamily, formatListenSpec } from './address.js';
import { TransportError, type ListenSpec } from './types.js';
import { unreachable, UdpProbes, type PathFault } from './udp-probes.js';

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
  /** Connected sockets beside this one that learn the ICMP errors of destinations that do not answer. */
  readonly probes: UdpProbes;

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
    const type = this.family === 6 ? 'udp6' : 'udp4';
    // SO_REUSEADDR lets the probes bind this socket's address and port; bind() still refuses a port already taken.
    this.socket = createSocket({ type, recvBufferSize: bufferBytes, sendBufferSize: bufferBytes, reuseAddr: true });
    this.socket.on('message', (bytes, remote) => onDatagram(bytes, remote, this));
    this.probes = new UdpProbes(
      type,
      () => this.bound,
      (bytes, remote) => onDatagram(bytes, remote, this),
      (address, port, bytes, done) => this.socket.send(bytes, port, this.mapped(address), done),
    );
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
  async bind(exclusive = false): Promise<void> {
    // A worker's own port is chosen by transport.workerPorts, a shared one by the listener.
    const field = exclusive ? 'transport.workerPorts' : 'listen';
    // With SO_REUSEADDR a second server could bind the same port unnoticed: a plain socket tries it first. A socket
    // the cluster primary shares among workers was checked there (checkUdpPortFree) before any worker started.
    const port = exclusive || !cluster.isWorker ? await checkUdpPortFree(this.spec, field) : this.spec.port;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new UnavailableError(field, bindProblem(formatListenSpec(this.spec), err)));
      this.socket.once('error', onError);
      this.socket.bind({ port, address: this.spec.host, exclusive }, () => {
        this.socket.off('error', onError);
        const a = this.socket.address();
        this.bound = { address: a.address, port: a.port };
        resolve();
      });
    });
  }

  send(bytes: Buffer, address: string, port: number): Promise<void> {
    if (!this.bound) return Promise.reject(new TransportError('closed', `udp socket ${formatListenSpec(this.spec)} is closed`));
    return new Promise((resolve, reject) => {
      const done = (err: NodeJS.ErrnoException | null): void => {
        if (!err) return resolve();
        reject(unreachable(err, address, port) ?? new TransportError('write', `udp send to ${address}:${port} failed: ${err.message}`));
      };
      if (!this.probes.send(address, port, bytes, done)) this.socket.send(bytes, port, this.mapped(address), done);
    });
  }

  /** A dual-stack IPv6 socket reaches IPv4 peers through their mapped address. */
  private mapped(address: string): string {
    return this.family === 6 && addressFamily(address) === 4 ? `::ffff:${address}` : address;
  }

  /** Reports an ICMP error for a datagram to `address:port` from now on (UdpProbes), until the returned function is called. */
  watch(address: string, port: number, fault: PathFault): () => void {
    return this.probes.watch(address, port, fault);
  }

  close(): Promise<void> {
    if (!this.bound) return Promise.resolve();
    this.probes.closeAll();
    this.bound = undefined;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/**
 * Binds `spec` with a plain socket (no SO_REUSEADDR) and lets it go: fails with UnavailableError when another socket
 * holds the port. Returns the port, the one the kernel chose when the spec asks for any (0).
 */
export function checkUdpPortFree(spec: ListenSpec, field = 'listen'): Promise<number> {
  const socket = createSocket(addressFamily(spec.host) === 6 ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(new UnavailableError(field, bindProblem(formatListenSpec(spec), err)));
    });
    socket.bind({ port: spec.port, address: spec.host, exclusive: true }, () => {
      const port = socket.address().port;
      socket.close(() => resolve(port));
    });
  });
}
