import { isIP } from 'node:net';
import type { SipRequest } from '../message/index.js';
import type { Destination, TransportName } from './types.js';

export const DEFAULT_PORTS: Record<TransportName, number> = { udp: 5060, tcp: 5060, tls: 5061, ws: 80, wss: 443 };

export function isReliableTransport(t: string): boolean {
  return t !== 'udp';
}

/** Maps a Via transport token to ours; extension transports (RFC 4475 transports) map to undefined. */
export function viaTransport(token: string): TransportName | undefined {
  switch (token.toUpperCase()) {
    case 'UDP':
      return 'udp';
    case 'TCP':
      return 'tcp';
    case 'TLS':
      return 'tls';
    case 'WS':
      return 'ws';
    case 'WSS':
      return 'wss';
    default:
      return undefined;
  }
}

/**
 * Where a response to `request` goes (RFC 3261 §18.2.2 with RFC 3581): over the same connection for stream transports
 * (the flow; if it has closed, the transport opens a new one to received + sent-by port); over UDP to maddr if
 * present, else to `received` (always present once the transport has stamped the Via) and to rport when filled in,
 * otherwise the sent-by port.
 */
export function responseDestination(request: SipRequest): Destination {
  const via = request.via;
  const src = request.source;
  // The response goes back over the transport the request arrived on, whatever its Via claims (RFC 4475 intmeth
  // sends a "TCP" Via in a datagram).
  const transport = (src?.transport as TransportName | undefined) ?? viaTransport(via.transport) ?? 'udp';
  if (src && isReliableTransport(src.transport)) {
    return { transport: src.transport as TransportName, address: src.address, port: src.port, flowId: src.flowId };
  }
  // DEVIATION(RFC 3261 §18.2.2): only an address is followed in maddr. A name would be looked up, on the
  // sender's word, with the system resolver: anyone could make us resolve names of their choosing.
  const maddr = via.maddr;
  if (maddr && isIP(maddr.replace(/^\[|\]$/g, '')) !== 0) return { transport, address: maddr, port: via.port || DEFAULT_PORTS[transport] };
  const rport = via.rport;
  const address = via.received ?? via.hostname;
  const port = typeof rport === 'number' ? rport : (via.port ?? DEFAULT_PORTS[transport]);
  // DEVIATION(RFC 3261 §18.2.2): a sent-by port 0 (PROTOS-style) names no socket; the only address known to reach
  // the sender is where the packet came from, as if it had asked for rport.
  if (port === 0 && src) return { transport, address: src.address, port: src.port, flowId: src.flowId };
  const dest: Destination = { transport, address, port };
  if (src) dest.flowId = src.flowId;
  return dest;
}
