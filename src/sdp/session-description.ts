/**
 * The SDP model (RFC 4566 §5), field names as the RFC spells them. Everything is plain and mutable: the
 * offer/answer code and the media relay edit a parsed description in place and serialise it again.
 * Numbers that can exceed 2^53 or carry units (o= sess-id/sess-version, typed times in r=/z=) stay strings.
 */
export interface SessionDescription {
  /** v= (§5.1); always 0 today. */
  version: number;
  origin: Origin;
  /** s= (§5.3). */
  sessionName: string;
  /** i= (§5.4). */
  information?: string;
  /** u= (§5.5). */
  uri?: string;
  /** e= (§5.6). */
  emails: string[];
  /** p= (§5.6). */
  phones: string[];
  /** Session-level c= (§5.7); media without their own c= use it. */
  connection?: ConnectionData;
  bandwidths: Bandwidth[];
  /** t= lines, each with its r= lines (§5.9, §5.10). */
  timings: Timing[];
  /** z= (§5.11). */
  zones: TimeZoneAdjustment[];
  /** k= (§5.12), kept verbatim: `method` or `method:encryption key`. */
  key?: string;
  attributes: Attribute[];
  media: MediaDescription[];
  /** Lines with a type letter this parser does not know; see parseSdp for why they are kept. */
  unknownLines: SdpLine[];
}

/** o= (§5.2). */
export interface Origin {
  username: string;
  sessId: string;
  sessVersion: string;
  netType: string;
  addrType: string;
  unicastAddress: string;
}

/**
 * c= (§5.7). `ttl` exists only for IP4 multicast; `count` is the "number of addresses" suffix, so an IP4
 * address with a count must also have a TTL (the grammar makes the TTL come first).
 */
export interface ConnectionData {
  netType: string;
  addrType: string;
  address: string;
  ttl?: number;
  count?: number;
}

/** b= (§5.8): `type` is CT, AS or an extension such as TIAS (RFC 3890); `value` is in kilobits/s for CT/AS. */
export interface Bandwidth {
  type: string;
  value: number;
}

/** t= (§5.9): NTP seconds; 0 0 means a permanent session, the usual value in SIP. */
export interface Timing {
  start: number;
  stop: number;
  repeats: RepeatTimes[];
}

/** r= (§5.10): typed times such as `7d`, `1h` or `3600`. */
export interface RepeatTimes {
  interval: string;
  duration: string;
  offsets: string[];
}

/** One `<adjustment time> <offset>` pair of a z= line (§5.11). */
export interface TimeZoneAdjustment {
  time: number;
  offset: string;
}

/** a= (§5.13): `value` is undefined for a property attribute such as `a=sendrecv`. */
export interface Attribute {
  name: string;
  value?: string;
}

/** m= (§5.14) and the lines that follow it up to the next m=. */
export interface MediaDescription {
  type: string;
  /** 0 marks a rejected or disabled stream (RFC 3264 §5.1, §6). */
  port: number;
  /** The `/<number of ports>` suffix, when present. */
  portCount?: number;
  proto: string;
  /** RTP payload types for RTP/AVP-like protos, otherwise proto-specific strings. */
  formats: string[];
  information?: string;
  /** Media-level c= lines; several only for layered multicast (§5.7). */
  connections: ConnectionData[];
  bandwidths: Bandwidth[];
  key?: string;
  attributes: Attribute[];
  unknownLines: SdpLine[];
}

export interface SdpLine {
  type: string;
  value: string;
}

/** RFC 3264 §5.1 / RFC 4566 §6 stream directions. */
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
