import {
  createResponse,
  reasonPhrase,
  removeTopVia,
  type ResponseOptions,
  type SipRequest,
  type SipResponse,
} from '../message/index.js';
import {
  InviteClientTransaction,
  type ClientTransaction,
  type ClientTransactionHandlers,
  type ServerTransaction,
  type TransactionLayer,
} from '../transaction/index.js';
import { TransportError, type Destination } from '../transport/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { SipError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { aggregateChallenges, selectBest } from './best-response.js';
import { statefulBranch } from './branch-id.js';
import type { ForkingMode, ProxyConfig } from './config.js';
import type { Forwarder, PreparedBranch, RecordRouting } from './forwarding.js';
import type { ProxyCounters } from './stats.js';
import { redirectTargets, type Target } from './target.js';

export interface ResponseContextEnv {
  transactions: TransactionLayer;
  forwarder: Forwarder;
  clock: Clock;
  logger: Logger;
  config: Pick<ProxyConfig, 'maxBranches' | 'serialBranchTimeoutMs' | 'inviteTimeoutMs' | 'inviteTimeoutStatus' | 'timerCMs' | 'followRedirects' | 'maxRedirects'>;
  counters: ProxyCounters;
  /** Sends a response outside the server transaction (a 2xx after it has ended). */
  sendResponse(response: SipResponse, destination: Destination): void;
}

/** The request a context forwards and how. */
export interface ContextRequest {
  /** As received: what the server transaction answers, and what locally made responses are built from. */
  request: SipRequest;
  /** After §16.4 and admission: what each branch copies. */
  work: SipRequest;
  /** Loop-detection hash of `request` (branch-id.ts). */
  hash: string;
  forking: ForkingMode;
  /** How branches record-route; undefined: they do not. */
  recordRoute: RecordRouting | undefined;
  /** A no-answer limit for every INVITE branch; without it only serial forking limits a branch (serialBranchTimeoutMs). */
  branchTimeoutMs?: number;
  hooks?: RelayHooks;
}

/** What a failure hook decides once every branch has failed: new targets (serial failover), or another answer. */
export type FailureOutcome =
  /** New branches; `forking` and `branchTimeoutMs` replace the context's from then on. */
  | { targets: readonly Target[]; forking?: ForkingMode; branchTimeoutMs?: number }
  | { status: number; options?: ResponseOptions }
  | undefined;

/**
 * A routing policy's say in forwarding (Kamailio's branch_route, onreply_route and failure_route): a hook that throws
 * fails its branch (onBranch: 500 stand-in) or is logged and ignored (onResponse); a failing onFailure leaves the
 * best response as it is.
 */
export interface RelayHooks {
  /** Before a branch is sent: the copy for `target` may still be edited. */
  onBranch?(copy: SipRequest, target: Target): void | Promise<void>;
  /** A response from a branch (not 100) before it is considered or forwarded; synchronous, to keep their order. */
  onResponse?(res: SipResponse, target: Target): void;
  /** Every branch has answered with >= 300 and nothing is left to try (not after a CANCEL or a 6xx). */
  onFailure?(best: SipResponse): FailureOutcome | Promise<FailureOutcome>;
  /** The forwarding has ended with this final status (sent upstream, or a non-INVITE 408 left to the client's timer). */
  onFinal?(status: number): void;
  /**
   * An asynchronous say over a response from a branch (not 100, not a 2xx retransmission, and only while no final
   * response has gone upstream), after onResponse: undefined lets it go on at once; a verdict, or a promise of one,
   * decides its fate. While a promise is pending the response is held, and the branch's later responses wait
   * behind it in order; other branches and transactions go on. The promise must settle (the hook bounds its own
   * work); a rejection or a throw is logged and the response goes on as usual.
   */
  interceptResponse?(res: SipResponse, target: Target): ResponseVerdict | Promise<ResponseVerdict | undefined> | undefined;
}

/**
 * What an interceptResponse hook decided about a response. Responses to send and new targets come first, then the
 * response itself is considered (§16.7) or withheld. §16.7 step 5 overrides it all for a 2xx to an INVITE: that one
 * always goes upstream (edited, if `response` says so), and nothing else of the verdict applies.
 */
export interface ResponseVerdict {
  /**
   * Undefined: the response goes on as usual. A response: this one goes on in its place (an edited copy; same
   * status). Null: withheld, neither forwarded nor, as a final response, a candidate for the best response (unless
   * no other is left).
   */
  response?: SipResponse | null;
  /** Responses sent upstream (a provisional one if no final has gone; a final one answers the request, §16.7 step 10). */
  send?: readonly SipResponse[];
  /** New branches, forked as the context forks (not once a 2xx, a 6xx or a CANCEL has stopped the search). */
  targets?: readonly Target[];
}

interface Branch {
  target: Target;
  prepared?: PreparedBranch;
  hop?: Destination;
  ct?: ClientTransaction;
  /** Any provisional response arrived, so the request reached the next hop and a CANCEL can follow (§9.1). */
  provisional: boolean;
  cancelled: boolean;
  /** Cancelled for taking too long (Timer C, serial timeout): its 487 then stands as a 408 (§16.8). */
  timedOut: boolean;
  /** The final response, real or stood in for (408 timeout, 487 cancelled before any provisional, 503 §16.9). */
  response?: SipResponse;
  /** A 3xx whose Contacts became new branches: no candidate for the best response any more (§16.7 step 4). */
  recursed: boolean;
  timerC?: TimerHandle;
  serialTimer?: TimerHandle;
  /** A 2xx to the INVITE has arrived on this branch: later ones are retransmissions (or other forks), not intercepted. */
  okArrived: boolean;
  /** An interceptResponse hook withheld its final response: a candidate for the best response only as a last resort. */
  withheld: boolean;
  /** While an interceptResponse verdict is pending: the branch's later responses, in arrival order. */
  queue?: Array<{ res: SipResponse; repeated: boolean }>;
}

/**
 * The response context of RFC 3261 §16.7 for one server transaction: the branches forked from it (§16.6), what
 * each has answered, and what goes upstream. Provisional responses (but 100) and every 2xx go at once; otherwise
 * the best final response once every branch is complete. Forking is parallel or serial; Timer C (§16.8) watches
 * INVITE branches; a CANCEL (§16.10), a 2xx or a 6xx cancels the branches still pending; a 3xx may recurse (§16.5).
 */
export class ResponseContext {
  private readonly branches: Branch[] = [];
  /** Serial forking: targets not yet tried, in order. */
  private readonly pending: Target[] = [];
  private readonly invite: boolean;
  /** A final response has gone upstream. */
  private finalSent = false;
  /** No new branches any more (CANCEL, 2xx, 6xx, final sent). */
  private stopped = false;
  private answered = false;
  private redirects = 0;
  private inviteTimer: TimerHandle | undefined;
  /** The caller cancelled: no failure hook may start new branches. */
  private cancelled = false;
  /** A failure hook is deciding: nothing goes upstream meanwhile. */
  private failing = false;

  constructor(
    private readonly env: ResponseContextEnv,
    readonly st: ServerTransaction,
    private readonly spec: ContextRequest,
    /** Called once with the final response sent upstream. */
    private readonly onFinal: (response: SipResponse) => void,
  ) {
    this.invite = spec.request.method === 'INVITE';
  }

  start(targets: readonly Target[]): void {
    if (this.invite) this.inviteTimer = this.env.clock.setTimer(this.env.config.inviteTimeoutMs, () => this.inviteTimedOut());
    this.addTargets(targets);
    this.advance();
  }

  /** §16.10: the caller cancelled. Pending branches are cancelled; their answers (487) make the final response. */
  cancel(): void {
    this.cancelled = true;
    this.stop();
    for (const b of this.branches) this.cancelBranch(b, false);
    this.advance();
  }

  private addTargets(targets: readonly Target[]): void {
    for (const t of targets) {
      if (this.spec.forking === 'serial') this.pending.push(t);
      else if (!this.startBranch(t)) break;
    }
  }

  /** Returns false when maxBranches is reached. */
  private startBranch(target: Target): boolean {
    if (this.branches.length >= this.env.config.maxBranches) {
      this.env.logger.debug({ callId: this.spec.request.callId, target: target.uri.toString() }, 'maxBranches reached; target not tried');
      return false;
    }
    const b: Branch = { target, provisional: false, cancelled: false, timedOut: false, recursed: false, okArrived: false, withheld: false };
    this.branches.push(b);
    const limit = this.spec.branchTimeoutMs ?? (this.spec.forking === 'serial' && this.pending.length > 0 ? this.env.config.serialBranchTimeoutMs : undefined);
    if (limit !== undefined && this.invite) {
      b.serialTimer = this.env.clock.setTimer(limit, () => {
        b.serialTimer = undefined;
        this.cancelBranch(b, true);
        this.advance();
      });
    }
    this.env.forwarder
      .prepare(this.spec.work, target)
      .then(
        async (prepared) => {
          b.prepared = prepared;
          await this.spec.hooks?.onBranch?.(prepared.copy, target);
          // Cancelled while its next hop was being resolved: nothing was sent, nothing to cancel.
          if (!b.response) this.sendToNextHop(b);
        },
        (err: unknown) => {
          this.env.logger.warn({ err, target: target.uri.toString() }, 'next hop not resolved');
          this.settle(b, this.local(503, noHop(err)));
        },
      )
      .catch((err: unknown) => {
        this.env.logger.error({ err, callId: this.spec.request.callId }, 'branch failed');
        this.settle(b, this.local(500));
      });
    return true;
  }

  /** §16.6 steps 7-10 for the next address of the branch; §16.9: none left is a 503. */
  private sendToNextHop(b: Branch): void {
    const prepared = b.prepared!;
    for (let hop = prepared.hops.shift(); hop; hop = prepared.hops.shift()) {
      try {
        const req = this.env.forwarder.build(prepared, hop, statefulBranch(this.spec.hash), this.spec.recordRoute);
        b.hop = hop;
        b.ct = this.env.transactions.sendRequest(req, hop, this.handlers(b));
      } catch (e) {
        if (e instanceof TransportError) {
          this.env.forwarder.markFailed(hop);
          continue;
        }
        if (e instanceof SipError) return this.settle(b, this.local(e.status));
        throw e;
      }
      this.env.counters.branches++;
      this.env.logger.debug({ callId: this.spec.request.callId, target: b.target.uri.toString(), hop }, 'branch sent');
      if (this.invite) this.restartTimerC(b);
      return;
    }
    this.settle(b, this.local(503, NO_HOP));
  }

  /**
   * Moves a branch to the next resolved address of its next hop when the current one failed before any provisional
   * answer (a provisional means the request got through, so a retry could duplicate it). Returns whether it did.
   */
  private failOver(b: Branch): boolean {
    if (b.provisional || b.cancelled || this.stopped || !b.prepared || b.prepared.hops.length === 0) return false;
    if (b.hop) this.env.forwarder.markFailed(b.hop);
    this.env.logger.debug({ callId: this.spec.request.callId, failed: b.hop, left: b.prepared.hops.length }, 'next hop failed, trying the next address');
    this.sendToNextHop(b);
    return true;
  }

  private handlers(b: Branch): ClientTransactionHandlers<ClientTransaction> {
    return {
      onResponse: (res, ct) => {
        if (ct === b.ct) this.onResponse(b, res);
      },
      onTimeout: (ct) => {
        if (ct !== b.ct || b.response) return;
        // RFC 3263 §4.3: a next hop that never answered is skipped for a while and the next address is tried.
        if (this.failOver(b)) return;
        this.settle(b, this.local(408));
      },
      onTransportError: (err, ct) => {
        if (ct !== b.ct || b.response) return;
        this.env.logger.debug({ err: err.message, hop: b.hop }, 'branch transport error');
        if (b.hop) this.env.forwarder.markFailed(b.hop);
        // RFC 3263 §4.3: the request never got through, so the next address may be tried.
        if (!b.provisional && !b.cancelled && b.prepared!.hops.length > 0) this.sendToNextHop(b);
        else this.settle(b, this.local(503, noHop(err)));
      },
    };
  }

  private onResponse(b: Branch, res: SipResponse): void {
    // §16.7 step 3: our Via goes; a response with none left was meant for us alone.
    removeTopVia(res);
    if (!res.headers.has('via')) return;
    const status = res.status;
    if (status < 200) {
      b.provisional = true;
      if (status === 100) return;
      // §16.7 step 2: provisional responses restart Timer C (on arrival: a held one shows the branch alive all the same).
      if (this.invite && !b.response && !b.cancelled) this.restartTimerC(b);
    }
    this.responseHook(b, res);
    const ok = this.invite && status >= 200 && status < 300;
    const repeated = ok && b.okArrived;
    if (ok) b.okArrived = true;
    // Responses of a branch keep their order: while one is held, the later ones queue behind it.
    if (b.queue) b.queue.push({ res, repeated });
    else this.intercept(b, res, repeated);
  }

  /** Offers a response to the interceptResponse hook; considers it at once unless the hook holds it (returns true). */
  private intercept(b: Branch, res: SipResponse, repeated: boolean): boolean {
    const hook = this.spec.hooks?.interceptResponse;
    let verdict: ReturnType<NonNullable<RelayHooks['interceptResponse']>>;
    try {
      verdict = hook && !repeated && !this.finalSent ? hook(res, b.target) : undefined;
    } catch (err) {
      this.env.logger.error({ err, callId: this.spec.request.callId, status: res.status }, 'response interception failed');
      verdict = undefined;
    }
    if (!(verdict instanceof Promise)) {
      this.decide(b, res, verdict);
      return false;
    }
    b.queue = [];
    const settled = (v: ResponseVerdict | undefined): void => {
      try {
        this.decide(b, res, v);
      } finally {
        this.release(b);
      }
    };
    verdict
      .then(settled, (err: unknown) => {
        this.env.logger.error({ err, callId: this.spec.request.callId, status: res.status }, 'response interception failed');
        settled(undefined);
      })
      .catch((err: unknown) => this.env.logger.error({ err, callId: this.spec.request.callId }, 'response context failed'));
    return true;
  }

  /** The held response is decided: the branch's queued responses follow, until one of them is held in turn. */
  private release(b: Branch): void {
    const queue = b.queue ?? [];
    b.queue = undefined;
    for (let next = queue.shift(); next; next = queue.shift()) {
      if (this.intercept(b, next.res, next.repeated)) {
        b.queue!.push(...queue);
        return;
      }
    }
  }

  /** Carries out a verdict (see ResponseVerdict); none is "as usual". */
  private decide(b: Branch, res: SipResponse, verdict: ResponseVerdict | undefined): void {
    if (!verdict) return this.consider(b, res);
    // §16.7 step 5: a 2xx to an INVITE goes upstream whatever the verdict says; only an edited copy may replace it.
    if (this.invite && res.status >= 200 && res.status < 300) return this.consider(b, verdict.response ?? res);
    const withheld = verdict.response === null;
    if (withheld && res.status >= 200 && !b.response) {
      this.complete(b, res);
      b.withheld = true;
    }
    if (verdict.targets && verdict.targets.length > 0 && !this.stopped && !this.finalSent) this.addTargets(verdict.targets);
    for (const own of verdict.send ?? []) {
      if (this.finalSent) break;
      if (own.status < 200) this.forward(own);
      else this.sendFinal(own);
    }
    if (withheld) this.advance();
    else this.consider(b, verdict.response ?? res);
  }

  /** §16.7 steps 4-6 for a response whose fate is not someone else's any more. */
  private consider(b: Branch, res: SipResponse): void {
    const status = res.status;
    if (status < 200) {
      // §16.7 step 5 (a branch we have cancelled has nothing more to say upstream).
      if (!this.finalSent && !b.cancelled) this.forward(res);
      return;
    }
    if (this.invite && status < 300) return this.on2xx(b, res);
    // Retransmitted finals are absorbed by the client transaction; what arrives here after a stand-in is late.
    if (b.response) return;
    // RFC 3263 §4.3: a 503 from one address of the next hop means "try the next one".
    if (status === 503 && this.failOver(b)) return;
    this.complete(b, b.timedOut && status === 487 ? this.local(408) : res);
    if (status < 300) {
      // §16.7 step 5: a 2xx to a non-INVITE request goes at once.
      if (!this.finalSent) this.sendFinal(res);
      return;
    }
    if (status < 400 && this.recurse(b, res)) return this.advance();
    if (this.invite && status >= 600) {
      // §16.7 step 4: a 6xx ends the search: no new branches, the pending ones are cancelled.
      this.stop();
      for (const other of this.branches) this.cancelBranch(other, false);
    }
    this.advance();
  }

  /** §16.7 step 5: every 2xx to an INVITE goes upstream, retransmissions and other forks' answers included. */
  private on2xx(b: Branch, res: SipResponse): void {
    if (!b.response) this.complete(b, res);
    this.forward(res);
    if (this.answered) return;
    this.answered = true;
    if (!this.finalSent) this.markFinal(res);
    // §16.7 step 10.
    this.stop();
    for (const other of this.branches) this.cancelBranch(other, false);
    this.letGo();
  }

  /**
   * §16.5 recursion on a 3xx: its sip/sips Contacts not tried yet become targets, within maxRedirects. Returns
   * whether it recursed (the 3xx then drops out of the best-response choice).
   */
  private recurse(b: Branch, res: SipResponse): boolean {
    const { followRedirects, maxRedirects } = this.env.config;
    if (!followRedirects || this.stopped || this.redirects >= maxRedirects) return false;
    const tried = [...this.branches.map((x) => x.target.uri), ...this.pending.map((t) => t.uri)];
    const targets = redirectTargets(res, tried);
    if (targets.length === 0) return false;
    this.redirects++;
    b.recursed = true;
    this.addTargets(targets);
    return true;
  }

  /**
   * Serial forking moves to the next target once no branch is active; once every branch is complete and nothing
   * is left to try, the best response goes upstream (§16.7 step 6).
   */
  private advance(): void {
    if (this.finalSent) return;
    if (!this.stopped && this.spec.forking === 'serial') {
      while (this.pending.length > 0 && !this.branches.some(isActive)) {
        if (!this.startBranch(this.pending.shift()!)) this.pending.length = 0;
      }
    }
    if ((this.stopped || this.pending.length === 0) && this.branches.every((b) => b.response)) this.sendBest();
  }

  private responseHook(b: Branch, res: SipResponse): void {
    try {
      this.spec.hooks?.onResponse?.(res, b.target);
    } catch (err) {
      this.env.logger.error({ err, callId: this.spec.request.callId, status: res.status }, 'response hook failed');
    }
  }

  private sendBest(): void {
    if (this.failing) return;
    const answered = this.branches.filter((b) => b.response && !b.recursed);
    // Responses an interception withheld count only when nothing else is left to choose from.
    const open = answered.filter((b) => !b.withheld);
    const candidates = (open.length > 0 ? open : answered).map((b) => b.response!);
    const best = selectBest(candidates) ?? this.local(408);
    const onFailure = this.spec.hooks?.onFailure;
    if (!onFailure || this.cancelled || this.stopped || best.status < 300) return this.sendBestOf(best, candidates);
    this.failing = true;
    Promise.resolve()
      .then(() => onFailure(best))
      .then(
        (outcome) => this.afterFailure(best, candidates, outcome),
        (err: unknown) => {
          this.env.logger.error({ err, callId: this.spec.request.callId }, 'failure hook failed');
          this.afterFailure(best, candidates, undefined);
        },
      )
      .catch((err: unknown) => this.env.logger.error({ err, callId: this.spec.request.callId }, 'response context failed'));
  }

  private afterFailure(best: SipResponse, candidates: SipResponse[], outcome: FailureOutcome): void {
    this.failing = false;
    // Answered meanwhile (INVITE timeout) or cancelled: nothing to add.
    if (this.finalSent) return;
    if (this.cancelled || this.stopped) return this.advance();
    if (outcome && 'targets' in outcome && outcome.targets.length > 0) {
      if (outcome.forking !== undefined) this.spec.forking = outcome.forking;
      if (outcome.branchTimeoutMs !== undefined) this.spec.branchTimeoutMs = outcome.branchTimeoutMs;
      const before = this.branches.length + this.pending.length;
      this.addTargets(outcome.targets);
      if (this.branches.length + this.pending.length > before) return this.advance();
    } else if (outcome && 'status' in outcome) {
      return this.sendFinal(createResponse(this.spec.request, outcome.status, outcome.options ?? {}));
    }
    this.sendBestOf(best, candidates);
  }

  private sendBestOf(chosen: SipResponse, candidates: SipResponse[]): void {
    let best = chosen;
    // §16.7 step 6: a 503 means the next hop is overloaded, not that this request cannot be served.
    // Our own 503 (no next hop reachable) keeps saying why.
    if (best.status === 503) best = this.local(500, best.reason.match(OWN_NO_HOP)?.[1]);
    aggregateChallenges(best, candidates);
    if (!this.invite && best.status === 408) {
      // RFC 4320 §4.2: no 408 for a non-INVITE request; the client's own Timer F, started earlier, has fired.
      this.finalSent = true;
      this.stop();
      this.st.terminate();
      this.finalHook(408);
      return;
    }
    this.sendFinal(best);
  }

  private sendFinal(res: SipResponse): void {
    this.forward(res);
    this.markFinal(res);
    // §16.7 step 10.
    for (const b of this.branches) this.cancelBranch(b, false);
    this.letGo();
  }

  private markFinal(res: SipResponse): void {
    this.env.logger.debug({ callId: this.spec.request.callId, status: res.status, branches: this.branches.length }, 'final response');
    this.finalSent = true;
    this.stop();
    this.inviteTimer?.cancel();
    this.inviteTimer = undefined;
    this.onFinal(res);
    this.finalHook(res.status);
  }

  private finalHook(status: number): void {
    try {
      this.spec.hooks?.onFinal?.(status);
    } catch (err) {
      this.env.logger.error({ err, callId: this.spec.request.callId, status }, 'final hook failed');
    }
  }

  private forward(res: SipResponse): void {
    forwardUpstream(this.env, this.st, this.invite, res);
  }

  /**
   * Once the final response has gone and the pending branches are cancelled, nothing of this context is needed any
   * more but §16.7 step 5: a 2xx to the INVITE that still arrives on a branch goes upstream. The branches' client
   * transactions (a 2xx one stays Accepted for 32 s) get a handler that does just that, so that the context, the
   * request and its copies are let go at once instead of living as long as the longest transaction.
   */
  private letGo(): void {
    const { env, st, invite } = this;
    const late: ClientTransactionHandlers<ClientTransaction> = {
      onResponse: (res) => {
        if (!invite || res.status < 200 || res.status >= 300) return;
        removeTopVia(res);
        if (res.headers.has('via')) forwardUpstream(env, st, true, res);
      },
      onTimeout: () => undefined,
      onTransportError: () => undefined,
    };
    for (const b of this.branches) {
      b.ct?.replaceHandlers(late);
      this.stopTimers(b);
    }
  }

  /**
   * Cancels a pending branch (INVITE only: §9.1 leaves other requests to run to completion). A branch that has not
   * answered at all counts as complete at once (487, or 408 when it timed out), so that the caller does not wait
   * for Timer B; its CANCEL still goes out if a provisional response shows up.
   */
  private cancelBranch(b: Branch, timedOut: boolean): void {
    if (b.response || b.cancelled) return;
    b.cancelled = true;
    b.timedOut = timedOut;
    this.stopTimers(b);
    if (!this.invite) return;
    if (b.ct instanceof InviteClientTransaction) this.env.transactions.cancel(b.ct);
    if (!b.provisional) this.complete(b, this.local(timedOut ? 408 : 487));
  }

  /** §16.8: Timer C fired: a branch with a provisional response is cancelled, one without counts as a 408. */
  private restartTimerC(b: Branch): void {
    b.timerC?.cancel();
    b.timerC = this.env.clock.setTimer(this.env.config.timerCMs, () => {
      b.timerC = undefined;
      this.cancelBranch(b, true);
      this.advance();
    });
  }

  private inviteTimedOut(): void {
    this.inviteTimer = undefined;
    if (this.finalSent) return;
    this.env.logger.debug({ callId: this.spec.request.callId }, 'INVITE timed out; pending branches cancelled');
    for (const b of this.branches) this.cancelBranch(b, true);
    this.sendFinal(this.local(this.env.config.inviteTimeoutStatus));
  }

  private settle(b: Branch, res: SipResponse): void {
    if (b.response) return;
    this.complete(b, res);
    this.advance();
  }

  private complete(b: Branch, res: SipResponse): void {
    b.response = res;
    this.stopTimers(b);
  }

  private stopTimers(b: Branch): void {
    b.timerC?.cancel();
    b.serialTimer?.cancel();
    b.timerC = b.serialTimer = undefined;
  }

  private stop(): void {
    this.stopped = true;
    this.pending.length = 0;
  }

  /** A response of our own making to the request as received (a stand-in for a branch, or the final one). */
  private local(status: number, detail?: string): SipResponse {
    return createResponse(this.spec.request, status, detail === undefined ? {} : { reason: `${reasonPhrase(status)} - ${detail}` });
  }
}

/** Upstream through the server transaction; a late 2xx, after the transaction has answered otherwise, around it. */
function forwardUpstream(env: ResponseContextEnv, st: ServerTransaction, invite: boolean, res: SipResponse): void {
  env.counters.response(res.status);
  const late = invite && res.status >= 200 && res.status < 300 && st.state !== 'Proceeding' && st.state !== 'Accepted';
  if (late) env.sendResponse(res, st.destination);
  else st.respond(res);
}

/** Reason detail of a branch that could not be sent anywhere (§16.9). */
const NO_HOP = 'no reachable next hop';
const OWN_NO_HOP = new RegExp(`^${reasonPhrase(503)} - (${NO_HOP}.*)$`);

/** The reason detail naming a transport fault: one line of it (an OpenSSL message runs over several), kept short. */
function noHop(err: unknown): string {
  if (!(err instanceof TransportError)) return NO_HOP;
  const line = err.message.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return `${NO_HOP}: ${line.length > 160 ? `${line.slice(0, 157)}...` : line}`;
}

function isActive(b: Branch): boolean {
  return !b.response && !b.cancelled;
}
