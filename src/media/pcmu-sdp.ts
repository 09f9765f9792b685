import { effectiveConnection, parseSdp } from '../sdp/index.js';

/** An SDP offer or answer for one PCMU audio stream at `address`:`port` (RFC 4566, RFC 3551 payload type 0). */
export function pcmuDescription(address: string, port: number, sessionId = Date.now()): string {
  const family = address.includes(':') ? 'IP6' : 'IP4';
  return [
    'v=0',
    `o=sipway ${sessionId} 1 IN ${family} ${address}`,
    's=sipway',
    `c=IN ${family} ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP 0`,
    'a=rtpmap:0 PCMU/8000',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

/**
 * Where the peer wants PCMU: the address and port of the first audio stream that offers payload type 0. Undefined
 * when there is none (no SDP, a rejected stream with port 0, no PCMU: the caller answers 488 or hangs up).
 */
export function pcmuTarget(sdpText: string | undefined): { address: string; port: number } | undefined {
  if (sdpText === undefined) return undefined;
  const parsed = parseSdp(sdpText);
  if (!parsed.ok) return undefined;
  for (const media of parsed.sdp.media) {
    if (media.type !== 'audio' || media.port === 0 || !media.formats.includes('0')) continue;
    const c = effectiveConnection(parsed.sdp, media);
    if (c) return { address: c.address, port: media.port };
  }
  return undefined;
}
