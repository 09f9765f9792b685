import { parseSdp, serializeSdp } from '../sdp/index.js';

/**
 * Topology hiding in the SDP the relay passes on: its o= line still names the party that wrote it (its address, and
 * in the user name often its software). The relay rewrites c=, m= and a=rtcp; the origin gets the relay's address
 * (the description's connection address) and user name `-` (RFC 4566 §5.2: no user ids). Session id and version stay,
 * so that the receiver still tells a new description from a repeated one. An SDP that does not parse is left alone
 * (the relay has read it already, so this is not expected).
 */
export function hideOrigin(text: string, fallback?: string): string {
  const parsed = parseSdp(text);
  if (!parsed.ok) return text;
  const sdp = parsed.sdp;
  const connections = [...(sdp.connection ? [sdp.connection] : []), ...sdp.media.flatMap((m) => m.connections)];
  // A hold written the RFC 2543 way (c=0.0.0.0) names no relay address: the relay's own is used then.
  const address = connections.find((c) => !isUnspecified(c.address))?.address ?? fallback;
  const origin = sdp.origin;
  if (address === undefined || (origin.unicastAddress === address && origin.username === '-')) return text;
  origin.unicastAddress = address;
  origin.addrType = address.includes(':') ? 'IP6' : 'IP4';
  origin.netType = 'IN';
  origin.username = '-';
  return serializeSdp(sdp);
}

function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}
