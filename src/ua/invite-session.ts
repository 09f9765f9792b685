import { createResponse, serialize, SipResponse, type SipRequest } from '../message/index.js';
import { Dialog } from '../dialog/index.js';
import { answerDirection, audioDirection, withDirection } from '../sdp/index.js';
import { addVia, type ClientTransaction, type InviteClientTransaction, type InviteServerTransaction } from '../transaction/index.js';
import type { Destination } from '../transport/types.js';
import type { TimerHandle } from '../util/clock.js';
import { newTag } from '../util/ids.js';
import { randomInt } from 'node:crypto';
import { exchange, exchangeWithCredentials } from './exchange.js';
import type { UaCore } from './ua-core.js';

export type SessionState = 'Calling' | 'Early' | 'Confirmed' | 'Terminated';

export interface SessionEnd {
  /** Who ended it: a BYE from us or from the peer, or a failure before or after it was answered. */
  by: 'local' | 'remote' | 'failure';
  reason: string;
}

export interface Answer {
  status: number;
  reason: string;
}

/**
 * An INVITE session (RFC 3261 §13, §12, §15) from either side: the UAC's call with its ACK for a 2xx (sent again for
 * every retransmitted 2xx, §13.2.2.4), CANCEL before the final answer (§9.1), and BYE; the UAS's answer with its 2xx
 * retransmitted at T1, 2·T1, ... up to T2 until the ACK comes, and a BYE if none comes in 64·T1 (§13.3.1.4). The
 * SDP is carried as given (offer in the INVITE, answer in the 2xx); offer/answer negotiation comes above this.
 */
export class InviteSession {
  private current: SessionState;
  private dialogOf: Dialog | undefined;
  private remote: string | undefined;
  private answeredResolve!: (a: Answer) => void;
  private endedResolve!: (e: SessionEnd) => void;
  /** Resolves at the final answer to the INVITE: a 2xx (the session is up) or the failure. */
  readonly answered: Promise<Answer>;
  /** Resolves once, when the session is over (BYE either way, a failure, no ACK). */
  readonly ended: Promise<SessionEnd>;
  /** Sends the ACK for our INVITE's 2xx (again for each retransmission of it). */
  private ack: (() => void) | undefined;
  private retransmit: TimerHandle | undefined;
  private giveUp: TimerHandle | undefined;

  private authRetries = 0;
  /** Our current SDP: the offer we sent (UAC) or the answer we gave (UAS); re-INVITEs are answered from it. */
  private local: string | undefined;
  /** Our own re-INVITE is waiting for its final answer (a re-INVITE from the peer meanwhile is glare: 491). */
  private reinviting = false;
  /** Called when the peer changed the session (a re-INVITE with a new offer): read remoteSdp, held. */
  onChange: (() => void) | undefined;

  private constructor(
    private readonly core: UaCore,
    readonly side: 'uac' | 'uas',
    /** The INVITE that made the session (as UAC: the last one sent, with credentials after a 401/407). */
    private inviteSent: SipRequest,
  ) {
    this.current = side === 'uac' ? 'Calling' : 'Early';
    if (side === 'uac' && inviteSent.body.length > 0) this.local = inviteSent.body.toString('utf8');
    this.answered = new Promise((resolve) => (this.answeredResolve = resolve));
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
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
    const d = audioDirection(this.remote);
    return d === 'sendonly' || d === 'inactive';
  }

  /** Our current SDP. */
  get localSdp(): string | undefined {
    return this.local;
  }

  /** The peer's SDP: the answer in the 2xx (UAC) or the offer in the INVITE (UAS); updated by re-INVITEs. */
  get remoteSdp(): string | undefined {
    return this.remote;
  }

  // ---- UAC ----

  /** Sends `invite` (built by the caller, with its offer) to `to` and follows the answers. */
  static call(core: UaCore, invite: SipRequest, to: Destination): InviteSession {
    const s = new InviteSession(core, 'uac', invite);
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

  private clientTransaction: ClientTransaction | undefined;

  private onInviteResponse(response: SipResponse, to: Destination): void {
    const dialog = this.core.dialogs.fromResponse(this.invite, response);
    if (response.status < 200) {
      if (dialog && this.current === 'Calling') this.current = 'Early';
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
    // The first 2xx, or a retransmission of it (the ACK was lost): ACK again either way.
    const first = this.dialogOf === undefined;
    this.dialogOf = dialog;
    this.core.sessions.set(dialog.key, this);
    this.ack ??= this.acker(dialog, this.invite.cseq.seq);
    this.ack();
    if (!first) return;
    this.remote = response.body.length > 0 ? response.body.toString('utf8') : undefined;
    this.current = 'Confirmed';
    this.answeredResolve({ status: response.status, reason: response.reason });
  }

  /**
   * §13.2.2.4: the ACK for 2xx responses to the INVITE of CSeq `cseq` in `dialog`, end to end along the dialog's route
   * (no transaction): built and sent the first time the returned function is called, the same bytes after.
   */
  private acker(dialog: Dialog, cseq: number): () => void {
    let bytes: Buffer | undefined;
    return () => {
      const to = this.core.destinationOf(dialog);
      if (bytes !== undefined) {
        this.core.sender.resend(bytes, to).catch(() => undefined);
        return;
      }
      const ack = dialog.createRequest('ACK', { cseq });
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

  /** An INVITE for us; the application answers it with `ring`, `accept` or `reject`. */
  static incoming(core: UaCore, invite: SipRequest, st: InviteServerTransaction): InviteSession {
    const s = new InviteSession(core, 'uas', invite);
    s.serverTransaction = st;
    s.localTag = newTag();
    s.remote = invite.body.length > 0 ? invite.body.toString('utf8') : undefined;
    return s;
  }

  private serverTransaction: InviteServerTransaction | undefined;
  private localTag = '';

  /** 180 Ringing (with our tag: an early dialog on the caller's side). */
  ring(): void {
    if (this.side !== 'uas' || this.current !== 'Early') return;
    this.serverTransaction?.respond(createResponse(this.invite, 180, { toTag: this.localTag, headers: [['Contact', this.core.contact]] }));
  }

  /** 200 OK with our SDP answer; retransmitted until the ACK (§13.3.1.4). */
  accept(sdp?: string): void {
    if (this.side !== 'uas' || this.current !== 'Early' || this.serverTransaction === undefined) return;
    const dialog = this.core.dialogs.fromRequest(this.invite, this.localTag);
    this.dialogOf = dialog;
    this.core.sessions.set(dialog.key, this);
    this.current = 'Confirmed';
    this.local = sdp;
    this.answerReliably(this.invite, this.serverTransaction, 'no ACK for our 2xx');
    this.answeredResolve({ status: 200, reason: 'OK' });
  }

  /**
   * §13.3.1.4: a 2xx with our Contact and SDP, sent again at T1, 2·T1 ... T2 until the ACK (acked), and the session
   * ended with a BYE when none comes in 64·T1.
   */
  private answerReliably(request: SipRequest, st: InviteServerTransaction, noAck: string): void {
    const headers: Array<[string, string]> = [['Contact', this.core.contact]];
    if (this.local !== undefined) headers.push(['Content-Type', 'application/sdp']);
    const ok = createResponse(request, 200, { toTag: this.localTag || undefined, headers, body: this.local === undefined ? undefined : Buffer.from(this.local) });
    st.respond(ok);
    const { T1, T2 } = this.core.timers;
    const resend = (interval: number): void => {
      this.retransmit = this.core.clock.setTimer(interval, () => {
        st.respond(ok);
        resend(Math.min(2 * interval, T2));
      });
    };
    resend(T1);
    this.giveUp = this.core.clock.setTimer(64 * T1, () => {
      this.stopRetransmitting();
      void this.hangUp({ by: 'failure', reason: noAck });
    });
  }

  /**
   * A re-INVITE from the peer (§14.2): answered 200 with our SDP, its direction the answer to the offer's (RFC 3264
   * §6.1: sendonly is answered recvonly, so a hold is accepted), or with our SDP as an offer when it had none. 500
   * with Retry-After while our 2xx to an earlier INVITE waits for its ACK, 491 while our own re-INVITE is pending.
   */
  reinvited(request: SipRequest, st: InviteServerTransaction): void {
    if (this.current !== 'Confirmed') {
      st.respond(createResponse(request, 481));
      return;
    }
    if (this.retransmit !== undefined) {
      st.respond(createResponse(request, 500, { reason: 'Server Internal Error - the previous INVITE is not acknowledged yet', headers: [['Retry-After', String(randomInt(0, 11))]] }));
      return;
    }
    if (this.reinviting) {
      st.respond(createResponse(request, 491));
      return;
    }
    const offer = request.body.length > 0 ? request.body.toString('utf8') : undefined;
    if (offer !== undefined) {
      this.remote = offer;
      if (this.local !== undefined) this.local = withDirection(this.local, answerDirection(audioDirection(offer)));
    }
    // Our To tag: as UAS it is the dialog's local tag; as UAC the dialog's local tag is our From tag, already in To.
    this.answerReliably(request, st, 'no ACK for our 2xx to a re-INVITE');
    if (offer !== undefined) this.onChange?.();
  }

  /**
   * Sends a re-INVITE with `sdp` as the new offer (§14.1) and ACKs its 2xx; resolves with the final answer. 491
   * means the peer sent its own at the same time (glare, RFC 3261 §14.1): try again later (RFC 5407: 2.1-4 s when we
   * own the Call-ID, 0-2 s otherwise).
   */
  async reinvite(sdp: string): Promise<Answer> {
    const dialog = this.dialogOf;
    if (dialog === undefined || this.current !== 'Confirmed') return { status: 481, reason: 'Call/Transaction Does Not Exist' };
    if (this.reinviting || this.retransmit !== undefined) return { status: 491, reason: 'Request Pending' };
    this.reinviting = true;
    try {
      const request = dialog.createRequest('INVITE', { headers: [['Contact', this.core.contact]], body: Buffer.from(sdp), contentType: 'application/sdp' });
      let ack: (() => void) | undefined;
      const { response } = await exchangeWithCredentials(
        this.core.transactions,
        this.core.sender,
        request,
        this.core.destinationOf(dialog),
        (r, challenge) => this.core.withCredentials(r, challenge),
        2,
        (final, sent) => {
          dialog.receiveResponse(sent, final);
          // Every 2xx of the re-INVITE, retransmissions too, is ACKed.
          if (final.status < 300) (ack ??= this.acker(dialog, sent.cseq.seq))();
        },
      );
      if (!(response instanceof SipResponse)) return response;
      if (response.status >= 200 && response.status < 300) {
        this.local = sdp;
        if (response.body.length > 0) this.remote = response.body.toString('utf8');
      }
      return { status: response.status, reason: response.reason };
    } finally {
      this.reinviting = false;
    }
  }

  /** Puts the peer on hold (a=sendonly, RFC 3264 §8.4) or takes it off (a=sendrecv). */
  hold(): Promise<Answer> {
    return this.reinvite(withDirection(this.local ?? '', 'sendonly'));
  }

  resume(): Promise<Answer> {
    return this.reinvite(withDirection(this.local ?? '', 'sendrecv'));
  }

  /** A final non-2xx answer (486 Busy Here by default). */
  reject(status = 486, reason?: string): void {
    if (this.side !== 'uas' || this.current !== 'Early') return;
    this.serverTransaction?.respond(createResponse(this.invite, status, { toTag: this.localTag, reason }));
    this.fail(status, reason ?? `${status}`);
  }

  /** The ACK for our 2xx arrived. */
  acked(): void {
    this.stopRetransmitting();
  }

  /** The caller's CANCEL arrived before we answered: 487 (§9.2). */
  cancelled(): void {
    if (this.current !== 'Early' || this.serverTransaction === undefined) return;
    this.serverTransaction.respond(createResponse(this.invite, 487, { toTag: this.localTag }));
    this.fail(487, 'Request Terminated');
  }

  // ---- both ----

  /** Ends a confirmed session with a BYE (§15.1.1); resolves with the BYE's final status. */
  bye(): Promise<number> {
    return this.hangUp({ by: 'local', reason: 'BYE sent' });
  }

  private async hangUp(end: SessionEnd): Promise<number> {
    const dialog = this.dialogOf;
    if (dialog === undefined || this.current === 'Terminated') return 481;
    this.stopRetransmitting();
    const status = await this.byeOn(dialog);
    this.end(end);
    return status;
  }

  private async byeOn(dialog: Dialog): Promise<number> {
    const bye = dialog.createRequest('BYE');
    const response = await exchange(this.core.transactions, this.core.sender, bye, this.core.destinationOf(dialog));
    if (response instanceof SipResponse) dialog.receiveResponse(bye, response);
    this.core.dialogs.forget(dialog);
    return response.status;
  }

  /** A BYE from the peer (answered 200 by the UA core). */
  byeReceived(): void {
    this.stopRetransmitting();
    this.end({ by: 'remote', reason: 'BYE received' });
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
    if (this.dialogOf) {
      this.core.sessions.delete(this.dialogOf.key);
      this.core.dialogs.forget(this.dialogOf);
    }
    this.endedResolve(e);
  }

  private stopRetransmitting(): void {
    this.retransmit?.cancel();
    this.giveUp?.cancel();
    this.retransmit = undefined;
    this.giveUp = undefined;
  }
}
