import { isIPv6 } from 'node:net';
import { direction, getAttribute, getAttributes, rtpmap } from '../sdp/attributes.js';
import { effectiveConnection } from '../sdp/connection.js';
import type { Attribute, ConnectionData, Direction, MediaDescription, SessionDescription } from '../sdp/session-description.js';

/**
 * SDP rewriting for a media relay (RFC 4566, RFC 3264): what a relay reads from a side's SDP (where each stream's RTP
 * and RTCP go, its payload formats, rtcp-mux) and how it points the SDP passed on at its own ports. Security
 * attributes (a=crypto of RFC 4568, a=fingerprint and a=setup of RFC 8122/RFC 5763) pass untouched: the relay forwards
 * bytes and never decrypts, so the two ends keep their keys and their DTLS between them.
 */

/** One payload format of an RTP stream: its number, encoding name and RTP clock rate. */
export interface PayloadFormat {
  payloadType: number;
  encoding: string;
  clockRate: number;
}

/** What a relay needs to know of one m= line of a side's SDP. */
export interface SdpStream {
  index: number;
  /** audio, video, image ... */
  media: string;
  proto: string;
  /** The m= port; 0 for a rejected or disabled stream (RFC 3264 §5.1). */
  port: number;
  /** Carried over UDP (RTP/AVP, RTP/SAVP(F), UDP/TLS/RTP/SAVP(F), udptl ...): a UDP relay can forward it. */
  relayable: boolean;
  /** An RTP profile: packets have RTP headers (and RTCP goes with them). */
  rtp: boolean;
  /** The stream's effective c= address (media level, else session level); undefined when it has none. */
  address?: string;
  /** The address is the unspecified one (0.0.0.0 or ::): the RFC 2543 way of putting a call on hold. */
  held: boolean;
  /** Where this side wants RTCP: a=rtcp (RFC 3605) or the RTP port + 1 (RFC 3550 §11). */
  rtcpPort: number;
  rtcpAddress?: string;
  /** a=rtcp was present. */
  explicitRtcp: boolean;
  /** a=rtcp-mux (RFC 5761): RTP and RTCP on one port. */
  rtcpMux: boolean;
  direction: Direction;
  /** Payload formats with their names and clock rates (rtpmap, else RFC 3551's static table); RTP streams only. */
  formats: PayloadFormat[];
}

/** The relay's ports for one stream in the SDP passed on. */
export interface RelayPorts {
  rtp: number;
  /** The RTCP port; undefined when the relay has only the one port (rtcp-mux), where it tells RTCP from RTP. */
  rtcp?: number;
}

export interface RelayRewrite {
  /** The relay's address facing the receiver of this SDP. */
  address: string;
  /** Per m= line (by index): the relay's ports; undefined leaves the stream where it is (rejected, not over UDP). */
  ports: ReadonlyArray<RelayPorts | undefined>;
  /** ICE attributes: removed (default: the relay is the only path) or kept. */
  ice?: 'remove' | 'keep';
}

/** RFC 3551 tables 4 and 5: the static payload types, which an SDP may list without an rtpmap (RFC 4566 §6). */
const STATIC_FORMATS: ReadonlyMap<number, readonly [string, number]> = new Map([
  [0, ['PCMU', 8000]],
  [3, ['GSM', 8000]],
  [4, ['G723', 8000]],
  [5, ['DVI4', 8000]],
  [6, ['DVI4', 16000]],
  [7, ['LPC', 8000]],
  [8, ['PCMA', 8000]],
  // G.722 samples at 16 kHz but its RTP clock is 8000 (RFC 3551 §4.5.2).
  [9, ['G722', 8000]],
  [10, ['L16', 44100]],
  [11, ['L16', 44100]],
  [12, ['QCELP', 8000]],
  [13, ['CN', 8000]],
  [14, ['MPA', 90000]],
  [15, ['G728', 8000]],
  [16, ['DVI4', 11025]],
  [17, ['DVI4', 22050]],
  [18, ['G729', 8000]],
  [25, ['CelB', 90000]],
  [26, ['JPEG', 90000]],
  [28, ['nv', 90000]],
  [31, ['H261', 90000]],
  [32, ['MPV', 90000]],
  [33, ['MP2T', 90000]],
  [34, ['H263', 90000]],
]);

/** ICE's SDP attributes (RFC 8839 §5; ice-mismatch and remote-candidates of RFC 5245 too). */
const ICE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'candidate',
  'remote-candidates',
  'end-of-candidates',
  'ice-ufrag',
  'ice-pwd',
  'ice-options',
  'ice-lite',
  'ice-mismatch',
  'ice-pacing',
]);

/** Attributes that name one payload format as their first word (RFC 4566 §6, RFC 4585 §4.2). */
const PER_FORMAT_ATTRIBUTES: ReadonlySet<string> = new Set(['rtpmap', 'fmtp', 'rtcp-fb']);

const RTP_PROTO = /(^|\/)RTP\//i;
/** Protocols carried over UDP: RTP/AVP and its secure and feedback profiles, UDP/TLS/..., UDP/DTLS/SCTP, udptl. */
const UDP_PROTO = /^(RTP\/|UDP\/|UDP$|UDPTL$)/i;

export function isUnspecifiedAddress(address: string | undefined): boolean {
  return address === '0.0.0.0' || address === '::' || address === '0:0:0:0:0:0:0:0';
}

/** The payload formats of an RTP m= line, in its order; a dynamic type without an rtpmap is left out. */
export function payloadFormats(media: MediaDescription): PayloadFormat[] {
  const maps = rtpmap(media);
  const out: PayloadFormat[] = [];
  for (const f of media.formats) {
    if (!/^\d{1,3}$/.test(f)) continue;
    const pt = Number(f);
    const map = maps.find((m) => m.payloadType === pt);
    if (map) {
      out.push({ payloadType: pt, encoding: map.encoding, clockRate: map.clockRate });
      continue;
    }
    const known = STATIC_FORMATS.get(pt);
    if (known) out.push({ payloadType: pt, encoding: known[0], clockRate: known[1] });
  }
  return out;
}

/** The streams of a description as a relay sees them, one per m= line. */
export function sdpStreams(sdp: SessionDescription): SdpStream[] {
  return sdp.media.map((media, index) => {
    const rtp = RTP_PROTO.test(media.proto);
    const address = effectiveConnection(sdp, media)?.address;
    const stream: SdpStream = {
      index,
      media: media.type,
      proto: media.proto,
      port: media.port,
      relayable: media.port !== 0 && UDP_PROTO.test(media.proto),
      rtp,
      held: isUnspecifiedAddress(address),
      rtcpPort: media.port === 0 ? 0 : media.port + 1,
      explicitRtcp: false,
      rtcpMux: getAttribute(media, 'rtcp-mux') !== undefined,
      direction: direction(sdp, media),
      formats: rtp ? payloadFormats(media) : [],
    };
    if (address !== undefined) stream.address = address;
    const rtcp = getAttribute(media, 'rtcp')?.value?.trim().split(/\s+/);
    if (rtcp && /^\d{1,5}$/.test(rtcp[0] ?? '') && Number(rtcp[0]) <= 65535) {
      stream.explicitRtcp = true;
      stream.rtcpPort = Number(rtcp[0]);
      // a=rtcp:<port> [IN IP4 <address>]: without an address RTCP goes to the stream's c= address.
      if (rtcp.length >= 4) stream.rtcpAddress = rtcp[3]!;
    }
    if (stream.rtcpAddress === undefined && address !== undefined) stream.rtcpAddress = address;
    return stream;
  });
}

/**
 * Keeps, in every active RTP stream, the payload formats whose encoding name is in `codecs` (compared without case:
 * RFC 4855 §3 registers media type names case-insensitively), with their rtpmap, fmtp and rtcp-fb lines; a
 * retransmission format (RFC 4588, fmtp apt=) whose original is dropped goes with it. A stream left with no format is
 * disabled (port 0, RFC 3264 §8.2) with its m= line otherwise unchanged. Returns how many streams were disabled.
 */
export function filterCodecs(sdp: SessionDescription, codecs: readonly string[]): number {
  const wanted = new Set(codecs.map((c) => c.toLowerCase()));
  let disabled = 0;
  for (const media of sdp.media) {
    if (media.port === 0 || !RTP_PROTO.test(media.proto)) continue;
    const names = new Map(payloadFormats(media).map((f) => [String(f.payloadType), f.encoding.toLowerCase()]));
    let keep = new Set(media.formats.filter((f) => wanted.has(names.get(f) ?? '')));
    // rtx formats point at their original with apt=; one whose original is gone has nothing to repair.
    keep = new Set(
      [...keep].filter((f) => {
        const apt = /(?:^|;)\s*apt=(\d+)/.exec(formatParameters(media, f) ?? '')?.[1];
        return apt === undefined || keep.has(apt);
      }),
    );
    if (keep.size === 0) {
      media.port = 0;
      disabled++;
      continue;
    }
    if (keep.size === media.formats.length) continue;
    media.formats = media.formats.filter((f) => keep.has(f));
    media.attributes = media.attributes.filter((a) => {
      if (!PER_FORMAT_ATTRIBUTES.has(a.name)) return true;
      const format = (a.value ?? '').trim().split(/\s+/)[0] ?? '';
      return format === '*' || keep.has(format);
    });
  }
  return disabled;
}

/** Removes ICE's attributes at session and media level: with a relay in the path its address is the only one. */
export function stripIce(sdp: SessionDescription): void {
  sdp.attributes = sdp.attributes.filter((a) => !ICE_ATTRIBUTES.has(a.name));
  for (const media of sdp.media) media.attributes = media.attributes.filter((a) => !ICE_ATTRIBUTES.has(a.name));
}

/**
 * Points the streams of `sdp` at the relay, in place: each stream with `ports` gets the relay's RTP port on its m=
 * line and the relay's address in the c= lines it uses, session and media level; an unspecified address (0.0.0.0,
 * a hold) stays unspecified, so the hold still reads as one. a=rtcp is rewritten to the relay's RTCP port and address
 * when it was there, and added when the relay's RTCP port is not the RTP port + 1 (or the relay listens on one port
 * only: then a=rtcp names that port, as RFC 5761 §5.1.3 lets an rtcp-mux offer say where RTCP goes without mux).
 * a=rtcp-mux is left as it is. A stream without `ports` keeps its own address (given a media-level c= if the session
 * c= it used is rewritten); a rejected one (port 0) keeps port 0. ICE attributes are removed unless `ice` is 'keep'.
 * The o= line is left alone: its version is the caller's business (RFC 3264 §8).
 */
export function rewriteForRelay(sdp: SessionDescription, rewrite: RelayRewrite): void {
  const relay = (): ConnectionData => ({ netType: 'IN', addrType: isIPv6(rewrite.address) ? 'IP6' : 'IP4', address: rewrite.address });
  const session = sdp.connection;
  const sessionHeld = session !== undefined && isUnspecifiedAddress(session.address);
  sdp.media.forEach((media, index) => {
    const ports = media.port === 0 ? undefined : rewrite.ports[index];
    if (!ports) {
      // It keeps the session address it used, which is about to be the relay's.
      if (media.port !== 0 && media.connections.length === 0 && session && !sessionHeld) media.connections = [{ ...session }];
      return;
    }
    media.port = ports.rtp;
    delete media.portCount;
    if (media.connections.length > 0) {
      media.connections = media.connections.map((c) => (isUnspecifiedAddress(c.address) ? c : relay()));
    } else if (!session) {
      media.connections = [relay()];
    }
    const own = media.connections[0] ?? (sessionHeld ? session : relay());
    media.attributes = rewriteRtcp(media.attributes, ports, own!);
  });
  if (session && !sessionHeld) sdp.connection = relay();
  if (rewrite.ice !== 'keep') stripIce(sdp);
}

function rewriteRtcp(attributes: Attribute[], ports: RelayPorts, connection: ConnectionData): Attribute[] {
  const at = attributes.findIndex((a) => a.name === 'rtcp');
  const old = at < 0 ? undefined : attributes[at]!.value?.trim().split(/\s+/);
  const rest = attributes.filter((a) => a.name !== 'rtcp');
  const port = ports.rtcp ?? ports.rtp;
  if (!old && port === ports.rtp + 1) return rest;
  // The address part only where the original had one (a=rtcp:<port> alone means the c= address).
  const value = old && old.length >= 4 ? `${port} ${connection.netType} ${connection.addrType} ${connection.address}` : `${port}`;
  rest.splice(at < 0 ? rest.length : at, 0, { name: 'rtcp', value });
  return rest;
}

function formatParameters(media: MediaDescription, format: string): string | undefined {
  for (const a of getAttributes(media, 'fmtp')) {
    const v = (a.value ?? '').trim();
    const space = v.search(/\s/);
    if (space > 0 && v.slice(0, space) === format) return v.slice(space + 1);
  }
  return undefined;
}
