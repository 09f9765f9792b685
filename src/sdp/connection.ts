import { isIPv6 } from 'node:net';
import type { Attribute, ConnectionData, MediaDescription, SessionDescription } from './session-description.js';

/** Chooses the relay port for a stream; called only for streams that are not rejected (port 0). */
export type PortMapper = (media: MediaDescription, index: number) => number;

/** Where a stream's media goes: its own first c= line, else the session-level one (RFC 4566 §5.7). */
export function effectiveConnection(sdp: SessionDescription, media: MediaDescription): ConnectionData | undefined {
  return media.connections[0] ?? sdp.connection;
}

/**
 * Points every stream at `address` (an IPv4/IPv6 literal or a host name), as a media relay or a NAT fix-up
 * does: the session c= and every media c= are rewritten, and a stream with no c= anywhere gets one. With a
 * `portMapper`, each active stream's m= port is replaced too.
 *
 * a=rtcp (RFC 3605) would otherwise still steer RTCP around the relay: when ports are remapped it is
 * dropped, so RTCP follows the RFC 3550 §11 default of the RTP port + 1 on the relay (or the RTP port under
 * rtcp-mux); when only the address changes, its address part is rewritten and its port kept.
 */
export function rewriteConnection(sdp: SessionDescription, address: string, portMapper?: PortMapper): void {
  const relay = (): ConnectionData => ({ netType: 'IN', addrType: isIPv6(address) ? 'IP6' : 'IP4', address });
  const hadSessionConnection = sdp.connection !== undefined;
  if (hadSessionConnection) sdp.connection = relay();
  sdp.media.forEach((media, index) => {
    if (media.connections.length > 0 || !hadSessionConnection) media.connections = [relay()];
    if (portMapper && media.port !== 0) media.port = portMapper(media, index);
    media.attributes = media.attributes.flatMap((a) => rewriteRtcp(a, relay(), portMapper !== undefined));
  });
}

function rewriteRtcp(a: Attribute, relay: ConnectionData, portsRemapped: boolean): Attribute[] {
  if (a.name !== 'rtcp' || a.value === undefined) return [a];
  if (portsRemapped) return [];
  // a=rtcp:<port> [<nettype> <addrtype> <connection-address>]
  const [port, ...addressPart] = a.value.trim().split(/\s+/);
  if (addressPart.length === 0) return [a];
  return [{ name: 'rtcp', value: `${port} ${relay.netType} ${relay.addrType} ${relay.address}` }];
}
