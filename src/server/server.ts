import os from 'node:os';
import net from 'node:net';
import { SystemClock, type Clock } from '../util/clock.js';
import { keyFromDataDir } from '../util/key-file.js';
import { createLogger, type Logger } from '../util/logger.js';
import { TransportLayer } from '../transport/transport-layer.js';
import type { BoundListener } from '../transport/types.js';
import { FlowTokens } from '../transport/flow-token.js';
import { classOf, FloodGuard } from '../transport/flood-guard.js';
import { KeyedBuckets, shareOf } from '../util/token-bucket.js';
import { ownedCallId, type WorkerBus } from '../transport/worker-bus.js';
import { presenceServices, type OfflineMessages, type PresenceChange, type PresenceService, type ResourceLists } from '../presence/index.js';
import { callIdOwner } from '../message/steering.js';
import { TransactionLayer, TransactionUserChain, type ServerTransaction, type TransactionUserModule } from '../transaction/index.js';
import { openGatewayStore, openStores, type GatewayStore, type Stores } from '../store/index.js';
import { AuthService, subscriberCredentials } from '../auth/index.js';
import { NatKeepalive, Registrar } from '../registrar/index.js';
import { Accounting } from '../accounting/index.js';
import { openCdrStore } from '../store/index.js';
import { advertisedHostname, DnsSipResolver } from '../transport/index.js';
import { Proxy, topologyHidingKey, type TopologyHiding } from '../proxy/index.js';
import { PolicyEngine, PolicyLoader, type RoutingPolicy } from '../policy/index.js';
import { createDefaultPolicy } from '../policy/default-policy.js';
import { sipCgi } from '../policy/sip-cgi-plugin.js';
import { requestLogModule } from './request-log.js';
import { SipCgiRunner } from '../policy/sip-cgi/index.js';
import { GatewayRouting } from '../policy/gateways.js';
import { AdminEndpoint, singleProcessTarget, type ProcessStats } from './admin.js';
import { createSbc, sbcSelector, type LimitKeeper, type Sbc, type SbcCallInfo } from '../sbc/index.js';
import { ServerCore } from './core.js';
import { formatCplError, putCplScript, SmtpRelayMailer } from '../policy/cpl/index.js';
import type { CallScriptOptions } from '../policy/cpl-calls.js';
import { loadConfigFile, type ServerConfig } from './config.js';
import { readTls } from './tls-files.js';
import { listenerLogFields, startedLogFields } from './start-line.js';

export interface ServerOverrides {
  clock?: Clock;
  logger?: Logger;
  /** Refuse to send anywhere this returns false for (tests that feed foreign messages keep traffic on loopback). */
  destinationFilter?: (address: string) => boolean;
  /** Accept self-signed certificates when connecting out over TLS/WSS (labs, tests). */
  tlsRejectUnauthorized?: boolean;
  /** This server is one worker of `serve --workers N` (src/server/cluster.ts). */
  worker?: WorkerContext;
}

export interface WorkerContext {
  bus: WorkerBus;
  /**
   * Secrets for what one worker issues and another must verify (nonces, temporary GRUUs), used where the config
   * names none: the primary draws them once per run.
   */
  authSecret: string;
  gruuSecret: string;
  /** Tells the other workers of a presence change seen here (through the primary). */
  announcePresence?: (change: PresenceChange) => void;
  /** The SBC's call limits, counted by the primary for every worker. */
  limits?: LimitKeeper;
}

export const SERVER_NAME = 'sipway/0.1.0';

/**
 * The composition root: builds the layers bottom-up (transport -> transactions -> core and services), wires each
 * lower layer to the one above through the interfaces the lower layer declares, and owns start/stop.
 */
export class SipwayServer {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  readonly core: ServerCore<ServerTransaction>;
  /** Per-source budgets and bans (docs/security.md). */
  readonly flood: FloodGuard;
  private stores: Stores | undefined;
  private gatewayStore: GatewayStore | undefined;
  /** The PSTN dialplan of the default policy (config `gateways` plus the store), swapped by reloads. */
  private routing: GatewayRouting | undefined;
  private accounting: Accounting | undefined;
  private cdrClose: (() => void) | undefined;
  private keepalive: NatKeepalive | undefined;
  private cgiRunner: SipCgiRunner | undefined;
  private mailer: SmtpRelayMailer | undefined;
  /** The machine's addresses, read once: isLocalHost runs for every request and must not enumerate interfaces. */
  private readonly interfaceAddresses = localAddresses();
  private registrarService: Registrar | undefined;
  private presence: PresenceService | undefined;
  private lists: ResourceLists | undefined;
  private offline: OfflineMessages | undefined;
  private proxyService: Proxy | undefined;
  private authService: AuthService | undefined;
  private readonly policyLoader = new PolicyLoader();
  /** The routing policy new requests start under; a reload replaces it, requests in progress keep theirs. */
  private policy: RoutingPolicy | undefined;
  private admin: AdminEndpoint | undefined;
  /** The SBC (docs/sbc.md), when `sbc.enabled`. */
  private sbc: Sbc | undefined;
  /** The proxy's topology hiding, when `topologyHiding.enabled`: sees every received response first. */
  private topology: TopologyHiding | undefined;
  private started = false;
  private readonly worker: WorkerContext | undefined;

  constructor(
    readonly config: ServerConfig,
    overrides: ServerOverrides = {},
  ) {
    this.clock = overrides.clock ?? new SystemClock();
    this.worker = overrides.worker;
    const logger = overrides.logger ?? createLogger({ level: config.log.level, destination: config.log.file });
    this.logger = this.worker ? logger.child({ worker: this.worker.bus.index }) : logger;
    const tls = config.tls ? readTls(config.tls) : undefined;
    // Each worker holds its share of every source's budget: the kernel spreads a source's datagrams over them.
    const workers = overrides.worker?.bus.count ?? 1;
    this.flood = new FloodGuard(config.flood, this.clock, this.logger.child({ layer: 'flood' }), workers);
    this.transport = new TransportLayer({
      flood: this.flood,
      listen: config.listen,
      clock: this.clock,
      logger: this.logger.child({ layer: 'transport' }),
      limits: config.limits,
      tls,
      tlsRejectUnauthorized: overrides.tlsRejectUnauthorized,
      advertisedHost: config.advertisedHost,
      forceRport: config.transport.forceRport,
      destinationFilter: overrides.destinationFilter,
      maxConnectionsPerSource: config.transport.maxConnectionsPerSource,
      maxConnections: config.transport.maxConnections,
      reservedConnections: config.transport.reservedConnections,
      idleTimeoutMs: config.transport.idleTimeoutMs,
      messageReadTimeoutMs: config.transport.messageReadTimeoutMs,
      udpBufferBytes: config.transport.udpBufferBytes,
      workers: overrides.worker?.bus,
      workerPorts: config.transport.workerPorts === false ? undefined : config.transport.workerPorts,
    });
    overrides.worker?.bus.setHandler({
      delivered: (bytes, source, stream) => this.transport.receivePassed(bytes, source, stream),
      write: (flowId, bytes) => this.transport.writePassed(flowId, bytes),
      flow: (open, flow) => this.transport.flowPassed(open, flow),
      peersChanged: (changed) => this.transport.peersChanged(changed),
    });
    this.transactions = new TransactionLayer({
      sender: this.transport,
      clock: this.clock,
      timers: config.timers,
      logger: this.logger.child({ layer: 'transaction' }),
      maxTransactions: config.maxTransactions,
    });
    // Topology hiding restores (or masks) a response before its transaction sees it, and drops an altered one.
    this.transport.setReceiver({
      onMessage: (m) => {
        if (m.isRequest || this.topology === undefined || this.topology.response(m)) this.transactions.receive(m);
      },
    });
    this.core = new ServerCore<ServerTransaction>({
      domains: config.domains,
      isLocalHost: (host, port) => this.isLocalHost(host, port),
      supported: config.supported,
      logger: this.logger,
      serverName: SERVER_NAME,
    });
  }

  /** The location service / registrar (available once started). */
  get registrar(): Registrar {
    if (!this.registrarService) throw new Error('server not started');
    return this.registrarService;
  }

  /** The proxy core (available once started). */
  get proxy(): Proxy {
    if (!this.proxyService) throw new Error('server not started');
    return this.proxyService;
  }

  get location(): Stores['location'] {
    if (!this.stores) throw new Error('server not started');
    return this.stores.location;
  }

  /** Per-user CPL scripts (RFC 3880). */
  get cplScripts(): Stores['cpl'] {
    if (!this.stores) throw new Error('server not started');
    return this.stores.cpl;
  }

  get subscribers(): Stores['subscribers'] {
    if (!this.stores) throw new Error('server not started');
    return this.stores.subscribers;
  }

  async start(): Promise<void> {
    const c = this.config;
    const storeConfig = c.store === 'sqlite' ? { dataDir: c.dataDir } : { redisUrl: c.store };
    this.stores = await openStores(storeConfig, this.clock, {
      onError: (err) => this.logger.error({ err }, 'store background error'),
    });
    const logger = this.logger.child({ layer: 'registrar' });
    // One service for registrar (401) and proxy (407): nonces and the failure throttle are shared.
    const auth =
      c.auth.register || c.proxy.authenticateCallers
        ? new AuthService({
            credentials: subscriberCredentials(this.stores.subscribers),
            clock: this.clock,
            logger: this.logger.child({ layer: 'auth' }),
            algorithms: c.auth.algorithms,
            nonceLifetimeMs: c.auth.nonceLifetimeMs,
            secret: c.auth.secret ?? this.worker?.authSecret,
            throttle: c.auth.throttle,
          })
        : undefined;
    this.authService = auth;
    this.registrarService = new Registrar({
      location: this.stores.location,
      subscribers: this.stores.subscribers,
      auth: c.auth.register ? auth : undefined,
      clock: this.clock,
      logger,
      domains: c.domains,
      minExpires: c.registrar.minExpires,
      maxExpires: c.registrar.maxExpires,
      defaultExpires: c.registrar.defaultExpires,
      maxBindingsPerAor: c.registrar.maxBindingsPerAor,
      nodeId: c.nodeId,
      gruuSecret: c.registrar.gruuSecret ?? this.worker?.gruuSecret,
      isFlowAlive: (flowId) => this.transport.isFlowAlive(flowId),
      onBindingsChanged: (aor) => {
        this.presence?.registrationChanged(aor);
        void this.offline?.deliver(aor);
      },
      acceptScript: async (user, script) => {
        const parsed = await putCplScript(this.stores!.cpl, user, script, this.clock.now());
        return parsed.ok ? undefined : formatCplError('script', parsed.errors[0]!);
      },
    });
    const registrar = this.registrarService;
    this.core.handle('REGISTER', (req, tx) => registrar.handle(req, tx));
    const { presence, offline, lists, callStates } = presenceServices({
      stores: this.stores,
      transactions: this.transactions,
      sender: this.transport,
      clock: this.clock,
      logger: this.logger,
      contact: () => `<sip:${this.listeners()[0]?.advertised ?? 'localhost'}>`,
      notifyIntervalMs: c.presence.notifyIntervalMs,
      isServedDomain: (host) => this.core.isServedDomain(host),
      peers: this.worker?.announcePresence,
      owns: this.worker ? ((bus) => (callId: string) => callIdOwner(callId, bus.count) === bus.index)(this.worker.bus) : undefined,
    });
    this.presence = presence;
    this.lists = lists;
    this.offline = offline;
    // Refreshes of our subscriptions come to our Contact, the server itself; initial ones through the policy.
    this.core.handle('SUBSCRIBE', (req, tx) => presence.handleAtServer(req, tx));
    this.core.handle('PUBLISH', (req, tx) => presence.handleAtServer(req, tx));
    if (c.accounting.enabled) {
      const cdr = openCdrStore(c.dataDir);
      this.cdrClose = cdr.close;
      this.accounting = new Accounting({
        store: cdr.cdrs,
        jsonlFile: c.accounting.jsonlFile,
        clock: this.clock,
        logger: this.logger.child({ layer: 'accounting' }),
        maxCallDurationMs: c.accounting.maxCallDurationMs,
      });
    }
    const resolver = new DnsSipResolver({
      servers: c.dns.servers,
      timeoutMs: c.dns.timeoutMs,
      blocklistMs: c.dns.blocklistMs,
      clock: this.clock,
      logger: this.logger.child({ layer: 'dns' }),
      supportedTransports: [...new Set(c.listen.map((l) => l.transport))],
    });
    const proxy = new Proxy({
      resolver,
      accounting: this.accounting,
      // The dialog state of our users' calls, for busy-lamp watchers (RFC 4235).
      callStates,
      ...c.proxy,
      transactions: this.transactions,
      sender: this.transport,
      domains: c.domains,
      isLocalHost: (host, port) => this.isLocalHost(host, port),
      isFlowAlive: (flowId) => this.transport.isFlowAlive(flowId),
      location: registrar,
      subscribers: this.stores.subscribers,
      // Also without authenticateCallers: the default policy challenges callers to PSTN gateways (ctx.challenge()).
      auth,
      clock: this.clock,
      logger: this.logger.child({ layer: 'proxy' }),
      serverName: SERVER_NAME,
      flowTokens: c.nat.flowTokens ? new FlowTokens(keyFromDataDir(c.dataDir, 'flow-token.key', 'nat.flowTokenSecret', c.nat.flowTokenSecret), 'nat.flowTokenSecret') : undefined,
      topologyHiding: c.topologyHiding.enabled
        ? { secret: topologyHidingKey(c.dataDir, c.topologyHiding.secret), outside: c.topologyHiding.outside, workers: this.worker?.bus.count }
        : undefined,
      onFailedLookup: (req) => {
        if (req.source) this.flood.penalize(req.source.address, classOf(req.method), c.flood.failedLookupCost);
      },
      accountLimits: c.flood.enabled ? new KeyedBuckets(shareOf(c.flood.perAccount, this.worker?.bus.count ?? 1), c.flood.maxSources) : undefined,
    });
    this.proxyService = proxy;
    this.topology = proxy.topologyHiding;
    const bus = this.worker?.bus;
    const sbc = c.sbc.enabled
      ? createSbc({
          config: c.sbc,
          transport: this.transport,
          transactions: this.transactions,
          clock: this.clock,
          logger: this.logger.child({ layer: 'sbc' }),
          timers: { T1: c.timers.T1, T2: c.timers.T2 },
          isLocalHost: (host, port) => this.isLocalHost(host, port),
          accounting: this.accounting,
          newCallId: bus ? () => ownedCallId(bus.index, bus.count) : undefined,
          worker: bus?.index,
          limits: this.worker?.limits,
          advertise: c.advertisedHost ?? c.listen.map((l) => l.host).find((h) => h !== '0.0.0.0' && h !== '::'),
        })
      : undefined;
    this.sbc = sbc;
    // The transaction user: the SBC's dialogs and CANCELs, then the proxy's CANCELs, ACKs and strays, then every new
    // request through the core.
    const modules = [...(sbc ? [sbc.module()] : []), proxy.module(), this.coreModule(), ...this.requestLog()];
    this.transactions.setUser(new TransactionUserChain(modules, this.logger.child({ layer: 'transaction-user' })));
    const engine = new PolicyEngine(proxy, this.logger.child({ layer: 'policy' }), c.cpl.enabled ? this.callScriptOptions() : undefined, presence, sbc);
    const subscribers = this.stores.subscribers;
    try {
      this.gatewayStore = await openGatewayStore(storeConfig, { onError: (err) => this.logger.error({ err }, 'gateway store background error') });
      const routing = await GatewayRouting.open(c.gateways, this.gatewayStore);
      this.routing = routing;
      // Without a policy file, the iptel.org example (docs/policy.md): the proxy's default routing plus PSTN gateways.
      const cgi = c.sipCgi;
      const cgiRunner = cgi
        ? new SipCgiRunner({ script: cgi.script, interpreter: cgi.interpreter, timeoutMs: cgi.timeoutMs, env: cgi.env, logger: this.logger.child({ layer: 'sip-cgi' }), clock: this.clock })
        : undefined;
      this.cgiRunner = cgiRunner;
      const defaultPolicy = createDefaultPolicy({
        dialplan: () => routing.dialplan,
        isServedDomain: (host) => this.core.isServedDomain(host),
        isLocalHost: (host, port) => this.isLocalHost(host, port),
        subscribers,
        sbc: sbc ? sbcSelector(c.sbc.calls) : undefined,
        keepForOffline: async (ctx) => {
          const kept = await offline.keepIfOffline(ctx.request);
          if (kept) ctx.reply(kept.status, kept.reason);
          return kept !== undefined;
        },
        sipCgi:
          cgi && cgiRunner
            ? async (ctx) => {
                if (!cgi.methods.includes(ctx.method)) return false;
                const l = this.listeners()[0];
                return sipCgi(ctx, cgiRunner, { name: this.config.advertisedHost ?? l?.host ?? 'localhost', port: l?.port ?? 5060 });
              }
            : undefined,
      });
      this.core.route((req, st) => engine.handle(this.policy ?? defaultPolicy, req, st));
      // A policy that does not load stops the start: better than routing by rules nobody wrote.
      if (c.policy) this.policy = await this.policyLoader.load(c.policy);
      // Before the SIP listeners: a second server on this host stops here, instead of taking calls while
      // `sipway reload` reaches the first. Workers leave the endpoint to the primary, which relays reloads to them.
      const adminAt = this.worker ? false : c.admin;
      if (adminAt) {
        const admin = new AdminEndpoint({ ...singleProcessTarget(this), logger: this.logger.child({ layer: 'admin' }) });
        await admin.start(adminAt.host, adminAt.port);
        this.admin = admin;
      }
      await this.transport.start();
      this.flood.start();
    } catch (e) {
      await this.admin?.stop();
      this.admin = undefined;
      await this.closeServices();
      throw e;
    }
    // One prober per server: N workers would probe every binding N times.
    if (c.nat.keepalive && (this.worker?.bus.index ?? 0) === 0) {
      const bus = this.worker?.bus;
      this.keepalive = new NatKeepalive({
        location: this.stores.location,
        transactions: this.transactions,
        sender: this.transport,
        clock: this.clock,
        logger: this.logger.child({ layer: 'nat' }),
        intervalMs: c.nat.intervalMs,
        maxFailures: c.nat.maxFailures,
        nodeId: c.nodeId,
        newCallId: bus ? () => ownedCallId(bus.index, bus.count) : undefined,
      });
      this.keepalive.start();
    }
    // Subscriptions kept over a restart go on, now that NOTIFYs can leave.
    await this.presence?.restore();
    this.started = true;
    this.logger.info(startedLogFields(this.config, listenerLogFields(this.listeners())), this.worker ? 'worker started' : 'sipway started');
  }

  /** Another worker saw a presence change: this one's subscribers are told. */
  presenceChanged(change: PresenceChange): void {
    this.presence?.fromPeer(change);
  }

  /** A mailbox changed in the store (sipway mwi set, a voicemail service): its message-summary watchers are told. */
  mailboxChanged(aor: string): void {
    this.presence?.mailboxChanged(aor);
  }

  /** A presentity's watcher rules changed in the store (sipway watchers): its watchers are decided again. */
  async watcherRulesChanged(aor: string): Promise<void> {
    await this.presence?.watcherRulesChanged(aor);
  }

  /** A user's buddy list changed in the store (sipway buddies): its subscriptions get the whole list again. */
  buddiesChanged(aor: string): void {
    this.lists?.listChanged(aor);
  }

  /** The calls through the SBC now (sipway calls). */
  async sbcCalls(): Promise<SbcCallInfo[]> {
    return (await this.sbc?.list()) ?? [];
  }

  /** Ends a call through the SBC (sipway calls end); false when this server has no such call. */
  endSbcCall(id: string): boolean {
    return this.sbc?.endCall(id) ?? false;
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.admin?.stop();
    this.admin = undefined;
    // Calls through the SBC get their BYEs while the transactions still run.
    await this.sbc?.close();
    this.keepalive?.stop();
    await this.cgiRunner?.close();
    await this.mailer?.flush();
    // Watchers are told their subscriptions end (deactivated: subscribe again), as far as the NOTIFYs still go out.
    this.presence?.close();
    this.transactions.close();
    this.flood.stop();
    await this.transport.stop();
    await this.closeServices();
    this.logger.info('sipway stopped');
    // Log lines are written asynchronously: the last ones must be out before the process exits.
    await new Promise<void>((resolve) => this.logger.flush(() => resolve()));
  }

  /**
   * Re-reads the gateways and routes of the config file's `gateways` section and of the store, then loads the
   * configured policy file again and, if it loads and type-checks, makes it the one new requests start under;
   * transactions in progress finish under the one they started with. A failure leaves the old ones running.
   */
  async reloadPolicy(): Promise<{ ok: true } | { ok: false; error: string }> {
    try {
      const file = this.config.configFile;
      // Only the gateways section is taken again: listeners, stores and the rest need a restart.
      await this.routing?.reload(file === undefined ? undefined : loadConfigFile(file).gateways);
      this.logger.info('gateways reloaded');
    } catch (e) {
      const error = `gateways not reloaded, the previous ones stay: ${e instanceof Error ? e.message : String(e)}`;
      this.logger.error({ error }, 'gateways not reloaded');
      return { ok: false, error };
    }
    const file = this.config.policy;
    if (!file) return { ok: true };
    try {
      this.policy = await this.policyLoader.load(file);
      this.logger.info({ policy: file }, 'routing policy reloaded');
      return { ok: true };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.logger.error({ policy: file, error }, 'routing policy not reloaded; the previous one stays');
      return { ok: false, error };
    }
  }

  /** The counters of every layer (the admin endpoint's GET /stats). */
  stats(): ProcessStats {
    const worker = this.worker?.bus.index;
    return { ...(worker !== undefined ? { worker } : {}), transport: this.transport.stats(), transactions: this.transactions.stats(), flood: this.flood.stats(), proxy: this.proxyService?.stats(), auth: this.authService?.stats(), presence: this.presence?.stats() };
  }

  /** The admin endpoint's address, once started with one. */
  adminAddress(): { host: string; port: number } | undefined {
    return this.admin?.address();
  }

  private async closeServices(): Promise<void> {
    await this.accounting?.close();
    this.cdrClose?.();
    this.accounting = undefined;
    this.cdrClose = undefined;
    await this.stores?.close();
    this.stores = undefined;
    await this.gatewayStore?.close();
    this.gatewayStore = undefined;
    this.routing = undefined;
  }

  listeners(): BoundListener[] {
    return this.transport.listeners();
  }

  /** Users' CPL scripts on calls: their store, and where mail nodes go (an SMTP relay, or the log). */
  private callScriptOptions(): CallScriptOptions {
    const { cpl } = this.config;
    const logger = this.logger.child({ layer: 'cpl' });
    if (cpl.smtp) {
      this.mailer = new SmtpRelayMailer({ ...cpl.smtp, onError: (err, message) => logger.warn({ err: err.message, to: message.to }, 'CPL mail not delivered') });
    }
    const options: CallScriptOptions = {
      scripts: this.stores!.cpl,
      isServedDomain: (host) => this.core.isServedDomain(host),
      run: { maxRingSeconds: cpl.maxRingSeconds, ...(cpl.timeZone !== undefined ? { timeZone: cpl.timeZone } : {}) },
      now: () => new Date(this.clock.now()),
    };
    if (this.mailer) options.mail = this.mailer.send;
    return options;
  }

  /** True for hosts that name this server: listener and advertised addresses, loopback, and local interfaces behind a wildcard bind. */
  isLocalHost(host: string, port: number | undefined): boolean {
    const h = host.toLowerCase().replace(/^\[|\]$/g, '');
    const listeners = this.listeners();
    if (port !== undefined && !listeners.some((l) => l.port === port || advertisedPortOf(l) === port)) return false;
    if (h === this.config.advertisedHost?.toLowerCase()) return true;
    for (const l of listeners) {
      if (l.host === h || advertisedHostname(l) === h) return true;
      if (l.host === '0.0.0.0' || l.host === '::') {
        if (h === 'localhost' || this.interfaceAddresses.has(h)) return true;
      }
    }
    return false;
  }

  /** Every new request no module before it took: §8.2/§16.3 checks, then the registrar or the proxy. */
  private coreModule(): TransactionUserModule {
    return {
      name: 'core',
      claimRequest: (request, st) => {
        this.core.onRequest(request, st);
        return true;
      },
    };
  }

  /** One log line per request at the info level, when its final response is sent, whoever sends it. */
  private requestLog(): TransactionUserModule[] {
    return this.logger.isLevelEnabled('info') ? [requestLogModule(this.logger, this.clock)] : [];
  }
}

function advertisedPortOf(l: BoundListener): number {
  return Number(l.advertised.slice(l.advertised.lastIndexOf(':') + 1));
}

function localAddresses(): Set<string> {
  const out = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (net.isIP(a.address)) out.add(a.address.toLowerCase());
  }
  return out;
}
