/**
 * The rtpengine engine of MediaRelay: sipway drives an rtpengine daemon (Sipwise's media proxy: kernel forwarding,
 * SRTP bridging, transcoding) over its ng control protocol, as Kamailio's rtpengine module does. Each message is a
 * cookie, a space and a bencoded dictionary, over UDP; the reply carries the same cookie. A request that gets no
 * reply is sent again with the same cookie (rtpengine answers a retransmission from its cache, so an offer is never
 * done twice); a reply is matched to its request by the cookie alone, and replies nobody waits for (late,
 * duplicated, from elsewhere, not bencode) are counted and dropped.
 *
 * The interface maps onto the ng commands one to one: offer, answer, delete, query, and list for `calls()`.
 * rtpengine ends idle calls itself (its --timeout); `onTimeout` is emulated by polling the calls this relay set up
 * and telling of those without media for `inactivityMs`, or that rtpengine no longer has.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP, isIPv6 } from 'node:net';
import { SystemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { randomToken } from '../util/ids.js';
import {
  BencodeError,
  bencodeText,
  decodeBencodeDict,
  encodeBencode,
  isBencodeDict,
  type BencodeDict,
  type BencodeInput,
  type BencodeValue,
} from '../util/bencode.js';
import { parseSdp, rtpmap } from '../sdp/index.js';
import {
  MediaRelayError,
  type MediaRelay,
  type RelayCallStats,
  type RelayCounters,
  type RelayLeg,
  type RelayOptions,
  type RelaySide,
  type RelayStream,
} from './media-relay.js';

export type RtcpMuxMode = 'offer' | 'require' | 'demux' | 'accept' | 'reject';

export interface RtpEngineRelayOptions {
  /** The daemon's ng control address (its --listen-ng). */
  address: string;
  port: number;
  /** How long one try waits for the reply. Default 1000 ms. */
  timeoutMs?: number;
  /** Tries after the first, each with the same cookie. Default 2 (three tries in all). */
  retries?: number;
  clock?: Clock;
  logger?: Logger;
  /** More ng flags for every offer and answer (e.g. 'trust address', 'SIP source address', 'loop protect'). */
  flags?: readonly string[];
  /**
   * More keys for every offer and answer, as rtpengine names them: e.g. `{ direction: ['priv', 'pub'] }` to pick
   * its logical interfaces, `{ 'transport protocol': 'RTP/AVP' }`. They win over the keys this relay writes.
   */
  extra?: Readonly<Record<string, BencodeInput>>;
  /** rtpengine's `rtcp-mux` list for offers and answers. Default ['accept']: take rtcp-mux and offer it on if offered. */
  rtcpMux?: readonly RtcpMuxMode[];
  /** How often the calls this relay set up are checked for inactivity (only once a listener is registered). Default 10 s. */
  pollMs?: number;
  /** No packet for this long: the call is reported to `onTimeout` listeners. Default 60 s (rtpengine's own default). */
  inactivityMs?: number;
  /** `delete delay` sent with delete, in seconds: 0 (default) frees the ports at once. */
  deleteDelaySeconds?: number;
  /** The most call-ids `calls()` asks `list` for. Default 1000. */
  listLimit?: number;
  /** The local address of the control socket (default: any). */
  localAddress?: string;
}

/** What went over the control socket: for the stats endpoint and for tests. */
export interface RtpEngineCounters {
  /** Requests made (each counted once, however often sent). */
  requests: number;
  /** Sends again after a timeout. */
  retransmissions: number;
  /** Replies matched to a waiting request. */
  replies: number;
  /** Replies with `result: error` (or a result this relay does not know). */
  errors: number;
  /** Requests given up after every try. */
  timeouts: number;
  /** Well-formed replies whose cookie nobody waits for: late (after the last try), duplicated, or unknown. */
  lateReplies: number;
  /** Datagrams that are not a cookie, a space and a bencoded dictionary. */
  garbageReplies: number;
  /** Datagrams from another address than the daemon's. */
  foreignReplies: number;
}

interface Pending {
  command: string;
  packet: Buffer;
  attempt: number;
  timer: TimerHandle | undefined;
  resolve: (reply: BencodeDict) => void;
  reject: (err: Error) => void;
}

/** Where an SBC sends media for a stream rtpengine has not seen a packet of yet. */
const UNSPECIFIED = new Set(['0.0.0.0', '::']);
/** The longest UDP payload over IPv4. */
const MAX_DATAGRAM = 65_507;
/** Replies are bounded far below the bencode decoder's defaults: one datagram, shallow dictionaries. */
const REPLY_LIMITS = { maxInputLength: 65_536, maxDepth: 16, maxStringLength: 65_536, maxItems: 50_000, strings: 'utf8' } as const;
/** Queries in flight at once for calls() and the inactivity poll. */
const QUERY_CONCURRENCY = 8;
/**
 * rtpengine's error reasons that mean the SDP itself (488 Not Acceptable Here); any other error is the engine's
 * (503: ports, load, a call it does not know).
 */
const SDP_ERRORS = /parse SDP|Incomplete SDP|No SDP body|SDP line|payload types|RTCP attribute|media protocol|Zero length media|No media stream|at least one media|parse network address|Unknown attribute/i;
/** RFC 3551 §6: static payload types, by the name rtpengine knows them by. */
const STATIC_PAYLOAD_TYPES: Readonly<Record<string, string>> = {
  0: 'PCMU',
  3: 'GSM',
  4: 'G723',
  5: 'DVI4',
  6: 'DVI4',
  7: 'LPC',
  8: 'PCMA',
  9: 'G722',
  10: 'L16',
  11: 'L16',
  12: 'QCELP',
  13: 'CN',
  14: 'MPA',
  15: 'G728',
  16: 'DVI4',
  17: 'DVI4',
  18: 'G729',
  25: 'CelB',
  26: 'JPEG',
  28: 'nv',
  31: 'H261',
  32: 'MPV',
  33: 'MP2T',
  34: 'H263',
};

export class RtpEngineRelay implements MediaRelay {
  readonly engine = 'rtpengine';
  private readonly address: string;
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly flags: readonly string[];
  private readonly extra: Readonly<Record<string, BencodeInput>>;
  private readonly rtcpMux: readonly RtcpMuxMode[];
  private readonly pollMs: number;
  private readonly inactivityMs: number;
  private readonly deleteDelaySeconds: number;
  private readonly listLimit: number;
  private readonly socket: Socket;
  /** Cookies are `<random prefix>_<sequence>`: unique per request, and across restarts of this process. */
  private readonly cookiePrefix = randomToken(10);
  private sequence = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly counters: RtpEngineCounters = {
    requests: 0,
    retransmissions: 0,
    replies: 0,
    errors: 0,
    timeouts: 0,
    lateReplies: 0,
    garbageReplies: 0,
    foreignReplies: 0,
  };
  /** The calls this relay offered, watched for inactivity. */
  private readonly watched = new Set<string>();
  private readonly timeoutListeners: Array<(callId: string) => void> = [];
  private pollTimer: TimerHandle | undefined;
  private polling = false;
  private closed = false;

  constructor(options: RtpEngineRelayOptions) {
    this.address = options.address;
    this.port = options.port;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.retries = Math.max(0, options.retries ?? 2);
    this.clock = options.clock ?? new SystemClock();
    this.logger = options.logger ?? silentLogger();
    this.flags = options.flags ?? [];
    this.extra = options.extra ?? {};
    this.rtcpMux = options.rtcpMux ?? ['accept'];
    this.pollMs = options.pollMs ?? 10_000;
    this.inactivityMs = options.inactivityMs ?? 60_000;
    this.deleteDelaySeconds = options.deleteDelaySeconds ?? 0;
    this.listLimit = options.listLimit ?? 1000;
    this.socket = createSocket(isIPv6(this.address) ? 'udp6' : 'udp4');
    this.socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    // A send to an unreachable daemon, a full buffer: the request's timer decides what it means.
    this.socket.on('error', (err) => this.logger.warn({ err, engine: this.where() }, 'rtpengine control socket error'));
    if (options.localAddress !== undefined) this.socket.bind(0, options.localAddress);
    // The socket keeps the process alive only while a reply is awaited.
    this.socket.unref();
  }

  /** What went over the control socket so far. */
  get stats(): Readonly<RtpEngineCounters> {
    return { ...this.counters };
  }

  /** `ping` → `pong`: the daemon answers. Resolves with the round trip in ms (on the clock); 503 when it does not. */
  async ping(): Promise<number> {
    const started = this.clock.now();
    const reply = await this.request('ping', {});
    if (bencodeText(reply.result) !== 'pong') throw new MediaRelayError(`rtpengine at ${this.where()} answered ping with '${bencodeText(reply.result)}'`, 503);
    return this.clock.now() - started;
  }

  async offer(leg: RelayLeg, sdp: string, options: RelayOptions = {}): Promise<string> {
    const codec = this.codecKeys(sdp, options);
    const reply = await this.request('offer', {
      'call-id': leg.callId,
      'from-tag': leg.fromTag,
      'to-tag': leg.toTag,
      sdp,
      ...this.sessionKeys(options, codec),
    });
    this.watched.add(leg.callId);
    return this.sdpOf(reply, options);
  }

  async answer(leg: RelayLeg & { toTag: string }, sdp: string, options: RelayOptions = {}): Promise<string> {
    const codec = this.codecKeys(sdp, options);
    // ng's answer names the offerer in from-tag and the answerer in to-tag (a SIP answer's From and To); the
    // interface's `fromTag` is the side whose SDP this is, the answerer.
    const reply = await this.request('answer', {
      'call-id': leg.callId,
      'from-tag': leg.toTag,
      'to-tag': leg.fromTag,
      sdp,
      ...this.sessionKeys(options, codec),
    });
    return this.sdpOf(reply, options);
  }

  async delete(callId: string): Promise<RelayCallStats | undefined> {
    // rtpengine 10.5 returns the call's statistics with a delete only when it names a tag; the last query stands
    // in for them otherwise (what passes between the two is not counted).
    const before = await this.query(callId);
    const reply = await this.request('delete', { 'call-id': callId, 'delete delay': this.deleteDelaySeconds });
    this.watched.delete(callId);
    const warning = bencodeText(reply.warning);
    if (warning !== undefined) this.logger.debug({ callId, warning }, 'rtpengine delete warning');
    if (isBencodeDict(reply.tags)) return parseCall(callId, reply).stats;
    return before;
  }

  async query(callId: string): Promise<RelayCallStats | undefined> {
    return (await this.queryCall(callId))?.stats;
  }

  private async queryCall(callId: string): Promise<ParsedCall | undefined> {
    const reply = await this.request('query', { 'call-id': callId }, { unknownCall: true });
    return reply === undefined ? undefined : parseCall(callId, reply);
  }

  async calls(): Promise<RelayCallStats[]> {
    const reply = await this.request('list', { limit: this.listLimit });
    const ids = Array.isArray(reply.calls) ? reply.calls.map(bencodeText).filter((id): id is string => id !== undefined) : [];
    const stats = await mapLimit(ids, QUERY_CONCURRENCY, (id) => this.query(id));
    // A call deleted between the list and its query is gone: not listed.
    return stats.filter((s): s is RelayCallStats => s !== undefined);
  }

  onTimeout(listener: (callId: string) => void): void {
    this.timeoutListeners.push(listener);
    if (this.pollTimer === undefined && !this.polling && !this.closed) this.schedulePoll();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pollTimer?.cancel();
    this.pollTimer = undefined;
    for (const [cookie, p] of this.pending) {
      p.timer?.cancel();
      this.pending.delete(cookie);
      p.reject(new MediaRelayError(`the rtpengine relay (${this.where()}) is closed`, 503));
    }
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // Never bound, or closed already.
      }
    });
  }

  // --- offer/answer keys -------------------------------------------------------------------------------------------

  private sessionKeys(options: RelayOptions, codec: BencodeInput | undefined): Record<string, BencodeInput | undefined> {
    const flags = [
      // Latching is rtpengine's default ('symmetric'); 'asymmetric' sends to the SDP's address only.
      options.latch === false ? 'asymmetric' : 'symmetric',
      // A later offer keeps the call's ports even when the peer's port changes (the interface's promise).
      'port latching',
      ...(options.strictSource === true ? ['strict source'] : []),
      // Until it latches, rtpengine sends to where the signalling came from, not to a NAT's inside written in the SDP.
      ...(options.sourceAddress !== undefined && options.latch !== false ? ['SIP-source-address'] : []),
      ...this.flags,
    ];
    const from = options.sourceAddress;
    return {
      flags,
      ...(from !== undefined ? { 'received-from': [isIPv6(from) ? 'IP6' : 'IP4', from] } : {}),
      replace: ['origin', 'session-connection'],
      // 'optional' keeps the SDP's candidates and adds rtpengine's own as a low-priority one.
      ICE: options.ice === 'keep' ? 'optional' : 'remove',
      'rtcp-mux': [...this.rtcpMux],
      codec,
      ...this.extra,
    };
  }

  /**
   * `codec: { strip: all, except: [...] }` for `options.codecs`, with each name also as this SDP spells it (rtpengine
   * compares names case-sensitively). rtpengine keeps a stream's whole list when nothing of it would be left; when
   * that is so for every active stream, it is a 488 here, before rtpengine is asked (as the embedded relay answers).
   */
  private codecKeys(sdp: string, options: RelayOptions): BencodeInput | undefined {
    if (options.codecs === undefined) return undefined;
    const wanted = new Set(options.codecs.map((c) => c.toLowerCase()));
    const parsed = parseSdp(sdp);
    // An SDP this parser refuses goes to rtpengine as it is: its error reason says what is wrong.
    if (!parsed.ok) return { strip: ['all'], except: [...options.codecs] };
    const spelled = new Set(options.codecs);
    let active = 0;
    let kept = 0;
    for (const media of parsed.sdp.media) {
      if (media.port === 0 || !/RTP/i.test(media.proto)) continue;
      active++;
      const names = new Map(rtpmap(media).map((m) => [String(m.payloadType), m.encoding]));
      let keeps = false;
      for (const format of media.formats) {
        const name = names.get(format) ?? STATIC_PAYLOAD_TYPES[format];
        if (name === undefined || !wanted.has(name.toLowerCase())) continue;
        spelled.add(name);
        keeps = true;
      }
      if (keeps) kept++;
    }
    if (active > 0 && kept === 0) throw new MediaRelayError(`no offered codec is one of ${options.codecs.join(', ')}`, 488);
    return { strip: ['all'], except: [...spelled] };
  }

  private sdpOf(reply: BencodeDict, options: RelayOptions): string {
    const sdp = bencodeText(reply.sdp);
    if (sdp === undefined) throw new MediaRelayError(`rtpengine at ${this.where()} returned no SDP`, 503);
    const warning = bencodeText(reply.warning);
    if (warning !== undefined) this.logger.info({ warning }, 'rtpengine warning');
    return options.advertise === undefined ? sdp : advertiseIn(sdp, options.advertise);
  }

  // --- the control protocol ----------------------------------------------------------------------------------------

  private request(command: string, keys: Record<string, BencodeInput | undefined>): Promise<BencodeDict>;
  private request(command: string, keys: Record<string, BencodeInput | undefined>, how: { unknownCall: true }): Promise<BencodeDict | undefined>;
  private request(command: string, keys: Record<string, BencodeInput | undefined>, how?: { unknownCall: true }): Promise<BencodeDict | undefined> {
    if (this.closed) return Promise.reject(new MediaRelayError(`the rtpengine relay (${this.where()}) is closed`, 503));
    let body: Buffer;
    try {
      body = encodeBencode({ command, ...keys });
    } catch (err) {
      return Promise.reject(new MediaRelayError(`cannot encode '${command}' for rtpengine: ${(err as Error).message}`, 503));
    }
    const cookie = `${this.cookiePrefix}_${++this.sequence}`;
    const packet = Buffer.concat([Buffer.from(`${cookie} `, 'latin1'), body]);
    if (packet.length > MAX_DATAGRAM) {
      // Only an SDP can make a message this large; rtpengine's ng over UDP cannot carry it.
      return Promise.reject(new MediaRelayError(`'${command}' of ${packet.length} bytes does not fit a UDP datagram to rtpengine`, 488));
    }
    this.counters.requests++;
    const replied = new Promise<BencodeDict>((resolve, reject) => {
      const p: Pending = { command, packet, attempt: 0, timer: undefined, resolve, reject };
      if (this.pending.size === 0) this.socket.ref();
      this.pending.set(cookie, p);
      this.transmit(cookie, p);
    });
    return replied.then((reply) => this.outcome(command, reply, how?.unknownCall === true));
  }

  private transmit(cookie: string, p: Pending): void {
    p.timer = this.clock.setTimer(this.timeoutMs, () => this.expire(cookie, p));
    this.socket.send(p.packet, this.port, this.address, (err) => {
      if (err) this.logger.debug({ err, command: p.command, engine: this.where() }, 'rtpengine send failed');
    });
  }

  private expire(cookie: string, p: Pending): void {
    if (this.pending.get(cookie) !== p) return;
    if (p.attempt < this.retries) {
      p.attempt++;
      this.counters.retransmissions++;
      this.transmit(cookie, p);
      return;
    }
    this.forget(cookie);
    this.counters.timeouts++;
    const tries = p.attempt + 1;
    p.reject(new MediaRelayError(`rtpengine at ${this.where()} did not answer '${p.command}' (${tries} ${tries === 1 ? 'try' : 'tries'}, ${this.timeoutMs} ms each)`, 503));
  }

  private forget(cookie: string): void {
    this.pending.delete(cookie);
    if (this.pending.size === 0 && !this.closed) this.socket.unref();
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    if (rinfo.port !== this.port || (isIP(this.address) !== 0 && !sameAddress(rinfo.address, this.address))) {
      this.counters.foreignReplies++;
      return;
    }
    const space = msg.indexOf(0x20);
    // Cookies are short tokens; anything else before the first space is not a reply.
    if (space <= 0 || space > 64) {
      this.counters.garbageReplies++;
      return;
    }
    const cookie = msg.toString('latin1', 0, space);
    let reply: BencodeDict;
    try {
      reply = decodeBencodeDict(msg.subarray(space + 1), REPLY_LIMITS);
    } catch (err) {
      // BencodeError is all the decoder throws; whatever it is, a datagram never reaches the event loop as an error.
      this.counters.garbageReplies++;
      this.logger.debug({ err: err instanceof BencodeError ? err.message : err, engine: this.where() }, 'rtpengine reply is not bencode');
      return;
    }
    const p = this.pending.get(cookie);
    if (p === undefined) {
      this.counters.lateReplies++;
      return;
    }
    p.timer?.cancel();
    this.forget(cookie);
    this.counters.replies++;
    p.resolve(reply);
  }

  /** A reply as the caller wants it: ok and pong as they are, an unknown call as undefined (when asked), else a MediaRelayError. */
  private outcome(command: string, reply: BencodeDict, unknownCallIsUndefined: boolean): BencodeDict | undefined {
    const result = bencodeText(reply.result);
    if (result === 'ok' || result === 'pong') return reply;
    this.counters.errors++;
    const reason = bencodeText(reply['error-reason']) ?? bencodeText(reply.message) ?? result ?? 'no result';
    if (unknownCallIsUndefined && result === 'error' && /unknown call|not found/i.test(reason)) return undefined;
    const status = result === 'error' && SDP_ERRORS.test(reason) ? 488 : 503;
    throw new MediaRelayError(`rtpengine at ${this.where()} refused '${command}': ${reason}`, status);
  }

  private where(): string {
    return isIPv6(this.address) ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }

  // --- inactivity --------------------------------------------------------------------------------------------------

  private schedulePoll(): void {
    this.pollTimer = this.clock.setTimer(this.pollMs, () => {
      this.pollTimer = undefined;
      this.polling = true;
      this.poll()
        .catch((err: unknown) => this.logger.warn({ err, engine: this.where() }, 'rtpengine inactivity poll failed'))
        .finally(() => {
          this.polling = false;
          if (!this.closed) this.schedulePoll();
        });
    });
  }

  private async poll(): Promise<void> {
    const ids = [...this.watched];
    const now = this.clock.now();
    const expired: string[] = [];
    let unreachable: unknown;
    await mapLimit(ids, QUERY_CONCURRENCY, async (callId) => {
      let call: ParsedCall | undefined;
      try {
        call = await this.queryCall(callId);
      } catch (err) {
        // The engine not answering says nothing about the call.
        unreachable = err;
        return;
      }
      if (call === undefined) {
        expired.push(callId); // rtpengine deleted it (its own timeout) or lost it (a restart).
        return;
      }
      const lastActivity = Math.max(call.stats.lastPacketAt ?? 0, call.stats.createdAt, call.lastSignalAt);
      if (now - lastActivity >= this.inactivityMs) expired.push(callId);
    });
    if (unreachable !== undefined) this.logger.warn({ err: unreachable, engine: this.where() }, 'rtpengine did not answer the inactivity poll');
    for (const callId of expired) {
      if (!this.watched.delete(callId)) continue; // Deleted meanwhile.
      for (const listener of this.timeoutListeners) {
        try {
          listener(callId);
        } catch (err) {
          this.logger.error({ err, callId }, 'media timeout listener failed');
        }
      }
    }
  }
}

// --- replies to RelayCallStats ---------------------------------------------------------------------------------------

interface ParsedCall {
  stats: RelayCallStats;
  /** rtpengine's `last signal`: the last offer, answer or other command about the call (ms). */
  lastSignalAt: number;
}

function num(v: BencodeValue | undefined): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function dict(v: BencodeValue | undefined): BencodeDict {
  return isBencodeDict(v) ? v : (Object.create(null) as BencodeDict);
}

function list(v: BencodeValue | undefined): BencodeValue[] {
  return Array.isArray(v) ? v : [];
}

function textList(v: BencodeValue | undefined): string[] {
  return list(v)
    .map(bencodeText)
    .filter((s): s is string => s !== undefined);
}

function counters(stats: BencodeValue | undefined): RelayCounters {
  const s = dict(stats);
  return { packets: num(s.packets), bytes: num(s.bytes), dropped: num(s.errors) };
}

/**
 * A query (or delete) reply as RelayCallStats. rtpengine lists per tag the media it relays for that side, each with
 * its packet streams (RTP, RTCP): the local port facing that side, the endpoint it sends to (latched: `confirmed`),
 * and what came in from that side (`errors` are the packets it could not relay: dropped). Streams are the media
 * indexes, sides the tags. Loss and jitter come from RTCP reports (the SSRC table), when there were any.
 */
function parseCall(callId: string, reply: BencodeDict): ParsedCall {
  const createdAt = num(reply.created) * 1000 + Math.floor(num(reply.created_us) / 1000);
  const ssrcTable = dict(reply.SSRC);
  const byIndex = new Map<number, RelayStream>();
  let lastPacket = 0;
  const tags = dict(reply.tags);
  for (const key of Object.keys(tags)) {
    const tag = dict(tags[key]);
    const tagName = bencodeText(tag.tag) ?? key;
    for (const m of list(tag.medias)) {
      const media = dict(m);
      const index = num(media.index);
      let stream = byIndex.get(index);
      if (stream === undefined) {
        stream = { media: bencodeText(media.type) ?? 'unknown', sides: [] };
        byIndex.set(index, stream);
      }
      const packetStreams = list(media.streams).map(dict);
      const rtp = packetStreams.find((s) => textList(s.flags).includes('RTP')) ?? packetStreams[0];
      const rtcp = packetStreams.find((s) => s !== rtp && textList(s.flags).includes('RTCP'));
      for (const s of packetStreams) {
        if (num(dict(s.stats).packets) > 0) lastPacket = Math.max(lastPacket, num(s['last packet']));
      }
      const endpoint = dict(rtp?.endpoint);
      const peerAddress = bencodeText(endpoint.address);
      const peerPort = num(endpoint.port);
      const quality = dict(dict(ssrcTable[String(num(rtp?.SSRC))])['average MOS']);
      const side: RelaySide = {
        tag: tagName,
        localPort: num(rtp?.['local port']),
        latched: textList(rtp?.flags).includes('confirmed'),
        rtp: counters(rtp?.stats),
        rtcp: rtcp === undefined ? { packets: 0, bytes: 0, dropped: 0 } : counters(rtcp.stats),
        lost: Math.max(0, num(dict(ssrcTable[String(num(rtp?.SSRC))])['cumulative loss'])),
        jitterMs: num(quality.jitter),
      };
      if (peerAddress !== undefined && !UNSPECIFIED.has(peerAddress) && peerPort > 0) side.peer = { address: peerAddress, port: peerPort };
      stream.sides.push(side);
    }
  }
  const stats: RelayCallStats = {
    callId,
    engine: 'rtpengine',
    createdAt,
    streams: [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s),
  };
  if (lastPacket > 0) stats.lastPacketAt = lastPacket * 1000;
  return { stats, lastSignalAt: num(reply['last signal']) * 1000 };
}

// --- helpers -------------------------------------------------------------------------------------------------------

/**
 * `advertise` written where rtpengine wrote its own address: every c= line (except the unspecified address of a
 * held stream), the o= line, and the address part of a=rtcp. rtpengine itself advertises per interface (--interface
 * NAME/IP!ADVERTISED); this is the per-call equivalent, for a relay behind a 1:1 NAT.
 */
function advertiseIn(sdp: string, advertise: string): string {
  const family = isIPv6(advertise) ? 'IP6' : 'IP4';
  return sdp.replace(/^(c=IN |o=.* IN |a=rtcp:\d+ IN )(IP[46]) (\S+)(?=\r?$)/gm, (line: string, head: string, _fam: string, addr: string) =>
    head.startsWith('c=') && UNSPECIFIED.has(addr) ? line : `${head}${family} ${advertise}`,
  );
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  // A udp6 socket sees IPv4 sources as mapped addresses.
  return a.replace(/^::ffff:/i, '') === b.replace(/^::ffff:/i, '');
}

/** `fn` over `items`, at most `limit` at once, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
