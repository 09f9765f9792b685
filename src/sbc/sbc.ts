import { createResponse, reasonPhrase, tryParseUri, type SipRequest, type Uri } from '../message/index.js';
import type { InviteServerTransaction, ServerTransaction, TransactionLayer, TransactionUserModule } from '../transaction/index.js';
import type { BoundListener, Destination, TransportLayer } from '../transport/index.js';
import { UserAgent, type InviteSession, type OfferReply, type Transfer } from '../ua/index.js';
import { Bridge, type BridgeEnd, type Crossing, type SdpKind } from '../b2bua/index.js';
import { MediaRelayError, type MediaRelay, type RelayCallStats, type RelayOptions } from '../media/index.js';
import type { CallAccounting } from '../accounting/index.js';
import type { CdrMedia, CdrMediaCounters } from '../store/index.js';
import type { SbcHandoff, SbcService } from '../policy/engine.js';
import type { Dialog } from '../dialog/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { newTag, randomToken } from '../util/ids.js';
import type { SbcConfig } from './config.js';
import { CallLimits, localLimits, type LimitKeeper } from './limits.js';
import { passedHeaders, secondLegIdentity } from './identity.js';
import { hideOrigin } from './sdp.js';

export interface SbcServiceOptions {
  config: SbcConfig;
  relay: MediaRelay;
  /** The server's transport and transaction layers: the SBC's legs use them, it starts no listener of its own. */
  transport: TransportLayer;
  transactions: TransactionLayer;
  clock: Clock;
  logger: Logger;
  /** The server's T1 and T2 (ms), for the 2xx retransmissions of the legs we answer. */
  timers: { T1: number; T2: number };
  /** Whether host[:port] names this server (the SBC's second legs come from it; its Contact names it). */
  isLocalHost(host: string, port: number | undefined): boolean;
  /** Call-IDs of the second legs: under `--workers N` ones that steer to this worker. Default random. */
  newCallId?: () => string;
  /** The callee's BYE, which the SBC takes before the proxy sees it, ends the call record the proxy opened. */
  accounting?: CallAccounting;
  /** This worker's index, for listings. */
  worker?: number;
  /** Where calls' places are counted; default this process (the cluster's primary counts for every worker). */
  limits?: LimitKeeper;
  /** The address the relay advertises, when known: the o= line of an SDP naming no other gets it. */
  mediaAddress?: string;
}

/** A live call through the SBC, as `sipway calls` lists it. */
export interface SbcCallInfo {
  id: string;
  worker?: number;
  /** ringing (leg a not answered yet), answered, or ending (a BYE under way). */
  state: 'ringing' | 'answered' | 'ending';
  /** The caller and callee as addresses of record (From and To of the first leg). */
  caller: string;
  callee: string;
  /** The second leg's Request-URI. */
  target: string;
  account: string;
  trunk: string;
  /** The first leg: its Call-ID and where the caller is (transport:address:port). */
  a: { callId: string; source?: string };
  /** The second leg: its Call-ID (undefined until placed). */
  b: { callId?: string };
  /** ms since the epoch. */
  startedAt: number;
  answeredAt?: number;
  /** The relay's view of the media: ports, peers, packet counters (undefined when the relay cannot say). */
  media?: RelayCallStats;
}

/** How long a transferor may stay in a call it transferred (after the new leg answered) before we hang it up. */
const TRANSFEROR_GRACE_MS = 10_000;

/** The user part of the SBC's Contact: in-dialog requests to it for a call that is gone are answered 481 here. */
const CONTACT_USER = 'sbc';

interface Call {
  id: string;
  /** The relay's name of the call (it changes when a transfer moves the media to a new relay call). */
  relayId: string;
  /** The relay's tags of the two sides: the caller's (leg a) and the second leg's. */
  tagA: string;
  tagB: string;
  /** The relay call exists (the first offer went through it). */
  mediaStarted: boolean;
  relayOptions: RelayOptions;
  account: string;
  trunk: string;
  target: string;
  caller: string;
  callee: string;
  /** The authenticated user of the caller, if any. */
  user: string | undefined;
  /** Who each party is on the second leg (for the From of a transfer's new leg). */
  callerAs: string;
  calleeAs: string;
  a: InviteSession;
  bridge?: Bridge;
  startedAt: number;
  answeredAt?: number;
  refer: 'transfer' | 'decline';
  maxCallSeconds: number;
  release(): void;
  timer?: TimerHandle;
  ending?: string;
  transferring: boolean;
  transfers: number;
  /** Where requests to the caller go (its flow), by the caller dialog's Call-ID and tag. */
  callerKey: string;
  secondLegIds: string[];
  source?: string;
}

/** The SBC's own requests, by Call-ID: what the loop guard (ownLeg) knows of each second leg. */
interface SecondLeg {
  call: Call;
  /** Our tag on that leg, once known: a request naming another From tag is not ours. */
  fromTag?: string;
  user: string | undefined;
}

/**
 * The SBC (docs/sbc.md): a back-to-back user agent inside the server, on the server's own transport and transaction
 * layer. The routing policy hands it an initial INVITE (`ctx.sbc()`); it answers the caller (leg a) and places a new
 * call (leg b: Call-ID, tags, Via and Contact of its own) into the server's proxy, which routes it like any call
 * (location lookup, forking, NAT help) and knows it for the SBC's own by its Call-ID and source (the loop guard). The
 * Bridge ties the legs: provisional and final answers, CANCEL, re-INVITE, UPDATE, INFO and BYE cross; PRACK and
 * CSeqs are each leg's own; nothing of one side's Via, Record-Route, Route, Contact or Call-ID reaches the other.
 * Every SDP crosses through the media relay, so that both parties send their RTP to us (phones behind NAT hear each
 * other). REFER is carried out here (a new leg b to the Refer-To target) or refused 603, never forwarded.
 *
 * In the server's transaction user chain the SBC comes first: the requests and ACKs of its dialogs and the CANCELs
 * of the calls it answers are its own, before the proxy (which would route them) sees them.
 */
export class Sbc implements SbcService {
  private readonly config: SbcConfig;
  private readonly relay: MediaRelay;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly limits: LimitKeeper;
  /** One user agent per transport callers come in on (its Contact names that transport's listener). */
  private readonly agents = new Map<string, UserAgent>();
  private readonly calls = new Map<string, Call>();
  private readonly byRelay = new Map<string, Call>();
  private readonly secondLegs = new Map<string, SecondLeg>();
  private readonly callers = new Map<string, Destination>();
  private closed = false;

  constructor(private readonly options: SbcServiceOptions) {
    this.config = options.config;
    this.relay = options.relay;
    this.logger = options.logger;
    this.clock = options.clock;
    this.limits = options.limits ?? localLimits(new CallLimits(options.config.limits));
    this.relay.onTimeout((relayId) => {
      const call = this.byRelay.get(relayId);
      if (call) this.guard(this.end(call, `no media for ${Math.round(this.config.media.inactivityMs / 1000)} s`));
    });
  }

  /** The engine that relays the media (embedded, rtpengine). */
  get mediaEngine(): string {
    return this.relay.engine;
  }

  /** The SBC's place in the server's transaction user chain, before the proxy. */
  module(): TransactionUserModule {
    return {
      name: 'sbc',
      claimRequest: (request, st) => this.claim(request, st),
      claimAck: (ack) => {
        for (const ua of this.agents.values()) if (ua.claimAck(ack)) return true;
        return false;
      },
    };
  }

  ownLeg(request: SipRequest): { user: string | undefined } | undefined {
    const leg = this.secondLegs.get(request.callId);
    if (leg === undefined) return undefined;
    // Only from this server: a callee knows the Call-ID and our tag, but cannot send from our own address.
    const source = request.source;
    if (source === undefined || !this.options.isLocalHost(source.address, undefined)) return undefined;
    if (leg.fromTag !== undefined && request.fromTag !== leg.fromTag) return undefined;
    return { user: leg.user };
  }

  take(handoff: SbcHandoff): void {
    const st = handoff.st as InviteServerTransaction;
    this.start(handoff, st).catch((err: unknown) => {
      this.logger.error({ err, callId: handoff.request.callId }, 'sbc: call not handled');
      if (st.state === 'Proceeding') st.respond(createResponse(handoff.request, 500, { reason: 'Server Internal Error - the SBC failed' }));
    });
  }

  /** The calls in progress, with the relay's counters. */
  async list(): Promise<SbcCallInfo[]> {
    return Promise.all([...this.calls.values()].map((c) => this.describe(c)));
  }

  /** Ends a call (BYE on both legs, or CANCEL and 487 before the answer); false when there is no such call. */
  endCall(id: string): boolean {
    const call = this.calls.get(id);
    if (call === undefined) return false;
    this.guard(this.end(call, 'ended by the operator'));
    return true;
  }

  /** Ends every call (bounded by the user agents' own shutdown) and closes the relay. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const call of this.calls.values()) call.ending ??= 'the server is stopping';
    await Promise.all([...this.agents.values()].map((ua) => ua.stop()));
    await Promise.all([...this.calls.values()].map((c) => this.relay.delete(c.relayId).catch(() => undefined)));
    await this.relay.close().catch((err: unknown) => this.logger.warn({ err }, 'sbc: media relay did not close'));
  }

  // ---- the transaction user ----

  private claim(request: SipRequest, st: ServerTransaction): boolean {
    for (const ua of this.agents.values()) {
      if (!ua.claim(request, st)) continue;
      // The callee's BYE never reaches the proxy, which opened the call record of leg b: it is closed here.
      if (request.method === 'BYE' && this.secondLegs.has(request.callId)) {
        try {
          this.options.accounting?.ended(request, createResponse(request, 200));
        } catch (err) {
          this.logger.warn({ err }, 'sbc: accounting failed');
        }
      }
      return true;
    }
    // A request in a dialog of ours that is gone: 481, rather than the proxy routing it to our own Contact.
    if (request.toTag !== undefined && this.isOurContact(request.uri)) {
      st.respond(createResponse(request, 481));
      return true;
    }
    return false;
  }

  private isOurContact(uri: Uri): boolean {
    return uri.type === 'sip' && uri.user === CONTACT_USER && this.options.isLocalHost(uri.hostname, uri.port);
  }

  // ---- a call ----

  private async start(h: SbcHandoff, st: InviteServerTransaction): Promise<void> {
    const invite = h.request;
    const options = h.options;
    if (this.closed) {
      st.respond(createResponse(invite, 503, { reason: 'Service Unavailable - shutting down' }));
      return;
    }
    // A second leg of ours that the loop guard did not know (it would come back here for ever): the first Via, the
    // originator's, names this server.
    const origin = invite.vias[invite.vias.length - 1];
    if (origin !== undefined && invite.source !== undefined && this.options.isLocalHost(invite.source.address, undefined) && this.options.isLocalHost(origin.host.replace(/^\[|\]$/g, ''), origin.port ?? 5060)) {
      this.logger.warn({ callId: invite.callId }, 'sbc: an INVITE of our own came back to the SBC');
      st.respond(createResponse(invite, 482, { reason: 'Loop Detected - a call of the SBC came back to it' }));
      return;
    }
    const legB = this.legBAgent();
    if (legB === undefined) {
      st.respond(createResponse(invite, 503, { reason: 'Service Unavailable - no listener to place the call from' }));
      return;
    }
    const from = invite.from.uri;
    const fromHost = from.type === 'sip' ? from.host.toLowerCase() : undefined;
    const source = invite.source;
    const account = options.account ?? (h.authenticatedUser !== undefined ? `${h.authenticatedUser}@${fromHost ?? ''}` : `source:${source?.address ?? 'unknown'}`);
    const targetUri = tryParseUri(h.target);
    const trunk = options.trunk ?? (targetUri?.type === 'sip' ? targetUri.host.toLowerCase() : 'tel');
    const admitted = await this.limits.admit(account, trunk, this.clock.now());
    if (!admitted.ok) {
      this.logger.info({ callId: invite.callId, account, trunk, status: admitted.status }, 'sbc: call refused by a limit');
      st.respond(createResponse(invite, admitted.status, { reason: admitted.reason, headers: [['Retry-After', String(admitted.retryAfter)]] }));
      return;
    }
    const agent = this.agent(source?.transport ?? 'udp');
    const a = agent?.adopt(invite, st);
    if (agent === undefined || a === undefined) {
      if (agent === undefined) st.respond(createResponse(invite, 503, { reason: `Service Unavailable - no listener for ${source?.transport ?? 'udp'}` }));
      admitted.release();
      return;
    }
    const trusted = options.trusted ?? (targetUri?.type === 'sip' && this.config.identity.trusted.includes(targetUri.host.toLowerCase()));
    const identity = secondLegIdentity(invite, {
      authenticatedUser: h.authenticatedUser,
      trusted,
      trustedSource: source !== undefined && this.config.identity.trustedSources.includes(source.address),
    });
    const id = randomToken(10);
    const callerKey = `${invite.callId}\n${invite.fromTag ?? ''}`;
    // Requests to the caller go where its requests come from (its NAT binding, its connection): its Contact may
    // name a private address.
    if (source) this.callers.set(callerKey, { transport: source.transport as Destination['transport'], address: source.address, port: source.port, flowId: source.flowId });
    const relayOptions: RelayOptions = { latch: this.config.media.latch, strictSource: this.config.media.strictSource, ice: 'remove' };
    if (this.config.media.codecs) relayOptions.codecs = this.config.media.codecs;
    const to = invite.to.clone();
    to.tag = undefined;
    const call: Call = {
      id,
      relayId: this.byRelay.has(invite.callId) ? `${invite.callId}~${id}` : invite.callId,
      tagA: invite.fromTag ?? `a-${id}`,
      tagB: newTag(),
      mediaStarted: false,
      relayOptions,
      account,
      trunk,
      target: h.target,
      caller: aor(from),
      callee: aor(invite.to.uri),
      user: h.authenticatedUser,
      callerAs: identity.from,
      calleeAs: to.toString(),
      a,
      startedAt: this.clock.now(),
      refer: options.refer ?? this.config.refer,
      maxCallSeconds: options.maxCallSeconds ?? this.config.maxCallSeconds,
      release: admitted.release,
      transferring: false,
      transfers: 0,
      callerKey,
      secondLegIds: [],
      source: source && `${source.transport}:${source.address}:${source.port}`,
    };
    this.calls.set(id, call);
    this.byRelay.set(call.relayId, call);
    const callId = this.newCallId();
    this.secondLegs.set(callId, { call, user: h.authenticatedUser });
    call.secondLegIds.push(callId);
    const headers = [...passedHeaders(h.work, [...this.config.headers.pass, ...(options.passHeaders ?? [])], this.config.headers.deny), ...identity.headers];
    let bridge: Bridge;
    try {
      bridge = await Bridge.connect(legB, a, {
        target: h.target,
        headers,
        from: identity.from,
        to: call.calleeAs,
        callId,
        standardReasons: true,
        sdp: (sdp, crossing, kind) => this.crossMedia(call, sdp, crossing, kind),
        onError: (err) => this.logger.error({ err, id }, 'sbc: bridge failed'),
      });
    } catch (err) {
      // The offer did not cross (the relay refused it): leg a has been answered with the reason; anything else is ours.
      this.logger.info({ err: (err as Error).message, id, callId: invite.callId }, 'sbc: call not placed');
      if (a.state === 'Early') a.reject(500, 'Server Internal Error - the call could not be placed');
      await this.over(call, 'the offer did not cross');
      return;
    }
    call.bridge = bridge;
    const leg = this.secondLegs.get(callId);
    if (leg) leg.fromTag = bridge.b.invite.fromTag;
    this.logger.info({ id, callId: invite.callId, legB: callId, caller: call.caller, target: h.target, account, engine: this.relay.engine }, 'sbc: call placed');
    this.guard(
      bridge.b.answered.then((answer) => {
        if (answer.status >= 300 || call.ending !== undefined) return;
        call.answeredAt = this.clock.now();
        // The proxy's record of leg b waits for the relay's counters (CdrRecord.media).
        if (call.mediaStarted) this.options.accounting?.expectMedia?.(bridge.b.invite.callId);
        if (call.maxCallSeconds > 0) {
          call.timer = this.clock.setTimer(call.maxCallSeconds * 1000, () => this.guard(this.end(call, `the call reached its longest duration (${call.maxCallSeconds} s)`)));
        }
      }),
    );
    this.guard(bridge.ended.then((end) => this.over(call, describeEnd(end))));
  }

  /** Ends a call from our side (a limit, the operator, no media): BYE both legs, or CANCEL and 487. */
  private async end(call: Call, reason: string): Promise<void> {
    if (call.ending !== undefined) return;
    call.ending = reason;
    this.logger.info({ id: call.id, callId: call.a.invite.callId, reason }, 'sbc: ending the call');
    // RFC 3326: the phones learn why (a limit, the operator, no media), in words that name nothing of ours.
    if (call.bridge) await call.bridge.hangUp([['Reason', `Q.850;cause=16;text="${reason.replace(/["\\\r\n]/g, '')}"`]]);
    else if (call.a.state === 'Early') call.a.reject(503, 'Service Unavailable');
  }

  /** The call is over on one side (the other follows): its media and limits are given back, then its state. */
  private async over(call: Call, reason: string): Promise<void> {
    if (!this.calls.has(call.id)) return;
    call.ending ??= reason;
    call.timer?.cancel();
    call.release();
    const stats = call.mediaStarted ? await this.relay.delete(call.relayId).catch((err: unknown) => void this.logger.warn({ err, id: call.id }, 'sbc: media relay delete failed')) : undefined;
    if (stats && call.bridge) {
      try {
        this.options.accounting?.media?.(call.bridge.b.invite.callId, cdrMedia(stats, call.tagA));
      } catch (err) {
        this.logger.warn({ err, id: call.id }, 'sbc: accounting failed');
      }
    }
    this.calls.delete(call.id);
    this.byRelay.delete(call.relayId);
    this.logger.info(
      { id: call.id, callId: call.a.invite.callId, reason: call.ending, durationMs: call.answeredAt === undefined ? 0 : this.clock.now() - call.answeredAt, media: stats ? mediaSummary(stats) : undefined },
      'sbc: call over',
    );
    // The loop guard keeps knowing the second legs until both legs are over: our BYE on leg b still crosses the proxy.
    const legs = call.bridge ? [call.bridge.a.ended, call.bridge.b.ended] : [call.a.ended];
    await Promise.all(legs);
    for (const callId of call.secondLegIds) this.secondLegs.delete(callId);
    this.callers.delete(call.callerKey);
  }

  /**
   * An SDP crossing the bridge, through the relay: offers and answers from either side with that side's tag. A relay
   * failure is logged in full and refuses with its status (488, 503) and a reason that names nothing of ours.
   */
  private async crossMedia(call: Call, sdp: string, crossing: Crossing, kind: SdpKind): Promise<string> {
    const [from, to] = crossing === 'a-to-b' ? [call.tagA, call.tagB] : [call.tagB, call.tagA];
    // The caller's signalling came straight from it: a private address in its SDP behind another source is its NAT's
    // inside, never sent to (the callee's came through our proxy: its source says nothing of it).
    const options = crossing === 'a-to-b' && call.a.invite.source ? { ...call.relayOptions, sourceAddress: call.a.invite.source.address } : call.relayOptions;
    try {
      if (kind === 'offer') {
        const out = await this.relay.offer({ callId: call.relayId, fromTag: from, toTag: call.mediaStarted ? to : undefined }, sdp, options);
        call.mediaStarted = true;
        return hideOrigin(out, this.options.mediaAddress);
      }
      return hideOrigin(await this.relay.answer({ callId: call.relayId, fromTag: from, toTag: to }, sdp, options), this.options.mediaAddress);
    } catch (err) {
      throw this.mediaFailure(call, err, kind);
    }
  }

  private mediaFailure(call: Call, err: unknown, kind: SdpKind): MediaRelayError {
    this.logger.warn({ err, id: call.id, callId: call.a.invite.callId, kind, engine: this.relay.engine }, 'sbc: media relay refused');
    if (err instanceof MediaRelayError && err.status === 488) return new MediaRelayError('the media relay cannot take this SDP', 488);
    return new MediaRelayError('no media relay resources', 503);
  }

  // ---- transfers (REFER) ----

  /**
   * A REFER from either party, carried out here (blind transfer, RFC 5589 §6): a new call to the Refer-To target
   * through the proxy, without an offer; its offer goes to the other party in a re-INVITE through a new relay call
   * (the transferor's media port stays with the transferor until it is gone), the other party's answer goes into the
   * new leg's ACK, and the new leg takes the transferor's place. An attended transfer (Replaces) or a call whose
   * policy said `refer: 'decline'` is declined (the REFER's NOTIFY reports 603).
   */
  private async transfer(t: Transfer): Promise<InviteSession | undefined> {
    const call = [...this.calls.values()].find((c) => c.bridge !== undefined && (c.bridge.a === t.session || c.bridge.b === t.session));
    const bridge = call?.bridge;
    if (call === undefined || bridge === undefined || call.refer !== 'transfer' || t.replaces !== undefined || call.transferring || call.ending !== undefined) return undefined;
    const x = t.session;
    const yIsA = x === bridge.b;
    const y = yIsA ? bridge.a : bridge.b;
    if (y.state !== 'Confirmed') return undefined;
    const agent = this.legBAgent();
    if (agent === undefined) return undefined;
    call.transferring = true;
    const relayId = `${call.relayId.replace(/~t\d+$/, '')}~t${++call.transfers}`;
    const tagC = newTag();
    const tagY = yIsA ? call.tagA : call.tagB;
    const callId = this.newCallId();
    const leg: SecondLeg = { call, user: yIsA ? call.user : undefined };
    this.secondLegs.set(callId, leg);
    call.secondLegIds.push(callId);
    const suspended = bridge.suspend(x);
    let media = false;
    const onOffer = async (offer: string): Promise<OfferReply> => {
      let toY: string;
      try {
        toY = hideOrigin(await this.relay.offer({ callId: relayId, fromTag: tagC }, offer, call.relayOptions), this.options.mediaAddress);
      } catch (err) {
        return refusal(this.mediaFailure(call, err, 'offer'));
      }
      const moved = await y.reinvite(toY);
      if (moved.status >= 300 || y.remoteSdp === undefined) return { status: moved.status >= 300 ? moved.status : 488, reason: reasonPhrase(moved.status >= 300 ? moved.status : 488) };
      try {
        const answer = hideOrigin(await this.relay.answer({ callId: relayId, fromTag: tagY, toTag: tagC }, y.remoteSdp, call.relayOptions), this.options.mediaAddress);
        media = true;
        return answer;
      } catch (err) {
        return refusal(this.mediaFailure(call, err, 'answer'));
      }
    };
    const c = await agent.call(t.target, { from: yIsA ? call.callerAs : call.calleeAs, callId, onOffer });
    leg.fromTag = c.invite.fromTag;
    this.logger.info({ id: call.id, legC: callId, target: t.target }, 'sbc: transfer placed');
    const settled = c.answered.then((answer) => {
      call.transferring = false;
      const up = answer.status < 300 && media && (bridge.a === y || bridge.b === y) && y.state === 'Confirmed' && call.ending === undefined;
      if (!up) {
        void this.relay.delete(relayId).catch(() => undefined);
        if (answer.status < 300 && c.state === 'Confirmed') void c.bye();
        suspended.resume();
        return;
      }
      bridge.replace(x, c);
      const old = call.relayId;
      this.byRelay.delete(old);
      call.relayId = relayId;
      this.byRelay.set(relayId, call);
      if (yIsA) call.tagB = tagC;
      else call.tagA = tagC;
      void this.relay.delete(old).catch(() => undefined);
      this.logger.info({ id: call.id, legC: callId }, 'sbc: transfer done');
      // The transferor hears the outcome in the REFER's NOTIFY and hangs up; one that does not is hung up here.
      this.clock.setTimer(TRANSFEROR_GRACE_MS, () => {
        if (x.state === 'Confirmed') void x.bye();
      });
    });
    this.guard(settled);
    return c;
  }

  // ---- user agents ----

  /** The user agent for callers over `transport` (its Contact names that transport's listener), made at first use. */
  private agent(transport: string): UserAgent | undefined {
    const known = this.agents.get(transport);
    if (known) return known;
    const listeners = this.options.transport.listeners();
    const listener = listeners.find((l) => l.transport === transport);
    const proxy = this.self(listeners);
    if (listener === undefined || proxy === undefined) return undefined;
    const ua = UserAgent.over(
      {
        aor: `sip:${CONTACT_USER}@${listener.advertised}`,
        contact: `<sip:${CONTACT_USER}@${listener.advertised}${transport === 'udp' ? '' : `;transport=${transport}`}>`,
        proxy,
        clock: this.clock,
        logger: this.logger,
        destinationOf: (dialog) => this.callerOf(dialog),
        onRefer: this.config.refer === 'transfer' ? (t) => this.transfer(t) : undefined,
      },
      this.options.transport,
      this.options.transactions,
      this.options.timers,
    );
    this.agents.set(transport, ua);
    return ua;
  }

  /** The user agent that places second legs: the one of the transport they go to ourselves over. */
  private legBAgent(): UserAgent | undefined {
    const self = this.self(this.options.transport.listeners());
    return self && this.agent(self.transport);
  }

  /**
   * Where our second legs go: our own proxy, at a UDP listener (else a stream one) of ours; a listener on every
   * address is reached on loopback. Its source is then one of our addresses, which the loop guard checks.
   */
  private self(listeners: BoundListener[]): Destination | undefined {
    const l = listeners.find((x) => x.transport === 'udp') ?? listeners.find((x) => x.transport === 'tcp') ?? listeners.find((x) => x.transport === 'tls');
    if (l === undefined) return undefined;
    const address = l.host === '0.0.0.0' ? '127.0.0.1' : l.host === '::' ? '::1' : l.host;
    return { transport: l.transport, address, port: l.port };
  }

  private callerOf(dialog: Dialog): Destination | undefined {
    return this.callers.get(`${dialog.callId}\n${dialog.remoteTag}`);
  }

  /** A promise of ours nobody awaits: its failure is logged, never left to the event loop. */
  private guard(promise: Promise<unknown>): void {
    promise.catch((err: unknown) => this.logger.error({ err }, 'sbc: unexpected failure'));
  }

  private newCallId(): string {
    return this.options.newCallId?.() ?? randomToken(24);
  }

  private async describe(c: Call): Promise<SbcCallInfo> {
    const b = c.bridge?.b;
    const info: SbcCallInfo = {
      id: c.id,
      state: c.ending !== undefined ? 'ending' : c.answeredAt !== undefined ? 'answered' : 'ringing',
      caller: c.caller,
      callee: c.callee,
      target: c.target,
      account: c.account,
      trunk: c.trunk,
      a: { callId: c.a.invite.callId, ...(c.source ? { source: c.source } : {}) },
      b: b ? { callId: b.invite.callId } : {},
      startedAt: c.startedAt,
    };
    if (this.options.worker !== undefined) info.worker = this.options.worker;
    if (c.answeredAt !== undefined) info.answeredAt = c.answeredAt;
    const media = c.mediaStarted ? await this.relay.query(c.relayId).catch(() => undefined) : undefined;
    if (media) info.media = media;
    return info;
  }
}

function refusal(err: MediaRelayError): { status: number; reason: string } {
  return { status: err.status, reason: `${reasonPhrase(err.status)} - ${err.message}` };
}

function aor(uri: Uri): string {
  if (uri.type !== 'sip') return uri.toString();
  return uri.user === undefined ? `sip:${uri.host.toLowerCase()}` : `sip:${uri.userUnescaped}@${uri.host.toLowerCase()}`;
}

function describeEnd(end: BridgeEnd): string {
  return end.by === 'a' ? `the caller hung up (${end.reason})` : end.by === 'b' ? `the callee hung up (${end.reason})` : end.reason;
}

/** Packets and bytes per side, for the log line at the end of a call. */
/** The relay's counters as the call record keeps them: what the caller (its tag) and the callee sent, over all streams. */
function cdrMedia(stats: RelayCallStats, callerTag: string): CdrMedia {
  const zero = (): CdrMediaCounters => ({ packets: 0, bytes: 0, lost: 0, jitterMs: 0 });
  const media: CdrMedia = { caller: zero(), callee: zero() };
  for (const side of stats.streams.flatMap((s) => s.sides)) {
    const c = side.tag === callerTag ? media.caller : media.callee;
    c.packets += side.rtp.packets;
    c.bytes += side.rtp.bytes;
    c.lost += side.lost;
    c.jitterMs = Math.max(c.jitterMs, Math.round(side.jitterMs * 100) / 100);
  }
  return media;
}

function mediaSummary(stats: RelayCallStats): Array<Record<string, unknown>> {
  return stats.streams.flatMap((s) => s.sides.map((side) => ({ media: s.media, tag: side.tag, port: side.localPort, packets: side.rtp.packets, bytes: side.rtp.bytes, lost: side.lost, jitterMs: side.jitterMs })));
}
