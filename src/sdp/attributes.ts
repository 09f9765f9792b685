import type { Attribute, Direction, MediaDescription, SessionDescription } from './session-description.js';

/** A session or a media description: both carry a= lines. */
export type AttributeHolder = Pick<SessionDescription | MediaDescription, 'attributes'>;

export interface RtpMap {
  payloadType: number;
  encoding: string;
  clockRate: number;
  /** The encoding parameters of an audio format: its channel count (RFC 4566 §6). */
  channels?: number;
}

const DIRECTIONS: ReadonlySet<string> = new Set<Direction>(['sendrecv', 'sendonly', 'recvonly', 'inactive']);
const RTPMAP = /^(\d{1,3})\s+([^/\s]+)\/(\d+)(?:\/(\d+))?\s*$/;

/** The first a= line with this name (names compare exactly: RFC 4566 §5 makes values case-significant). */
export function getAttribute(holder: AttributeHolder, name: string): Attribute | undefined {
  return holder.attributes.find((a) => a.name === name);
}

export function getAttributes(holder: AttributeHolder, name: string): Attribute[] {
  return holder.attributes.filter((a) => a.name === name);
}

/**
 * The a=rtpmap lines of a media description (RFC 4566 §6), in the order they appear. Static payload types
 * listed without an rtpmap (RFC 3551 §6) are not included; malformed rtpmap lines are skipped, as unknown
 * attribute content is ignored (§5.13).
 */
export function rtpmap(media: MediaDescription): RtpMap[] {
  const maps: RtpMap[] = [];
  for (const a of getAttributes(media, 'rtpmap')) {
    const m = RTPMAP.exec(a.value ?? '');
    if (!m) continue;
    const map: RtpMap = { payloadType: Number(m[1]), encoding: m[2]!, clockRate: Number(m[3]) };
    if (m[4] !== undefined) map.channels = Number(m[4]);
    maps.push(map);
  }
  return maps;
}

/** The format-specific parameters of `a=fmtp:<format> <parameters>` (RFC 4566 §6), verbatim. */
export function fmtp(media: MediaDescription, format: number | string): string | undefined {
  const prefix = `${format}`;
  for (const a of getAttributes(media, 'fmtp')) {
    const v = a.value ?? '';
    const space = v.search(/\s/);
    if ((space < 0 ? v : v.slice(0, space)) === prefix) return space < 0 ? '' : v.slice(space + 1).trim();
  }
  return undefined;
}

/**
 * The direction of a stream (RFC 3264 §5.1): a media-level attribute overrides a session-level one, and
 * sendrecv is the default when neither is present. Without `media`, the session-level direction.
 */
export function direction(sdp: SessionDescription, media?: MediaDescription): Direction {
  return (media && directionOf(media)) ?? directionOf(sdp) ?? 'sendrecv';
}

/** Replaces any direction attribute of `holder` with `dir`, keeping the position of the first one. */
export function setDirection(holder: AttributeHolder, dir: Direction): void {
  const at = holder.attributes.findIndex((a) => DIRECTIONS.has(a.name));
  const rest = holder.attributes.filter((a) => !DIRECTIONS.has(a.name));
  rest.splice(at < 0 ? rest.length : at, 0, { name: dir });
  holder.attributes = rest;
}

function directionOf(holder: AttributeHolder): Direction | undefined {
  return holder.attributes.find((a) => DIRECTIONS.has(a.name))?.name as Direction | undefined;
}
