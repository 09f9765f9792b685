import { createResponse, Headers, serialize, SipRequest, SipResponse } from '../message/index.js';
import type { Dialog } from '../dialog/index.js';
import { answerDirection, audioDirection, nextVersion, rejectingAnswer, withDirection } from '../sdp/index.js';
import {
  addVia,
  type ClientTransaction,
  type InviteClientTransaction,
  type InviteServerTransaction,
  type ServerTransaction,
} from '../transaction/index.js';
import type { Destination } from '../transport/types.js';
import type { TimerHandle } from '../util/clock.js';
import { newTag } from '../util/ids.js';
import { randomInt } from 'node:crypto';
import { exchangeWithCredentials, type LocalOutcome } from './exchange.js';
import { OfferAnswer, type OfferCarrier, type OfferHandler, type OfferReply } from './offer-answer.js';
import { hasOptionTag, parseRAck, ReliableProvisionals } from './reliable-provisional.js';
import { parseMinSE, parseSessionExpires, SessionTimer, type Refresher } from './session-timer.js';
import { parseReferTo, referTo, sipfrag, SIPFRAG, sipfragStatus } from './refer.js';
import { UA_ALLOW, UA_EXTENSIONS, type UaCore } from './ua-core.js';

export type SessionState = 'Calling' | 'Early' | 'Confirmed' | 'Terminated';

export interface SessionEnd {
  /** Who ended it: a BYE from us or from the peer, or a failure before or after it was answered. */
  by: 'local' | 'remote' | 'failure';
  reason: string;
  /** The Reason header (RFC 3326) of the peer's BYE, when it gave one (why a server ended the call). */
  cause?: string;
}

export interface Answer {
  status: number;
  reason: string;
}

export interface ProgressOptions {
  /** SDP for the provisional response: the answer to the INVITE's offer, or our offer when it had none. */
  sdp?: string;
  /**
   * Send it reliably (RFC 3262: RSeq, retransmitted until PRACK). Default: when the caller requires 100rel, or
   * supports it and the response carries SDP. Ignored (sent unreliably) when the caller does not support 100rel.
   */
  reliable?: boolean;
}

/** How often a request refused with 491 (glare) is tried again before its 491 is the answer. */
const GLARE_ATTEMPTS = 3;

/** How long a transfer we asked for may take to report its outcome (a referred call may ring for minutes). */
const TRANSFER_REPORT_MS = 180_000;

/** The implicit subscription's lifetime we grant the referrer (RFC 3515 §2.4.4), seconds. */
const REFER_SUBSCRIPTION_S = 180;

/**
 * An INVITE session (RFC 3261 §13, §14, §15) from either side, with its offer/answer exchanges (RFC 3264, offers in
 * the INVITE or in the 2xx with the answer in the ACK), reliable provisional responses (RFC 3262), UPDATE (RFC 3311),
 * session timers (RFC 4028) and INFO (RFC 6086).
 *
 * As UAC: the ACK for a 2xx (sent again for every retransmitted 2xx, §13.2.2.4), PRACK for each reliable provisional,
 * CANCEL before the final answer (§9.1), a second fork's 2xx ACKed and ended. As UAS: the 2xx retransmitted at T1,
 * 2·T1 ... up to T2 until the ACK, and a BYE if none comes in 64·T1 (§13.3.1.4).
 */
export class InviteSession {
  private current: SessionState;
  private dialogOf: Dialog | undefined;
  private answeredResolve!: (a: Answer) => void;
  private endedResolve!: (e: SessionEnd) => void;
  /** Resolves at the final answer to the INVITE: a 2xx (the session is up) or the failure. */
  readonly answered: Promise<Answer>;
  /** Resolves once, when the session is over (BYE either way, a failure, no ACK, session timer expiry). */
  readonly ended: Promise<SessionEnd>;
  private readonly oa = new OfferAnswer();
  /** Sends the ACK for our INVITE's 2xx (again for each retransmission of it). */
  private ack: (() => void) | undefined;
  private retransmit: TimerHandle | undefined;
  private giveUp: TimerHandle | undefined;
  private readonly timer: SessionTimer;
  /** Our re-INVITE or UPDATE is waiting for its final answer (one from the peer meanwhile is glare: 491). */
  private changing = false;
  /** The peer allows UPDATE (its Allow header): session refreshes go as UPDATE, else as re-INVITE. */
  private peerAllowsUpdate = false;
  /** As UAC: the last RSeq PRACKed per early dialog (RFC 3262 §4). */
  private readonly rseqs = new Map<string, number>();
  private authRetries = 0;
  private intervalRetries = 0;
  private clientTransaction: ClientTransaction | undefined;
  private serverTransaction: InviteServerTransaction | undefined;
  private provisionals: ReliableProvisionals | undefined;
  private localTag = '';
  /** The outcome of our REFER, reported by the transferee's NOTIFYs (RFC 3515 §2.4.5). */
  private transferReport: ((outcome: Answer) => void) | undefined;
  private transferProgress: ((status: number) => void) | undefined;
  /** The dialog (of the session it replaces, RFC 3891) when this call came in with Replaces. */
  replaces: InviteSession | undefined;

  /**
   * Answers an offer from the peer (in a re-INVITE, an UPDATE, a 2xx to an INVITE without one, a reliable
   * provisional): an SDP answer or a refusal. Without it, an offer is answered with our current SDP, its direction
   * the answer to the offer's (RFC 3264 §6.1: sendonly is answered recvonly, so a hold is accepted).
   */
  onOffer: OfferHandler | undefined;
  /** Called when the peer changed the session (an offer it made was answered): read remoteSdp, held. */
  onChange: (() => void) | undefined;
  /** As UAC: each provisional response (101-199) to our INVITE. */
  onProvisional: ((response: SipResponse) => void) | undefined;
  /** An INFO from the peer (RFC 6086); returns the status to answer (default 200). */
  onInfo: ((request: SipRequest) => number | void) | undefined;

  private constructor(
    private readonly core: UaCore,
    readonly side: 'uac' | 'uas',
    /** The INVITE that made the session (as UAC: the last one sent, with credentials after a 401/407). */
    private inviteSent: SipRequest,
  ) {
    this.current = side === 'uac' ? 'Calling' : 'Early';
    const body = bodyOf(inviteSent);
    if (body !== undefined) {
      if (side === 'uac') this.oa.offerSent(body);
      else this.oa.offerReceived(body);
    }
    this.answered = new Promise((resolve) => (this.answeredResolve = resolve));
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
    this.timer = new SessionTimer(
      core.clock,
      () => void this.refresh(),
      () => void this.hangUp({ by: 'failure', reason: 'session timer expired (RFC 4028): no refresh' }),
    );
  }

  get state(): SessionState {
    return this.current;
  }

  /** As UAS: our 2xx is being retransmitted because its ACK has not come yet (§13.3.1.4). */
  get awaitingAck(): boolean {
    return this.retransmit !== undefined;
  }

  get invite(): SipRequest {
    return this.inviteSent;
  }

  get dialog(): Dialog | undefined {
    return this.dialogOf;
  }

  /** The peer has put us on hold: its last description sends nothing (sendonly or inactive, RFC 3264 §8.4). */
  get held(): boolean {
    const d = audioDirection(this.remoteSdp);
    return d === 'sendonly' || d === 'inactive';
  }

  /** Our SDP in force (the last offer or answer of ours that an exchange completed), else the offer we made. */
  get localSdp(): string | undefined {
    return this.oa.local ?? (this.oa.phase === 'local-offer' ? this.oa.pendingOffer : undefined);
  }

  /** The peer's SDP in force, else the offer it made and we have not answered yet. */
  get remoteSdp(): string | undefined {
    return this.oa.remote ?? (this.oa.phase === 'remote-offer' ? this.oa.pendingOffer : undefined);
  }

  /** The session interval in force (RFC 4028), seconds, and whether we refresh; undefined without a session timer. */
  get sessionExpires(): { interval: number; refresher: 'local' | 'remote' } | undefined {
    const s = this.timer.state;
    return s && { interval: s.interval, refresher: s.weRefresh ? 'local' : 'remote' };
  }

  // ---- UAC ----

  /** Sends `invite` (built by the caller; an offer in it or none) to `to` and follows the answers. */
  static call(core: UaCore, invite: SipRequest, to: Destination, onOffer?: OfferHandler): InviteSession {
    const s = new InviteSession(core, 'uac', invite);
    s.onOffer = onOffer;
    s.placeCall(to);
    return s;
  }

  /** A call that could not be placed (no address for its Request-URI): answered and ended with `status`. */
  static failed(core: UaCore, invite: SipRequest, status: number, reason: string): InviteSession {
    const s = new InviteSession(core, 'uac', invite);
    s.fail(status, reason);
    return s;
  }

  private placeCall(to: Destination): void {
    try {
      addVia(this.invite, this.core.sender, to);
      this.clientTransaction = this.core.transactions.sendRequest(this.invite, to, {
        onResponse: (response) => this.onInviteResponse(response, to),
        onTimeout: () => this.fail(408, 'Request Timeout - no final answer'),
        onTransportError: (err) => this.fail(503, `Service Unavailable - ${err.message}`),
      });
    } catch (err) {
      this.fail(503, `Service Unavailable - ${(err as Error).message}`);
    }
  }

  private onInviteResponse(response: SipResponse, to: Destination): void {
    const dialog = this.core.dialogs.fromResponse(this.invite, response);
    if (response.status < 200) {
      if (response.status > 100) this.onProvisional?.(response);
      if (dialog && this.current === 'Calling') this.current = 'Early';
      if (dialog && response.status > 100 && hasOptionTag(response, 'require', '100rel')) this.reliableProvisional(dialog, response);
      return;
    }
    if (this.current === 'Terminated') {
      // A 2xx after we gave up (a CANCEL that crossed it): ACK it and hang up (§15).
      if (dialog && response.status < 300) {
        this.acker(dialog, this.invite.cseq.seq)();
        void this.byeOn(dialog);
      }
      return;
    }
    if ((response.status === 401 || response.status === 407) && this.authRetries < 2) {
      // §22.2: the same INVITE again with credentials, CSeq one higher, in a new transaction.
      const retry = this.core.withCredentials(this.inviteSent, response);
      if (retry !== undefined) {
        this.authRetries++;
        this.inviteSent = retry;
        this.placeCall(to);
        return;
      }
    }
    if (response.status === 422 && this.intervalRetries < 2) {
      // RFC 4028 §7.4: the session interval was too small; again with the callee's Min-SE.
      const minSE = parseMinSE(response.headers.get('min-se'));
      if (minSE !== undefined) {
        this.intervalRetries++;
        this.inviteSent = this.again(this.inviteSent, (h) => {
          h.set('Session-Expires', String(minSE));
          h.set('Min-SE', String(minSE));
        });
        this.placeCall(to);
        return;
      }
    }
    if (response.status >= 300) {
      this.fail(response.status, response.reason);
      return;
    }
    if (dialog === undefined) {
      // A 2xx without a To tag or a Contact makes no dialog: nothing to ACK or hang up, so the call fails here.
      if (this.dialogOf === undefined) this.fail(502, 'Bad Gateway - a 2xx without a To tag or Contact');
      return;
    }
    if (this.dialogOf !== undefined && dialog !== this.dialogOf) {
      // A second fork answered 2xx too: ACK it and end it (§13.2.2.4), the call stays with the first.
      this.acker(dialog, this.invite.cseq.seq)();
      void this.byeOn(dialog);
      return;
    }
    if (this.dialogOf !== undefined) {
      this.ack?.(); // a retransmission of the 2xx: our ACK was lost
      return;
    }
    this.dialogOf = dialog;
    this.core.sessions.set(dialog.key, this);
    for (const other of this.core.dialogs.ofRequest(this.invite)) if (other !== dialog && other.state === 'Early') this.core.dialogs.end(other);
    this.peerAllowsUpdate = allows(response, 'UPDATE');
    const body = bodyOf(response);
    const confirm = (ackBody: string | undefined, refused: string | undefined): void => {
      this.ack = this.acker(dialog, this.invite.cseq.seq, ackBody);
      this.ack();
      this.current = 'Confirmed';
      this.answeredResolve({ status: response.status, reason: response.reason });
      if (refused !== undefined) {
        void this.hangUp({ by: 'failure', reason: `the offer in the 2xx was refused: ${refused}` });
        return;
      }
      this.startTimerFrom(response, 'uac');
    };
    if (this.oa.phase === 'stable' && this.oa.local === undefined && body !== undefined) {
      // §13.2.2.4: our INVITE had no offer, so the 2xx carries one and the ACK the answer (sent once it is known;
      // the 2xx's retransmissions meanwhile go unanswered); an offer we cannot take still gets a valid answer (every
      // stream rejected), then a BYE.
      void this.answerOffer(body, 'response').then((reply) =>
        typeof reply === 'string' ? confirm(reply, undefined) : confirm(rejectingAnswer(body, '0.0.0.0'), `${reply.status} ${reply.reason}`),
      );
      return;
    }
    if (this.oa.phase === 'local-offer' && body !== undefined) this.oa.answerReceived(body);
    confirm(undefined, undefined);
  }

  /** RFC 3262 §4: PRACK each reliable provisional once, in RSeq order; its SDP is an answer or (no offer sent) an offer. */
  private reliableProvisional(dialog: Dialog, response: SipResponse): void {
    const rseq = Number(response.headers.get('rseq'));
    if (!Number.isInteger(rseq) || rseq < 1) return;
    const last = this.rseqs.get(dialog.key);
    if (last !== undefined && rseq !== last + 1) return; // a retransmission, or out of order: not acknowledged
    this.rseqs.set(dialog.key, rseq);
    const body = bodyOf(response);
    const prack = (sdp: string | undefined): void => {
      const request = dialog.createRequest('PRACK', {
        headers: [['RAck', `${rseq} ${this.invite.cseq.seq} INVITE`]],
        body: sdp === undefined ? undefined : Buffer.from(sdp),
        contentType: 'application/sdp',
      });
      void this.inDialogExchange(dialog, request);
    };
    if (body !== undefined && this.oa.phase === 'stable' && this.oa.local === undefined) {
      // An offer in the provisional (our INVITE had none): the answer goes in the PRACK.
      void this.answerOffer(body, 'response').then((reply) => prack(typeof reply === 'string' ? reply : rejectingAnswer(body, '0.0.0.0')));
      return;
    }
    if (body !== undefined && this.oa.phase === 'local-offer') this.oa.answerReceived(body);
    prack(undefined);
  }

  /**
   * §13.2.2.4: the ACK for 2xx responses to the INVITE of CSeq `cseq` in `dialog`, end to end along the dialog's route
   * (no transaction): built and sent the first time the returned function is called, the same bytes after.
   */
  private acker(dialog: Dialog, cseq: number, sdp?: string): () => void {
    let bytes: Buffer | undefined;
    return () => {
      const to = this.core.destinationOf(dialog);
      if (bytes !== undefined) {
        this.core.sender.resend(bytes, to).catch(() => undefined);
        return;
      }
      const ack = dialog.createRequest('ACK', { cseq, body: sdp === undefined ? undefined : Buffer.from(sdp), contentType: 'application/sdp' });
      addVia(ack, this.core.sender, to);
      bytes = serialize(ack);
      this.core.sender.send(ack, to, bytes).catch(() => undefined);
    };
  }

  /** §9.1: cancels the call before its final answer; the INVITE then ends with 487. Returns whether it could. */
  cancel(): boolean {
    if (this.side !== 'uac' || this.clientTransaction === undefined || this.current === 'Confirmed' || this.current === 'Terminated') return false;
    return this.core.transactions.cancel(this.clientTransaction as InviteClientTransaction);
  }

  // ---- UAS ----

  /** An INVITE for us; the application answers it with `ring`/`progress`, `accept` or `reject`. */
  static incoming(core: UaCore, invite: SipRequest, st: InviteServerTransaction): InviteSession {
    const s = new InviteSession(core, 'uas', invite);
    s.serverTransaction = st;
    s.localTag = newTag();
    s.peerAllowsUpdate = allows(invite, 'UPDATE');
    return s;
  }

  /**
   * RFC 4028 §8.1: an INVITE whose Session-Expires is below our Min-SE is refused 422 with ours, before any session
   * exists. Returns the refusal, or undefined.
   */
  static refusal(core: UaCore, invite: SipRequest): SipResponse | undefined {
    const unsupported = invite.headers.list('require').filter((t) => !UA_EXTENSIONS.includes(t.toLowerCase()));
    if (unsupported.length > 0) {
      // RFC 3261 §8.2.2.3: 420 with the extensions we lack.
      return createResponse(invite, 420, { headers: [['Unsupported', unsupported.join(', ')]] });
    }
    const config = core.sessionTimer;
    const se = parseSessionExpires(invite.headers.get('session-expires'));
    if (config && se && se.delta < config.minSE) {
      return createResponse(invite, 422, { headers: [['Min-SE', String(config.minSE)]] });
    }
    return undefined;
  }

  /** 180 Ringing (with our tag: an early dialog on the caller's side); see progress for the options. */
  ring(options: ProgressOptions = {}): void {
    this.progress(180, options);
  }

  /** A provisional response (180, 183 Session Progress ...), reliably when the caller supports it (RFC 3262). */
  progress(status = 183, options: ProgressOptions = {}): void {
    const st = this.serverTransaction;
    if (this.side !== 'uas' || this.current !== 'Early' || st === undefined || status <= 100 || status >= 200) return;
    const invite = this.invite;
    const requires = hasOptionTag(invite, 'require', '100rel');
    const supports = requires || hasOptionTag(invite, 'supported', '100rel');
    const reliable = supports && (options.reliable ?? (requires || options.sdp !== undefined));
    let sdp = options.sdp;
    if (reliable && sdp !== undefined) {
      // A reliable provisional's SDP takes part in offer/answer (§5): the answer to the INVITE's offer, or our offer.
      if (this.oa.phase === 'remote-offer') this.oa.answerSent(sdp);
      else if (this.oa.phase === 'stable' && this.oa.local === undefined) this.oa.offerSent(sdp);
      else sdp = undefined; // the exchange is done: later provisionals carry no SDP
    }
    const headers: Array<[string, string]> = [['Contact', this.core.contact]];
    if (sdp !== undefined) headers.push(['Content-Type', 'application/sdp']);
    const response = createResponse(invite, status, { toTag: this.localTag, headers, body: sdp === undefined ? undefined : Buffer.from(sdp) });
    if (!reliable) {
      st.respond(response);
      return;
    }
    // The early dialog exists on our side too: the PRACK (and an UPDATE) arrive in it.
    if (this.dialogOf === undefined) {
      this.dialogOf = this.core.dialogs.fromRequest(invite, this.localTag, true);
      this.core.sessions.set(this.dialogOf.key, this);
    }
    response.headers.append('Allow', UA_ALLOW);
    this.provisionals ??= new ReliableProvisionals(
      this.core.clock,
      this.core.timers.T1,
      (r) => st.respond(r),
      () => this.reject(504, 'Server Time-out - no PRACK for our reliable provisional response'),
    );
    this.provisionals.send(response, sdp !== undefined);
  }

  /**
   * 200 OK, retransmitted until the ACK (§13.3.1.4). `sdp` is the answer to the INVITE's offer, or our offer when it
   * had none (the answer then comes in the ACK); omitted when the exchange was completed in a reliable provisional.
   * While a reliable provisional with SDP waits for its PRACK the 2xx waits too (RFC 3262 §3).
   */
  accept(sdp?: string): void {
    const st = this.serverTransaction;
    if (this.side !== 'uas' || this.current !== 'Early' || st === undefined || this.accepting) return;
    this.accepting = true;
    const send = (): void => {
      if (this.current !== 'Early') return;
      this.provisionals?.stop();
      let body = sdp;
      if (this.oa.phase === 'remote-offer') {
        body ??= this.defaultAnswer(this.oa.pendingOffer!);
        if (body !== undefined) this.oa.answerSent(body);
      } else if (this.oa.phase === 'stable' && this.oa.local === undefined) {
        if (body !== undefined) this.oa.offerSent(body);
      } else body = undefined;
      if (this.dialogOf === undefined) {
        this.dialogOf = this.core.dialogs.fromRequest(this.invite, this.localTag);
        this.core.sessions.set(this.dialogOf.key, this);
      } else this.dialogOf.confirm();
      this.current = 'Confirmed';
      this.answerReliably(this.invite, st, body, this.timerHeaders(this.invite), 'no ACK for our 2xx');
      this.answeredResolve({ status: 200, reason: 'OK' });
    };
    if (this.provisionals) this.provisionals.whenSdpAcknowledged(send);
    else send();
  }

  private accepting = false;

  /**
   * §13.3.1.4: a 2xx with our Contact and `sdp`, sent again at T1, 2·T1 ... T2 until the ACK (acked), and the session
   * ended with a BYE when none comes in 64·T1.
   */
  private answerReliably(request: SipRequest, st: InviteServerTransaction, sdp: string | undefined, extra: Array<[string, string]>, noAck: string): void {
    const headers: Array<[string, string]> = [['Contact', this.core.contact], ['Allow', UA_ALLOW], ['Supported', UA_EXTENSIONS.join(', ')], ...extra];
    if (sdp !== undefined) headers.push(['Content-Type', 'application/sdp']);
    // Our To tag: as UAS it is the dialog's local tag; as UAC (a re-INVITE) our From tag is already in the To.
    const ok = createResponse(request, 200, { toTag: this.localTag || undefined, headers, body: sdp === undefined ? undefined : Buffer.from(sdp) });
    st.respond(ok);
    const { T1, T2 } = this.core.timers;
    const resend = (interval: number): void => {
      this.retransmit = this.core.clock.setTimer(interval, () => {
        st.respond(ok);
        resend(Math.min(2 * interval, T2));
      });
    };
    this.stopRetransmitting();
    resend(T1);
    this.giveUp = this.core.clock.setTimer(64 * T1, () => {
      this.stopRetransmitting();
      void this.hangUp({ by: 'failure', reason: noAck });
    });
  }

  /** A final non-2xx answer (486 Busy Here by default). */
  reject(status = 486, reason?: string): void {
    if (this.side !== 'uas' || this.current !== 'Early') return;
    this.provisionals?.stop();
    this.serverTransaction?.respond(createResponse(this.invite, status, { toTag: this.localTag, reason }));
    this.fail(status, reason ?? `${status}`);
  }

  /** The ACK for our 2xx arrived; when our 2xx made an offer, it carries the answer. */
  acked(ack: SipRequest): void {
    if (this.retransmit === undefined) return; // a retransmitted ACK
    this.stopRetransmitting();
    if (this.oa.phase !== 'local-offer') return;
    const body = bodyOf(ack);
    if (body === undefined) {
      this.oa.rollBack();
      void this.hangUp({ by: 'failure', reason: 'our offer in the 2xx got no answer in the ACK' });
      return;
    }
    this.oa.answerReceived(body);
    this.onChange?.();
  }

  /** The caller's CANCEL arrived before we answered: 487 (§9.2). */
  cancelled(): void {
    if (this.current !== 'Early' || this.serverTransaction === undefined) return;
    this.provisionals?.stop();
    this.serverTransaction.respond(createResponse(this.invite, 487, { toTag: this.localTag }));
    this.fail(487, 'Request Terminated');
  }

  // ---- changes within the session, either side ----

  /**
   * A re-INVITE from the peer (§14.2): its offer answered (onOffer, else from our SDP), or, without one, our SDP
   * offered in the 2xx and the answer awaited in the ACK. 500 with Retry-After while our 2xx to an earlier INVITE
   * waits for its ACK or an offer of the peer's is unanswered, 491 while our own re-INVITE or UPDATE is pending.
   */
  reinvited(request: SipRequest, st: InviteServerTransaction): void {
    if (this.current !== 'Confirmed') {
      st.respond(createResponse(request, 481));
      return;
    }
    if (this.retransmit !== undefined || this.oa.phase === 'remote-offer') {
      st.respond(createResponse(request, 500, { reason: 'Server Internal Error - the previous INVITE is not acknowledged yet', headers: [['Retry-After', String(randomInt(0, 11))]] }));
      return;
    }
    if (this.changing || this.oa.phase === 'local-offer') {
      st.respond(createResponse(request, 491));
      return;
    }
    if (allows(request, 'UPDATE')) this.peerAllowsUpdate = true;
    const offer = bodyOf(request);
    if (offer === undefined) {
      const sdp = this.oa.local === undefined ? undefined : nextVersion(this.oa.local);
      if (sdp !== undefined) this.oa.offerSent(sdp);
      this.answerReliably(request, st, sdp, this.timerHeaders(request), 'no ACK for our 2xx to a re-INVITE');
      return;
    }
    void this.answerOffer(offer, 'INVITE').then((reply) => {
      if (this.current !== 'Confirmed') st.respond(createResponse(request, 481));
      else if (typeof reply !== 'string') st.respond(createResponse(request, reply.status, { reason: reply.reason }));
      else {
        this.answerReliably(request, st, reply, this.timerHeaders(request), 'no ACK for our 2xx to a re-INVITE');
        this.onChange?.();
      }
    });
  }

  /** PRACK, UPDATE or INFO in the dialog (early or confirmed). */
  inDialog(request: SipRequest, st: ServerTransaction): void {
    switch (request.method) {
      case 'PRACK':
        this.pracked(request, st);
        return;
      case 'UPDATE':
        this.updated(request, st);
        return;
      case 'REFER':
        this.referred(request, st);
        return;
      case 'NOTIFY':
        this.notified(request, st);
        return;
      case 'INFO': {
        const status = this.current === 'Confirmed' || this.current === 'Early' ? (this.onInfo?.(request) ?? 200) : 481;
        st.respond(createResponse(request, status));
        return;
      }
      default:
        st.respond(createResponse(request, 501, { headers: [['Allow', UA_ALLOW]] }));
    }
  }

  /** RFC 3262 §3: a PRACK for our reliable provisional (with the answer when the provisional made an offer). */
  private pracked(request: SipRequest, st: ServerTransaction): void {
    const rack = parseRAck(request.headers.get('rack'));
    if (rack === undefined || this.provisionals === undefined || !this.provisionals.acknowledge(rack, this.invite.cseq.seq)) {
      st.respond(createResponse(request, 481, { reason: 'Call/Transaction Does Not Exist - no such reliable provisional' }));
      return;
    }
    const body = bodyOf(request);
    if (body !== undefined && this.oa.phase === 'local-offer') this.oa.answerReceived(body);
    st.respond(createResponse(request, 200));
  }

  /** RFC 3311 §5.2: an UPDATE from the peer, with an offer to answer or only refreshing the session (RFC 4028). */
  private updated(request: SipRequest, st: ServerTransaction): void {
    if (this.current === 'Terminated') {
      st.respond(createResponse(request, 481));
      return;
    }
    const offer = bodyOf(request);
    if (offer !== undefined) {
      if (this.oa.phase === 'local-offer' || this.changing) {
        st.respond(createResponse(request, 491));
        return;
      }
      if (this.oa.phase === 'remote-offer') {
        st.respond(createResponse(request, 500, { reason: 'Server Internal Error - an earlier offer is not answered yet', headers: [['Retry-After', String(randomInt(0, 11))]] }));
        return;
      }
    }
    const answer = (sdp: string | undefined): void => {
      const headers: Array<[string, string]> = [['Contact', this.core.contact], ...this.timerHeaders(request)];
      if (sdp !== undefined) headers.push(['Content-Type', 'application/sdp']);
      st.respond(createResponse(request, 200, { headers, body: sdp === undefined ? undefined : Buffer.from(sdp) }));
    };
    if (offer === undefined) {
      answer(undefined);
      return;
    }
    void this.answerOffer(offer, 'UPDATE').then((reply) => {
      if (this.current === 'Terminated') st.respond(createResponse(request, 481));
      else if (typeof reply !== 'string') st.respond(createResponse(request, reply.status, { reason: reply.reason }));
      else {
        answer(reply);
        this.onChange?.();
      }
    });
  }

  /**
   * A re-INVITE (§14.1) with `sdp` as the new offer, or without one (the peer offers in its 2xx and we answer in the
   * ACK, with onOffer or from our SDP); resolves with the final answer. On 491 (glare) it is sent again after RFC 3261
   * §14.1's wait: 2.1-4 s when we own the Call-ID, 0-2 s otherwise, up to three times.
   */
  reinvite(sdp?: string): Promise<Answer> {
    return this.change('INVITE', sdp);
  }

  /** An UPDATE (RFC 3311) with `sdp` as the new offer, or without one to refresh the session only; glare as reinvite. */
  update(sdp?: string): Promise<Answer> {
    return this.change('UPDATE', sdp);
  }

  /** Puts the peer on hold (a=sendonly, RFC 3264 §8.4) or takes it off (a=sendrecv). */
  hold(): Promise<Answer> {
    return this.reinvite(withDirection(this.oa.local ?? '', 'sendonly'));
  }

  resume(): Promise<Answer> {
    return this.reinvite(withDirection(this.oa.local ?? '', 'sendrecv'));
  }

  /** Sends an INFO (RFC 6086) in the dialog; resolves with its final status. */
  async info(body: string, contentType: string): Promise<number> {
    const dialog = this.dialogOf;
    if (dialog === undefined || this.current !== 'Confirmed') return 481;
    const request = dialog.createRequest('INFO', { body: Buffer.from(body), contentType });
    const response = await this.inDialogExchange(dialog, request);
    return response.status;
  }

  private async change(method: 'INVITE' | 'UPDATE', sdp: string | undefined): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      const answer = await this.changeOnce(method, sdp);
      if (answer.status !== 491 || attempt >= GLARE_ATTEMPTS || this.current !== 'Confirmed') return answer;
      const ms = this.side === 'uac' ? randomInt(2100, 4001) : randomInt(0, 2001);
      await new Promise<void>((resolve) => this.core.clock.setTimer(ms, resolve));
      if (this.current !== 'Confirmed') return answer;
    }
  }

  private async changeOnce(method: 'INVITE' | 'UPDATE', sdp: string | undefined, refresh = false): Promise<Answer> {
    const dialog = this.dialogOf;
    if (dialog === undefined || this.current !== 'Confirmed') return { status: 481, reason: 'Call/Transaction Does Not Exist' };
    if (this.changing || this.retransmit !== undefined || this.oa.phase !== 'stable') return { status: 491, reason: 'Request Pending' };
    this.changing = true;
    try {
      const headers: Array<[string, string]> = [['Contact', this.core.contact], ['Allow', UA_ALLOW], ['Supported', UA_EXTENSIONS.join(', ')]];
      const running = this.timer.state;
      if (running) {
        // RFC 4028 §7.1/§7.2: a refresh (any re-INVITE or UPDATE) names the interval and, as its sender, us as refresher.
        headers.push(['Session-Expires', `${running.interval};refresher=uac`]);
        if (this.core.sessionTimer) headers.push(['Min-SE', String(this.core.sessionTimer.minSE)]);
      }
      if (sdp !== undefined) this.oa.offerSent(sdp);
      const request = dialog.createRequest(method, { headers, body: sdp === undefined ? undefined : Buffer.from(sdp), contentType: 'application/sdp' });
      let ack: (() => void) | undefined;
      let acking: Promise<void> | undefined;
      let answeredOffer = false;
      const response = await this.inDialogExchange(dialog, request, (final, sent) => {
        if (method !== 'INVITE' || final.status >= 300) return;
        // Every 2xx of the re-INVITE, retransmissions too, is ACKed; an offer in the first is answered in the ACK
        // (sent once the answer is known: retransmissions meanwhile go unanswered).
        if (ack !== undefined) ack();
        else if (acking === undefined) {
          const offer = sdp === undefined ? bodyOf(final) : undefined;
          const ackSdp = offer === undefined ? Promise.resolve(undefined) : this.answerOffer(offer, 'response').then((reply) => {
            answeredOffer = typeof reply === 'string';
            return typeof reply === 'string' ? reply : rejectingAnswer(offer, '0.0.0.0');
          });
          acking = ackSdp.then((body) => {
            ack = this.acker(dialog, sent.cseq.seq, body);
            ack();
          });
        }
      });
      await acking;
      if (!(response instanceof SipResponse)) {
        if (sdp !== undefined) this.oa.rollBack();
        return response;
      }
      if (response.status >= 200 && response.status < 300) {
        const body = bodyOf(response);
        if (sdp !== undefined && body !== undefined) this.oa.answerReceived(body);
        else if (sdp !== undefined) this.oa.rollBack();
        if (allows(response, 'UPDATE')) this.peerAllowsUpdate = true;
        this.startTimerFrom(response, 'uac');
        if (answeredOffer) this.onChange?.();
      } else {
        if (sdp !== undefined) this.oa.rollBack();
        // RFC 4028 §10: a refresh answered 481 or 408 ends the session; so does any failed refresh near expiry.
        if (refresh && (response.status === 481 || response.status === 408)) void this.hangUp({ by: 'failure', reason: `session refresh failed: ${response.status}` });
      }
      return { status: response.status, reason: response.reason };
    } finally {
      this.changing = false;
    }
  }

  /** RFC 4028 §10: our refresh at half the interval, as UPDATE when the peer allows it (no offer needed), else re-INVITE. */
  private async refresh(): Promise<void> {
    if (this.current !== 'Confirmed') return;
    const method = this.peerAllowsUpdate ? 'UPDATE' : 'INVITE';
    // A re-INVITE refresh carries our SDP again (RFC 4028 §7.4 recommends an offer); an UPDATE refresh none.
    const sdp = method === 'INVITE' && this.oa.local !== undefined ? nextVersion(this.oa.local) : undefined;
    const answer = await this.changeOnce(method, sdp, true);
    if (answer.status === 491 && this.current === 'Confirmed') {
      // Crossed a change of the peer's: its request refreshed the session, or ours runs again shortly.
      this.core.clock.setTimer(randomInt(0, 2001), () => void this.refresh());
    }
  }

  /** The session interval from a 2xx's Session-Expires (RFC 4028 §7.4/§9), refresher `uac` meaning whoever sent the request. */
  private startTimerFrom(response: SipResponse, weAre: Refresher): void {
    if (!this.core.sessionTimer) return;
    const se = parseSessionExpires(response.headers.get('session-expires'));
    if (se === undefined) {
      this.timer.stop();
      return;
    }
    this.timer.start(se.delta, (se.refresher ?? 'uac') === weAre);
  }

  /**
   * RFC 4028 §9: for a request we answer 2xx (INVITE, re-INVITE, UPDATE), the Session-Expires of our answer and the
   * timer started with it. The interval is the request's (already checked against our Min-SE), else ours; the
   * refresher the request's choice, else the requester when it supports timers, else us.
   */
  private timerHeaders(request: SipRequest): Array<[string, string]> {
    const config = this.core.sessionTimer;
    if (!config) return [];
    const requested = parseSessionExpires(request.headers.get('session-expires'));
    const supports = hasOptionTag(request, 'supported', 'timer') || hasOptionTag(request, 'require', 'timer');
    if (requested === undefined && request.method !== 'INVITE') {
      // A re-INVITE or UPDATE without Session-Expires keeps no timer (§9: the requester does not want one).
      if (this.timer.state === undefined) return [];
    }
    const minSE = Math.max(config.minSE, parseMinSE(request.headers.get('min-se')) ?? 0);
    const interval = requested?.delta ?? Math.max(config.expires, minSE);
    const refresher: Refresher = requested?.refresher ?? (supports ? 'uac' : 'uas');
    this.timer.start(interval, refresher === 'uas');
    const headers: Array<[string, string]> = [['Session-Expires', `${interval};refresher=${refresher}`]];
    if (refresher === 'uac') headers.push(['Require', 'timer']);
    return headers;
  }

  /** An offer of the peer's, answered through onOffer or the default answer; the exchange is recorded either way. */
  private async answerOffer(offer: string, carriedBy: OfferCarrier): Promise<OfferReply> {
    this.oa.offerReceived(offer);
    const reply = await this.replyTo(offer, carriedBy);
    if (typeof reply === 'string') this.oa.answerSent(reply);
    else this.oa.rollBack();
    return reply;
  }

  private async replyTo(offer: string, carriedBy: OfferCarrier): Promise<OfferReply> {
    if (this.onOffer) {
      try {
        return await this.onOffer(offer, carriedBy);
      } catch (e) {
        return { status: 500, reason: `Server Internal Error - answering the offer failed: ${(e as Error).message}` };
      }
    }
    return this.defaultAnswer(offer) ?? { status: 488, reason: 'Not Acceptable Here - no SDP of ours to answer with' };
  }

  /** Our SDP in force with the direction that answers the offer's, version one higher. */
  private defaultAnswer(offer: string): string | undefined {
    const ours = this.oa.local;
    if (ours === undefined) return undefined;
    return withDirection(ours, answerDirection(audioDirection(offer)));
  }

  // ---- transfer (RFC 3515, RFC 3891, RFC 3892) ----

  /**
   * Transfers the peer to `target` with a REFER (RFC 3515): blind, or attended when `replacing` is our session with
   * the target (its dialog goes in the Refer-To's Replaces, RFC 3891). Resolves with the outcome the peer reports in
   * its NOTIFYs (the final status of the call it placed), or the REFER's own failure; we stay in the call either way
   * (hang up with bye() once it is 2xx). `onProgress` sees each status the NOTIFYs report (100, 180, ... final).
   */
  async refer(target: string, options: { replacing?: InviteSession; onProgress?: (status: number) => void } = {}): Promise<Answer> {
    const dialog = this.dialogOf;
    if (dialog === undefined || this.current !== 'Confirmed') return { status: 481, reason: 'Call/Transaction Does Not Exist' };
    if (this.transferReport !== undefined) return { status: 491, reason: 'Request Pending - a transfer is under way' };
    const other = options.replacing?.dialog;
    const reported = new Promise<Answer>((resolve) => (this.transferReport = resolve));
    this.transferProgress = options.onProgress;
    const giveUp = this.core.clock.setTimer(TRANSFER_REPORT_MS, () => this.reportTransfer({ status: 408, reason: 'Request Timeout - no final NOTIFY for the transfer' }));
    const request = dialog.createRequest('REFER', {
      headers: [
        ['Refer-To', referTo(target, other && { callId: other.callId, localTag: other.localTag, remoteTag: other.remoteTag })],
        ['Referred-By', `<${dialog.local.uri.toString()}>`],
        ['Contact', this.core.contact],
        ['Supported', UA_EXTENSIONS.join(', ')],
      ],
    });
    const response = await this.inDialogExchange(dialog, request);
    if (response.status >= 300) this.reportTransfer({ status: response.status, reason: response.reason });
    const outcome = await reported;
    giveUp.cancel();
    return outcome;
  }

  private reportTransfer(outcome: Answer): void {
    const report = this.transferReport;
    this.transferReport = undefined;
    report?.(outcome);
    if (this.current === 'Terminated') this.release();
  }

  /** A NOTIFY of the refer event package (RFC 3515 §2.4.5): the progress of the call our REFER asked for. */
  private notified(request: SipRequest, st: ServerTransaction): void {
    const event = (request.headers.get('event') ?? '').split(';')[0]!.trim().toLowerCase();
    if (event !== 'refer' || this.transferReport === undefined) {
      st.respond(createResponse(request, event === 'refer' ? 481 : 489, { reason: event === 'refer' ? 'Subscription Does Not Exist' : 'Bad Event' }));
      return;
    }
    st.respond(createResponse(request, 200));
    const frag = bodyOf(request) ?? '';
    const status = sipfragStatus(frag);
    const terminated = /^\s*terminated/i.test(request.headers.get('subscription-state') ?? '');
    if (status !== undefined) this.transferProgress?.(status);
    if (status !== undefined && (status >= 200 || terminated)) {
      const reason = frag.trim().replace(/^SIP\/2\.0\s+\d{3}\s*/, '').split(/\r?\n/)[0] ?? '';
      this.reportTransfer({ status, reason });
    } else if (terminated) this.reportTransfer({ status: 487, reason: 'Request Terminated - the transfer subscription ended without an outcome' });
  }

  /**
   * A REFER from the peer (RFC 3515 §2.4): 202 and a NOTIFY 100 Trying at once, then the call to the Refer-To target
   * placed by the user agent's application, and its final status in a last NOTIFY. 603 when the application follows no
   * transfers, 400 for a Refer-To we cannot call.
   */
  private referred(request: SipRequest, st: ServerTransaction): void {
    const dialog = this.dialogOf;
    if (dialog === undefined || this.current !== 'Confirmed') {
      st.respond(createResponse(request, 481));
      return;
    }
    const place = this.core.placeReferredCall;
    if (place === undefined) {
      st.respond(createResponse(request, 603, { reason: 'Decline - transfers are not accepted here' }));
      return;
    }
    if (request.headers.count('refer-to') !== 1) {
      st.respond(createResponse(request, 400, { reason: 'Bad Request - a REFER needs exactly one Refer-To' }));
      return;
    }
    const target = parseReferTo(request.headers.get('refer-to'));
    if (target === undefined) {
      st.respond(createResponse(request, 400, { reason: 'Bad Request - the Refer-To is not a SIP URI we can call' }));
      return;
    }
    st.respond(createResponse(request, 202, { headers: [['Contact', this.core.contact]] }));
    const id = request.cseq.seq;
    this.notifyTransfer(dialog, id, 100, 'Trying', false);
    const rawReplaces = target.replaces && `${target.replaces.callId};to-tag=${target.replaces.toTag};from-tag=${target.replaces.fromTag}`;
    void (async () => {
      const call = await place({ target: target.uri.toString(), replaces: rawReplaces, referredBy: request.headers.get('referred-by') }, this).catch(() => undefined);
      // The subscription outlives the call (RFC 5057): NOTIFYs go as long as the dialog does.
      if (call) call.onProvisional = (r) => dialog.state !== 'Terminated' && this.notifyTransfer(dialog, id, r.status, r.reason, false);
      const outcome = call === undefined ? { status: 603, reason: 'Declined' } : await call.answered;
      if (dialog.state !== 'Terminated') this.notifyTransfer(dialog, id, outcome.status, outcome.reason, true);
    })();
  }

  private notifyTransfer(dialog: Dialog, id: number, status: number, reason: string, final: boolean): void {
    const notify = dialog.createRequest('NOTIFY', {
      headers: [
        ['Event', `refer;id=${id}`],
        ['Subscription-State', final ? 'terminated;reason=noresource' : `active;expires=${REFER_SUBSCRIPTION_S}`],
        ['Contact', this.core.contact],
      ],
      body: Buffer.from(sipfrag(status, reason)),
      contentType: SIPFRAG,
    });
    void this.inDialogExchange(dialog, notify);
  }

  // ---- ending ----

  /** Ends a confirmed session with a BYE (§15.1.1); resolves with the BYE's final status. */
  /** Hangs up; `headers` go into the BYE (e.g. a Reason, RFC 3326, saying why a server ended the call). */
  bye(headers: Array<[string, string]> = []): Promise<number> {
    return this.hangUp({ by: 'local', reason: 'BYE sent' }, headers);
  }

  private async hangUp(end: SessionEnd, headers: Array<[string, string]> = []): Promise<number> {
    const dialog = this.dialogOf;
    if (dialog === undefined || this.current === 'Terminated') return 481;
    this.stopRetransmitting();
    this.timer.stop();
    const status = await this.byeOn(dialog, headers);
    this.end(end);
    return status;
  }

  private async byeOn(dialog: Dialog, headers: Array<[string, string]> = []): Promise<number> {
    const bye = dialog.createRequest('BYE', { headers });
    const response = await this.inDialogExchange(dialog, bye);
    // Our own dialog goes when its last usage does (end); a second fork's has none.
    if (dialog !== this.dialogOf) this.core.dialogs.forget(dialog);
    return response.status;
  }

  /** A request within `dialog`, answering challenges with our credentials; the dialog learns from its final response. */
  private async inDialogExchange(dialog: Dialog, request: SipRequest, onFinal?: (final: SipResponse, sent: SipRequest) => void): Promise<SipResponse | LocalOutcome> {
    const { response, request: sent } = await exchangeWithCredentials(
      this.core.transactions,
      this.core.sender,
      request,
      this.core.destinationOf(dialog),
      (r, challenge) => this.core.withCredentials(r, challenge),
      2,
      onFinal,
    );
    if (response instanceof SipResponse) dialog.receiveResponse(sent, response);
    return response;
  }

  /** A BYE from the peer (answered 200 by the UA core). */
  byeReceived(bye?: SipRequest): void {
    this.stopRetransmitting();
    const cause = bye?.headers.get('reason');
    this.end({ by: 'remote', reason: 'BYE received', ...(cause !== undefined ? { cause } : {}) });
  }

  private fail(status: number, reason: string): void {
    if (this.current === 'Terminated') return;
    this.answeredResolve({ status, reason });
    this.end({ by: 'failure', reason: `${status} ${reason}` });
  }

  private end(e: SessionEnd): void {
    if (this.current === 'Terminated') return;
    this.current = 'Terminated';
    this.stopRetransmitting();
    this.timer.stop();
    this.provisionals?.stop();
    // The REFER's implicit subscription is a usage of the dialog of its own (RFC 5057 §5): when the call ends before
    // the transfer's outcome (a transferee often hangs up on us as soon as the target answers), its NOTIFYs still
    // come in this dialog, so the dialog stays until they end the subscription.
    if (this.transferReport === undefined) this.release();
    this.endedResolve(e);
  }

  /** Lets the dialog go: no usage of it is left. */
  private release(): void {
    if (this.dialogOf === undefined) return;
    this.core.sessions.delete(this.dialogOf.key);
    this.core.dialogs.forget(this.dialogOf);
  }

  private stopRetransmitting(): void {
    this.retransmit?.cancel();
    this.giveUp?.cancel();
    this.retransmit = undefined;
    this.giveUp = undefined;
  }

  /** `request` sent again in a new transaction for another reason than a challenge: CSeq one higher, `edit` applied. */
  private again(request: SipRequest, edit: (h: Headers) => void): SipRequest {
    const copy = new SipRequest(request.method, request.uri.clone(), new Headers(request.headers.fields.filter((f) => f.name !== 'via')), request.body);
    copy.headers.set('cseq', `${request.cseq.seq + 1} ${request.method}`);
    edit(copy.headers);
    this.core.authorize(copy);
    return copy;
  }
}

function bodyOf(message: SipRequest | SipResponse): string | undefined {
  return message.body.length > 0 ? message.body.toString('utf8') : undefined;
}

function allows(message: SipRequest | SipResponse, method: string): boolean {
  return message.headers.list('allow').some((m) => m.toUpperCase() === method);
}
