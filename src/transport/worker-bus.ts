import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { MessageSource } from '../message/index.js';
import { callIdOwner } from '../message/steering.js';
import { newCallId } from '../util/ids.js';

/**
 * The worker processes of one `sipway serve --workers N` share the SIP sockets, and the kernel hands a datagram
 * (the cluster primary, a connection) to whichever worker it likes. Calls are owned by one worker, chosen by the
 * hash of the Call-ID, so that the transactions, dialogs and accounting of a call live in one process; a worker
 * that receives another's message passes it on over this bus, and a worker that must write to a connection another
 * worker holds asks that worker to write it.
 *
 * The bus is a UDP socket per worker on 127.0.0.1: one sendmsg and one recvmsg per passed message, no serialisation
 * beyond a short header, and datagram semantics that match what SIP over UDP already tolerates (a lost message is
 * retransmitted). Frames are accepted only from the ports of the other workers.
 */
export interface WorkerLink {
  /** This worker's index, 0 .. count-1. */
  readonly index: number;
  readonly count: number;
  /** Token shared by the workers of one server run, so that the UDP flows they share have the same ids. */
  readonly instance: string;
  /** Hands a received message to its owner. False when it cannot be passed (too large, bus not ready): handle it here. */
  deliver(worker: number, bytes: Buffer, source: MessageSource, stream: boolean): boolean;
  /** Asks `worker` to write `bytes` on its connection `flowId`. */
  write(worker: number, flowId: string, bytes: Buffer): void;
  /**
   * Tells the other workers that this one opened (or lost) a connection to a peer, so that they reach that peer
   * through it (§18.2.2 reuse) instead of dialling a phone that only takes the connection it opened.
   */
  announceFlow(open: boolean, flow: FlowInfo): void;
}

export interface FlowInfo {
  flowId: string;
  transport: string;
  address: string;
  port: number;
}

export interface WorkerBusHandler {
  delivered(bytes: Buffer, source: MessageSource, stream: boolean): void;
  write(flowId: string, bytes: Buffer): void;
  flow(open: boolean, flow: FlowInfo): void;
  /** Workers `changed` were replaced (their connections died with them); the handler announces its own again. */
  peersChanged(changed: number[]): void;
}

const DELIVER = 1;
const WRITE = 2;
const FLOW_OPEN = 3;
const FLOW_CLOSED = 4;
/** Largest UDP payload on loopback IPv4; a frame that would exceed it is handled where it arrived. */
const MAX_FRAME = 65_507;
const TRANSPORTS = ['udp', 'tcp', 'tls', 'ws', 'wss'] as const;
const BUS_BUFFER_BYTES = 4 * 1024 * 1024;

/** The worker owning flows whose id carries `w<index>.` (stream connections accepted or opened by that worker). */
export function flowOwner(flowId: string): number | undefined {
  const dash = flowId.indexOf('-w');
  if (dash < 0) return undefined;
  const dot = flowId.indexOf('.', dash);
  if (dot < 0) return undefined;
  const n = Number(flowId.slice(dash + 2, dot));
  return Number.isInteger(n) ? n : undefined;
}

/** A new Call-ID that hashes to `worker`, for requests a worker originates (so that their responses come back to it). */
export function ownedCallId(worker: number, workers: number, host?: string): string {
  if (workers <= 1) return newCallId(host);
  for (;;) {
    const id = newCallId(host);
    if (callIdOwner(id, workers) === worker) return id;
  }
}

export class WorkerBus implements WorkerLink {
  private readonly socket: Socket;
  private peers: number[] = [];
  private readonly peerPorts = new Set<number>();
  private handler: WorkerBusHandler | undefined;
  /** Frames dropped: too large, unknown sender or malformed; surfaced in the worker's stats. */
  dropped = 0;

  constructor(
    readonly index: number,
    readonly count: number,
    readonly instance: string,
  ) {
    this.socket = createSocket({ type: 'udp4', recvBufferSize: BUS_BUFFER_BYTES, sendBufferSize: BUS_BUFFER_BYTES });
    this.socket.on('message', (frame, remote) => this.onFrame(frame, remote));
    this.socket.on('error', () => undefined);
  }

  /** Binds 127.0.0.1 on a port of its own (exclusive: not shared through the cluster primary) and returns it. */
  bind(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ address: '127.0.0.1', port: 0, exclusive: true }, () => {
        this.socket.off('error', reject);
        resolve(this.socket.address().port);
      });
    });
  }

  /** The bus ports of all workers by index (this one's included), as the primary announced them; 0 for a worker being replaced. */
  setPeers(ports: number[]): void {
    const changed = this.peers.length === 0 ? [] : ports.map((p, i) => (this.peers[i] !== p ? i : -1)).filter((i) => i >= 0 && i !== this.index);
    this.peers = ports;
    this.peerPorts.clear();
    for (const p of ports) this.peerPorts.add(p);
    if (changed.length > 0) this.handler?.peersChanged(changed);
  }

  setHandler(handler: WorkerBusHandler): void {
    this.handler = handler;
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }

  deliver(worker: number, bytes: Buffer, source: MessageSource, stream: boolean): boolean {
    const port = this.peers[worker];
    if (!port || worker === this.index) return false;
    const address = Buffer.from(source.address, 'latin1');
    const local = Buffer.from(source.localAddress, 'latin1');
    const flow = Buffer.from(source.flowId, 'latin1');
    const headLength = 1 + 1 + 1 + 2 + 2 + 3 + address.length + local.length + flow.length;
    if (headLength + bytes.length > MAX_FRAME || address.length > 255 || local.length > 255 || flow.length > 255) return false;
    const head = Buffer.allocUnsafe(headLength);
    let o = head.writeUInt8(DELIVER, 0);
    o = head.writeUInt8(Math.max(0, TRANSPORTS.indexOf(source.transport as (typeof TRANSPORTS)[number])), o);
    o = head.writeUInt8(stream ? 1 : 0, o);
    o = head.writeUInt16BE(source.port, o);
    o = head.writeUInt16BE(source.localPort, o);
    o = writeShort(head, address, o);
    o = writeShort(head, local, o);
    writeShort(head, flow, o);
    this.socket.send([head, bytes], port, '127.0.0.1');
    return true;
  }

  write(worker: number, flowId: string, bytes: Buffer): void {
    const port = this.peers[worker];
    const flow = Buffer.from(flowId, 'latin1');
    if (!port || flow.length > 255 || 2 + flow.length + bytes.length > MAX_FRAME) {
      this.dropped++;
      return;
    }
    const head = Buffer.allocUnsafe(2 + flow.length);
    head.writeUInt8(WRITE, 0);
    writeShort(head, flow, 1);
    this.socket.send([head, bytes], port, '127.0.0.1');
  }

  announceFlow(open: boolean, flow: FlowInfo): void {
    const parts = [flow.flowId, flow.transport, flow.address].map((v) => Buffer.from(v, 'latin1'));
    if (parts.some((p) => p.length > 255)) return;
    const frame = Buffer.allocUnsafe(1 + 2 + parts.reduce((n, p) => n + 1 + p.length, 0));
    let o = frame.writeUInt8(open ? FLOW_OPEN : FLOW_CLOSED, 0);
    o = frame.writeUInt16BE(flow.port, o);
    for (const p of parts) o = writeShort(frame, p, o);
    this.peers.forEach((port, i) => {
      if (i !== this.index && port) this.socket.send(frame, port, '127.0.0.1');
    });
  }

  private onFrame(frame: Buffer, remote: RemoteInfo): void {
    if (remote.address !== '127.0.0.1' || !this.peerPorts.has(remote.port) || !this.handler) {
      this.dropped++;
      return;
    }
    try {
      if (frame[0] === DELIVER) {
        let o = 1;
        const transport = TRANSPORTS[frame.readUInt8(o++)] ?? 'udp';
        const stream = frame.readUInt8(o++) === 1;
        const port = frame.readUInt16BE(o);
        const localPort = frame.readUInt16BE(o + 2);
        o += 4;
        const [address, o1] = readShort(frame, o);
        const [localAddress, o2] = readShort(frame, o1);
        const [flowId, o3] = readShort(frame, o2);
        // receivedAt is the owner's to stamp: monotonic clocks of two processes do not compare.
        this.handler.delivered(frame.subarray(o3), { transport, address, port, localAddress, localPort, flowId, receivedAt: 0 }, stream);
      } else if (frame[0] === WRITE) {
        const [flowId, o] = readShort(frame, 1);
        this.handler.write(flowId, frame.subarray(o));
      } else if (frame[0] === FLOW_OPEN || frame[0] === FLOW_CLOSED) {
        const port = frame.readUInt16BE(1);
        const [flowId, o1] = readShort(frame, 3);
        const [transport, o2] = readShort(frame, o1);
        const [address] = readShort(frame, o2);
        this.handler.flow(frame[0] === FLOW_OPEN, { flowId, transport, address, port });
      } else this.dropped++;
    } catch {
      this.dropped++;
    }
  }
}

function writeShort(buf: Buffer, value: Buffer, offset: number): number {
  buf.writeUInt8(value.length, offset);
  value.copy(buf, offset + 1);
  return offset + 1 + value.length;
}

function readShort(buf: Buffer, offset: number): [string, number] {
  const len = buf.readUInt8(offset);
  const end = offset + 1 + len;
  if (end > buf.length) throw new RangeError('truncated bus frame');
  return [buf.toString('latin1', offset + 1, end), end];
}
