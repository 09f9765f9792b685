import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { parseSdp } from '../sdp/parse.js';
import { serializeSdp } from '../sdp/serialize.js';
import type { SessionDescription } from '../sdp/session-description.js';
import { SystemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import {
  MediaRelayError,
  type MediaRelay,
  type RelayCallStats,
  type RelayLeg,
  type RelayOptions,
  type RelaySide,
  type RelayStream,
} from './media-relay.js';
import { filterCodecs, isUnspecifiedAddress, rewriteForRelay, sdpStreams, type RelayPorts, type SdpStream } from './relay-sdp.js';
import { RtpSourceStats } from './rtp-stats.js';

export interface UdpMediaRelayOptions {
  /** The address the relay's sockets bind to: one interface (127.0.0.1, 192.0.2.10) or all (0.0.0.0, ::). */
  address: string;
  /** The address written into SDP (a public address in front of a private one); default `address`. Required when
   * `address` is unspecified (0.0.0.0, ::) unless every offer and answer gives `RelayOptions.advertise`. */
  advertise?: string;
  /** The UDP port range (inclusive). RTP takes even ports, RTCP the odd port above (RFC 3550 §11). */
  portMin: number;
  portMax: number;
  clock?: Clock;
  /** A call with no packet for this long after its answer is told to `onTimeout` listeners. Default 60 s. */
  inactivityMs?: number;
  logger?: Logger;
}

const DEFAULT_INACTIVITY_MS = 60_000;
/** Clock rates for payload types an SDP does not name: G.711's for audio and the like, RFC 3551's 90 kHz for video. */
const DEFAULT_AUDIO_RATE = 8000;
const DEFAULT_VIDEO_RATE = 90000;

type Family = 'udp4' | 'udp6';

/**
 * The addresses the relay sends to are literals (SDP host names are resolved once per offer or answer): a lookup
 * that calls back at once spares every datagram dgram's default dns.lookup and its extra turn of the event loop.
 * An IPv6 socket reaches IPv4 peers through their mapped address.
 */
function literalLookup(family: Family) {
  return (hostname: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void => {
    if (family === 'udp6' && isIPv4(hostname)) callback(null, `::ffff:${hostname}`, 6);
    else callback(null, hostname, isIPv6(hostname) ? 6 : 4);
  };
}

/** The port range: which ports are taken, and where the search for the next one starts (so that ports rotate). */
class PortPool {
  private readonly used: Uint8Array;
  private readonly first: number;
  private cursor: number;
  /** Even ports in the range (RTP ports). */
  readonly evenPorts: number;

  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    this.used = new Uint8Array(max - min + 1);
    this.first = min + (min & 1);
    this.cursor = this.first;
    this.evenPorts = this.first > max ? 0 : Math.floor((max - this.first) / 2) + 1;
  }

  isFree(port: number): boolean {
    return port >= this.min && port <= this.max && this.used[port - this.min] === 0;
  }

  take(port: number): void {
    this.used[port - this.min] = 1;
  }

  free(port: number): void {
    if (port >= this.min && port <= this.max) this.used[port - this.min] = 0;
  }

  /**
   * The next even port (taken), searching once round the range from the cursor: with `pair`, one whose odd
   * neighbour is free too (taken as well); without, preferably such a one (its neighbour left free for RTCP later).
   */
  next(pair: boolean): number | undefined {
    const found = this.search(true) ?? (pair ? undefined : this.search(false));
    if (found === undefined) return undefined;
    this.take(found);
    if (pair) this.take(found + 1);
    this.cursor = found + 2 > this.max ? this.first : found + 2;
    return found;
  }

  private search(withOdd: boolean): number | undefined {
    let p = this.cursor;
    for (let i = 0; i < this.evenPorts; i++) {
      if (this.isFree(p) && (!withOdd || this.isFree(p + 1))) return p;
      p += 2;
      if (p > this.max) p = this.first;
    }
    return undefined;
  }
}

/**
 * One side of one stream: the relay's port(s) facing that side, where that side is (from its SDP, or latched), what
 * came from it. Plain numbers and strings, set up once, so that the forwarding path only reads and adds.
 */
class Side {
  rtcpSocket: Socket | undefined = undefined;
  rtcpPort = 0;
  other!: Side;
  latch = true;
  strict = false;
  /** This side's SDP has been seen (an offer or answer from it). */
  sdpKnown = false;
  sdpMux = false;
  /** RTCP to this side goes muxed onto its RTP port. */
  peerMux = false;
  sdpAddress = '';
  sdpPort = 0;
  /** Where this side's RTP goes to and is expected from: from its SDP until latched. Port 0: nowhere yet. */
  peerAddress = '';
  peerPort = 0;
  latched = false;
  rtcpAddress = '';
  rtcpPeerPort = 0;
  rtcpLatched = false;
  sdpRtcpAddress = '';
  sdpRtcpPort = 0;
  rtpPackets = 0;
  rtpBytes = 0;
  rtpDropped = 0;
  rtcpPackets = 0;
  rtcpBytes = 0;
  rtcpDropped = 0;
  errors = 0;
  readonly stats = new RtpSourceStats();
  /** The clock rate of each payload type as packets from this side number them; 0: not for jitter (events). */
  readonly clockRates = new Uint32Array(128);
  /** Send completions of packets to this side (made once: the forwarding path allocates no closures). */
  readonly sent: (err: Error | null) => void;

  constructor(
    readonly call: Call,
    readonly stream: Stream,
    public tag: string,
    readonly rtpSocket: Socket,
    readonly rtpPort: number,
    onSendError: (side: Side, err: Error) => void,
  ) {
    this.sent = (err) => {
      if (err) onSendError(this, err);
    };
    this.clockRates.fill(stream.media === 'video' ? DEFAULT_VIDEO_RATE : DEFAULT_AUDIO_RATE);
  }
}

class Stream {
  sides!: [Side, Side];
  constructor(
    readonly index: number,
    public media: string,
    public rtp: boolean,
  ) {}
}

interface OriginState {
  /** The o= version last passed on for this tag's session, and the description it went with (version left out). */
  version: bigint;
  body: string;
}

class Call {
  readonly streams: (Stream | undefined)[] = [];
  readonly origins = new Map<string, OriginState>();
  lastPacketAt = 0;
  /** When the last answer came (the inactivity timer runs from then); 0 before the first answer. */
  activeSince = 0;
  timer: TimerHandle | undefined = undefined;
  deleted = false;

  constructor(
    readonly callId: string,
    /** [the initial offerer's tag, the answerer's ('' until known)]: sides[0] of each stream faces the offerer. */
    readonly tags: [string, string],
    readonly createdAt: number,
    /** The initial offer's latch and strictSource: what a side whose own SDP says nothing gets. */
    readonly defaults: RelayOptions,
  ) {}
}

/**
 * The embedded media relay: RTP and RTCP (RFC 3550) forwarded between two UDP ports per side and stream, in process,
 * on Node's dgram. See MediaRelay for the model; docs/library.md for use.
 *
 * Per call and m= line it holds two sides, each with an even RTP port and the odd RTCP port above it (one port when
 * the offer has a=rtcp-mux; the RTCP port is added when the answer turns mux down, on the odd port if still free,
 * else RTCP shares the RTP port, which a=rtcp then names). A datagram that reaches the port facing A goes out of
 * the port facing B to B's peer, and the other way round; RTCP likewise, or muxed on the RTP port and told from RTP
 * by its packet type (RFC 5761 §4), bridged between a side that muxes and one that does not. The peer of a side is
 * its SDP's address until, with latching on, the first datagram from it sets where it really is.
 */
export class UdpMediaRelay implements MediaRelay {
  readonly engine = 'embedded';
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly inactivityMs: number;
  private readonly pool: PortPool;
  private readonly family: Family;
  private readonly address: string;
  private readonly advertise: string | undefined;
  private readonly callMap = new Map<string, Call>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly timeoutListeners: ((callId: string) => void)[] = [];
  private readonly sockets = new Set<Socket>();
  private closed = false;
  private errorCount = 0;

  constructor(options: UdpMediaRelayOptions) {
    const { portMin, portMax } = options;
    if (!Number.isInteger(portMin) || !Number.isInteger(portMax) || portMin < 1 || portMax > 65535 || portMin > portMax) {
      throw new RangeError(`media relay port range ${portMin}-${portMax}: need integers with 1 <= portMin <= portMax <= 65535`);
    }
    if (!isIP(options.address)) throw new RangeError(`media relay address ${options.address}: need an IPv4 or IPv6 address`);
    this.address = options.address;
    this.family = isIPv6(options.address) ? 'udp6' : 'udp4';
    this.advertise = options.advertise ?? (isUnspecifiedAddress(options.address) ? undefined : options.address);
    this.pool = new PortPool(portMin, portMax);
    this.clock = options.clock ?? new SystemClock();
    this.logger = options.logger ?? silentLogger();
    this.inactivityMs = options.inactivityMs ?? DEFAULT_INACTIVITY_MS;
  }

  /** Socket errors seen (failed sends and the like): each is logged too, the first of a side at warn. */
  get socketErrors(): number {
    return this.errorCount;
  }

  offer(leg: RelayLeg, sdp: string, options: RelayOptions = {}): Promise<string> {
    return this.locked(leg.callId, async () => {
      const parsed = this.parse(sdp);
      const advertise = this.advertiseFor(options);
      let call = this.callMap.get(leg.callId);
      const created = call === undefined;
      let from: 0 | 1;
      if (!call) {
        call = new Call(leg.callId, [leg.fromTag, leg.toTag ?? ''], this.clock.now(), { latch: options.latch, strictSource: options.strictSource });
        from = 0;
      } else {
        from = this.offererSide(call, leg);
      }
      const out = await this.update(call, from, parsed, options, advertise);
      if (this.closed) {
        // Closed while the ports were being bound: they go with the rest.
        await this.dispose(call);
        throw new MediaRelayError('media relay is closed', 503);
      }
      if (created) this.callMap.set(leg.callId, call);
      return out;
    });
  }

  answer(leg: RelayLeg & { toTag: string }, sdp: string, options: RelayOptions = {}): Promise<string> {
    return this.locked(leg.callId, async () => {
      const parsed = this.parse(sdp);
      const advertise = this.advertiseFor(options);
      const call = this.callMap.get(leg.callId);
      if (!call) throw new MediaRelayError(`media relay: no call ${leg.callId} to answer (no offer was relayed)`, 503);
      const offerer = call.tags[0] === leg.toTag ? 0 : call.tags[1] === leg.toTag ? 1 : undefined;
      if (offerer === undefined) throw new MediaRelayError(`media relay: call ${leg.callId} has no side with tag ${leg.toTag}`, 503);
      const from = offerer === 0 ? 1 : 0;
      // A different answerer than before (forking: another branch's answer) takes the side over.
      call.tags[from] = leg.fromTag;
      const out = await this.update(call, from, parsed, options, advertise);
      call.activeSince = this.clock.now();
      if (call.timer === undefined) this.arm(call);
      return out;
    });
  }

  delete(callId: string): Promise<RelayCallStats | undefined> {
    return this.locked(callId, async () => {
      const call = this.callMap.get(callId);
      if (!call) return undefined;
      const stats = this.snapshot(call);
      this.callMap.delete(callId);
      await this.dispose(call);
      return stats;
    });
  }

  async query(callId: string): Promise<RelayCallStats | undefined> {
    const call = this.callMap.get(callId);
    return call && this.snapshot(call);
  }

  async calls(): Promise<RelayCallStats[]> {
    return [...this.callMap.values()].map((c) => this.snapshot(c));
  }

  onTimeout(listener: (callId: string) => void): void {
    this.timeoutListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    const calls = [...this.callMap.values()];
    this.callMap.clear();
    await Promise.all(calls.map((c) => this.dispose(c)));
    await Promise.all([...this.sockets].map((s) => closeSocket(s)));
  }

  // --- Signalling ---------------------------------------------------------------------------------------------------

  private parse(sdp: string): SessionDescription {
    if (this.closed) throw new MediaRelayError('media relay is closed', 503);
    const parsed = parseSdp(sdp);
    if (!parsed.ok) throw new MediaRelayError(`media relay: SDP line ${parsed.error.line}: ${parsed.error.message}`, 488);
    return parsed.sdp;
  }

  private advertiseFor(options: RelayOptions): string {
    const address = options.advertise ?? this.advertise;
    if (address === undefined || isUnspecifiedAddress(address)) {
      throw new MediaRelayError(`media relay bound to ${this.address} has no address to advertise (set advertise)`, 503);
    }
    return address;
  }

  /** Which side a later offer comes from (re-INVITE or UPDATE from either end). */
  private offererSide(call: Call, leg: RelayLeg): 0 | 1 {
    if (leg.fromTag === call.tags[0]) return 0;
    if (leg.fromTag === call.tags[1]) return 1;
    // The answerer's side, not yet known by its tag, or taken over by another dialog of the same call (forking).
    if (call.tags[1] === '' || leg.toTag === call.tags[0]) {
      call.tags[1] = leg.fromTag;
      return 1;
    }
    throw new MediaRelayError(`media relay: call ${call.callId} has no side with tag ${leg.fromTag}`, 488);
  }

  /**
   * One side's offer or answer: ports for streams that have none, that side's endpoints and settings taken, and its
   * SDP rewritten to the ports facing the other side. On a 503 what this update allocated is given back.
   */
  private async update(call: Call, from: 0 | 1, sdp: SessionDescription, options: RelayOptions, advertise: string): Promise<string> {
    if (options.codecs) {
      const active = sdp.media.filter((m) => m.port !== 0).length;
      filterCodecs(sdp, options.codecs);
      if (active > 0 && sdp.media.every((m) => m.port === 0)) {
        throw new MediaRelayError(`media relay: no stream keeps a codec of ${options.codecs.join(', ')}`, 488);
      }
    }
    const streams = sdpStreams(sdp);
    const added: Stream[] = [];
    try {
      for (const s of streams) {
        if (!s.relayable) continue;
        const existing = call.streams[s.index];
        if (!existing) {
          const stream = await this.allocateStream(call, s);
          added.push(stream);
          call.streams[s.index] = stream;
        } else if (!s.rtcpMux) {
          // Mux turned down (or never offered by this side): RTCP wants its own port where it can have one.
          await this.ensureRtcp(existing.sides[0]);
          await this.ensureRtcp(existing.sides[1]);
        }
      }
    } catch (err) {
      for (const stream of added) {
        call.streams[stream.index] = undefined;
        await this.disposeStream(stream);
      }
      throw err;
    }
    for (const s of streams) {
      const stream = call.streams[s.index];
      if (stream) await this.takeEndpoint(stream.sides[from], call.tags[from], s, options, call.defaults);
    }
    const ports: (RelayPorts | undefined)[] = streams.map((s) => {
      const stream = s.relayable ? call.streams[s.index] : undefined;
      if (!stream) return undefined;
      const facing = stream.sides[from === 0 ? 1 : 0];
      return facing.rtcpSocket ? { rtp: facing.rtpPort, rtcp: facing.rtcpPort } : { rtp: facing.rtpPort };
    });
    rewriteForRelay(sdp, { address: advertise, ports, ice: options.ice ?? 'remove' });
    this.version(call, call.tags[from], sdp);
    return serializeSdp(sdp);
  }

  private async allocateStream(call: Call, s: SdpStream): Promise<Stream> {
    const stream = new Stream(s.index, s.media, s.rtp);
    const first = await this.bindSide(call, stream, !s.rtcpMux);
    let second: Side;
    try {
      second = await this.bindSide(call, stream, !s.rtcpMux);
    } catch (err) {
      await this.disposeSide(first);
      throw err;
    }
    first.other = second;
    second.other = first;
    stream.sides = [first, second];
    first.tag = call.tags[0];
    second.tag = call.tags[1];
    return stream;
  }

  /** This side's SDP for one stream: its endpoint (re-learnt when it changed), rtcp-mux, payload clock rates. */
  private async takeEndpoint(side: Side, tag: string, s: SdpStream, options: RelayOptions, defaults: RelayOptions): Promise<void> {
    const other = side.other;
    side.latch = options.latch ?? defaults.latch ?? true;
    side.strict = options.strictSource ?? defaults.strictSource ?? false;
    const active = s.relayable && !s.held && s.port !== 0;
    const address = active ? this.literal(await resolve(s.address)) : '';
    const port = address === '' ? 0 : s.port;
    const rtcpAddress = active ? (s.rtcpAddress === s.address ? address : this.literal(await resolve(s.rtcpAddress))) : '';
    const changed = !side.sdpKnown || side.tag !== tag || address !== side.sdpAddress || port !== side.sdpPort;
    side.tag = tag;
    side.sdpKnown = true;
    side.sdpMux = s.rtcpMux;
    side.sdpAddress = address;
    side.sdpPort = port;
    side.sdpRtcpAddress = rtcpAddress;
    side.sdpRtcpPort = rtcpAddress === '' ? 0 : s.rtcpPort;
    if (changed) {
      // A new endpoint (another address, another phone, a hold): latching starts again, statistics go on.
      side.latched = false;
      side.rtcpLatched = false;
    }
    // A private address in the SDP of a phone whose signalling came from elsewhere is its side of a NAT: nothing is
    // sent there (it could reach a host of the server's own LAN); the first packet from the phone tells where it is.
    const source = options.sourceAddress ?? defaults.sourceAddress;
    const behindNat = side.latch && source !== undefined && address !== '' && address !== source && isPrivateAddress(address);
    if (!side.latched) {
      side.peerAddress = behindNat ? '' : address;
      side.peerPort = behindNat ? 0 : port;
    }
    if (!side.rtcpLatched) {
      side.rtcpAddress = behindNat ? '' : side.sdpRtcpAddress;
      side.rtcpPeerPort = behindNat ? 0 : side.sdpRtcpPort;
    }
    side.peerMux = side.sdpMux && (!other.sdpKnown || other.sdpMux);
    other.peerMux = other.sdpKnown && other.sdpMux && side.sdpMux;
    // Packets from the other side carry the payload types of this side's SDP (what this side receives).
    fillClockRates(other.clockRates, s);
    if (!other.sdpKnown) fillClockRates(side.clockRates, s);
  }

  /** An address as this relay's sockets see their peers: on a dual-stack IPv6 socket, IPv4 ones as mapped addresses. */
  private literal(address: string): string {
    return this.family === 'udp6' && isIPv4(address) ? `::ffff:${address}` : address;
  }

  /**
   * The o= line passes on with the sender's version unless the description passed on changed while that version did
   * not (the relay's own doing: an RTCP port added, a codec filter): then one more than the last passed on, so that
   * versions only grow and an unchanged description keeps its version (RFC 3264 §8).
   */
  private version(call: Call, tag: string, sdp: SessionDescription): void {
    const origin = sdp.origin;
    if (!/^\d{1,20}$/.test(origin.sessVersion)) return;
    const incoming = BigInt(origin.sessVersion);
    origin.sessVersion = '0';
    const body = serializeSdp(sdp);
    const last = call.origins.get(tag);
    let version = incoming;
    if (last) version = body === last.body ? last.version : incoming > last.version ? incoming : last.version + 1n;
    origin.sessVersion = version.toString();
    call.origins.set(tag, { version, body });
  }

  // --- Ports and sockets --------------------------------------------------------------------------------------------

  private async bindSide(call: Call, stream: Stream, pair: boolean): Promise<Side> {
    for (let attempt = 0; attempt < this.pool.evenPorts; attempt++) {
      const port = this.pool.next(pair);
      if (port === undefined) break;
      const rtp = await this.bind(port);
      if (!rtp) {
        this.pool.free(port);
        if (pair) this.pool.free(port + 1);
        continue;
      }
      let rtcp: Socket | undefined;
      if (pair) {
        rtcp = await this.bind(port + 1);
        if (!rtcp) {
          await closeSocket(rtp);
          this.sockets.delete(rtp);
          this.pool.free(port);
          this.pool.free(port + 1);
          continue;
        }
      }
      const side = new Side(call, stream, '', rtp, port, (s, err) => this.sendError(s, err));
      rtp.on('message', (msg, rinfo) => this.onRtp(side, msg, rinfo));
      rtp.on('error', (err) => this.sendError(side, err));
      if (rtcp) this.attachRtcp(side, rtcp, port + 1);
      return side;
    }
    throw new MediaRelayError(`media relay: no free ${pair ? 'port pair' : 'port'} in ${this.describeRange()}`, 503);
  }

  /** An RTCP port for a side that has only its RTP port: the odd one above if free; else RTCP stays on the RTP port. */
  private async ensureRtcp(side: Side): Promise<void> {
    const port = side.rtpPort + 1;
    if (side.rtcpSocket || !this.pool.isFree(port)) return;
    this.pool.take(port);
    const socket = await this.bind(port);
    if (!socket) {
      this.pool.free(port);
      return;
    }
    this.attachRtcp(side, socket, port);
  }

  private attachRtcp(side: Side, socket: Socket, port: number): void {
    side.rtcpSocket = socket;
    side.rtcpPort = port;
    socket.on('message', (msg, rinfo) => this.onRtcp(side, msg, rinfo));
    socket.on('error', (err) => this.sendError(side, err));
  }

  /** A socket bound to `port`, or undefined when that port cannot be had (in use by another process...). */
  private bind(port: number): Promise<Socket | undefined> {
    return new Promise((resolveBind) => {
      let socket: Socket;
      try {
        socket = createSocket({ type: this.family, lookup: literalLookup(this.family) });
      } catch {
        resolveBind(undefined);
        return;
      }
      const failed = (err: Error): void => {
        this.logger.debug({ err, port }, 'media relay: cannot bind, trying the next port');
        void closeSocket(socket);
        resolveBind(undefined);
      };
      socket.once('error', failed);
      try {
        socket.bind({ port, address: this.address, exclusive: true }, () => {
          socket.removeListener('error', failed);
          this.sockets.add(socket);
          resolveBind(socket);
        });
      } catch (err) {
        failed(err as Error);
      }
    });
  }

  private describeRange(): string {
    return `${this.address} ports ${this.pool.evenPorts} even in range`;
  }

  private async dispose(call: Call): Promise<void> {
    call.deleted = true;
    call.timer?.cancel();
    call.timer = undefined;
    await Promise.all(call.streams.map((s) => (s ? this.disposeStream(s) : undefined)));
  }

  private async disposeStream(stream: Stream): Promise<void> {
    await Promise.all(stream.sides.map((side) => this.disposeSide(side)));
  }

  private async disposeSide(side: Side): Promise<void> {
    const closing = [side.rtpSocket, side.rtcpSocket].filter((s): s is Socket => s !== undefined);
    await Promise.all(closing.map((s) => closeSocket(s)));
    for (const s of closing) this.sockets.delete(s);
    this.pool.free(side.rtpPort);
    if (side.rtcpSocket) this.pool.free(side.rtcpPort);
  }

  // --- Forwarding ---------------------------------------------------------------------------------------------------

  /** A datagram on a side's RTP port: RTP, muxed RTCP, or anything else of the stream (DTLS, STUN) forwarded as is. */
  private onRtp(side: Side, msg: Buffer, rinfo: RemoteInfo): void {
    try {
      if (side.latched) {
        if (side.strict && (rinfo.port !== side.peerPort || rinfo.address !== side.peerAddress)) {
          side.rtpDropped++;
          return;
        }
      } else if (side.latch) {
        this.latchRtp(side, rinfo);
      } else if (side.strict && (rinfo.port !== side.peerPort || rinfo.address !== side.peerAddress)) {
        side.rtpDropped++;
        return;
      }
      const call = side.call;
      const now = this.clock.now();
      call.lastPacketAt = now;
      if (call.timer === undefined && call.activeSince !== 0 && !call.deleted) this.arm(call);
      const length = msg.length;
      if (side.stream.rtp && length >= 2 && (msg[0]! & 0xc0) === 0x80) {
        const second = msg[1]!;
        // RFC 5761 §4: RTCP packet types 192-223 (SR 200, RR 201 ... XR 207) sit where RTP's marker bit and payload
        // types 64-95 would, which RTP sharing a port with RTCP does not use.
        if (second >= 192 && second <= 223) {
          this.forwardRtcp(side, msg, length);
          return;
        }
        if (length >= 12) {
          side.stats.packet((msg[2]! << 8) | msg[3]!, msg.readUInt32BE(4), msg.readUInt32BE(8), now, side.clockRates[second & 0x7f]!);
        }
      }
      const out = side.other;
      if (out.peerPort === 0) {
        side.rtpDropped++;
        return;
      }
      out.rtpSocket.send(msg, out.peerPort, out.peerAddress, out.sent);
      side.rtpPackets++;
      side.rtpBytes += length;
    } catch (err) {
      this.sendError(side, err as Error);
    }
  }

  /** A datagram on a side's RTCP port. */
  private onRtcp(side: Side, msg: Buffer, rinfo: RemoteInfo): void {
    try {
      if (side.rtcpLatched) {
        if (side.strict && (rinfo.port !== side.rtcpPeerPort || rinfo.address !== side.rtcpAddress)) {
          side.rtcpDropped++;
          return;
        }
      } else if (side.latch) {
        side.rtcpAddress = rinfo.address;
        side.rtcpPeerPort = rinfo.port;
        side.rtcpLatched = true;
      } else if (side.strict && (rinfo.port !== side.rtcpPeerPort || rinfo.address !== side.rtcpAddress)) {
        side.rtcpDropped++;
        return;
      }
      const call = side.call;
      call.lastPacketAt = this.clock.now();
      if (call.timer === undefined && call.activeSince !== 0 && !call.deleted) this.arm(call);
      this.forwardRtcp(side, msg, msg.length);
    } catch (err) {
      this.sendError(side, err as Error);
    }
  }

  private forwardRtcp(side: Side, msg: Buffer, length: number): void {
    const out = side.other;
    if (out.peerMux) {
      if (out.peerPort === 0) {
        side.rtcpDropped++;
        return;
      }
      out.rtpSocket.send(msg, out.peerPort, out.peerAddress, out.sent);
    } else {
      if (out.rtcpPeerPort === 0) {
        side.rtcpDropped++;
        return;
      }
      (out.rtcpSocket ?? out.rtpSocket).send(msg, out.rtcpPeerPort, out.rtcpAddress, out.sent);
    }
    side.rtcpPackets++;
    side.rtcpBytes += length;
  }

  /**
   * The first datagram of a side sets its peer (symmetric RTP, "comedia"). Its RTCP, until some arrives, is assumed
   * at the next port of the same address when the phone is behind a NAT (its SDP's RTCP address is then wrong too).
   */
  private latchRtp(side: Side, rinfo: RemoteInfo): void {
    side.peerAddress = rinfo.address;
    side.peerPort = rinfo.port;
    side.latched = true;
    if (!side.rtcpLatched && (rinfo.address !== side.sdpAddress || side.sdpRtcpPort === 0)) {
      side.rtcpAddress = rinfo.address;
      side.rtcpPeerPort = rinfo.port + 1;
    }
  }

  private sendError(side: Side, err: Error): void {
    this.errorCount++;
    side.errors++;
    const level = side.errors === 1 ? 'warn' : 'debug';
    this.logger[level]({ err, callId: side.call.callId, tag: side.tag, port: side.rtpPort }, 'media relay: socket error');
  }

  // --- Inactivity ---------------------------------------------------------------------------------------------------

  private arm(call: Call): void {
    const last = Math.max(call.lastPacketAt, call.activeSince);
    const wait = Math.max(0, last + this.inactivityMs - this.clock.now());
    call.timer = this.clock.setTimer(wait, () => this.checkInactivity(call));
  }

  private checkInactivity(call: Call): void {
    call.timer = undefined;
    if (call.deleted) return;
    const last = Math.max(call.lastPacketAt, call.activeSince);
    if (this.clock.now() - last < this.inactivityMs) {
      this.arm(call);
      return;
    }
    // Told once; the next packet arms the timer again.
    this.logger.info({ callId: call.callId, inactivityMs: this.inactivityMs }, 'media relay: no media');
    for (const listener of this.timeoutListeners) {
      try {
        listener(call.callId);
      } catch (err) {
        this.logger.error({ err, callId: call.callId }, 'media relay: timeout listener threw');
      }
    }
  }

  // --- Statistics ---------------------------------------------------------------------------------------------------

  private snapshot(call: Call): RelayCallStats {
    const streams: RelayStream[] = [];
    for (const stream of call.streams) {
      if (stream) streams.push({ media: stream.media, sides: stream.sides.map(sideStats) });
    }
    const stats: RelayCallStats = { callId: call.callId, engine: this.engine, createdAt: call.createdAt, streams };
    if (call.lastPacketAt !== 0) stats.lastPacketAt = call.lastPacketAt;
    return stats;
  }

  private locked<T>(callId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(callId) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(callId, tail);
    void tail.then(() => {
      if (this.locks.get(callId) === tail) this.locks.delete(callId);
    });
    return run;
  }
}

function sideStats(side: Side): RelaySide {
  const out: RelaySide = {
    tag: side.tag,
    localPort: side.rtpPort,
    latched: side.latched,
    rtp: { packets: side.rtpPackets, bytes: side.rtpBytes, dropped: side.rtpDropped },
    rtcp: { packets: side.rtcpPackets, bytes: side.rtcpBytes, dropped: side.rtcpDropped },
    lost: side.stats.lost,
    jitterMs: side.stats.jitterMs,
  };
  if (side.peerPort !== 0) out.peer = { address: side.peerAddress, port: side.peerPort };
  return out;
}

function fillClockRates(rates: Uint32Array, s: SdpStream): void {
  for (const f of s.formats) {
    if (f.payloadType > 127) continue;
    rates[f.payloadType] = f.encoding.toLowerCase() === 'telephone-event' ? 0 : f.clockRate;
  }
}

/** An SDP address as a literal to send to: resolved once here, never per datagram; '' when it cannot be. */
async function resolve(address: string | undefined): Promise<string> {
  if (address === undefined || address === '') return '';
  if (isIP(address)) return address;
  try {
    return (await dnsLookup(address)).address;
  } catch {
    return '';
  }
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolveClose) => {
    try {
      socket.close(() => resolveClose());
    } catch {
      // Already closed.
      resolveClose();
    }
  });
}

/** RFC 1918, RFC 6598 shared, link-local, unique-local IPv6: addresses a phone behind a NAT writes into its SDP. */
export function isPrivateAddress(address: string): boolean {
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(address);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254);
  }
  const lower = address.toLowerCase();
  return lower.startsWith('fc') || lower.startsWith('fd') || lower.startsWith('fe80:');
}
