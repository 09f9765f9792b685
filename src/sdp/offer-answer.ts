import { direction, setDirection } from './attributes.js';
import { parseSdp } from './parse.js';
import { serializeSdp } from './serialize.js';
import type { Direction } from './session-description.js';

// Offer/answer (RFC 3264) on SDP texts: what a session needs to answer a re-INVITE and to put a call on hold.

/** RFC 3264 §6.1: the direction an answer takes to an offer of `offered` (sendonly -> recvonly, and so on). */
export function answerDirection(offered: Direction): Direction {
  switch (offered) {
    case 'sendonly':
      return 'recvonly';
    case 'recvonly':
      return 'sendonly';
    default:
      return offered;
  }
}

/** The direction of the first audio stream of an SDP text (sendrecv when it says nothing or cannot be read). */
export function audioDirection(sdpText: string | undefined): Direction {
  if (sdpText === undefined) return 'sendrecv';
  const parsed = parseSdp(sdpText);
  if (!parsed.ok) return 'sendrecv';
  const audio = parsed.sdp.media.find((m) => m.type === 'audio');
  return direction(parsed.sdp, audio);
}

/**
 * `sdpText` with every stream's direction set to `dir` and the origin's version one higher (RFC 3264 §8: a changed
 * description in the same session counts its version up). Returned unchanged when it cannot be read.
 */
export function withDirection(sdpText: string, dir: Direction): string {
  const parsed = parseSdp(sdpText);
  if (!parsed.ok) return sdpText;
  const sdp = parsed.sdp;
  sdp.origin.sessVersion = String(BigInt(/^\d+$/.test(sdp.origin.sessVersion) ? sdp.origin.sessVersion : '0') + 1n);
  sdp.attributes = sdp.attributes.filter((a) => !['sendrecv', 'sendonly', 'recvonly', 'inactive'].includes(a.name));
  for (const m of sdp.media) setDirection(m, dir);
  return serializeSdp(sdp);
}
