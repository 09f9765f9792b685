/**
 * The media relay an SBC anchors calls' RTP on (RFC 3550 RTP/RTCP), whatever engine does the forwarding: the
 * in-process relay on Node `dgram` (the embedded default) or rtpengine over its ng control protocol (for scale,
 * kernel forwarding, SRTP bridging). The model is rtpengine's: a call is its Call-ID; each side of it is a tag
 * (the From tag of the offerer, the To tag of the answerer). `offer` takes the SDP one side sent and returns the SDP
 * to pass on to the other, naming the relay's ports that face the other side; `answer` does the same for the
 * answer. A later offer from either side (re-INVITE, UPDATE) is the same call: the relay keeps its ports and
 * learns the new peer.
 */

/** A call's side as the relay knows it: the SIP Call-ID and the tag of the side whose SDP this is. */
export interface RelayLeg {
  callId: string;
  /** The tag of the side that sent this SDP (the From tag for the initial offer). */
  fromTag: string;
  /** The other side's tag, once known (always in `answer`: the answerer's tag is `fromTag`, the offerer's `toTag`). */
  toTag?: string;
}

export interface RelayOptions {
  /**
   * Symmetric latching ("comedia"): the relay sends to where the first packet of the expected stream came from, not
   * to the SDP's address (which a phone behind NAT writes wrongly). On by default.
   */
  latch?: boolean;
  /** Once latched, packets from any other source are dropped (counted), not followed. */
  strictSource?: boolean;
  /** ICE candidates of this side's SDP: removed (the relay is the only path) or kept untouched. Default remove. */
  ice?: 'remove' | 'keep';
  /** Payload format names to keep, by name (e.g. ['PCMU', 'telephone-event']); others are stripped. */
  codecs?: readonly string[];
  /** The address written into the SDP passed on (the relay's address facing the receiving side). */
  advertise?: string;
  /**
   * Where this side's signalling came from. With latching, a private SDP address (RFC 1918 ...) other than this one
   * is the phone's side of a NAT: nothing is sent to it; the relay waits for the phone's first packet.
   */
  sourceAddress?: string;
}

export interface RelayCounters {
  packets: number;
  bytes: number;
  /** Packets dropped: from a source other than the latched one (strict), or with no peer to send to yet. */
  dropped: number;
}

/** One side of one media stream: the relay's port facing that side, where that side's media comes from, what passed. */
export interface RelaySide {
  tag: string;
  /** The relay's local RTP port facing this side (RTCP on port + 1 unless rtcp-mux). */
  localPort: number;
  /** Where this side sends from / is sent to: latched, else from its SDP; undefined before either. */
  peer?: { address: string; port: number };
  latched: boolean;
  /** Received from this side. */
  rtp: RelayCounters;
  rtcp: RelayCounters;
  /** RTP sequence gaps seen from this side (RFC 3550 A.3 expected - received, never negative). */
  lost: number;
  /** Interarrival jitter of this side's stream (RFC 3550 A.8), milliseconds at the payload's clock. */
  jitterMs: number;
}

export interface RelayStream {
  /** The m= line's media type: audio, video ... */
  media: string;
  sides: RelaySide[];
}

export interface RelayCallStats {
  callId: string;
  engine: string;
  createdAt: number;
  /** The last packet of any stream (for the inactivity timeout), or undefined before the first. */
  lastPacketAt?: number;
  streams: RelayStream[];
}

/** The relay could not do what was asked: no ports left, the engine unreachable, an SDP it cannot take. */
export class MediaRelayError extends Error {
  constructor(
    message: string,
    /** The SIP answer that fits: 488 for an SDP, 503 for ports or the engine. */
    readonly status: 488 | 503,
  ) {
    super(message);
    this.name = 'MediaRelayError';
  }
}

export interface MediaRelay {
  readonly engine: string;
  /** An offer from `leg.fromTag`'s side: the SDP to pass on, rewritten to the relay's ports facing the other side. */
  offer(leg: RelayLeg, sdp: string, options?: RelayOptions): Promise<string>;
  /** The answer from `leg.fromTag`'s side to an offer from `leg.toTag`'s: the SDP to pass back. */
  answer(leg: RelayLeg & { toTag: string }, sdp: string, options?: RelayOptions): Promise<string>;
  /** The call ended: its ports are freed; its last counters are returned (for the call record). */
  delete(callId: string): Promise<RelayCallStats | undefined>;
  query(callId: string): Promise<RelayCallStats | undefined>;
  /** Every call the relay holds now. */
  calls(): Promise<RelayCallStats[]>;
  /** Tells of a call with no media for the configured inactivity time (the SBC ends it with BYE). */
  onTimeout(listener: (callId: string) => void): void;
  close(): Promise<void>;
}
