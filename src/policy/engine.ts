import { tryParseUri, type Headers, type NameAddr, type SipRequest, type SipResponse } from '../message/index.js';
import type { FailureOutcome, Proxy, ProxyRequest, RelayHooks, ResponseVerdict, RoutingDecision, Target } from '../proxy/index.js';
import { storeFailure } from '../store/index.js';
import type { ServerTransaction } from '../transaction/index.js';
import type { PresenceService } from '../presence/index.js';
import type { Logger } from '../util/logger.js';
import { incomingScript, outgoingScript, type CallScriptOptions } from './cpl-calls.js';
import type {
  BranchContext,
  FailoverOptions,
  FailureContext,
  HeaderAccess,
  InterceptContext,
  LookupResult,
  MessageView,
  RelayOptions,
  RequestContext,
  ResponseContext,
  RoutingPolicy,
  SbcOptions,
  Source,
  TargetSpec,
} from './types.js';

/** What the policy engine needs of the SBC (src/sbc implements it; the server wires it in). */
export interface SbcService {
  /**
   * The loop guard: for one of the SBC's own requests coming back through the proxy (its second leg's INVITE, a
   * request within that leg), the user its caller authenticated as on the first leg; undefined for any other request.
   */
  ownLeg(request: SipRequest): { user: string | undefined } | undefined;
  /** Takes an initial INVITE the policy handed over: the SBC answers it from now on. */
  take(handoff: SbcHandoff): void;
}

/** An initial INVITE handed to the SBC by `ctx.sbc()`. */
export interface SbcHandoff {
  /** The INVITE as received, and its server transaction (an INVITE server transaction). */
  request: SipRequest;
  st: ServerTransaction;
  /** The working copy (the policy's header edits and Request-URI rewrite, our credentials removed). */
  work: SipRequest;
  /** The second leg's Request-URI. */
  target: string;
  /** The user name the caller proved with digest, if it did. */
  authenticatedUser: string | undefined;
  options: SbcOptions;
}

/** The reason of the 500 for an onRequest that returned without reply, relay or redirect. */
export const NO_DECISION = 'Server Internal Error - policy made no decision';
/** The reason of the 500 for an onRequest still undecided at proxy.policyTimeoutMs. */
export const POLICY_TIMEOUT = 'Server Internal Error - policy did not decide in time';

/**
 * Runs a routing policy's hooks around the proxy's verbs. The policy is passed per request (the caller captures
 * the one current when the request arrived), so a reload never changes the policy of a request in progress.
 * A hook that throws becomes a 500 for its request and an error log line with the stack, never a crash.
 */
export class PolicyEngine {
  constructor(
    private readonly proxy: Proxy,
    private readonly logger: Logger,
    /** Users' CPL scripts for `ctx.callScript()`; without it no script runs. */
    private readonly callScripts?: CallScriptOptions,
    /** The presence server for `ctx.presence()`; without it the verb returns false. */
    private readonly presence?: PresenceService,
    /** The SBC for `ctx.sbc()`; without it the verb returns false and no request is `fromSbc`. */
    private readonly sbc?: SbcService,
  ) {}

  async handle(policy: RoutingPolicy, req: SipRequest, st: ServerTransaction): Promise<void> {
    const pr = this.proxy.begin(req, st);
    // §16.2: the caller learns at once that we are on it, however long the policy takes.
    this.proxy.trying(pr);
    const ctx = new PolicyRequest(pr, this.proxy, policy, this.logger, this.callScripts, this.presence, this.sbc);
    // A policy awaiting something that never settles (a store, a service of its own) must not hold the caller for ever.
    const deadline = this.proxy.policyDeadline(() => ctx.expire());
    try {
      await policy.onRequest(ctx);
    } catch (err) {
      return ctx.fail(err);
    } finally {
      ctx.returned = true;
      deadline.cancel();
    }
    if (ctx.failure !== undefined && this.proxy.awaitingFinal(pr)) return ctx.fail(ctx.failure);
    if (!ctx.decided && this.proxy.awaitingFinal(pr)) {
      this.logger.warn({ method: req.method, callId: req.callId }, 'policy made no decision');
      this.proxy.reply(pr, 500, { reason: NO_DECISION });
    }
  }
}

class View implements MessageView {
  constructor(
    protected readonly pr: ProxyRequest,
    readonly vars: Map<string, unknown>,
    private readonly logger: Logger,
  ) {}

  get method(): string {
    return this.pr.request.method;
  }

  get ruri(): string {
    return this.pr.work.uri.toString();
  }

  get from(): MessageView['from'] {
    return party(this.pr.request.from);
  }

  get to(): MessageView['to'] {
    return party(this.pr.request.to);
  }

  get callId(): string {
    return this.pr.request.callId;
  }

  get source(): Source | undefined {
    const s = this.pr.request.source;
    return s && { transport: s.transport, address: s.address, port: s.port };
  }

  get inDialog(): boolean {
    return this.pr.inDialog;
  }

  get authenticatedUser(): string | undefined {
    return this.pr.authenticatedUser;
  }

  get request(): SipRequest {
    return this.pr.request;
  }

  log(message: string, fields: Record<string, unknown> = {}): void {
    this.logger.info({ ...fields, method: this.method, callId: this.callId }, message);
  }
}

class PolicyRequest extends View implements RequestContext {
  readonly headers: HeaderAccess;
  private decision = false;
  /** onRequest has returned (or thrown). */
  returned = false;
  /** A verb's promise the policy did not await failed. */
  failure: unknown;
  /** The deadline passed before a decision (expire). */
  private expired = false;
  /** Set for the SBC's own requests coming back through the proxy (SbcService.ownLeg). */
  private readonly sbcLeg: { user: string | undefined } | undefined;

  constructor(
    pr: ProxyRequest,
    private readonly proxy: Proxy,
    private readonly policy: RoutingPolicy,
    private readonly policyLogger: Logger,
    private readonly callScripts: CallScriptOptions | undefined,
    private readonly presenceService: PresenceService | undefined,
    private readonly sbcService: SbcService | undefined = undefined,
  ) {
    super(pr, new Map(), policyLogger);
    this.sbcLeg = sbcService?.ownLeg(pr.request);
    this.headers = headerAccess(pr.work.headers);
  }

  get decided(): boolean {
    return this.decision;
  }

  reply(status: number, reason?: string, headers?: Record<string, string>): void {
    this.decide();
    this.proxy.reply(this.pr, finalStatus(status), responseOptions(reason, headers));
  }

  relay(targets?: readonly TargetSpec[], options: RelayOptions = {}): Promise<void> {
    return this.guard(async () => {
      const resolved = targets && toTargets(targets);
      this.decide();
      const decision = routingDecision(options);
      const hooks = options.stateless ? undefined : this.relayHooks(options);
      if (resolved) await this.proxy.relay(this.pr, resolved, decision, hooks);
      else await this.proxy.forward(this.pr, decision, hooks);
    });
  }

  get fromSbc(): boolean {
    return this.sbcLeg !== undefined;
  }

  sbc(options: SbcOptions = {}): boolean {
    const service = this.sbcService;
    if (service === undefined || this.sbcLeg !== undefined || this.pr.inDialog || this.method !== 'INVITE') return false;
    const target = toTargets([options.target ?? this.ruri])[0]!.uri.toString();
    this.decide();
    // A CANCEL that came while the policy was deciding has answered the INVITE already (487).
    if (!this.proxy.awaitingFinal(this.pr)) return true;
    service.take({ request: this.pr.request, st: this.pr.st, work: this.pr.work, target, authenticatedUser: this.pr.authenticatedUser, options });
    return true;
  }

  hideTopology(hide = true): boolean {
    return this.proxy.hideTopology(this.pr, hide);
  }

  presence(): boolean {
    const service = this.presenceService;
    if (service === undefined || !service.takes(this.pr.request)) return false;
    this.decide();
    service.handle(this.pr.request, this.pr.st);
    return true;
  }

  validate(): boolean {
    if (this.proxy.validate(this.pr)) return true;
    this.decide();
    return false;
  }

  checkRelay(): boolean {
    if (this.sbcLeg !== undefined || this.proxy.checkRelay(this.pr)) return true;
    this.decide();
    return false;
  }

  lookup(uri?: string): Promise<LookupResult> {
    return this.guard(async () => {
      const plan = uri === undefined ? await this.proxy.lookup(this.pr) : await this.proxy.locate(toTargets([uri])[0]!.uri);
      return plan.kind === 'targets' ? { found: true, targets: plan.targets } : { found: false, status: plan.status };
    });
  }

  authenticate(): Promise<boolean> {
    return this.guard(() => this.admit(false));
  }

  challenge(): Promise<boolean> {
    return this.guard(() => this.admit(true));
  }

  redirect(contacts: readonly TargetSpec[]): void {
    const targets = toTargets(contacts);
    this.decide();
    this.proxy.redirect(this.pr, targets);
  }

  rewriteUri(uri: string): void {
    this.pr.work.uri = toTargets([uri])[0]!.uri;
  }

  account(enabled = true): void {
    this.pr.accounted = enabled;
  }

  callScript(direction: 'incoming' | 'outgoing'): Promise<boolean> {
    const options = this.callScripts;
    if (!options) return Promise.resolve(false);
    return this.guard(() => (direction === 'incoming' ? incomingScript(this, options) : outgoingScript(this, options)));
  }

  /** The 500 for a failed policy, with the stack in the log. */
  fail(err: unknown): void {
    this.policyLogger.error({ err, method: this.method, callId: this.callId }, 'policy onRequest failed');
    // A store that failed under the policy (a lookup while Redis is away) is named: the policy itself is not at fault.
    if (this.proxy.awaitingFinal(this.pr)) this.proxy.reply(this.pr, 500, { reason: `Server Internal Error - ${storeFailure(err) ?? 'policy failed'}` });
  }

  /**
   * A verb's promise, rejecting for whoever awaits it; one the policy forgot to await must not become an unhandled
   * rejection (a crash): its failure is the request's 500 all the same.
   */
  private guard<T>(verb: () => Promise<T>): Promise<T> {
    const p = verb();
    p.catch((err: unknown) => {
      if (this.returned) this.fail(err);
      else this.failure ??= err;
    });
    return p;
  }

  private async admit(force: boolean): Promise<boolean> {
    if (this.sbcLeg !== undefined) {
      // Admitted as its caller was on the SBC's first leg: the SBC has no credentials to answer a challenge with.
      this.pr.authenticatedUser ??= this.sbcLeg.user;
      return true;
    }
    const ok = await this.proxy.authenticate(this.pr, force);
    // The challenge (or 403) has answered the request.
    if (!ok) this.decide();
    return ok;
  }

  private decide(): void {
    if (this.expired) throw new Error(`the policy did not decide within proxy.policyTimeoutMs; the request was answered 500`);
    if (this.decision) throw new Error('the request has been decided already (reply, relay or redirect)');
    this.decision = true;
  }

  /** The deadline passed with no decision: the request is answered 500, and any verb the policy calls later throws. */
  expire(): void {
    if (this.decision || !this.proxy.awaitingFinal(this.pr)) return;
    this.expired = true;
    this.policyLogger.warn({ method: this.method, callId: this.callId }, 'policy did not decide in time');
    this.proxy.reply(this.pr, 500, { reason: POLICY_TIMEOUT });
  }

  /** The relay's own hooks, else the policy's. */
  private relayHooks(options: RelayOptions): RelayHooks {
    const { policy, pr, vars } = this;
    const logger = this.policyLogger;
    const hooks: RelayHooks = {};
    const onBranch = options.onBranch ?? policy.onBranch?.bind(policy);
    if (onBranch) hooks.onBranch = (copy, target) => onBranch(new Branch(pr, vars, logger, copy, target));
    const onResponse = options.onResponse ?? policy.onResponse?.bind(policy);
    if (onResponse) hooks.onResponse = (res, target) => onResponse(new PolicyResponse(pr, vars, logger, res, target));
    const onFailure = options.onFailure ?? policy.onFailure?.bind(policy);
    if (onFailure) {
      hooks.onFailure = async (best) => {
        const ctx = new Failure(pr, vars, logger, best);
        await onFailure(ctx);
        return ctx.outcome;
      };
    }
    if (options.onFinal) hooks.onFinal = options.onFinal;
    const intercept = options.interceptResponse;
    if (intercept) {
      hooks.interceptResponse = (res, target) => {
        const ctx = new Intercepted(pr, vars, logger, res, target);
        const done = intercept(ctx);
        return done instanceof Promise ? done.then(() => ctx.verdict) : ctx.verdict;
      };
    }
    return hooks;
  }
}

class Branch extends View implements BranchContext {
  readonly headers: HeaderAccess;
  readonly target: string;

  constructor(pr: ProxyRequest, vars: Map<string, unknown>, logger: Logger, copy: SipRequest, target: Target) {
    super(pr, vars, logger);
    this.headers = headerAccess(copy.headers);
    this.target = target.uri.toString();
  }
}

class PolicyResponse extends View implements ResponseContext {
  readonly headers: HeaderAccess;
  readonly target: string;

  constructor(
    pr: ProxyRequest,
    vars: Map<string, unknown>,
    logger: Logger,
    readonly response: SipResponse,
    target: Target,
  ) {
    super(pr, vars, logger);
    this.headers = headerAccess(response.headers);
    this.target = target.uri.toString();
  }

  get status(): number {
    return this.response.status;
  }

  get reason(): string {
    return this.response.reason;
  }
}

class Intercepted extends PolicyResponse implements InterceptContext {
  verdict: ResponseVerdict | undefined;

  forward(response?: SipResponse): void {
    this.decision.response = response;
  }

  withhold(): void {
    this.decision.response = null;
  }

  send(response: SipResponse): void {
    this.decision.send = [...(this.decision.send ?? []), response];
  }

  relay(targets: readonly TargetSpec[]): void {
    this.decision.targets = [...(this.decision.targets ?? []), ...toTargets(targets)];
  }

  private get decision(): ResponseVerdict {
    return (this.verdict ??= {});
  }
}

class Failure extends View implements FailureContext {
  outcome: FailureOutcome;

  constructor(
    pr: ProxyRequest,
    vars: Map<string, unknown>,
    logger: Logger,
    readonly response: SipResponse,
  ) {
    super(pr, vars, logger);
  }

  get status(): number {
    return this.response.status;
  }

  get reason(): string {
    return this.response.reason;
  }

  relay(targets: readonly TargetSpec[], options: FailoverOptions = {}): void {
    const decision = routingDecision(options);
    this.outcome = { targets: toTargets(targets) };
    if (decision.forking !== undefined) this.outcome.forking = decision.forking;
    if (decision.branchTimeoutMs !== undefined) this.outcome.branchTimeoutMs = decision.branchTimeoutMs;
  }

  reply(status: number, reason?: string, headers?: Record<string, string>): void {
    this.outcome = { status: finalStatus(status), options: responseOptions(reason, headers) };
  }
}

function party(n: NameAddr): MessageView['from'] {
  const uri = n.uri;
  const sip = uri.type === 'sip' ? uri : undefined;
  return { uri: uri.toString(), user: sip?.userUnescaped, host: sip?.host, tag: n.tag };
}

function headerAccess(h: Headers): HeaderAccess {
  return {
    get: (name) => h.get(name),
    getAll: (name) => h.getAll(name),
    has: (name) => h.has(name),
    set: (name, value) => void h.set(name, value),
    add: (name, value) => void h.append(name, value),
    remove: (name) => h.remove(name),
  };
}

/** URI strings become targets of their own (no route set, q 1); Targets from lookup() stay as they are. */
function toTargets(specs: readonly TargetSpec[]): Target[] {
  return specs.map((s) => {
    if (typeof s !== 'string') return s;
    const uri = tryParseUri(s);
    if (uri?.type !== 'sip' && uri?.type !== 'tel') throw new Error(`not a sip:, sips: or tel: URI: '${s}'`);
    return { uri, routeSet: [], q: 1 };
  });
}

function routingDecision(o: RelayOptions): RoutingDecision {
  const d: RoutingDecision = {};
  if (o.fork !== undefined) d.forking = o.fork;
  if (o.recordRoute !== undefined) d.recordRoute = o.recordRoute;
  if (o.stateless !== undefined) d.stateless = o.stateless;
  if (o.timeout !== undefined) {
    if (!Number.isInteger(o.timeout) || o.timeout < 1) throw new RangeError(`relay timeout must be a positive number of ms, not ${o.timeout}`);
    d.branchTimeoutMs = o.timeout;
  }
  return d;
}

function finalStatus(status: number): number {
  if (!Number.isInteger(status) || status < 200 || status > 699) throw new RangeError(`a reply needs a final status (200-699), not ${status}`);
  return status;
}

function responseOptions(reason: string | undefined, headers: Record<string, string> | undefined): { reason?: string; headers?: Array<[string, string]> } {
  const o: { reason?: string; headers?: Array<[string, string]> } = {};
  if (reason !== undefined) o.reason = reason;
  if (headers) o.headers = Object.entries(headers);
  return o;
}
