import { direction, rtpmap, fmtp } from './attributes.js';
import { effectiveConnection } from './connection.js';
import { answerDirection } from './offer-answer.js';
import { parseSdp } from './parse.js';
import { serializeSdp } from './serialize.js';
import type { ConnectionData, Direction, MediaDescription, SessionDescription, Timing } from './session-description.js';

// Offer/answer (RFC 3264) for one audio stream: what a UA needs to build an INVITE offer, answer an incoming one,
// and learn from the peer's answer where to send which codec.

export interface Codec {
  encoding: string;
  clockRate: number;
  channels?: number;
  /** static or preferred payload type */
  payloadType: number;
  fmtp?: string;
}

export const PCMU: Codec = Object.freeze({ encoding: 'PCMU', clockRate: 8000, payloadType: 0 });
export const PCMA: Codec = Object.freeze({ encoding: 'PCMA', clockRate: 8000, payloadType: 8 });
/** RFC 4733 §7.1.1: events 0-16 are the DTMF digits 0-9, *, #, A-D and flash. */
export const TELEPHONE_EVENT: Codec = Object.freeze({
  encoding: 'telephone-event',
  clockRate: 8000,
  payloadType: 101,
  fmtp: '0-16',
});

export interface MediaOffer {
  /** IPv4 or IPv6 (IP6 in c=/o= when it contains ':'). */
  address: string;
  /** RTP port of the one audio stream. */
  port: number;
  /** In preference order; TELEPHONE_EVENT may be among them. */
  codecs: readonly Codec[];
  /** Default sendrecv. */
  direction?: Direction;
  /** o= sess-id, default from Date.now(). */
  sessionId?: string;
  /** o= username, default 'sipway'. */
  username?: string;
  /** Default 20. */
  ptime?: number;
}

/**
 * The stream agreed by an offer/answer exchange, as seen from our side: `address`/`port` is where we send, `codec`
 * carries the payload type the peer uses for it, and `direction` is ours (sendonly = we send and do not receive).
 */
export interface AgreedStream {
  address: string;
  port: number;
  codec: Codec;
  dtmfPayloadType?: number;
  direction: Direction;
}

export type AnswerOutcome = { ok: true; sdp: string; stream: AgreedStream } | { ok: false; status: 400 | 488; reason: string };

/**
 * RFC 3551 Table 4: the static audio payload types, which an offer may list without an rtpmap (RFC 4566 §6).
 * More than PCMU and PCMA so that a 488 can name what a G.729-only phone offered.
 */
const STATIC_AUDIO: ReadonlyMap<number, Omit<Codec, 'payloadType'>> = new Map([
  [0, { encoding: 'PCMU', clockRate: 8000 }],
  [3, { encoding: 'GSM', clockRate: 8000 }],
  [4, { encoding: 'G723', clockRate: 8000 }],
  [5, { encoding: 'DVI4', clockRate: 8000 }],
  [6, { encoding: 'DVI4', clockRate: 16000 }],
  [7, { encoding: 'LPC', clockRate: 8000 }],
  [8, { encoding: 'PCMA', clockRate: 8000 }],
  // G.722 samples at 16 kHz but RFC 3551 §4.5.2 fixes its RTP clock at 8000 for historical reasons.
  [9, { encoding: 'G722', clockRate: 8000 }],
  [10, { encoding: 'L16', clockRate: 44100, channels: 2 }],
  [11, { encoding: 'L16', clockRate: 44100 }],
  [12, { encoding: 'QCELP', clockRate: 8000 }],
  [13, { encoding: 'CN', clockRate: 8000 }],
  [14, { encoding: 'MPA', clockRate: 90000 }],
  [15, { encoding: 'G728', clockRate: 8000 }],
  [16, { encoding: 'DVI4', clockRate: 11025 }],
  [17, { encoding: 'DVI4', clockRate: 22050 }],
  [18, { encoding: 'G729', clockRate: 8000 }],
]);

/**
 * Formats that ride along with a voice codec but cannot carry a call on their own: DTMF events (RFC 4733) and
 * comfort noise (RFC 3389). A stream whose only common formats are these is not a usable audio stream.
 */
const AUXILIARY = new Set(['telephone-event', 'cn']);

const DIGITS = /^\d+$/;
/** The 488 reason lists at most this many offered codecs: it goes into a status line, and offers can be long. */
const MAX_LISTED = 10;

/** RFC 3264 §5: an offer of one audio stream, o= version 1. Throws RangeError on a malformed `o` (a caller bug). */
export function createOffer(o: MediaOffer): string {
  checkOurs(o);
  const sdp = session(o, [{ start: 0, stop: 0, repeats: [] }]);
  const media = emptyMedia('audio', o.port, 'RTP/AVP', o.codecs.map((c) => String(c.payloadType)));
  for (const c of o.codecs) media.attributes.push({ name: 'rtpmap', value: `${c.payloadType} ${mapping(c)}` });
  for (const c of o.codecs) {
    if (c.fmtp !== undefined) media.attributes.push({ name: 'fmtp', value: `${c.payloadType} ${c.fmtp}` });
  }
  media.attributes.push({ name: 'ptime', value: String(o.ptime ?? 20) });
  media.attributes.push({ name: o.direction ?? 'sendrecv' });
  sdp.media.push(media);
  return serializeSdp(sdp);
}

/**
 * RFC 3264 §6: answers `offer` with our codecs. One audio stream is accepted: the first plain RTP/AVP audio stream
 * with a non-zero port and a voice codec in common, listing the common formats under the offer's payload type
 * numbers in the offer's order. Every other m= line comes back with port 0 in its place. o= version 1.
 * Throws RangeError on a malformed `ours` (a caller bug); a bad offer is an `{ ok: false }` outcome instead.
 */
export function createAnswer(offer: string, ours: MediaOffer): AnswerOutcome {
  checkOurs(ours);
  const parsed = parseSdp(offer);
  if (!parsed.ok) {
    return badRequest(`line ${parsed.error.line}: ${parsed.error.message}`);
  }
  const off = parsed.sdp;
  let accepted: { index: number; common: Match[]; target: ConnectionData } | undefined;
  let withoutConnection: number | undefined;
  for (const [index, m] of off.media.entries()) {
    if (m.type !== 'audio' || m.port === 0 || !isPlainRtpAvp(m.proto)) continue;
    const common = commonFormats(formatsOf(m), ours.codecs);
    if (!common.some((f) => !isAuxiliary(f.ours))) continue;
    const target = effectiveConnection(off, m);
    if (!target) {
      withoutConnection ??= index;
      continue;
    }
    accepted = { index, common, target };
    break;
  }
  if (!accepted) {
    // A stream we could have taken but for a missing c= is the offerer's mistake (RFC 4566 §5.7), not a mismatch.
    if (withoutConnection !== undefined) {
      return badRequest(`no c= line for the audio stream (m= line ${withoutConnection + 1})`);
    }
    return {
      ok: false,
      status: 488,
      reason: sanitize(`Not Acceptable Here - no common audio codec (offered: ${offeredSummary(off)})`),
    };
  }

  const { index, common, target } = accepted;
  const offeredMedia = off.media[index]!;
  const ourDirection = negotiatedDirection(direction(off, offeredMedia), ours.direction ?? 'sendrecv');
  const answer = session(ours, off.timings);
  for (const [i, m] of off.media.entries()) {
    if (i !== index) {
      answer.media.push(rejected(m));
      continue;
    }
    const media = emptyMedia('audio', ours.port, 'RTP/AVP', common.map((f) => String(f.offered.payloadType)));
    // The offer's spelling of each mapping: the payload type is the offerer's to name (RFC 3264 §6.1).
    for (const f of common) media.attributes.push({ name: 'rtpmap', value: `${f.offered.payloadType} ${mapping(f.offered)}` });
    // Our own parameters: in an answer they describe what we are willing to receive.
    for (const f of common) {
      if (f.ours.fmtp !== undefined) media.attributes.push({ name: 'fmtp', value: `${f.offered.payloadType} ${f.ours.fmtp}` });
    }
    media.attributes.push({ name: 'ptime', value: String(ours.ptime ?? 20) });
    media.attributes.push({ name: ourDirection });
    answer.media.push(media);
  }

  const voice = common.find((f) => !isAuxiliary(f.ours))!;
  const dtmf = common.find((f) => isDtmf(f.ours));
  const stream: AgreedStream = {
    address: target.address,
    port: offeredMedia.port,
    codec: peerCodec(voice.ours, voice.offered),
    direction: ourDirection,
  };
  if (dtmf) stream.dtmfPayloadType = dtmf.offered.payloadType;
  return { ok: true, sdp: serializeSdp(answer), stream };
}

/**
 * The stream that `answer` (the peer's) agreed to our `offer`: the first audio m= line with a non-zero port whose
 * counterpart in the offer is audio, with the first answered format we offered (matched by encoding and clock
 * rate, never by number alone, since peers renumber). `direction` is ours, the mirror of the answer's.
 */
export function agreedStream(offer: string, answer: string): AgreedStream | undefined {
  const op = parseSdp(offer);
  const ap = parseSdp(answer);
  if (!op.ok || !ap.ok) return undefined;
  for (const [i, am] of ap.sdp.media.entries()) {
    const om = op.sdp.media[i];
    if (am.type !== 'audio' || am.port === 0 || om?.type !== 'audio') continue;
    const offered = formatsOf(om);
    const answered = formatsOf(am);
    let voice: AgreedStream['codec'] | undefined;
    let dtmfPayloadType: number | undefined;
    for (const a of answered) {
      const ours = offered.find((c) => sameCodec(c, a));
      if (!ours) continue;
      if (isDtmf(ours)) dtmfPayloadType ??= a.payloadType;
      else if (!isAuxiliary(ours)) voice ??= peerCodec(ours, a);
    }
    const target = effectiveConnection(ap.sdp, am);
    if (!voice || !target) continue;
    const stream: AgreedStream = {
      address: target.address,
      port: am.port,
      codec: voice,
      direction: answerDirection(direction(ap.sdp, am)),
    };
    if (dtmfPayloadType !== undefined) stream.dtmfPayloadType = dtmfPayloadType;
    return stream;
  }
  return undefined;
}

/**
 * An answer rejecting every stream of `offer` (RFC 3264 §6: same m= lines, port 0), for an offer that came where
 * a 488 is no longer possible (in a 2xx, answered in the ACK). Undefined when the offer is unreadable.
 */
export function rejectingAnswer(offer: string, address: string): string | undefined {
  const parsed = parseSdp(offer);
  if (!parsed.ok) return undefined;
  const answer = session({ address }, parsed.sdp.timings);
  answer.media = parsed.sdp.media.map(rejected);
  return serializeSdp(answer);
}

/** The codecs of the first audio stream of `sdpText`, in its order; [] when there is none or it is unreadable. */
export function codecsOf(sdpText: string): Codec[] {
  const parsed = parseSdp(sdpText);
  if (!parsed.ok) return [];
  const audio = parsed.sdp.media.find((m) => m.type === 'audio');
  return audio ? formatsOf(audio) : [];
}

/**
 * `sdpText` with its o= session version one higher (RFC 3264 §8). Only that field changes, byte for byte, so a
 * description re-sent unchanged stays identical but for the version. Unchanged when unreadable.
 */
export function nextVersion(sdpText: string): string {
  const parsed = parseSdp(sdpText);
  if (!parsed.ok) return sdpText;
  const current = parsed.sdp.origin.sessVersion;
  // sess-version is unbounded 1*DIGIT (RFC 4566 §9); phones start near 2^63, beyond a double's exact range.
  const next = String(BigInt(DIGITS.test(current) ? current : '0') + 1n);
  // The parser admits exactly one o= line, and only before the first m=, so the first match is it.
  return sdpText.replace(/^(o=[ \t]*\S+[ \t]+\S+[ \t]+)\S+/m, (_all, head: string) => `${head}${next}`);
}

/** True when every stream of `sdpText` is rejected (port 0), when it has no m= line, or when it is unreadable. */
export function allRejected(sdpText: string): boolean {
  const parsed = parseSdp(sdpText);
  if (!parsed.ok) return true;
  return parsed.sdp.media.every((m) => m.port === 0);
}

// ---- internals ----

interface Match {
  /** The format as the offer has it: its payload type, its spelling, its fmtp. */
  offered: Codec;
  ours: Codec;
}

function checkOurs(o: Pick<MediaOffer, 'address' | 'port' | 'codecs' | 'sessionId' | 'username' | 'ptime'>): void {
  if (!/^\S+$/.test(o.address)) throw new RangeError(`bad media address: ${JSON.stringify(o.address)}`);
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new RangeError(`bad RTP port: ${o.port}`);
  if (o.codecs.length === 0) throw new RangeError('no codecs: an m= line needs at least one format');
  const seen = new Set<number>();
  for (const c of o.codecs) {
    if (!Number.isInteger(c.payloadType) || c.payloadType < 0 || c.payloadType > 127) {
      throw new RangeError(`bad payload type ${c.payloadType} for ${c.encoding}`);
    }
    if (seen.has(c.payloadType)) throw new RangeError(`payload type ${c.payloadType} used twice`);
    seen.add(c.payloadType);
    if (!/^[^\s/]+$/.test(c.encoding)) throw new RangeError(`bad encoding name: ${JSON.stringify(c.encoding)}`);
    if (!Number.isInteger(c.clockRate) || c.clockRate <= 0) throw new RangeError(`bad clock rate ${c.clockRate} for ${c.encoding}`);
    if (c.fmtp !== undefined && /[\r\n]/.test(c.fmtp)) throw new RangeError(`line break in the fmtp of ${c.encoding}`);
  }
  if (o.sessionId !== undefined && !DIGITS.test(o.sessionId)) throw new RangeError(`bad o= sess-id: ${o.sessionId}`);
  if (o.username !== undefined && !/^\S+$/.test(o.username)) throw new RangeError(`bad o= username: ${o.username}`);
  if (o.ptime !== undefined && !(o.ptime > 0)) throw new RangeError(`bad ptime: ${o.ptime}`);
}

/** The session part of a description of ours: o= version 1, s=-, c= at session level so every m= line has one. */
function session(
  o: Pick<MediaOffer, 'address' | 'sessionId' | 'username'>,
  timings: readonly Timing[],
): SessionDescription {
  const addrType = o.address.includes(':') ? 'IP6' : 'IP4';
  return {
    version: 0,
    origin: {
      username: o.username ?? 'sipway',
      sessId: o.sessionId ?? String(Date.now()),
      sessVersion: '1',
      netType: 'IN',
      addrType,
      unicastAddress: o.address,
    },
    // RFC 3264 §5: s= is meaningless for unicast; a dash is the recommended filler.
    sessionName: '-',
    emails: [],
    phones: [],
    connection: { netType: 'IN', addrType, address: o.address },
    bandwidths: [],
    // RFC 3264 §6: the answer's t= equals the offer's.
    timings: timings.map((t) => ({ ...t, repeats: t.repeats.map((r) => ({ ...r, offsets: [...r.offsets] })) })),
    zones: [],
    attributes: [],
    media: [],
    unknownLines: [],
  };
}

function emptyMedia(type: string, port: number, proto: string, formats: string[]): MediaDescription {
  return { type, port, proto, formats, connections: [], bandwidths: [], attributes: [], unknownLines: [] };
}

/** RFC 3264 §6: a rejected stream keeps its media type, proto and formats, with port 0 and nothing else. */
function rejected(m: MediaDescription): MediaDescription {
  return emptyMedia(m.type, 0, m.proto, [...m.formats]);
}

/** SRTP, AVPF and friends need keying or feedback we do not do; the transport is matched exactly (RFC 3264 §6). */
function isPlainRtpAvp(proto: string): boolean {
  return proto.toUpperCase() === 'RTP/AVP';
}

/** The RTP formats of an m= line, in its order: rtpmap first, else the static table; unknown ones are skipped. */
function formatsOf(media: MediaDescription): Codec[] {
  const maps = new Map<number, Omit<Codec, 'payloadType'>>();
  for (const r of rtpmap(media)) {
    // The first mapping of a payload type wins: a duplicate a=rtpmap is the sender's error, not an override.
    if (!maps.has(r.payloadType)) maps.set(r.payloadType, r);
  }
  const codecs: Codec[] = [];
  for (const f of media.formats) {
    if (!/^\d{1,3}$/.test(f)) continue;
    const payloadType = Number(f);
    if (payloadType > 127) continue;
    const map = maps.get(payloadType) ?? STATIC_AUDIO.get(payloadType);
    if (!map) continue;
    const codec: Codec = { encoding: map.encoding, clockRate: map.clockRate, payloadType };
    if (map.channels !== undefined) codec.channels = map.channels;
    const params = fmtp(media, f);
    if (params !== undefined) codec.fmtp = params;
    codecs.push(codec);
  }
  return codecs;
}

/** Same codec whatever the payload numbers: encoding name (case-insensitive, RFC 4855 §3), clock rate, channels. */
function sameCodec(a: Codec, b: Codec): boolean {
  return (
    a.encoding.toLowerCase() === b.encoding.toLowerCase() &&
    a.clockRate === b.clockRate &&
    (a.channels ?? 1) === (b.channels ?? 1)
  );
}

/** The offered formats we also have, in the offer's order; each of our codecs answers at most one offered format. */
function commonFormats(offered: readonly Codec[], ours: readonly Codec[]): Match[] {
  const used = new Set<Codec>();
  const common: Match[] = [];
  for (const o of offered) {
    const mine = ours.find((c) => !used.has(c) && sameCodec(c, o));
    if (!mine) continue;
    used.add(mine);
    common.push({ offered: o, ours: mine });
  }
  return common;
}

function isAuxiliary(c: Codec): boolean {
  return AUXILIARY.has(c.encoding.toLowerCase());
}

function isDtmf(c: Codec): boolean {
  return c.encoding.toLowerCase() === 'telephone-event';
}

/** Our name for the codec, with the peer's payload type and the peer's parameters (what it wants to receive). */
function peerCodec(ours: Codec, peer: Codec): Codec {
  const codec: Codec = { encoding: ours.encoding, clockRate: ours.clockRate, payloadType: peer.payloadType };
  if (ours.channels !== undefined) codec.channels = ours.channels;
  if (peer.fmtp !== undefined) codec.fmtp = peer.fmtp;
  return codec;
}

/** `<encoding>/<clock rate>[/<channels>]` of an a=rtpmap (RFC 4566 §6); one channel is the default and left out. */
function mapping(c: Codec): string {
  const channels = c.channels !== undefined && c.channels !== 1 ? `/${c.channels}` : '';
  return `${c.encoding}/${c.clockRate}${channels}`;
}

/**
 * RFC 3264 §6.1: we may send only what the offerer receives and receive only what it sends; within that, what we
 * want. With `wanted` sendrecv this is answerDirection(offered).
 */
function negotiatedDirection(offered: Direction, wanted: Direction): Direction {
  const send = (offered === 'sendrecv' || offered === 'recvonly') && (wanted === 'sendrecv' || wanted === 'sendonly');
  const recv = (offered === 'sendrecv' || offered === 'sendonly') && (wanted === 'sendrecv' || wanted === 'recvonly');
  return send ? (recv ? 'sendrecv' : 'sendonly') : recv ? 'recvonly' : 'inactive';
}

/** What the offer's live audio streams carry, for the 488 reason: `PCMU/8000, G729/8000`, non-RTP/AVP ones marked. */
function offeredSummary(sdp: SessionDescription): string {
  const labels: string[] = [];
  for (const m of sdp.media) {
    if (m.type !== 'audio' || m.port === 0) continue;
    const known = formatsOf(m);
    const names = m.formats.map((f) => {
      const c = known.find((k) => String(k.payloadType) === f);
      return c ? mapping(c) : `PT ${f}`;
    });
    const suffix = isPlainRtpAvp(m.proto) ? '' : ` over ${m.proto}`;
    for (const n of names) {
      const label = `${n}${suffix}`;
      if (!labels.includes(label)) labels.push(label);
    }
  }
  if (labels.length === 0) return 'none';
  return labels.length > MAX_LISTED ? `${labels.slice(0, MAX_LISTED).join(', ')}, ...` : labels.join(', ');
}

function badRequest(detail: string): AnswerOutcome {
  return { ok: false, status: 400, reason: sanitize(`Bad Request - unreadable SDP: ${detail}`) };
}

/** The reason ends up in a status line: control characters from a hostile offer must not reach it. */
function sanitize(reason: string): string {
  return reason.replace(/[\x00-\x1f\x7f]/g, '?');
}
