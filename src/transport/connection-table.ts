import type { Connection, StreamTransport } from './connection.js';

export interface ConnectionLimits {
  /** All stream connections, inbound and outbound, including ones still in their TLS / WebSocket handshake. */
  maxConnections: number;
  /** Inbound connections from one source IP address. */
  maxConnectionsPerSource: number;
}

export function peerKey(transport: StreamTransport, address: string, port: number): string {
  return `${transport}|${address}|${port}`;
}

/**
 * The open flows, found by flow id (RFC 5626) and by peer address (§18.2.2: a response or a request to a peer reuses
 * any open connection to it, inbound ones included). Sockets are counted from accept, before their handshake, so a
 * peer cannot exceed the limits by opening connections that never finish one.
 */
export class ConnectionTable {
  private readonly byFlowId = new Map<string, Connection>();
  private readonly byPeer = new Map<string, Connection>();
  private readonly perSource = new Map<string, number>();
  private sockets = 0;

  constructor(
    private readonly limits: ConnectionLimits,
    /** Told of every flow added and removed (workers announce their connections to each other). */
    private readonly onChange?: (conn: Connection, open: boolean) => void,
  ) {}

  get size(): number {
    return this.byFlowId.size;
  }

  /** Reserves room for a socket; `source` is the peer's IP for inbound sockets (per-source limit), else undefined. */
  admit(source: string | undefined): boolean {
    if (this.sockets >= this.limits.maxConnections) return false;
    if (source !== undefined) {
      const n = this.perSource.get(source) ?? 0;
      if (n >= this.limits.maxConnectionsPerSource) return false;
      this.perSource.set(source, n + 1);
    }
    this.sockets++;
    return true;
  }

  release(source: string | undefined): void {
    this.sockets--;
    if (source === undefined) return;
    const n = (this.perSource.get(source) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(source);
    else this.perSource.set(source, n);
  }

  add(conn: Connection): void {
    this.byFlowId.set(conn.flowId, conn);
    this.byPeer.set(peerKey(conn.transport, conn.remoteAddress, conn.remotePort), conn);
    this.onChange?.(conn, true);
  }

  remove(conn: Connection): void {
    if (!this.byFlowId.delete(conn.flowId)) return;
    this.onChange?.(conn, false);
    const key = peerKey(conn.transport, conn.remoteAddress, conn.remotePort);
    if (this.byPeer.get(key) === conn) this.byPeer.delete(key);
  }

  flow(flowId: string): Connection | undefined {
    const conn = this.byFlowId.get(flowId);
    return conn?.isOpen ? conn : undefined;
  }

  peer(transport: StreamTransport, address: string, port: number): Connection | undefined {
    const conn = this.byPeer.get(peerKey(transport, address, port));
    return conn?.isOpen ? conn : undefined;
  }

  all(): Connection[] {
    return [...this.byFlowId.values()];
  }
}
