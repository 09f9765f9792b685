import type { Connection, StreamTransport } from './connection.js';

export function peerKey(transport: StreamTransport, address: string, port: number): string {
  return `${transport}|${address}|${port}`;
}

/**
 * The open flows, found by flow id (RFC 5626) and by peer address (§18.2.2: a response or a request to a peer reuses
 * any open connection to it, inbound ones included). Which sockets may exist at all is ConnectionAdmission's matter.
 */
export class ConnectionTable {
  private readonly byFlowId = new Map<string, Connection>();
  private readonly byPeer = new Map<string, Connection>();

  constructor(
    /** Told of every flow added and removed (workers announce their connections to each other). */
    private readonly onChange?: (conn: Connection, open: boolean) => void,
  ) {}

  get size(): number {
    return this.byFlowId.size;
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
