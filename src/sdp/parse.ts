import { isIPv4, isIPv6 } from 'node:net';
import type {
  Attribute,
  Bandwidth,
  ConnectionData,
  MediaDescription,
  Origin,
  RepeatTimes,
  SessionDescription,
  TimeZoneAdjustment,
} from './session-description.js';

export interface SdpParseError {
  /** 1-based line number; for a missing line, the line where the session section ended. */
  line: number;
  message: string;
}

export type SdpParseResult = { ok: true; sdp: SessionDescription } | { ok: false; error: SdpParseError };

/** Thrown only inside this module and turned into an `{ ok: false }` result by parseSdp. */
class LineError extends Error {}

const REPEAT_TIME = /^\d+[dhms]?$/;
const ZONE_OFFSET = /^-?\d+[dhms]?$/;
const DIGITS = /^\d+$/;
const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
/** Lines that RFC 4566 §5 allows only before the first m=. */
const SESSION_ONLY = new Set(['v', 'o', 's', 'u', 'e', 'p', 't', 'r', 'z']);
/** Session-level lines the §5 grammar allows at most once. */
const SESSION_SINGLETONS = new Set(['v', 'o', 's', 'i', 'u', 'c', 'k', 'z']);

/**
 * Parses an SDP body (RFC 4566). Never throws: bad input comes back as `{ ok: false, error }`.
 *
 * Liberal where deployed phones are sloppy: CRLF or bare LF, trailing empty lines, known lines out of the
 * §5 order within their section, an empty s=, a missing t=. Strict where the result would mislead the
 * offer/answer code or the media relay: structured lines (o= c= b= t= r= z= m=) must parse.
 */
export function parseSdp(input: Buffer | string): SdpParseResult {
  // SDP text is UTF-8 unless a=charset says otherwise (§5.13); SIP peers send ASCII or UTF-8 in practice.
  const lines = (typeof input === 'string' ? input : input.toString('utf8')).split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let lineNo = 0;
  try {
    const sdp = emptySession();
    const seen = new Set<string>();
    let media: MediaDescription | undefined;
    let sessionEnd = lines.length + 1;
    for (const line of lines) {
      lineNo++;
      if (line.length < 2 || line[1] !== '=' || !/^[a-zA-Z]$/.test(line[0]!)) {
        throw new LineError(`not of the form <type>=<value>: ${JSON.stringify(line.slice(0, 40))}`);
      }
      const type = line[0]!;
      const value = line.slice(2);
      if (lineNo === 1 && type !== 'v') throw new LineError('missing v= line: a description starts with v=');
      if (type === 'm') {
        if (!media) sessionEnd = lineNo;
        media = parseMedia(value);
        sdp.media.push(media);
      } else if (media) {
        parseMediaLine(media, type, value);
      } else {
        if (seen.has(type) && SESSION_SINGLETONS.has(type)) throw new LineError(`duplicate ${type}= line`);
        seen.add(type);
        parseSessionLine(sdp, type, value);
      }
    }
    lineNo = sessionEnd;
    if (lines.length === 0) throw new LineError('missing v= line: the description is empty');
    if (!seen.has('o')) throw new LineError('missing o= line');
    if (!seen.has('s')) throw new LineError('missing s= line');
    // DEVIATION(RFC 4566 §5): t= is mandatory, but several deployed phones omit it. A missing t= means what
    // every SIP peer sends anyway: an unbounded session, t=0 0 (RFC 3264 §5).
    if (sdp.timings.length === 0) sdp.timings.push({ start: 0, stop: 0, repeats: [] });
    return { ok: true, sdp };
  } catch (err) {
    if (err instanceof LineError) return { ok: false, error: { line: lineNo, message: err.message } };
    throw err;
  }
}

function emptySession(): SessionDescription {
  return {
    version: 0,
    origin: { username: '', sessId: '', sessVersion: '', netType: '', addrType: '', unicastAddress: '' },
    sessionName: '',
    emails: [],
    phones: [],
    bandwidths: [],
    timings: [],
    zones: [],
    attributes: [],
    media: [],
    unknownLines: [],
  };
}

function parseSessionLine(sdp: SessionDescription, type: string, value: string): void {
  switch (type) {
    case 'v':
      if (!DIGITS.test(value)) throw new LineError(`bad v= line: ${value}`);
      sdp.version = Number(value);
      return;
    case 'o':
      sdp.origin = parseOrigin(value);
      return;
    case 's':
      // DEVIATION(RFC 4566 §5.3): s= must not be empty, yet many phones send "s=" (RFC 5118 §4.8 does too).
      sdp.sessionName = value;
      return;
    case 'i':
      sdp.information = value;
      return;
    case 'u':
      sdp.uri = value;
      return;
    case 'e':
      sdp.emails.push(value);
      return;
    case 'p':
      sdp.phones.push(value);
      return;
    case 'c':
      sdp.connection = parseConnection(value);
      return;
    case 'b':
      sdp.bandwidths.push(parseBandwidth(value));
      return;
    case 't': {
      const [start, stop, ...rest] = fields(value);
      if (rest.length > 0 || !isDigits(start) || !isDigits(stop)) throw new LineError(`bad t= line: ${value}`);
      sdp.timings.push({ start: Number(start), stop: Number(stop), repeats: [] });
      return;
    }
    case 'r': {
      const timing = sdp.timings[sdp.timings.length - 1];
      if (!timing) throw new LineError('r= line without a preceding t= line');
      timing.repeats.push(parseRepeat(value));
      return;
    }
    case 'z':
      sdp.zones = parseZones(value);
      return;
    case 'k':
      sdp.key = value;
      return;
    case 'a':
      sdp.attributes.push(parseAttribute(value));
      return;
    default:
      // DEVIATION(RFC 4566 §5): a description with an unknown type letter should be ignored as a whole.
      // Ignoring an offer over a vendor line (GB28181 cameras send y= and f=) fails the call instead, so
      // unknown lines are kept and serialised back; a strict consumer can check `unknownLines`.
      sdp.unknownLines.push({ type, value });
  }
}

function parseMediaLine(media: MediaDescription, type: string, value: string): void {
  switch (type) {
    case 'i':
      if (media.information !== undefined) throw new LineError('duplicate i= line in media description');
      media.information = value;
      return;
    case 'c':
      media.connections.push(parseConnection(value));
      return;
    case 'b':
      media.bandwidths.push(parseBandwidth(value));
      return;
    case 'k':
      if (media.key !== undefined) throw new LineError('duplicate k= line in media description');
      media.key = value;
      return;
    case 'a':
      media.attributes.push(parseAttribute(value));
      return;
    default:
      // Unknown letters are kept as at session level (see parseSessionLine).
      if (SESSION_ONLY.has(type)) throw new LineError(`${type}= line is not allowed in a media description`);
      media.unknownLines.push({ type, value });
  }
}

function fields(value: string): string[] {
  // Fields are separated by one space (§5); runs of whitespace are tolerated.
  return value.trim().split(/\s+/);
}

function isDigits(s: string | undefined): s is string {
  return s !== undefined && DIGITS.test(s);
}

function parseOrigin(value: string): Origin {
  const f = fields(value);
  if (f.length !== 6) throw new LineError(`bad o= line: expected 6 fields, got ${f.length}`);
  const [username, sessId, sessVersion, netType, addrType, unicastAddress] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return { username, sessId, sessVersion, netType, addrType, unicastAddress };
}

/** §5.7: `<nettype> <addrtype> <connection-address>`, multicast suffixes `/ttl[/count]` (IP4), `/count` (IP6). */
function parseConnection(value: string): ConnectionData {
  const f = fields(value);
  if (f.length !== 3) throw new LineError(`bad c= line: expected 3 fields, got ${f.length}`);
  const [netType, addrType, spec] = f as [string, string, string];
  if (netType !== 'IN' || (addrType !== 'IP4' && addrType !== 'IP6')) {
    // Other network types are opaque to us (§5.7 leaves their address syntax to their own definitions).
    return { netType, addrType, address: spec };
  }
  const [address, ...suffix] = spec.split('/') as [string, ...string[]];
  if (!suffix.every((s) => DIGITS.test(s))) throw new LineError(`bad c= line: bad multicast suffix in ${spec}`);
  const conn: ConnectionData = { netType, addrType, address };
  if (addrType === 'IP4') {
    // RFC 5118 §4.6: SDP addresses never carry brackets, and an IPv4 address never a colon.
    if (!isIPv4(address) && !HOSTNAME.test(address)) throw new LineError(`bad c= line: bad IP4 address ${address}`);
    if (suffix.length > 2) throw new LineError(`bad c= line: too many '/' in ${spec}`);
    if (suffix[0] !== undefined) {
      conn.ttl = Number(suffix[0]);
      if (conn.ttl > 255) throw new LineError(`bad c= line: TTL ${conn.ttl} exceeds 255`);
    }
    if (suffix[1] !== undefined) conn.count = Number(suffix[1]);
  } else {
    if (!isIPv6(address) && !HOSTNAME.test(address)) throw new LineError(`bad c= line: bad IP6 address ${address}`);
    // IPv6 multicast has no TTL (§5.7), so the only suffix is the number of addresses.
    if (suffix.length > 1) throw new LineError(`bad c= line: too many '/' in ${spec}`);
    if (suffix[0] !== undefined) conn.count = Number(suffix[0]);
  }
  if (conn.count === 0) throw new LineError('bad c= line: number of addresses is 0');
  return conn;
}

function parseBandwidth(value: string): Bandwidth {
  const colon = value.indexOf(':');
  const type = value.slice(0, colon);
  const bw = value.slice(colon + 1);
  if (colon <= 0 || !DIGITS.test(bw)) throw new LineError(`bad b= line: ${value}`);
  return { type, value: Number(bw) };
}

function parseRepeat(value: string): RepeatTimes {
  const f = fields(value);
  if (f.length < 3 || !f.every((t) => REPEAT_TIME.test(t))) {
    throw new LineError(`bad r= line: ${value}`);
  }
  const [interval, duration, ...offsets] = f as [string, string, ...string[]];
  return { interval, duration, offsets };
}

function parseZones(value: string): TimeZoneAdjustment[] {
  const f = fields(value);
  const zones: TimeZoneAdjustment[] = [];
  for (let i = 0; i < f.length; i += 2) {
    const time = f[i];
    const offset = f[i + 1];
    if (!isDigits(time) || offset === undefined || !ZONE_OFFSET.test(offset)) {
      throw new LineError(`bad z= line: ${value}`);
    }
    zones.push({ time: Number(time), offset });
  }
  return zones;
}

/** §5.13: `a=<attribute>` or `a=<attribute>:<value>`; the value may itself contain colons. */
function parseAttribute(value: string): Attribute {
  const colon = value.indexOf(':');
  const name = colon < 0 ? value : value.slice(0, colon);
  if (name === '') throw new LineError('a= line without an attribute name');
  return colon < 0 ? { name } : { name, value: value.slice(colon + 1) };
}

/** §5.14: `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`. */
function parseMedia(value: string): MediaDescription {
  const f = fields(value);
  // DEVIATION(RFC 4566 §5.14): at least one fmt is required, but rejected streams (port 0) from some
  // phones carry none; a media line without formats is kept rather than failing the whole offer.
  if (f.length < 3) throw new LineError(`bad m= line: expected at least 3 fields, got ${f.length}`);
  const [type, portSpec, proto, ...formats] = f as [string, string, string, ...string[]];
  const m = /^(\d{1,5})(?:\/(\d{1,5}))?$/.exec(portSpec);
  const port = Number(m?.[1]);
  const portCount = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!m || port > 65535 || portCount === 0) throw new LineError(`bad m= port: ${portSpec}`);
  const media: MediaDescription = {
    type,
    port,
    proto,
    formats,
    connections: [],
    bandwidths: [],
    attributes: [],
    unknownLines: [],
  };
  if (portCount !== undefined) media.portCount = portCount;
  return media;
}
