import type { CallAccounting, CalleePresence } from '../accounting/index.js';
import { parseDigestCredentials, type AuthService } from '../auth/index.js';
import { createResponse, SipRequest, type ResponseOptions, type SipResponse, type SipUri, type TelUri } from '../message/index.js';
import type { SubscriberStore } from '../store/index.js';
import type { ServerTransaction, TransactionLayer, TransactionUserModule } from '../transaction/index.js';
import { DnsSipResolver, flowOf, type FlowTokens, type SipResolver } from '../transport/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { KeyedBuckets } from '../util/token-bucket.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { loopHash } from './branch-id.js';
import { checkProxyConfig, defaultProxyConfig, type ForkingMode, type ProxyConfig } from './config.js';
import { Forwarder, type ProxySender, type RecordRouting } from './forwarding.js';
import { ProxyIdentity } from './identity.js';
import { ResponseContext, type ContextRequest, type RelayHooks, type ResponseContextEnv } from './response-context.js';
import { routedCopy, type RouteFlow } from './route-processing.js';
import { forwardStatelessly, strayVerdict } from './stateless.js';
import { ProxyCounters, type ProxyStats } from './stats.js';
import { TopologyHiding, type TopologyHidingOptions, type TopologyHidingStats } from './topology-hiding.js';
import { determineTargets, locate, redirectContacts, type LocationService, type Target, type TargetOptions, type TargetPlan } from './target.js';
import { checkForwardable } from './validation.js';

export interface ProxyOptions extends Partial<ProxyConfig> {
  transactions: TransactionLayer;
  /** The transport layer: stateless sends, and the listeners our Via and Record-Route name. */
  sender: ProxySender;
  /** Served domains: their users are looked up, their callers authenticated. */
  domains: string[];
  /** Whether host[:port] names this server. */
  isLocalHost(host: string, port: number | undefined): boolean;
  clock: Clock;
  logger?: Logger;
  /** The location service (the registrar); without it users of served domains are not found. */
  location?: LocationService;
  /** Tells known users without bindings (480) from unknown ones (404). */
  subscribers?: SubscriberStore;
  /** Digest authentication of callers from served domains (407). */
  auth?: AuthService;
  isFlowAlive?(flowId: string): boolean;
  /** RFC 3263 resolution of next hops; by default a DnsSipResolver of its own. */
  resolver?: SipResolver;
  accounting?: CallAccounting;
  /** Server header of the responses the proxy makes itself. */
  serverName?: string;
  /**
   * Flow tokens in Record-Route (RFC 5626 §5.3), so that in-dialog requests reach phones over the flow they use
   * (behind NAT, over TLS or WebSocket); without them those requests follow the Request-URI (the Contact).
   */
  flowTokens?: FlowTokens;
  /** Requests one authenticated account may make (a token per request); 503 + Retry-After beyond. */
  accountLimits?: KeyedBuckets;
  /** A lookup of one of our users found nobody for a caller that did not authenticate (the flood guard charges it). */
  onFailedLookup?(request: SipRequest): void;
  /** Hears the state of the calls it forwards statefully (dialog state for busy-lamp fields, RFC 4235). */
  callStates?: CallStateObserver;
  /**
   * Topology hiding (docs/sbc.md#stateless-topology-hiding-in-the-proxy), the stateless mode of Kamailio's topoh;
   * off without it. The owner of the transport hands every received response to `proxy.topologyHiding.response()`
   * before its transaction layer.
   */
  topologyHiding?: TopologyHidingOptions;
}

/** How a call's dialog ended as the proxy saw it: its INVITE's final response (487, 408, any other) or a BYE. */
export type CallEnd = 'cancelled' | 'timeout' | 'rejected' | 'bye';

/**
 * What the proxy tells about the INVITEs it forwards statefully (not re-INVITEs) and the BYEs it relays, with the
 * request as received (From, To and Request-URI before the location lookup). Fire-and-forget like accounting: a
 * throw is logged and never reaches call handling; without an observer the proxy does nothing of this.
 */
export interface CallStateObserver {
  /** The INVITE is being forwarded (once per INVITE; the rest is told only for INVITEs told here). */
  trying?(invite: SipRequest): void;
  /** A provisional response other than 100 from a branch: an early dialog when it has a To tag, proceeding when not. */
  early(invite: SipRequest, provisional: SipResponse): void;
  /** The 2xx the caller got (the first one: further forks' 2xx are the caller's to end with BYE). */
  confirmed(invite: SipRequest, ok: SipResponse): void;
  /** The INVITE's non-2xx final response (`final`), or a BYE's final response (reason `bye`, whatever its status). */
  terminated(request: SipRequest, reason: CallEnd, final: SipResponse): void;
}

/** What a routing policy may decide for one request, over the configuration. */
export interface RoutingDecision {
  stateless?: boolean;
  forking?: ForkingMode;
  recordRoute?: boolean;
  /** No-answer limit (ms) of every INVITE branch; by default only serial forking limits branches. */
  branchTimeoutMs?: number;
}

/**
 * One request on its way through the proxy, as the verbs below share it: the request as received (what its server
 * transaction answers from, what loop detection hashes) and the working copy after §16.4 (what branches copy, and
 * what a routing policy edits).
 */
export interface ProxyRequest {
  readonly request: SipRequest;
  readonly work: SipRequest;
  /** The flow the route set names (RFC 5626 §5.3), or a forged token: decided by §16.4 on the working copy. */
  readonly routeFlow: RouteFlow;
  readonly st: ServerTransaction;
  /** A To tag: a request inside a dialog. */
  readonly inDialog: boolean;
  readonly hash: string;
  /** Whether the final response goes to call accounting (INVITE attempts and calls, BYE). */
  accounted: boolean;
  /** The user name the caller proved with digest authentication here, if it did. */
  authenticatedUser?: string;
  /** Set by a location lookup of the request's own target, a user of ours: a call to them can be missed. */
  callee?: CalleePresence;
  /** The call-state observer was told this INVITE is trying, so it hears how it goes on. */
  observed?: boolean;
}
/**
 * The proxy core of RFC 3261 §16: validation (§16.3 steps 3-4; the server core has done the rest), route
 * preprocessing (§16.4), admission (407 for callers of our domains, no open relay), target determination with the
 * location service (§16.5), forwarding (§16.6) statefully through a response context per server transaction (§16.7,
 * §16.8, §16.10) or statelessly (§16.11), and stray responses (2xx retransmissions, stateless branches).
 */
export class Proxy {
  private readonly config: ProxyConfig;
  private readonly identity: ProxyIdentity;
  private readonly forwarder: Forwarder;
  private readonly logger: Logger;
  private readonly counters = new ProxyCounters();
  private readonly contexts = new Map<ServerTransaction, ResponseContext>();
  /** Requests in progress by server transaction: a CANCEL that comes before any forwarding answers one of them. */
  private readonly requests = new WeakMap<ServerTransaction, ProxyRequest>();
  private readonly redirectDomains: Set<string>;
  private readonly targets: TargetOptions;
  private readonly contextEnv: ResponseContextEnv;
  /** Topology hiding, when on (ProxyOptions.topologyHiding). */
  readonly topologyHiding: TopologyHiding | undefined;

  constructor(private readonly options: ProxyOptions) {
    const defaults = defaultProxyConfig();
    const config = { ...defaults };
    for (const key of Object.keys(defaults) as Array<keyof ProxyConfig>) {
      if (options[key] !== undefined) (config as Record<string, unknown>)[key] = options[key];
    }
    checkProxyConfig(config, options.domains);
    this.config = config;
    this.redirectDomains = new Set(config.redirectDomains.map((d) => d.toLowerCase()));
    this.logger = options.logger ?? silentLogger();
    this.identity = new ProxyIdentity({
      domains: options.domains,
      isLocalHost: options.isLocalHost,
      listeners: () => options.sender.listeners(),
      viaListeners: () => options.sender.viaListeners?.() ?? options.sender.listeners(),
    });
    const resolver = options.resolver ?? new DnsSipResolver({ clock: options.clock, logger: this.logger.child({ layer: 'dns' }) });
    const forwarding = { sender: options.sender, resolver, tokens: options.flowTokens };
    if (options.topologyHiding) {
      const logger = this.logger.child({ layer: 'topology-hiding' });
      this.topologyHiding = new TopologyHiding({ logger, ...options.topologyHiding });
      this.topologyHiding.attach({ identity: this.identity, sender: options.sender, tokens: options.flowTokens });
    }
    this.forwarder = this.topologyHiding?.forwarder(forwarding) ?? new Forwarder(forwarding);
    this.targets = {
      identity: this.identity,
      location: options.location,
      subscribers: options.subscribers,
      isFlowAlive: options.isFlowAlive,
      flowDestination: options.sender.flowDestination ? (flow) => options.sender.flowDestination!(flow) : undefined,
    };
    this.contextEnv = {
      transactions: options.transactions,
      forwarder: this.forwarder,
      clock: options.clock,
      logger: this.logger,
      config: this.config,
      counters: this.counters,
      sendResponse: (res, destination) => {
        options.sender.send(res, destination).catch((err: unknown) => this.logger.debug({ err }, 'late 2xx not forwarded'));
      },
    };
  }

  stats(): ProxyStats & { topologyHiding?: TopologyHidingStats } {
    const stats = this.counters.snapshot(this.contexts.size);
    return this.topologyHiding ? { ...stats, topologyHiding: this.topologyHiding.stats() } : stats;
  }

  /**
   * A request the server core has validated and found not to be for the server itself: the default routing, made of
   * the verbs below (a routing policy calls them in an order of its own).
   */
  async handleRequest(req: SipRequest, st: ServerTransaction, decision: RoutingDecision = {}): Promise<void> {
    const pr = this.begin(req, st);
    if (!this.validate(pr)) return;
    this.trying(pr, decision.stateless);
    if (!(await this.authenticate(pr))) return;
    if (!this.awaitingFinal(pr)) return; // cancelled meanwhile (handleCancel answered 487)
    if (!this.checkRelay(pr)) return;
    await this.forward(pr, decision);
  }

  /** Starts handling a request: §16.4 on a working copy. */
  begin(req: SipRequest, st: ServerTransaction): ProxyRequest {
    this.counters.requests++;
    // A request within a hidden dialog gets the route set and Request-URI it stands for back first (§16.4 follows).
    const hiding = this.topologyHiding;
    const arrival = hiding === undefined ? undefined : hiding.arrived(req);
    const { work, flow } = routedCopy(req, this.identity, this.options.flowTokens);
    if (arrival !== undefined) hiding!.adopt(work, arrival);
    const pr: ProxyRequest = {
      request: req,
      work,
      routeFlow: flow,
      st,
      inDialog: req.toTag !== undefined,
      hash: loopHash(req, req.via),
      accounted: req.method === 'INVITE' || req.method === 'BYE',
    };
    this.requests.set(st, pr);
    return pr;
  }

  /**
   * §16.3 steps 3-4: answers 483 or 482 and returns false when the request must not be forwarded; so is a request
   * whose route set carries a flow token we did not issue (403): it must not be steered into another phone's flow.
   */
  validate(pr: ProxyRequest): boolean {
    if (pr.routeFlow.kind === 'forged') {
      this.counters.forgedFlowTokens++;
      this.logger.warn({ callId: pr.request.callId, src: pr.request.source?.address }, 'request with a forged flow token refused');
      this.respond(pr.st, 403, { reason: 'Forbidden - invalid flow token' });
      return false;
    }
    if (this.topologyHiding?.forged(pr.work)) {
      this.respond(pr.st, 403, { reason: FORGED_TOPOLOGY });
      return false;
    }
    const fault = checkForwardable(pr.request, (via) => this.identity.isOurSentBy(via));
    if (!fault) return true;
    if (fault === 482) this.counters.loops++;
    else this.counters.tooManyHops++;
    this.logger.debug({ callId: pr.request.callId, status: fault }, 'request not forwarded');
    this.respond(pr.st, fault);
    return false;
  }

  /** §16.2: a 100 to an INVITE handled statefully, so that the caller stops retransmitting at once. */
  trying(pr: ProxyRequest, stateless = this.config.stateless): void {
    if (pr.request.method === 'INVITE' && !stateless) this.respond(pr.st, 100);
  }

  /**
   * Admission: callers from our own domains prove who they are (§22.3, 407), in-dialog requests only if so
   * configured; callers from other domains cannot be verified here and go through (to our users: see checkRelay).
   * Answers the challenge (or 403) and returns false when the caller is not admitted. A successful check removes
   * our credentials from the working copy, and the From user must be the one who authenticated.
   */
  async authenticate(pr: ProxyRequest, force = false): Promise<boolean> {
    const { request: req } = pr;
    const auth = this.options.auth;
    if (!auth || req.method === 'CANCEL') return true;
    if (!force && (!this.config.authenticateCallers || (pr.inDialog && !this.config.authenticateInDialog))) return true;
    const from = req.from.uri;
    if (from.type !== 'sip' || !this.identity.isServedDomain(from.host)) return true;
    const realm = from.host.toLowerCase();
    const result = await auth.authenticate(req, realm, 'proxy');
    if (!result.ok) {
      const options: ResponseOptions = { headers: result.headers };
      if (result.reason !== undefined) options.reason = result.reason;
      // The throttle's slowdown: a guesser waits for every answer.
      this.respond(pr.st, result.status, options, result.delayMs);
      return false;
    }
    if (result.username !== from.userUnescaped) {
      this.respond(pr.st, 403, { reason: 'Forbidden - From does not match the credentials' });
      return false;
    }
    const account = `${result.username}@${realm}`;
    const limits = this.options.accountLimits;
    if (limits && !limits.take(account, this.options.clock.now())) {
      this.counters.accountLimited++;
      const retryAfter = String(limits.secondsToNextToken(account));
      this.respond(pr.st, 503, { reason: 'Service Unavailable - too many requests from this account', headers: [['Retry-After', retryAfter]] });
      return false;
    }
    removeCredentials(pr.work, realm);
    pr.authenticatedUser = result.username;
    return true;
  }

  /** No open relay: an out-of-dialog request neither from nor to one of ours is answered 403 (returns false). */
  checkRelay(pr: ProxyRequest): boolean {
    if (pr.inDialog || this.ownsRequestUri(pr.work) || this.fromServedDomain(pr.request)) return true;
    this.reply(pr, 403, { reason: 'Relaying Denied' });
    return false;
  }

  /**
   * §16.5 target set of the working copy (location service, Path, received-based routing behind NAT). A caller that
   * did not authenticate here learns nothing of our users: offline (480), unknown (404) and flows gone (430) are all
   * 404 to it unless `revealUserExistence`, and a failed lookup costs its source more than one request's token (a
   * scan of extensions runs out of budget). Accounting still sees a missed call for a located user.
   */
  async lookup(pr: ProxyRequest): Promise<TargetPlan> {
    const plan = await determineTargets(pr.work, this.targets, pr.routeFlow);
    if (plan.located) pr.callee = plan.kind === 'targets' ? 'registered' : 'not-registered';
    if (plan.kind !== 'reply' || !plan.located || pr.authenticatedUser !== undefined) return plan;
    this.options.onFailedLookup?.(pr.request);
    if (this.config.revealUserExistence) return plan;
    return plan.status === 480 || plan.status === 430 ? { ...plan, status: 404, reason: undefined } : plan;
  }

  /** §16.5 targets of any URI, as if it were the Request-URI of a request without Route (a policy's own lookups). */
  locate(uri: SipUri | TelUri): Promise<TargetPlan> {
    return locate(uri, this.targets);
  }

  /**
   * The rest of the default routing: the targets of a lookup, answered with its status when there are none,
   * redirected for `redirectDomains`, relayed otherwise.
   */
  async forward(pr: ProxyRequest, decision: RoutingDecision = {}, hooks?: RelayHooks): Promise<void> {
    const plan = await this.lookup(pr);
    if (!this.awaitingFinal(pr)) return answeredMeanwhile(hooks);
    this.logger.debug({ method: pr.request.method, callId: pr.request.callId, ruri: pr.work.uri.toString(), plan: plan.kind === 'reply' ? plan.status : plan.targets.length }, 'routing');
    if (plan.kind === 'reply') {
      this.reply(pr, plan.status, plan.reason === undefined ? {} : { reason: plan.reason });
      return;
    }
    const ruri = pr.work.uri;
    if (plan.located && ruri.type === 'sip' && this.redirectDomains.has(ruri.host.toLowerCase())) {
      // Redirect server (§8.3): the caller gets the contacts and tries them itself.
      this.redirect(pr, plan.targets);
      return;
    }
    await this.relay(pr, plan.targets, decision, hooks);
  }

  /**
   * Topology hiding for this request (RequestContext.hideTopology): hidden, or not whatever `topologyHiding.outside`
   * says. Returns whether it is hidden; always false when topology hiding is off.
   */
  hideTopology(pr: ProxyRequest, hide: boolean): boolean {
    return this.topologyHiding?.choose(pr.work, hide) ?? false;
  }

  /** §8.3 redirect: 302 with one Contact per target (q, remaining lifetime). */
  redirect(pr: ProxyRequest, targets: readonly Target[]): void {
    this.reply(pr, 302, { headers: redirectContacts(targets, this.options.clock.now()) });
  }

  /**
   * §16.6 forwarding to `targets`: statelessly (§16.11, the first target only; always for a CANCEL that matched
   * no INVITE of ours, which may belong to one forwarded statelessly, §16.10), or through a response context that
   * forks and chooses the response to send upstream (§16.7). No targets at all is a 480.
   */
  async relay(pr: ProxyRequest, targets: readonly Target[], decision: RoutingDecision = {}, hooks?: RelayHooks): Promise<void> {
    const { request: req, st } = pr;
    if (!this.awaitingFinal(pr) && req.method !== 'CANCEL') return answeredMeanwhile(hooks);
    // Whatever the policy did not check: an altered topology hiding value is never followed.
    if (this.topologyHiding?.forged(pr.work)) {
      this.reply(pr, 403, { reason: FORGED_TOPOLOGY });
      return;
    }
    if (targets.length === 0) {
      this.reply(pr, 480, { reason: 'Temporarily Unavailable - no target' });
      return;
    }
    const stateless = req.method === 'CANCEL' || (decision.stateless ?? this.config.stateless);
    const recordRoute = (decision.recordRoute ?? this.config.recordRoute) && recordRoutable(req.method) ? this.recordRouting(req) : undefined;
    if (stateless) {
      st.terminate();
      await this.forwardStateless(req, pr.work, targets[0]!, pr.hash, recordRoute);
      return;
    }
    const spec: ContextRequest = { request: req, work: pr.work, hash: pr.hash, forking: decision.forking ?? this.config.forking, recordRoute };
    if (decision.branchTimeoutMs !== undefined) spec.branchTimeoutMs = decision.branchTimeoutMs;
    const states = this.options.callStates;
    if (states !== undefined && req.method === 'INVITE' && !pr.inDialog) hooks = this.observeCall(pr, states, hooks);
    if (hooks) spec.hooks = hooks;
    const ctx = new ResponseContext(this.contextEnv, st, spec, (res) => this.settled(pr, res));
    this.contexts.set(st, ctx);
    this.forgetWhenTerminated(st);
    this.counters.forwarded++;
    ctx.start(targets);
  }

  /**
   * The call-state observer hears that the INVITE is trying, then each provisional response from a branch (before
   * the policy's own hooks see it: what a branch said, whatever a policy then makes of it); its final response is
   * told in settled().
   */
  private observeCall(pr: ProxyRequest, states: CallStateObserver, hooks: RelayHooks | undefined): RelayHooks {
    const invite = pr.request;
    if (!pr.observed) {
      pr.observed = true;
      try {
        states.trying?.(invite);
      } catch (err) {
        this.logger.error({ err, callId: invite.callId }, 'call state observer failed');
      }
    }
    const onResponse = hooks?.onResponse;
    return {
      ...hooks,
      onResponse: (res, target) => {
        if (res.status > 100 && res.status < 200) {
          try {
            states.early(invite, res);
          } catch (err) {
            this.logger.error({ err, callId: invite.callId }, 'call state observer failed');
          }
        }
        onResponse?.call(hooks, res, target);
      },
    };
  }

  /**
   * A closure of its own: one made in relay() would share relay's scope, and so keep the request, its working copy
   * and the response context alive as long as the server transaction (32 s after a 2xx).
   */
  private forgetWhenTerminated(st: ServerTransaction): void {
    st.onTerminated(() => this.contexts.delete(st));
  }

  /**
   * The Record-Route of a request: the listener it came in on and, for a request a phone sent us itself (its only
   * Via is its own), the phone's flow for a token: requests of the dialog towards the phone then use that flow.
   */
  private recordRouting(req: SipRequest): RecordRouting {
    const inbound = this.identity.inboundListener(req.source);
    const fromPhone = this.options.flowTokens !== undefined && req.source !== undefined && req.vias.length === 1;
    return { inbound, inboundFlow: fromPhone ? flowOf(req.source!) : undefined };
  }

  /**
   * A final (or provisional) response of our own to the request; a final one goes to accounting, unless the request
   * was answered already (a CANCEL came first).
   */
  reply(pr: ProxyRequest, status: number, options: ResponseOptions = {}): void {
    const final = status >= 200 && awaitingFinal(pr.st);
    const res = this.respond(pr.st, status, options);
    if (final) this.settled(pr, res);
  }

  /** Starts the time a routing policy has to decide about a request (proxy.policyTimeoutMs). */
  policyDeadline(expired: () => void): TimerHandle {
    return this.options.clock.setTimer(this.config.policyTimeoutMs, expired);
  }

  /** Whether the server transaction still waits for our final response (a CANCEL may have answered it). */
  awaitingFinal(pr: ProxyRequest): boolean {
    return awaitingFinal(pr.st);
  }

  /**
   * The proxy's place in the transaction user's chain: CANCELs of INVITEs it holds (§16.10), ACKs for 2xx and stray
   * responses (§16.7, §16.11). New requests reach it through the server core, which validates them first.
   */
  module(): TransactionUserModule {
    const transactions = this.options.transactions;
    return {
      name: 'proxy',
      claimRequest: (request, st) => {
        if (request.method !== 'CANCEL') return false;
        const invite = transactions.findInviteForCancel(request);
        if (invite === undefined) return false;
        this.handleCancel(request, st, invite);
        return true;
      },
      claimAck: (ack) => {
        this.handleAck(ack);
        return true;
      },
      claimStrayResponse: (response) => {
        this.handleStrayResponse(response);
        return true;
      },
    };
  }

  /**
   * §16.10: a CANCEL matching an INVITE server transaction. Answered 200 at once; the branches are cancelled, and
   * what they answer (487) becomes the INVITE's final response. An INVITE not forwarded yet (still being
   * authenticated or looked up) is answered 487 here.
   */
  handleCancel(cancel: SipRequest, cancelSt: ServerTransaction, inviteSt: ServerTransaction): void {
    this.respond(cancelSt, 200);
    const ctx = this.contexts.get(inviteSt);
    if (ctx) ctx.cancel();
    else if (awaitingFinal(inviteSt)) {
      const pending = this.requests.get(inviteSt);
      if (pending) this.reply(pending, 487);
      else this.respond(inviteSt, 487);
    }
    this.logger.debug({ callId: cancel.callId, forwarded: ctx !== undefined }, 'CANCEL');
  }

  /**
   * An ACK for a 2xx (§13.2.2.4: end to end, its own transaction-less request) or one matching no transaction:
   * forwarded statelessly along its Route (§16.4, §16.12). Never answered, so a bad one is simply dropped.
   */
  handleAck(ack: SipRequest): void {
    this.relayAck(ack).catch((err: unknown) => this.logger.debug({ err, callId: ack.callId }, 'ACK not forwarded'));
  }

  private async relayAck(ack: SipRequest): Promise<void> {
    if (checkForwardable(ack, (via) => this.identity.isOurSentBy(via)) !== undefined) return;
    const hiding = this.topologyHiding;
    const arrival = hiding === undefined ? undefined : hiding.arrived(ack);
    const { work, flow } = routedCopy(ack, this.identity, this.options.flowTokens);
    if (arrival !== undefined) {
      if (arrival.mark.kind === 'forged') return;
      hiding!.adopt(work, arrival);
    }
    if (flow.kind === 'forged') {
      this.counters.forgedFlowTokens++;
      return;
    }
    const plan = await determineTargets(work, this.targets, flow);
    if (plan.kind !== 'targets') return;
    await this.forwardStateless(ack, work, plan.targets[0]!, loopHash(ack, ack.via), undefined);
  }

  /** A response no client transaction took (see strayVerdict). */
  handleStrayResponse(res: SipResponse): void {
    let verdict;
    try {
      verdict = strayVerdict(res, this.identity);
    } catch {
      verdict = { drop: 'unparsable' as const };
    }
    if ('drop' in verdict) {
      this.counters.strayDropped++;
      if (verdict.drop === 'broadcast') this.counters.broadcastDropped++;
      this.logger.debug({ status: res.status, callId: res.callId, reason: verdict.drop }, 'stray response dropped');
      return;
    }
    this.counters.strayForwarded++;
    this.counters.response(res.status);
    this.options.sender.send(res, verdict.forward).catch((err: unknown) => this.logger.debug({ err, status: res.status }, 'stray response not forwarded'));
  }

  private async forwardStateless(
    req: SipRequest,
    work: SipRequest,
    target: Target,
    hash: string,
    recordRoute: RecordRouting | undefined,
  ): Promise<void> {
    this.counters.forwarded++;
    this.counters.forwardedStateless++;
    const sent = await forwardStatelessly(this.forwarder, this.options.sender, work, target, hash, recordRoute);
    if (sent || req.method === 'ACK') return;
    // §16.9: nowhere to send it is a 503 of the next hop, which goes upstream as a 500 (§16.7 step 6).
    this.counters.response(500);
    await this.options.transactions.sendStateless(createResponse(req, 500), req);
  }

  private ownsRequestUri(req: SipRequest): boolean {
    const uri = req.uri;
    return uri.type !== 'sip' || this.identity.isOurs(uri);
  }

  private fromServedDomain(req: SipRequest): boolean {
    const from = req.from.uri;
    return from.type === 'sip' && this.identity.isServedDomain(from.host);
  }

  private respond(st: ServerTransaction, status: number, options: ResponseOptions = {}, delayMs = 0): SipResponse {
    const res = createResponse(st.request, status, options);
    if (this.options.serverName) res.headers.append('Server', this.options.serverName);
    const send = (): void => {
      this.counters.response(status);
      st.respond(res);
    };
    if (delayMs > 0) this.options.clock.setTimer(delayMs, send);
    else send();
    return res;
  }

  /**
   * Accounting of the final response to an admitted request (a 407 challenge is not a call attempt), called once
   * per request, after forking and failover: every final response of an INVITE is an attempt, a 2xx also starts a
   * call, any other to a user of ours (looked up) is a missed call; a BYE's final response ends its call.
   */
  private settled(pr: ProxyRequest, res: SipResponse): void {
    // Answered: a CANCEL has nothing left to do, and an INVITE's transaction (Accepted for 32 s) must not keep the
    // request and its response context alive.
    this.contexts.delete(pr.st);
    this.requests.delete(pr.st);
    // A request from the outside within a hidden dialog is told with the Call-ID its dialog has inside.
    const req = this.topologyHiding === undefined ? pr.request : withWorkCallId(pr);
    const states = this.options.callStates;
    if (states !== undefined) this.callState(states, pr, req, res);
    const accounting = this.options.accounting;
    if (!accounting || !pr.accounted) return;
    try {
      if (req.method === 'INVITE') {
        accounting.attempt(req, res);
        if (res.status < 300) accounting.answered(req, res);
        else if (pr.callee !== undefined) accounting.missed(req, res, pr.callee);
      } else if (req.method === 'BYE') accounting.ended(req, res);
    } catch (err) {
      this.logger.error({ err, callId: req.callId }, 'accounting failed');
    }
  }

  /** The final response of an INVITE the observer was told of, or of any BYE, to the call-state observer. */
  private callState(states: CallStateObserver, pr: ProxyRequest, req: SipRequest, res: SipResponse): void {
    try {
      if (req.method === 'INVITE') {
        if (!pr.observed) return;
        if (res.status < 300) states.confirmed(req, res);
        else states.terminated(req, callEnd(res.status), res);
      } else if (req.method === 'BYE') states.terminated(req, 'bye', res);
    } catch (err) {
      this.logger.error({ err, callId: req.callId }, 'call state observer failed');
    }
  }
}

const FORGED_TOPOLOGY = 'Forbidden - altered topology hiding value';

/** The request as received with the working copy's Call-ID when topology hiding decoded it; else the request itself. */
function withWorkCallId(pr: ProxyRequest): SipRequest {
  const { request, work } = pr;
  if (work.callId === request.callId) return request;
  const copy = new SipRequest(request.method, request.uri, request.headers.clone(), request.body, request.version);
  copy.headers.set('call-id', work.callId);
  copy.source = request.source;
  return copy;
}

/** What an INVITE's non-2xx final response says about how its call ended. */
function callEnd(status: number): CallEnd {
  return status === 487 ? 'cancelled' : status === 408 ? 'timeout' : 'rejected';
}

/** Whether the server transaction still waits for our final response. */
function awaitingFinal(st: ServerTransaction): boolean {
  return st.state === 'Proceeding' || st.state === 'Trying';
}

/** Hop-by-hop requests (ACK, CANCEL) and registrations never make or use a route set through us. */
function recordRoutable(method: string): boolean {
  return method !== 'ACK' && method !== 'CANCEL' && method !== 'REGISTER';
}

/** Removes the Proxy-Authorization values for our realm (§22.3); credentials for proxies further on stay. */
function removeCredentials(req: SipRequest, realm: string): void {
  const values = req.headers.getAll('proxy-authorization');
  const keep = values.filter((v) => {
    const c = parseDigestCredentials(v);
    return !(c.ok && c.value.realm === realm);
  });
  if (keep.length === values.length) return;
  req.headers.remove('proxy-authorization');
  for (const v of keep) req.headers.append('proxy-authorization', v);
}

/** Nothing is forwarded for a request answered while the policy was deciding: only a CANCEL does that (487). */
function answeredMeanwhile(hooks: RelayHooks | undefined): void {
  hooks?.onFinal?.(487);
}
