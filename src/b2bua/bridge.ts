import type { SipResponse } from '../message/index.js';
import { hasOptionTag, type Answer, type InviteSession, type OfferHandler, type SessionEnd, type UserAgent } from '../ua/index.js';

/** Which way an SDP crosses the bridge: from the caller's leg to the callee's, or back. */
export type Crossing = 'a-to-b' | 'b-to-a';

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
  /**
   * Rewrites every SDP that crosses (offers and answers, both ways): codec filtering, a media relay's addresses.
   * Default: passed as is.
   */
  sdp?: (sdp: string, crossing: Crossing) => string;
}

/** How a bridged call ended: by a BYE of the caller's leg (`a`), of the callee's (`b`), or a failure of the second leg. */
export interface BridgeEnd {
  by: 'a' | 'b' | 'local';
  reason: string;
}

/**
 * A call through us as a back-to-back user agent (RFC 3261 §6, RFC 7092): the caller's session (leg a, which we
 * answer) and a new call we place (leg b) with its own Call-ID, tags, Via and Contact. Provisional responses, the
 * final answer, CANCEL, re-INVITE and UPDATE offers (each relayed to the other leg and answered with its answer), INFO
 * and BYE cross from one leg to the other; REFER does not (the user agent's onRefer decides, 603 by default).
 */
export class Bridge {
  private endedResolve!: (e: BridgeEnd) => void;
  /** Resolves once both legs are over. */
  readonly ended: Promise<BridgeEnd>;

  private constructor(
    readonly a: InviteSession,
    readonly b: InviteSession,
  ) {
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
  }

  /**
   * Places leg b for the incoming call `a` from `ua` and ties the two together. Resolves with the bridge once leg b is
   * placed; `bridge.b.answered` tells how it went (leg a has been answered the same, except that a 401/407 of the
   * next hop, which our credentials could not answer, goes to the caller as 403).
   */
  static async connect(ua: UserAgent, a: InviteSession, options: BridgeOptions): Promise<Bridge> {
    const cross = options.sdp ?? ((sdp: string) => sdp);
    const offer = a.remoteSdp;
    const headers: Array<[string, string]> = [];
    for (const name of options.passHeaders ?? []) for (const value of a.invite.headers.getAll(name)) headers.push([name, value]);
    headers.push(...(options.headers ?? []));
    const from = options.from === undefined || options.from === 'caller' ? untagged(a) : options.from === 'ours' ? undefined : options.from;
    // No offer from the caller: leg b's callee offers in its 2xx; leg a gets that offer in our 2xx and its answer,
    // in its ACK, goes into leg b's ACK.
    const offerFromB: OfferHandler | undefined =
      offer === undefined
        ? (bOffer) =>
            new Promise((resolve) => {
              a.onChange = () => resolve(a.remoteSdp === undefined ? { status: 488, reason: 'Not Acceptable Here - the caller gave no answer' } : cross(a.remoteSdp, 'a-to-b'));
              a.accept(cross(bOffer, 'b-to-a'));
              void a.ended.then((e) => resolve({ status: 487, reason: `Request Terminated - ${e.reason}` }));
            })
        : undefined;
    const b = await ua.call(options.target, { sdp: offer === undefined ? undefined : cross(offer, 'a-to-b'), headers, from, onOffer: offerFromB });
    const bridge = new Bridge(a, b);
    bridge.tie(cross, offer === undefined);
    return bridge;
  }

  /** Ends both legs with BYE (or CANCEL and 487 before the answer). */
  async hangUp(): Promise<void> {
    if (this.b.state === 'Confirmed') await this.b.bye();
    else this.b.cancel();
    if (this.a.state === 'Confirmed') await this.a.bye();
    else this.a.reject(487, 'Request Terminated');
  }

  private tie(cross: (sdp: string, crossing: Crossing) => string, answeredByOfferHandler: boolean): void {
    const { a, b } = this;
    b.onProvisional = (r: SipResponse) => {
      if (r.status === 100 || a.state !== 'Early') return;
      const sdp = r.body.length > 0 ? cross(r.body.toString('utf8'), 'b-to-a') : undefined;
      // A reliable provisional's SDP is leg b's answer: it is leg a's too, so it goes reliably where a allows it.
      a.progress(r.status, { sdp, reliable: hasOptionTag(r, 'require', '100rel') || undefined });
    };
    void a.ended.then((e) => {
      // The caller gave up (CANCEL) or hung up: leg b follows.
      if (b.state === 'Calling' || b.state === 'Early') b.cancel();
      else if (b.state === 'Confirmed') void b.bye();
      this.finish({ by: 'a', reason: e.reason });
    });
    void b.answered.then((answer: Answer) => {
      if (answer.status >= 300) {
        const status = answer.status === 401 || answer.status === 407 ? 403 : answer.status;
        a.reject(status, status === answer.status ? answer.reason : 'Forbidden - the next hop did not take our credentials');
        this.finish({ by: 'local', reason: `leg b: ${answer.status} ${answer.reason}` });
        return;
      }
      if (!answeredByOfferHandler) a.accept(b.remoteSdp === undefined ? undefined : cross(b.remoteSdp, 'b-to-a'));
      // From now on leg b's offers are re-offers, relayed to leg a (until now its handler answered the first one).
      b.onOffer = relay(a, (sdp) => cross(sdp, 'b-to-a'), (sdp) => cross(sdp, 'a-to-b'));
    });
    void b.ended.then((e: SessionEnd) => {
      if (a.state === 'Confirmed') void a.bye();
      this.finish({ by: 'b', reason: e.reason });
    });
    a.onOffer = relay(b, (sdp) => cross(sdp, 'a-to-b'), (sdp) => cross(sdp, 'b-to-a'));
    a.onInfo = (request) => void forwardInfo(b, request.body, request.headers.get('content-type'));
    b.onInfo = (request) => void forwardInfo(a, request.body, request.headers.get('content-type'));
  }

  private finish(end: BridgeEnd): void {
    this.endedResolve(end);
  }
}

/**
 * An offer on one leg, sent to `other` as a re-INVITE (or UPDATE, as it came) and answered with the other leg's
 * answer, or refused with its failure.
 */
function relay(other: InviteSession, there: (sdp: string) => string, back: (sdp: string) => string): OfferHandler {
  return async (offer, carriedBy) => {
    const result = carriedBy === 'UPDATE' ? await other.update(there(offer)) : await other.reinvite(there(offer));
    if (result.status >= 300 || other.remoteSdp === undefined) return { status: result.status >= 300 ? result.status : 500, reason: result.reason };
    return back(other.remoteSdp);
  };
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
