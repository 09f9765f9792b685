import type { CallAccounting } from '../accounting/index.js';
import { parseDigestCredentials, type AuthService } from '../auth/index.js';
import { createResponse, type ResponseOptions, type SipRequest, type SipResponse } from '../message/index.js';
import type { SubscriberStore } from '../store/index.js';
import type { ServerTransaction, TransactionLayer } from '../transaction/index.js';
import { DnsSipResolver, type SipResolver } from '../transport/index.js';
import type { Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { loopHash } from './branch-id.js';
import { checkProxyConfig, defaultProxyConfig, type ForkingMode, type ProxyConfig } from './config.js';
import { Forwarder, type ProxySender } from './forwarding.js';
import { ProxyIdentity } from './identity.js';
import { ResponseContext, type ResponseContextEnv } from './response-context.js';
import { routedCopy } from './route-processing.js';
import { forwardStatelessly, strayVerdict } from './stateless.js';
import { ProxyCounters, type ProxyStats } from './stats.js';
import { determineTargets, redirectContacts, type LocationService, type Target, type TargetOptions } from './target.js';
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
}

/** What a routing policy may decide for one request, over the configuration. */
export interface RoutingDecision {
  stateless?: boolean;
  forking?: ForkingMode;
  recordRoute?: boolean;
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
  private readonly redirectDomains: Set<string>;
  private readonly targets: TargetOptions;
  private readonly contextEnv: ResponseContextEnv;

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
    });
    const resolver = options.resolver ?? new DnsSipResolver({ clock: options.clock, logger: this.logger.child({ layer: 'dns' }) });
    this.forwarder = new Forwarder({ sender: options.sender, resolver });
    this.targets = { identity: this.identity, location: options.location, subscribers: options.subscribers, isFlowAlive: options.isFlowAlive };
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

  stats(): ProxyStats {
    return this.counters.snapshot(this.contexts.size);
  }

  /** A request the server core has validated and found not to be for the server itself. */
  async handleRequest(req: SipRequest, st: ServerTransaction, decision: RoutingDecision = {}): Promise<void> {
    this.counters.requests++;
    const fault = checkForwardable(req, (via) => this.identity.isOurSentBy(via));
    if (fault) {
      if (fault === 482) this.counters.loops++;
      else this.counters.tooManyHops++;
      this.logger.debug({ callId: req.callId, status: fault }, 'request not forwarded');
      this.reply(st, fault);
      return;
    }
    // §16.10: a CANCEL that matched no INVITE of ours may belong to one forwarded statelessly.
    const stateless = req.method === 'CANCEL' || (decision.stateless ?? this.config.stateless);
    // §16.2: the caller stops retransmitting at once rather than after the transaction layer's 200 ms.
    if (req.method === 'INVITE' && !stateless) this.reply(st, 100);
    const hash = loopHash(req, req.via);
    const work = routedCopy(req, this.identity);
    const inDialog = req.toTag !== undefined;
    if (!(await this.admit(req, work, st, inDialog))) return;
    if (!awaitingFinal(st)) return; // cancelled meanwhile (handleCancel answered 487)
    if (!inDialog && !this.ownsRequestUri(work) && !this.fromServedDomain(req)) {
      // Neither the caller nor the callee is ours: not an open relay.
      this.settled(req, this.reply(st, 403, { reason: 'Relaying Denied' }));
      return;
    }
    const plan = await determineTargets(work, this.targets);
    if (!awaitingFinal(st)) return;
    this.logger.debug({ method: req.method, callId: req.callId, ruri: work.uri.toString(), plan: plan.kind === 'reply' ? plan.status : plan.targets.length }, 'routing');
    if (plan.kind === 'reply') {
      // A user of ours without bindings is not online: a missed call.
      this.settled(req, this.reply(st, plan.status), plan.located);
      return;
    }
    const ruri = work.uri;
    if (plan.located && ruri.type === 'sip' && this.redirectDomains.has(ruri.host.toLowerCase())) {
      // Redirect server (§8.3): the caller gets the contacts and tries them itself.
      this.settled(req, this.reply(st, 302, { headers: redirectContacts(plan.targets, this.options.clock.now()) }));
      return;
    }
    const recordRoute = (decision.recordRoute ?? this.config.recordRoute) && recordRoutable(req.method);
    const inbound = this.identity.inboundListener(req.source);
    if (stateless) {
      st.terminate();
      await this.forwardStateless(req, work, plan.targets[0]!, hash, recordRoute, inbound);
      return;
    }
    const ctx = new ResponseContext(
      this.contextEnv,
      st,
      { request: req, work, hash, forking: decision.forking ?? this.config.forking, recordRoute, inbound },
      (res) => this.settled(req, res),
    );
    this.contexts.set(st, ctx);
    st.onTerminated(() => this.contexts.delete(st));
    this.counters.forwarded++;
    ctx.start(plan.targets);
  }

  /**
   * §16.10: a CANCEL matching an INVITE server transaction. Answered 200 at once; the branches are cancelled, and
   * what they answer (487) becomes the INVITE's final response. An INVITE not forwarded yet (still being
   * authenticated or looked up) is answered 487 here.
   */
  handleCancel(cancel: SipRequest, cancelSt: ServerTransaction, inviteSt: ServerTransaction): void {
    this.reply(cancelSt, 200);
    const ctx = this.contexts.get(inviteSt);
    if (ctx) ctx.cancel();
    else if (awaitingFinal(inviteSt)) this.reply(inviteSt, 487);
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
    const work = routedCopy(ack, this.identity);
    const plan = await determineTargets(work, this.targets);
    if (plan.kind !== 'targets') return;
    await this.forwardStateless(ack, work, plan.targets[0]!, loopHash(ack, ack.via), false, undefined);
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
    recordRoute: boolean,
    inbound: ReturnType<ProxyIdentity['inboundListener']>,
  ): Promise<void> {
    this.counters.forwarded++;
    this.counters.forwardedStateless++;
    const sent = await forwardStatelessly(this.forwarder, this.options.sender, work, target, hash, recordRoute, inbound);
    if (sent || req.method === 'ACK') return;
    // §16.9: nowhere to send it is a 503 of the next hop, which goes upstream as a 500 (§16.7 step 6).
    this.counters.response(500);
    await this.options.transactions.sendStateless(createResponse(req, 500), req);
  }

  /**
   * Callers from our own domains prove who they are (§22.3, 407), in-dialog requests only if so configured;
   * callers from other domains cannot be verified here and go through (to our users: see the relay rule). A
   * successful check removes our credentials from the copy that goes on, and the From user must be the one who
   * authenticated.
   */
  private async admit(req: SipRequest, work: SipRequest, st: ServerTransaction, inDialog: boolean): Promise<boolean> {
    const auth = this.options.auth;
    if (!auth || !this.config.authenticateCallers || req.method === 'CANCEL') return true;
    if (inDialog && !this.config.authenticateInDialog) return true;
    const from = req.from.uri;
    if (from.type !== 'sip' || !this.identity.isServedDomain(from.host)) return true;
    const realm = from.host.toLowerCase();
    const result = await auth.authenticate(req, realm, 'proxy');
    if (!result.ok) {
      const options: ResponseOptions = { headers: result.headers };
      if (result.reason !== undefined) options.reason = result.reason;
      // The throttle's slowdown: a guesser waits for every answer.
      this.reply(st, result.status, options, result.delayMs);
      return false;
    }
    if (result.username !== from.userUnescaped) {
      this.reply(st, 403, { reason: 'Forbidden - From does not match the credentials' });
      return false;
    }
    removeCredentials(work, realm);
    return true;
  }

  private ownsRequestUri(req: SipRequest): boolean {
    const uri = req.uri;
    return uri.type !== 'sip' || this.identity.isOurs(uri);
  }

  private fromServedDomain(req: SipRequest): boolean {
    const from = req.from.uri;
    return from.type === 'sip' && this.identity.isServedDomain(from.host);
  }

  private reply(st: ServerTransaction, status: number, options: ResponseOptions = {}, delayMs = 0): SipResponse {
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
   * Accounting of the final response to an admitted request (a 407 challenge is not a call attempt): every final
   * response of an INVITE is an attempt, a 2xx also starts a call, a user without bindings is a missed call; a
   * BYE's final response ends its call.
   */
  private settled(req: SipRequest, res: SipResponse, missed = false): void {
    const accounting = this.options.accounting;
    if (!accounting) return;
    try {
      if (req.method === 'INVITE') {
        accounting.attempt(req, res);
        if (res.status < 300) accounting.answered(req, res);
        else if (missed) accounting.missed(req, res.status);
      } else if (req.method === 'BYE') accounting.ended(req, res);
    } catch (err) {
      this.logger.error({ err, callId: req.callId }, 'accounting failed');
    }
  }
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
