import { reasonPhrase, type SipResponse } from '../message/index.js';
import { hasOptionTag, type Answer, type InviteSession, type OfferHandler, type OfferReply, type SessionEnd, type UserAgent } from '../ua/index.js';

/** Which way an SDP crosses the bridge: from the caller's leg to the callee's, or back. */
export type Crossing = 'a-to-b' | 'b-to-a';

/** What the SDP that crosses is: an offer, or the answer to one (a media relay sets up on offers, completes on answers). */
export type SdpKind = 'offer' | 'answer';

export interface BridgeOptions {
  /** Where the second leg goes (its Request-URI). */
  target: string;
  /**
   * Header fields of the caller's INVITE passed on to the second leg, by name (e.g. `P-Asserted-Identity`,
   * `Alert-Info`). Nothing else crosses: Via, Route, Record-Route, Contact, Call-ID and tags are each leg's own.
   */
  passHeaders?: readonly string[];
  /** Header fields added to the second leg's INVITE. */
  headers?: Array<[string, string]>;
  /** The second leg's From (a name-addr, no tag): default the caller's From (`'caller'`); `'ours'` for our AOR. */
  from?: 'caller' | 'ours' | string;
  /** The second leg's To (a name-addr, no tag); default the target. */
  to?: string;
  /** The second leg's Call-ID; default a fresh one. */
  callId?: string;
  /**
   * Rewrites every SDP that crosses (offers and answers, both ways): codec filtering, a media relay's addresses. It
   * may answer later (a promise). A throw or rejection refuses what carried the SDP, with the error's `status` when
   * it has one (a MediaRelayError's 488 or 503), else 500; the error's message is the reason. Default: passed as is.
   */
  sdp?: (sdp: string, crossing: Crossing, kind: SdpKind) => string | Promise<string>;
  /**
   * Failures of one leg reach the other with the standard reason phrase of their status instead of the text that
   * came (which may name hosts behind us: topology hiding). Default false.
   */
  standardReasons?: boolean;
  /** Hears what fails inside the bridge beyond any SIP outcome (a bug): to log it. Default: dropped, never thrown. */
  onError?: (err: unknown) => void;
}

/** How a bridged call ended: by a BYE of the caller's leg (`a`), of the callee's (`b`), or a failure of the second leg. */
export interface BridgeEnd {
  by: 'a' | 'b' | 'local';
  reason: string;
}

type Cross = (sdp: string, crossing: Crossing, kind: SdpKind) => Promise<string>;

/**
 * A call through us as a back-to-back user agent (RFC 3261 §6, RFC 7092): the caller's session (leg a, which we
 * answer) and a new call we place (leg b) with its own Call-ID, tags, Via and Contact. Provisional responses, the
 * final answer, CANCEL, re-INVITE and UPDATE offers (each relayed to the other leg and answered with its answer), INFO
 * and BYE cross from one leg to the other; REFER does not (the user agent's onRefer decides, 603 by default). PRACK,
 * ACK and CSeq numbers are each leg's own.
 */
export class Bridge {
  private endedResolve!: (e: BridgeEnd) => void;
  /** Resolves once both legs are over. */
  readonly ended: Promise<BridgeEnd>;
  /** Answers to leg b's INVITE cross in the order they came, however long their SDP takes to rewrite. */
  private queue: Promise<void> = Promise.resolve();
  /** Legs we are ending (BYE, CANCEL or a final answer): each is ended once, whoever asks. */
  private readonly ending = new Map<InviteSession, Promise<unknown>>();
  private finished = false;

  private constructor(
    private legA: InviteSession,
    private legB: InviteSession,
    private readonly cross: Cross,
    private readonly standardReasons: boolean,
    private readonly onError: (err: unknown) => void,
  ) {
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
  }

  /** The caller's leg (the session we answer), or whoever took its place in a transfer. */
  get a(): InviteSession {
    return this.legA;
  }

  /** The leg we placed, or whoever took its place in a transfer. */
  get b(): InviteSession {
    return this.legB;
  }

  /**
   * Places leg b for the incoming call `a` from `ua` and ties the two together. Resolves with the bridge once leg b is
   * placed; `bridge.b.answered` tells how it went (leg a has been answered the same, except that a 401/407 of the
   * next hop, which our credentials could not answer, goes to the caller as 403). Rejects, with leg a answered with
   * the error's status, when the caller's offer cannot cross (the `sdp` rewrite refused it).
   */
  static async connect(ua: UserAgent, a: InviteSession, options: BridgeOptions): Promise<Bridge> {
    const rewrite = options.sdp;
    const cross: Cross = rewrite ? async (sdp, crossing, kind) => rewrite(sdp, crossing, kind) : async (sdp) => sdp;
    const offer = a.remoteSdp;
    const headers: Array<[string, string]> = [];
    for (const name of options.passHeaders ?? []) for (const value of a.invite.headers.getAll(name)) headers.push([name, value]);
    headers.push(...(options.headers ?? []));
    const from = options.from === undefined || options.from === 'caller' ? untagged(a) : options.from === 'ours' ? undefined : options.from;
    let crossed: string | undefined;
    if (offer !== undefined) {
      try {
        crossed = await cross(offer, 'a-to-b', 'offer');
      } catch (err) {
        const refused = refusal(err);
        a.reject(refused.status, refused.reason);
        throw err;
      }
    }
    // No offer from the caller: leg b's callee offers in its 2xx; leg a gets that offer in our 2xx and its answer,
    // in its ACK, goes into leg b's ACK.
    const offerFromB: OfferHandler | undefined =
      offer === undefined
        ? (bOffer) =>
            new Promise<OfferReply>((resolve) => {
              a.onChange = () => {
                if (a.remoteSdp === undefined) resolve({ status: 488, reason: 'Not Acceptable Here - the caller gave no answer' });
                else cross(a.remoteSdp, 'a-to-b', 'answer').then(resolve, (err: unknown) => resolve(refusal(err)));
              };
              cross(bOffer, 'b-to-a', 'offer').then(
                (sdp) => a.accept(sdp),
                (err: unknown) => {
                  const refused = refusal(err);
                  a.reject(refused.status, refused.reason);
                  resolve(refused);
                },
              );
              void a.ended.then((e) => resolve({ status: 487, reason: `Request Terminated - ${e.reason}` }));
            })
        : undefined;
    const b = await ua.call(options.target, { sdp: crossed, headers, from, to: options.to, callId: options.callId, onOffer: offerFromB });
    const bridge = new Bridge(a, b, cross, options.standardReasons ?? false, options.onError ?? (() => undefined));
    bridge.tie(offer === undefined);
    return bridge;
  }

  /** Ends both legs with BYE (or CANCEL and 487 before the answer); resolves once both are over. */
  /** Ends both legs (BYE, or CANCEL/487 before the answer); `headers` go into the BYEs (a Reason, RFC 3326). */
  async hangUp(headers: Array<[string, string]> = []): Promise<void> {
    await Promise.all([this.endLeg(this.legB, headers), this.endLeg(this.legA, headers)]);
  }

  /**
   * Puts `by` in the place of leg `old` (a transfer we carried out: the other party now talks to `by`). From now on
   * offers, INFO and the end of either cross between the other leg and `by`; `old` is let go, not hung up.
   */
  replace(old: InviteSession, by: InviteSession): void {
    if (old === this.legA) this.legA = by;
    else if (old === this.legB) this.legB = by;
    else throw new Error('replace: not a leg of this bridge');
    old.onOffer = undefined;
    old.onInfo = undefined;
    this.suspended.delete(old);
    this.wire(by);
    this.after(by.ended, (e) => this.legEnded(by, e));
  }

  /**
   * While `leg` is being replaced (a transfer under way: its party may hang up before the new leg answers), its end
   * does not end the other leg. `resume` undoes that when no replacement came: a leg that ended meanwhile then ends
   * the other one.
   */
  suspend(leg: InviteSession): { resume(): void } {
    this.suspended.add(leg);
    return {
      resume: () => {
        if (!this.suspended.delete(leg) || (leg !== this.legA && leg !== this.legB)) return;
        if (leg.state === 'Terminated') this.legEnded(leg, { by: 'remote', reason: 'the transfer failed after the transferor left' });
      },
    };
  }

  private readonly suspended = new Set<InviteSession>();

  private tie(answeredByOfferHandler: boolean): void {
    const { legA: a, legB: b } = this;
    const offeredByA = !answeredByOfferHandler;
    b.onProvisional = (r: SipResponse) => {
      if (r.status === 100) return;
      // Without the caller's offer an SDP here is leg b's offer, answered through the offer handler.
      const body = offeredByA && r.body.length > 0 ? r.body.toString('utf8') : undefined;
      // A reliable provisional's SDP is leg b's answer: it is leg a's too, so it goes reliably where a allows it.
      const reliable = hasOptionTag(r, 'require', '100rel') || undefined;
      this.inOrder(async () => {
        const sdp = body === undefined ? undefined : await this.cross(body, 'b-to-a', 'answer').catch(() => undefined);
        if (this.legB === b && this.legA.state === 'Early') this.legA.progress(r.status, { sdp, reliable });
      });
    };
    this.after(a.ended, (e) => this.legEnded(a, e));
    this.after(b.ended, (e) => this.legEnded(b, e));
    this.after(b.answered, (answer) => this.inOrder(() => this.answered(b, answer, answeredByOfferHandler)));
    a.onOffer = this.relayOffers(a);
    a.onInfo = (request) => void forwardInfo(this.other(a), request.body, request.headers.get('content-type'));
    b.onInfo = (request) => void forwardInfo(this.other(b), request.body, request.headers.get('content-type'));
  }

  /** Leg b's final answer, passed to leg a (which it may find gone: a CANCEL that crossed a 2xx ends leg b). */
  private async answered(b: InviteSession, answer: Answer, answeredByOfferHandler: boolean): Promise<void> {
    if (this.legB !== b) return;
    const a = this.legA;
    if (answer.status >= 300) {
      const status = answer.status === 401 || answer.status === 407 ? 403 : answer.status;
      const reason = status !== answer.status ? 'Forbidden - the next hop did not take our credentials' : this.reason(status, answer.reason);
      a.reject(status, reason);
      this.finish({ by: 'local', reason: `leg b: ${answer.status} ${answer.reason}` });
      return;
    }
    if (!answeredByOfferHandler) {
      let sdp: string | undefined;
      if (b.remoteSdp !== undefined && a.state === 'Early') {
        try {
          sdp = await this.cross(b.remoteSdp, 'b-to-a', 'answer');
        } catch (err) {
          const refused = refusal(err);
          a.reject(refused.status, refused.reason);
          void this.endLeg(b);
          this.finish({ by: 'local', reason: `leg b's answer did not cross: ${refused.status} ${refused.reason}` });
          return;
        }
      }
      if (a.state !== 'Early') {
        // The caller gave up (its CANCEL crossed leg b's 2xx): leg b, answered all the same, is ended with BYE.
        void this.endLeg(b);
        return;
      }
      a.accept(sdp);
    } else if (a.state === 'Terminated') {
      void this.endLeg(b);
      return;
    }
    // From now on leg b's offers are re-offers, relayed to leg a (until now its handler answered the first one).
    b.onOffer = this.relayOffers(b);
  }

  /** One leg is over: the other follows (BYE, or CANCEL before its answer). */
  private legEnded(leg: InviteSession, e: SessionEnd): void {
    if ((leg !== this.legA && leg !== this.legB) || this.suspended.has(leg)) return;
    const other = this.other(leg);
    // Leg b failing before the answer: `answered` passes the failure to the caller.
    if (leg === this.legB && other.state === 'Early' && other.side === 'uas') return;
    this.ending.set(leg, Promise.resolve());
    void this.endLeg(other);
    this.finish({ by: leg === this.legA ? 'a' : 'b', reason: e.reason });
  }

  /** Ends `leg` once: BYE when it is up, CANCEL while we place it, 487 while we answer it. */
  private endLeg(leg: InviteSession, headers: Array<[string, string]> = []): Promise<unknown> {
    const known = this.ending.get(leg);
    if (known) return known;
    let done: Promise<unknown> = Promise.resolve();
    if (leg.state === 'Confirmed') done = leg.bye(headers);
    else if (leg.state !== 'Terminated') {
      if (leg.side === 'uac') {
        leg.cancel();
        // A CANCEL that crossed a 2xx: the leg comes up all the same, and is hung up then.
        done = leg.answered.then((answer) => (answer.status < 300 ? leg.bye() : undefined));
      } else leg.reject(487, 'Request Terminated');
    }
    this.ending.set(leg, done);
    return done;
  }

  private wire(leg: InviteSession): void {
    leg.onOffer = this.relayOffers(leg);
    leg.onInfo = (request) => void forwardInfo(this.other(leg), request.body, request.headers.get('content-type'));
  }

  private other(leg: InviteSession): InviteSession {
    return leg === this.legA ? this.legB : this.legA;
  }

  /**
   * An offer on leg `from`, sent to the other leg as a re-INVITE (or UPDATE, as it came) and answered with that leg's
   * answer, or refused with its failure.
   */
  private relayOffers(from: InviteSession): OfferHandler {
    return async (offer, carriedBy) => {
      if (from !== this.legA && from !== this.legB) return { status: 481, reason: 'Call/Transaction Does Not Exist' };
      const to = this.other(from);
      const there: Crossing = from === this.legA ? 'a-to-b' : 'b-to-a';
      const back: Crossing = there === 'a-to-b' ? 'b-to-a' : 'a-to-b';
      let sdp: string;
      try {
        sdp = await this.cross(offer, there, 'offer');
      } catch (err) {
        return refusal(err);
      }
      const result = carriedBy === 'UPDATE' ? await to.update(sdp) : await to.reinvite(sdp);
      if (result.status >= 300 || to.remoteSdp === undefined) {
        const status = result.status >= 300 ? result.status : 500;
        return { status, reason: this.reason(status, result.reason) };
      }
      try {
        return await this.cross(to.remoteSdp, back, 'answer');
      } catch (err) {
        return refusal(err);
      }
    };
  }

  private reason(status: number, reason: string): string {
    return this.standardReasons ? reasonPhrase(status) : reason;
  }

  private inOrder(step: () => Promise<void>): void {
    this.queue = this.queue.then(step).catch((err: unknown) => this.onError(err));
  }

  /** `then` whose failure goes to onError rather than the event loop. */
  private after<T>(promise: Promise<T>, step: (value: T) => unknown): void {
    promise.then(step).catch((err: unknown) => this.onError(err));
  }

  private finish(end: BridgeEnd): void {
    if (this.finished) return;
    this.finished = true;
    this.endedResolve(end);
  }
}

/** The status and reason an error of the SDP rewrite refuses with: its own `status` (a MediaRelayError's), else 500. */
function refusal(err: unknown): { status: number; reason: string } {
  const status = (err as { status?: unknown } | null)?.status;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof status === 'number' && status >= 400 && status <= 699) return { status, reason: `${reasonPhrase(status)} - ${message}`.slice(0, 120) };
  return { status: 500, reason: `Server Internal Error - ${message}`.slice(0, 120) };
}

function forwardInfo(other: InviteSession, body: Buffer, contentType: string | undefined): Promise<number> {
  return other.info(body.toString('utf8'), contentType ?? 'application/octet-stream');
}

/** The caller's From without its tag: the second leg gets a tag of its own. */
function untagged(a: InviteSession): string {
  const from = a.invite.from.clone();
  from.tag = undefined;
  return from.toString();
}
