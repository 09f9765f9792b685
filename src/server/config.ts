import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../util/errors.js';
import { DEFAULT_LIMITS, type MessageLimits } from '../message/index.js';
import { DEFAULT_DIGEST_ALGORITHMS, type DigestAlgorithm } from '../auth/index.js';
import type { ListenSpec, TransportName } from '../transport/types.js';
import { DEFAULT_PORTS } from '../transport/response-route.js';
import { defaultFloodGuardConfig, readFloodConfig, type FloodGuardConfig } from '../transport/flood-guard.js';
import { checkProxyConfig, defaultProxyConfig, readProxyConfig, type ProxyConfig } from '../proxy/config.js';
import { defaultTopologyHidingConfig, readTopologyHidingConfig, type TopologyHidingConfig } from '../proxy/topology-hiding.js';
import { DEFAULT_GATEWAY_CONFIG, parseGatewayConfig, type GatewayConfig } from '../policy/gateways.js';
import { DEFAULT_MAX_RING_SECONDS } from '../policy/cpl/interpreter.js';
import { canonicalZone } from '../policy/cpl/datetime.js';
import { checkSbcConfig, defaultSbcConfig, readSbcConfig, type SbcConfig } from '../sbc/config.js';
import { configString, configStringList } from '../util/config-fields.js';

/** TLS for tls:/wss: listeners and for connections sipway opens (docs/transports.md#tls). */
export interface TlsConfig {
  /** PEM certificate (chain) and private key of the listeners. */
  cert: string;
  key: string;
  /** PEM CA bundle trusted for peers' certificates, in both directions (default: Node's built-in roots). */
  ca?: string;
  /** Ask clients for a certificate: 'none' (default), 'request' (verified if sent), 'require' (refused without). */
  verifyClient: 'none' | 'request' | 'require';
  /** Verify the certificates of servers sipway connects to (default true). */
  verifyServer: boolean;
  /** Certificate and key sipway presents when it connects out (mutual TLS with a peer or trunk). */
  clientCert?: string;
  clientKey?: string;
  /** Lowest protocol version, both directions (default TLSv1.2). */
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface ServerConfig {
  /** Sockets to listen on. Default: UDP and TCP on 0.0.0.0:5060. */
  listen: ListenSpec[];
  /** Domains this server is responsible for (registrar/proxy target domains). */
  domains: string[];
  /** Where the embedded store lives. */
  dataDir: string;
  /** `sqlite` (embedded, default) or a `redis://` URL. */
  store: string;
  /** Host to advertise in Via/Record-Route when listening on a wildcard address. */
  advertisedHost?: string;
  log: { level: string; file?: string };
  tls?: TlsConfig;
  limits: MessageLimits;
  timers: { T1: number; T2: number; T4: number; linger?: number };
  transport: {
    forceRport: boolean;
    maxConnectionsPerSource: number;
    maxConnections: number;
    /** Of maxConnections, the places kept for addresses with an established flow; a tenth when absent. */
    reservedConnections?: number;
    idleTimeoutMs: number;
    /** From the first byte of a stream message until it is complete (Kamailio's tcp_msg_read_timeout). */
    messageReadTimeoutMs: number;
    udpBufferBytes: number;
    /** The first of the workers' own UDP ports (TransportLayerOptions.workerPorts); false: none. */
    workerPorts: number | false;
  };
  /** Upper bound on live transactions (memory under floods). */
  maxTransactions: number;
  /** Option tags we support (Supported / Require checks). */
  supported: string[];
  /** Identifies this node in bindings (clusters sharing Redis). */
  nodeId: string;
  auth: {
    /** REGISTER requires digest authentication (default true; false is a lab setting). */
    register: boolean;
    /** The challenges sent, in this order; default MD5 alone, which every common phone answers (docs/auth.md). */
    algorithms: DigestAlgorithm[];
    nonceLifetimeMs: number;
    /** Shared by cluster nodes so that a nonce issued by one verifies on another; random per process when absent. */
    secret?: string;
    throttle: { windowMs: number; maxFailuresPerSource: number; maxFailuresPerUser: number; blockMs: number; slowdownAfter: number };
  };
  registrar: { minExpires: number; maxExpires: number; defaultExpires: number; maxBindingsPerAor: number; gruuSecret?: string };
  /** The presence server (docs/presence.md): the least time between two NOTIFYs of one subscription, ms (RFC 3856 §6.10). */
  presence: { notifyIntervalMs: number };
  /** A SIP-CGI script (RFC 3050) the default policy runs for out-of-dialog requests of `methods` (docs/sip-cgi.md). */
  sipCgi?: { script: string; interpreter?: string[]; timeoutMs?: number; methods: string[]; env?: Record<string, string> };
  /** Per-user CPL scripts on calls (docs/cpl.md). */
  cpl: {
    /** Run users' scripts on calls (default true: a user without a script costs one store read per call). */
    enabled: boolean;
    /** IANA zone of "floating" times in time-switch (no tzid); default the server's. */
    timeZone?: string;
    /** The longest a proxy node rings, whatever its timeout says (seconds). */
    maxRingSeconds: number;
    /** Where `mail` nodes go; without it they are logged. */
    smtp?: { host: string; port: number; from: string };
  };
  /** The proxy core (docs/proxy.md). */
  proxy: ProxyConfig;
  /** The proxy's stateless topology hiding (docs/sbc.md#stateless-topology-hiding-in-the-proxy); off by default. */
  topologyHiding: TopologyHidingConfig;
  /** RFC 3263 next-hop resolution (docs/dns.md); servers default to /etc/resolv.conf. */
  dns: { servers?: string[]; timeoutMs: number; blocklistMs: number };
  /** Call detail records (docs/accounting.md): always in the node's SQLite file under `data`, optionally JSON lines. */
  accounting: { enabled: boolean; jsonlFile?: string; maxCallDurationMs: number };
  /** Per-source request budgets and bans before parsing (docs/security.md). */
  flood: FloodGuardConfig;
  /** NAT keep-alive OPTIONS to bindings behind NAT (docs/nat.md). */
  nat: {
    keepalive: boolean;
    intervalMs: number;
    maxFailures: number;
    /** Flow tokens in Record-Route (RFC 5626 §5.3): in-dialog requests reach phones over the flow they use. */
    flowTokens: boolean;
    /** Key of the tokens' HMAC; default a random key kept in `data/flow-token.key` (survives restarts). */
    flowTokenSecret?: string;
  };
  /** The routing policy module (docs/policy.md), an absolute path; without it the proxy's default routing. */
  policy?: string;
  /** The admin endpoint (`sipway reload`): HTTP on a loopback address, or false for none. */
  admin: { host: string; port: number } | false;
  /** PSTN gateways, routes and privileges of the default policy (docs/gateways.md); the store adds to them. */
  gateways: GatewayConfig;
  /** The config file the settings came from (absolute): a reload reads its `gateways` section again. */
  configFile?: string;
  /** The SBC: B2BUA with topology hiding and a media relay (docs/sbc.md); off by default. */
  sbc: SbcConfig;
  /**
   * Worker processes of `sipway serve` sharing the listeners (docs/workers.md); default one per CPU core. 1 runs
   * the server in the one process, without a cluster primary.
   */
  workers: number;
}

export function defaultConfig(): ServerConfig {
  return {
    listen: [
      { transport: 'udp', host: '0.0.0.0', port: 5060 },
      { transport: 'tcp', host: '0.0.0.0', port: 5060 },
    ],
    domains: defaultDomains(),
    dataDir: path.resolve('data'),
    store: 'sqlite',
    log: { level: 'info' },
    limits: { ...DEFAULT_LIMITS },
    timers: { T1: 500, T2: 4000, T4: 5000 },
    transport: { forceRport: false, maxConnectionsPerSource: 32, maxConnections: 10000, idleTimeoutMs: 120000, messageReadTimeoutMs: 10000, udpBufferBytes: 4 * 1024 * 1024, workerPorts: false },
    maxTransactions: 100000,
    supported: ['path', 'outbound', 'gruu'],
    nodeId: os.hostname() || 'sipway',
    auth: {
      register: true,
      algorithms: [...DEFAULT_DIGEST_ALGORITHMS],
      nonceLifetimeMs: 300000,
      throttle: { windowMs: 60000, maxFailuresPerSource: 10, maxFailuresPerUser: 10, blockMs: 300000, slowdownAfter: 3 },
    },
    registrar: { minExpires: 60, maxExpires: 7200, defaultExpires: 3600, maxBindingsPerAor: 16 },
    presence: { notifyIntervalMs: 5000 },
    cpl: { enabled: true, maxRingSeconds: DEFAULT_MAX_RING_SECONDS },
    proxy: defaultProxyConfig(),
    topologyHiding: defaultTopologyHidingConfig(),
    dns: { timeoutMs: 2000, blocklistMs: 60000 },
    accounting: { enabled: true, maxCallDurationMs: 6 * 3600_000 },
    nat: { keepalive: true, intervalMs: 30000, maxFailures: 3, flowTokens: true },
    flood: defaultFloodGuardConfig(),
    admin: { host: '127.0.0.1', port: DEFAULT_ADMIN_PORT },
    gateways: DEFAULT_GATEWAY_CONFIG,
    sbc: defaultSbcConfig(),
    workers: os.availableParallelism(),
  };
}

export const MAX_WORKERS = 64;

export const DEFAULT_ADMIN_PORT = 5090;

/**
 * `127.0.0.1:5090`, `[::1]:5090`, `localhost:5090`. Loopback only: the endpoint has no authentication, so only
 * local users (who could signal the process anyway) may reach it.
 */
export function parseAdminAddress(spec: string, field = 'admin.listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(spec.trim());
  if (!m) throw new ConfigError(field, `'${spec}' is not HOST:PORT (e.g. 127.0.0.1:${DEFAULT_ADMIN_PORT})`);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(field, `bad port in '${spec}'`);
  if (host !== 'localhost' && host !== '::1' && !host.startsWith('127.')) throw new ConfigError(field, `'${host}' is not a loopback address (the admin endpoint has no authentication)`);
  return { host, port };
}

function defaultDomains(): string[] {
  const names = new Set(['localhost']);
  const host = os.hostname();
  if (host) names.add(host.toLowerCase());
  return [...names];
}

const TRANSPORTS: TransportName[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];

function readTls(value: unknown): TlsConfig {
  if (!isObject(value)) throw new ConfigError('tls', 'must be an object with cert and key');
  const tls: TlsConfig = { cert: str(value.cert, 'tls.cert'), key: str(value.key, 'tls.key'), verifyClient: 'none', verifyServer: true, minVersion: 'TLSv1.2' };
  for (const [k, v] of Object.entries(value)) {
    const field = `tls.${k}`;
    if (k === 'cert' || k === 'key') continue;
    if (k === 'ca') tls.ca = str(v, field);
    else if (k === 'clientCert') tls.clientCert = str(v, field);
    else if (k === 'clientKey') tls.clientKey = str(v, field);
    else if (k === 'verifyClient') {
      if (v !== 'none' && v !== 'request' && v !== 'require') throw new ConfigError(field, `must be 'none', 'request' or 'require'`);
      tls.verifyClient = v;
    } else if (k === 'verifyServer') {
      if (typeof v !== 'boolean') throw new ConfigError(field, 'must be true or false');
      tls.verifyServer = v;
    } else if (k === 'minVersion') {
      if (v !== 'TLSv1.2' && v !== 'TLSv1.3') throw new ConfigError(field, `must be 'TLSv1.2' or 'TLSv1.3'`);
      tls.minVersion = v;
    } else throw new ConfigError(field, 'unknown setting');
  }
  if ((tls.clientCert === undefined) !== (tls.clientKey === undefined)) {
    throw new ConfigError(tls.clientCert === undefined ? 'tls.clientCert' : 'tls.clientKey', 'clientCert and clientKey go together');
  }
  return tls;
}

/**
 * Parses `udp:127.0.0.1:5060`, `tls:[::1]:5061`, `tcp:5070`, `ws:0.0.0.0` (default port per transport), optionally
 * followed by `advertise HOST[:PORT]`, the address to name in Via and Record-Route (Kamailio's form, for a server
 * behind 1:1 NAT): `udp:10.0.0.10:5060 advertise 203.0.113.7:5060`.
 */
export function parseListen(text: string, field = 'listen'): ListenSpec {
  const [spec, advertise, ...rest] = text.trim().split(/\s+advertise\s+/i) as [string, string | undefined, ...string[]];
  if (rest.length > 0) throw new ConfigError(field, `'${text}' names advertise twice`);
  const listen = parseBareListen(spec, field);
  if (advertise === undefined) return listen;
  if (!/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/.test(advertise) || Number(advertise.split(':').pop()) > 65535) {
    throw new ConfigError(field, `advertise '${advertise}' is not HOST[:PORT]`);
  }
  return { ...listen, advertise };
}

function parseBareListen(spec: string, field: string): ListenSpec {
  const m = /^([a-z]+):(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))?(?::(\d+))?$/.exec(spec.trim());
  const bare = /^([a-z]+):(\d+)$/.exec(spec.trim());
  if (bare) return listenOf(bare[1]!, '0.0.0.0', bare[2]!, spec, field);
  if (!m) throw new ConfigError(field, `'${spec}' is not TRANSPORT:HOST[:PORT] (e.g. udp:127.0.0.1:5060, tcp:[::1]:5060)`);
  return listenOf(m[1]!, m[2] ?? m[3] ?? '0.0.0.0', m[4], spec, field);
}

function listenOf(transport: string, host: string, port: string | undefined, spec: string, field: string): ListenSpec {
  if (!TRANSPORTS.includes(transport as TransportName)) {
    throw new ConfigError(field, `unknown transport '${transport}' in '${spec}' (use ${TRANSPORTS.join(', ')})`);
  }
  const t = transport as TransportName;
  const p = port === undefined ? DEFAULT_PORTS[t] : Number(port);
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new ConfigError(field, `bad port in '${spec}'`);
  return { transport: t, host, port: p };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new ConfigError(field, `must be a number between ${min} and ${max}`);
  }
  return v;
}

const str = configString;
const strList = configStringList;

function secret(v: unknown, field: string): string {
  const s = str(v, field);
  if (Buffer.byteLength(s) < 16) throw new ConfigError(field, 'must be at least 16 bytes');
  return s;
}

function applyAuth(c: ServerConfig, value: unknown): void {
  if (!isObject(value)) throw new ConfigError('auth', 'must be an object');
  for (const [k, v] of Object.entries(value)) {
    switch (k) {
      case 'register':
        if (typeof v !== 'boolean') throw new ConfigError('auth.register', 'must be true or false');
        c.auth.register = v;
        break;
      case 'algorithms': {
        const list = strList(v, 'auth.algorithms');
        for (const a of list) if (a !== 'MD5' && a !== 'SHA-256') throw new ConfigError('auth.algorithms', `unknown algorithm '${a}' (MD5, SHA-256)`);
        if (list.length === 0) throw new ConfigError('auth.algorithms', 'needs at least one algorithm');
        c.auth.algorithms = list as DigestAlgorithm[];
        break;
      }
      case 'nonceLifetimeMs':
        c.auth.nonceLifetimeMs = num(v, 'auth.nonceLifetimeMs', 1000);
        break;
      case 'secret':
        c.auth.secret = secret(v, 'auth.secret');
        break;
      case 'throttle':
        if (!isObject(v)) throw new ConfigError('auth.throttle', 'must be an object');
        for (const [tk, tv] of Object.entries(v)) {
          if (!(tk in c.auth.throttle)) throw new ConfigError(`auth.throttle.${tk}`, `unknown setting (known: ${Object.keys(c.auth.throttle).join(', ')})`);
          c.auth.throttle[tk as keyof ServerConfig['auth']['throttle']] = num(tv, `auth.throttle.${tk}`, 1);
        }
        break;
      default:
        throw new ConfigError(`auth.${k}`, 'unknown setting');
    }
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Applies a parsed config file (JSON) onto `base`, validating every field; unknown fields are errors (typos matter). */
export function applyConfigObject(base: ServerConfig, raw: unknown, source = 'config'): ServerConfig {
  if (!isObject(raw)) throw new ConfigError(source, 'must be a JSON object');
  const c: ServerConfig = structuredClone(base);
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'listen':
        c.listen = strList(value, 'listen').map((s, i) => parseListen(s, `listen[${i}]`));
        break;
      case 'domains':
        c.domains = strList(value, 'domains').map((d) => d.toLowerCase());
        break;
      case 'data':
        c.dataDir = path.resolve(str(value, 'data'));
        break;
      case 'store':
        c.store = str(value, 'store');
        if (c.store !== 'sqlite' && !/^rediss?:\/\//.test(c.store)) throw new ConfigError('store', `'${c.store}' is neither 'sqlite' nor a redis:// URL`);
        break;
      case 'advertisedHost':
        c.advertisedHost = str(value, 'advertisedHost');
        break;
      case 'log':
        if (!isObject(value)) throw new ConfigError('log', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (k === 'level') {
            c.log.level = str(v, 'log.level');
            if (!LOG_LEVELS.includes(c.log.level)) throw new ConfigError('log.level', `must be one of ${LOG_LEVELS.join(', ')}`);
          } else if (k === 'file') c.log.file = str(v, 'log.file');
          else throw new ConfigError(`log.${k}`, 'unknown setting');
        }
        break;
      case 'tls':
        c.tls = readTls(value);
        break;
      case 'limits':
        if (!isObject(value)) throw new ConfigError('limits', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (!(k in c.limits)) throw new ConfigError(`limits.${k}`, `unknown limit (known: ${Object.keys(c.limits).join(', ')})`);
          c.limits[k as keyof MessageLimits] = num(v, `limits.${k}`, 1);
        }
        break;
      case 'timers':
        if (!isObject(value)) throw new ConfigError('timers', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (k !== 'T1' && k !== 'T2' && k !== 'T4' && k !== 'linger') throw new ConfigError(`timers.${k}`, 'unknown timer (T1, T2, T4, linger)');
          c.timers[k] = num(v, `timers.${k}`, 1, 600000);
        }
        break;
      case 'transport':
        if (!isObject(value)) throw new ConfigError('transport', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (k === 'forceRport') {
            if (typeof v !== 'boolean') throw new ConfigError('transport.forceRport', 'must be true or false');
            c.transport.forceRport = v;
          } else if (k === 'workerPorts') {
            if (v !== false && !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535)) {
              throw new ConfigError('transport.workerPorts', 'must be false or the first worker port (1-65535)');
            }
            c.transport.workerPorts = v as number | false;
          } else if (k === 'maxConnectionsPerSource' || k === 'maxConnections' || k === 'idleTimeoutMs' || k === 'udpBufferBytes' || k === 'messageReadTimeoutMs') {
            c.transport[k] = num(v, `transport.${k}`, 1);
          } else if (k === 'reservedConnections') {
            c.transport.reservedConnections = num(v, 'transport.reservedConnections', 0);
          } else throw new ConfigError(`transport.${k}`, 'unknown setting');
        }
        break;
      case 'maxTransactions':
        c.maxTransactions = num(value, 'maxTransactions', 1);
        break;
      case 'supported':
        c.supported = strList(value, 'supported');
        break;
      case 'nodeId':
        c.nodeId = str(value, 'nodeId');
        break;
      case 'workers':
        if (value === 'auto') c.workers = os.availableParallelism();
        else if (!Number.isInteger(value)) throw new ConfigError('workers', `must be 'auto' or a whole number between 1 and ${MAX_WORKERS}`);
        else c.workers = num(value, 'workers', 1, MAX_WORKERS);
        break;
      case 'auth':
        applyAuth(c, value);
        break;
      case 'presence':
        if (!isObject(value)) throw new ConfigError('presence', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (k === 'notifyIntervalMs') c.presence.notifyIntervalMs = num(v, 'presence.notifyIntervalMs', 0, 3_600_000);
          else throw new ConfigError(`presence.${k}`, 'unknown setting');
        }
        break;
      case 'registrar':
        if (!isObject(value)) throw new ConfigError('registrar', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (k === 'gruuSecret') c.registrar.gruuSecret = secret(v, 'registrar.gruuSecret');
          else if (k === 'minExpires' || k === 'maxExpires' || k === 'defaultExpires') c.registrar[k] = num(v, `registrar.${k}`, 0, 4294967295);
          else if (k === 'maxBindingsPerAor') c.registrar[k] = num(v, `registrar.${k}`, 1, 10000);
          else throw new ConfigError(`registrar.${k}`, 'unknown setting');
        }
        break;
      case 'dns':
        if (!isObject(value)) throw new ConfigError('dns', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (k === 'servers') c.dns.servers = strList(v, 'dns.servers');
          else if (k === 'timeoutMs' || k === 'blocklistMs') c.dns[k] = num(v, `dns.${k}`, k === 'timeoutMs' ? 1 : 0, 600000);
          else throw new ConfigError(`dns.${k}`, 'unknown setting');
        }
        break;
      case 'accounting':
        if (!isObject(value)) throw new ConfigError('accounting', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (k === 'enabled') {
            if (typeof v !== 'boolean') throw new ConfigError('accounting.enabled', 'must be true or false');
            c.accounting.enabled = v;
          } else if (k === 'jsonlFile') c.accounting.jsonlFile = path.resolve(str(v, 'accounting.jsonlFile'));
          else if (k === 'maxCallDurationMs') c.accounting.maxCallDurationMs = num(v, 'accounting.maxCallDurationMs', 1000);
          else throw new ConfigError(`accounting.${k}`, 'unknown setting');
        }
        break;
      case 'nat':
        if (!isObject(value)) throw new ConfigError('nat', 'must be an object');
        for (const [k, v] of Object.entries(value)) {
          if (k === 'keepalive') {
            if (typeof v !== 'boolean') throw new ConfigError('nat.keepalive', 'must be true or false');
            c.nat.keepalive = v;
          } else if (k === 'flowTokens') {
            if (typeof v !== 'boolean') throw new ConfigError('nat.flowTokens', 'must be true or false');
            c.nat.flowTokens = v;
          } else if (k === 'flowTokenSecret') c.nat.flowTokenSecret = secret(v, 'nat.flowTokenSecret');
          else if (k === 'intervalMs') c.nat.intervalMs = num(v, 'nat.intervalMs', 100);
          else if (k === 'maxFailures') c.nat.maxFailures = num(v, 'nat.maxFailures', 1, 100);
          else throw new ConfigError(`nat.${k}`, 'unknown setting');
        }
        break;
      case 'proxy':
        c.proxy = readProxyConfig(c.proxy, value);
        break;
      case 'topologyHiding':
        c.topologyHiding = readTopologyHidingConfig(c.topologyHiding, value);
        break;
      case 'flood':
        c.flood = readFloodConfig(c.flood, value);
        break;
      case 'policy':
        c.policy = path.resolve(str(value, 'policy'));
        break;
      case 'admin':
        if (value === false) c.admin = false;
        else if (isObject(value)) {
          for (const [k, v] of Object.entries(value)) {
            if (k === 'listen') c.admin = parseAdminAddress(str(v, 'admin.listen'));
            else throw new ConfigError(`admin.${k}`, 'unknown setting');
          }
        } else throw new ConfigError('admin', "must be false or an object like { listen: '127.0.0.1:5090' }");
        break;
      case 'gateways':
        c.gateways = parseGatewayConfig(value, 'gateways');
        break;
      case 'cpl':
        c.cpl = readCplConfig(value);
        break;
      case 'sbc':
        c.sbc = readSbcConfig(c.sbc, value);
        break;
      case 'sipCgi': {
        if (!isObject(value)) throw new ConfigError('sipCgi', 'must be an object with a script');
        const cgi: NonNullable<ServerConfig['sipCgi']> = { script: path.resolve(str(value.script, 'sipCgi.script')), methods: ['INVITE', 'MESSAGE', 'OPTIONS', 'SUBSCRIBE'] };
        for (const [k, v] of Object.entries(value)) {
          if (k === 'script') continue;
          if (k === 'interpreter') cgi.interpreter = strList(v, 'sipCgi.interpreter');
          else if (k === 'timeoutMs') cgi.timeoutMs = num(v, 'sipCgi.timeoutMs', 10, 600000);
          else if (k === 'methods') cgi.methods = strList(v, 'sipCgi.methods').map((m) => m.toUpperCase());
          else if (k === 'env') {
            if (!isObject(v)) throw new ConfigError('sipCgi.env', 'must be an object of strings');
            cgi.env = Object.fromEntries(Object.entries(v).map(([ek, ev]) => [ek, str(ev, `sipCgi.env.${ek}`)]));
          } else throw new ConfigError(`sipCgi.${k}`, 'unknown setting (script, interpreter, timeoutMs, methods, env)');
        }
        c.sipCgi = cgi;
        break;
      }
      default:
        throw new ConfigError(key, 'unknown setting');
    }
  }
  return c;
}

function readCplConfig(value: unknown): ServerConfig['cpl'] {
  if (!isObject(value)) throw new ConfigError('cpl', 'must be an object');
  const cpl: ServerConfig['cpl'] = { enabled: true, maxRingSeconds: DEFAULT_MAX_RING_SECONDS };
  for (const [k, v] of Object.entries(value)) {
    if (k === 'enabled') {
      if (typeof v !== 'boolean') throw new ConfigError('cpl.enabled', 'must be true or false');
      cpl.enabled = v;
    } else if (k === 'timeZone') {
      const zone = canonicalZone(str(v, 'cpl.timeZone'));
      if (zone === undefined) throw new ConfigError('cpl.timeZone', `'${String(v)}' is not an IANA time zone (e.g. Europe/Berlin)`);
      cpl.timeZone = zone;
    } else if (k === 'maxRingSeconds') cpl.maxRingSeconds = num(v, 'cpl.maxRingSeconds', 1, 3600);
    else if (k === 'smtp') {
      if (!isObject(v)) throw new ConfigError('cpl.smtp', "must be an object like { host: '127.0.0.1', port: 25, from: 'sipway@example.com' }");
      const smtp = { host: str(v.host, 'cpl.smtp.host'), port: 25, from: str(v.from, 'cpl.smtp.from') };
      for (const [sk, sv] of Object.entries(v)) {
        if (sk === 'port') smtp.port = num(sv, 'cpl.smtp.port', 1, 65535);
        else if (sk !== 'host' && sk !== 'from') throw new ConfigError(`cpl.smtp.${sk}`, 'unknown setting (host, port, from)');
      }
      if (!/^[^\s@<>]+@[^\s@<>]+$/.test(smtp.from)) throw new ConfigError('cpl.smtp.from', `'${smtp.from}' is not an e-mail address`);
      cpl.smtp = smtp;
    } else throw new ConfigError(`cpl.${k}`, 'unknown setting (enabled, timeZone, maxRingSeconds, smtp)');
  }
  return cpl;
}

export function loadConfigFile(file: string, base: ServerConfig = defaultConfig()): ServerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('--config', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('--config', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  const c = applyConfigObject(base, raw, file);
  // A policy named in a config file lives next to it, wherever the server is started from.
  const policy = (raw as { policy?: unknown } | null)?.policy;
  if (typeof policy === 'string') c.policy = path.resolve(path.dirname(file), policy);
  c.configFile = path.resolve(file);
  return c;
}

/** Validates cross-field rules once everything is merged. */
export function finishConfig(c: ServerConfig): ServerConfig {
  if (c.listen.length === 0) throw new ConfigError('listen', 'at least one listener is needed');
  if (c.domains.length === 0) throw new ConfigError('domains', 'at least one domain is needed');
  const secure = c.listen.filter((l) => l.transport === 'tls' || l.transport === 'wss');
  if (secure.length > 0 && !c.tls) {
    throw new ConfigError('tls.cert', `listener ${secure[0]!.transport}:${secure[0]!.host}:${secure[0]!.port} needs tls.cert and tls.key (PEM files)`);
  }
  if (c.timers.T2 < c.timers.T1) throw new ConfigError('timers.T2', 'must not be smaller than T1');
  const reserved = c.transport.reservedConnections;
  if (reserved !== undefined && (!Number.isInteger(reserved) || reserved >= c.transport.maxConnections)) {
    throw new ConfigError('transport.reservedConnections', `must be a whole number below transport.maxConnections (${c.transport.maxConnections})`);
  }
  const r = c.registrar;
  if (r.maxExpires < r.minExpires) throw new ConfigError('registrar.maxExpires', 'must not be smaller than registrar.minExpires');
  if (r.defaultExpires < r.minExpires || r.defaultExpires > r.maxExpires) {
    throw new ConfigError('registrar.defaultExpires', 'must lie between registrar.minExpires and registrar.maxExpires');
  }
  checkProxyConfig(c.proxy, c.domains);
  // The relay advertises the server's own address when it binds every interface and names none.
  const specific = c.listen.map((l) => l.host).find((h) => h !== '0.0.0.0' && h !== '::');
  checkSbcConfig(c.sbc, c.advertisedHost ?? specific);
  return c;
}
