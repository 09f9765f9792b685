import { peerKey, type ConnectionTable } from './connection-table.js';
import type { StreamTransport } from './connection.js';
import type { Destination } from './types.js';
import { flowOwner, type FlowInfo, type WorkerLink } from './worker-bus.js';

/**
 * With `serve --workers`: the connections other workers hold, so that a send to one of their flows, or to a peer
 * only they are connected to, goes through the worker holding the connection (src/transport/worker-bus.ts).
 */
export class WorkerFlows {
  /** Other workers' open connections by peer (peerKey). */
  private readonly remotePeers = new Map<string, string>();

  constructor(
    private readonly workers: WorkerLink,
    private readonly table: ConnectionTable,
  ) {}

  /** Another worker opened or lost a connection (WorkerBusHandler.flow). */
  passed(open: boolean, flow: FlowInfo): void {
    const key = peerKey(flow.transport as StreamTransport, flow.address, flow.port);
    if (open) this.remotePeers.set(key, flow.flowId);
    else if (this.remotePeers.get(key) === flow.flowId) this.remotePeers.delete(key);
  }

  /** Workers were replaced: forget the connections they held. */
  forget(changed: readonly number[]): void {
    const gone = new Set(changed);
    for (const [key, flowId] of this.remotePeers) if (gone.has(flowOwner(flowId) ?? -1)) this.remotePeers.delete(key);
  }

  /** The worker holding a connection, when it is not this one. */
  owner(flowId: string | undefined): number | undefined {
    if (flowId === undefined) return undefined;
    const owner = flowOwner(flowId);
    return owner === undefined || owner === this.workers.index ? undefined : owner;
  }

  /**
   * The other worker's connection a stream send must go through: the destination's flow when another worker holds
   * it, else (no connection of our own to the peer) the connection another worker has to that peer.
   */
  remoteFlowFor(dest: Destination, address: string): { owner: number; flowId: string } | undefined {
    const owner = this.owner(dest.flowId);
    if (owner !== undefined) return { owner, flowId: dest.flowId! };
    if (dest.flowId !== undefined && this.table.flow(dest.flowId)) return undefined;
    const transport = dest.transport as StreamTransport;
    if (this.table.peer(transport, address, dest.port)) return undefined;
    const flowId = this.remotePeers.get(peerKey(transport, address, dest.port));
    const peerOwner = flowId === undefined ? undefined : flowOwner(flowId);
    return flowId !== undefined && peerOwner !== undefined ? { owner: peerOwner, flowId } : undefined;
  }

  /** Writes through the worker holding the connection. */
  write(owner: number, flowId: string, bytes: Buffer): void {
    this.workers.write(owner, flowId, bytes);
  }
}
