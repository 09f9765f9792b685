import { isIP } from 'node:net';
import { ConfigError } from '../util/errors.js';
import { configString, configStringList } from '../util/config-fields.js';

/** Which calls the default policy hands to the SBC: all of them, or those with a party behind NAT. */
export type SbcCalls = 'all' | 'nat';

export interface SbcMediaConfig {
  /** `embedded` (the in-process relay on Node's dgram) or `rtpengine` (its ng control protocol). */
  engine: 'embedded' | 'rtpengine';
  /** The embedded relay's bind address. Default 0.0.0.0. */
  address: string;
  /** The address written into SDP (a public address in front of the relay); see docs/sbc.md for the default. */
  advertise?: string;
  /** The embedded relay's UDP port range (inclusive): RTP on even ports, RTCP on the odd one above. */
  portMin: number;
  portMax: number;
  /** A call with no media for this long is ended with BYE on both legs (ms). */
  inactivityMs: number;
  /** Symmetric latching (comedia) on the first packet: phones behind NAT write the wrong address in SDP. */
  latch: boolean;
  /** Once latched, packets from other sources are dropped. */
  strictSource: boolean;
  /** Payload formats kept in the SDP that crosses (by name, e.g. PCMU, PCMA, telephone-event); all when absent. */
  codecs?: string[];
  /** The rtpengine daemon's ng control address, and how long one try waits for its reply. */
  rtpengine: { host: string; port: number; timeoutMs: number; flags: string[] };
}

export interface SbcConfig {
  /** The SBC (docs/sbc.md): off by default; `ctx.sbc()` in a policy is then false. */
  enabled: boolean;
  /** Which calls the default policy hands over: `all` (default) or `nat` (the caller or a binding of the callee behind NAT). */
  calls: SbcCalls;
  media: SbcMediaConfig;
  headers: {
    /** Header fields of the caller's INVITE passed on to the second leg (nothing else crosses). */
    pass: string[];
    /** Never passed, even when listed in `pass` or by the policy. Default Server, User-Agent, Warning. */
    deny: string[];
  };
  identity: {
    /** Target hosts inside the trust domain (RFC 3325): they get P-Asserted-Identity. */
    trusted: string[];
    /** Source addresses whose own P-Asserted-Identity is believed (a carrier's trunk); others' is removed. */
    trustedSources: string[];
  };
  limits: {
    /** Concurrent calls of one account (0: no limit): beyond it 486 with Retry-After. */
    perAccount: number;
    /** Concurrent calls to one trunk (target host; 0: no limit): beyond it 503 with Retry-After. */
    perTrunk: number;
    /** New calls per second of one account (0: no limit), with `burst` at once: beyond it 503 with Retry-After. */
    callsPerSecond: number;
    burst: number;
    /** The Retry-After of a concurrent-call refusal, seconds. */
    retryAfterS: number;
  };
  /** The longest a call may last, seconds (0: no limit): then BYE on both legs. */
  maxCallSeconds: number;
  /** A REFER from either party: carried out by the SBC (`transfer`: a new second leg to the Refer-To target) or refused 603. */
  refer: 'transfer' | 'decline';
}

export function defaultSbcConfig(): SbcConfig {
  return {
    enabled: false,
    calls: 'all',
    media: {
      engine: 'embedded',
      address: '0.0.0.0',
      portMin: 30000,
      portMax: 39999,
      inactivityMs: 60_000,
      latch: true,
      strictSource: false,
      rtpengine: { host: '127.0.0.1', port: 2223, timeoutMs: 1000, flags: [] },
    },
    headers: { pass: [], deny: ['Server', 'User-Agent', 'Warning'] },
    identity: { trusted: [], trustedSources: [] },
    limits: { perAccount: 0, perTrunk: 0, callsPerSecond: 0, burst: 5, retryAfterS: 30 },
    maxCallSeconds: 4 * 3600,
    refer: 'decline',
  };
}

/**
 * Header fields each leg makes for itself, which no pass list can carry across: routing and dialog state (the
 * topology the SBC hides), the message framing, and what the SBC sets on purpose (identity, session timer, options).
 */
const OWN_HEADERS = new Set(
  [
    'via', 'v', 'route', 'record-route', 'contact', 'm', 'call-id', 'i', 'cseq', 'from', 'f', 'to', 't', 'max-forwards', 'content-length', 'l',
    'content-type', 'c', 'content-encoding', 'e', 'path', 'service-route', 'authorization', 'proxy-authorization', 'p-asserted-identity',
    'p-preferred-identity', 'privacy', 'session-expires', 'x', 'min-se', 'supported', 'k', 'require', 'proxy-require', 'allow', 'rack', 'rseq',
    'replaces', 'refer-to', 'r', 'referred-by', 'b', 'reason',
  ],
);

/** Whether a header field is one each leg makes for itself (see OWN_HEADERS). */
export function isOwnHeader(name: string): boolean {
  return OWN_HEADERS.has(name.toLowerCase());
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(field, `must be a whole number between ${min} and ${max}`);
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(field, 'must be true or false');
  return v;
}

const str = configString;
const strList = configStringList;

function address(v: unknown, field: string): string {
  const a = str(v, field);
  if (isIP(a) === 0) throw new ConfigError(field, `'${a}' is not an IPv4 or IPv6 address`);
  return a;
}

const HEADER_NAME = /^[A-Za-z0-9!%'*+.^_`|~-]+$/;

function headerNames(v: unknown, field: string, refuseOwn: boolean): string[] {
  return strList(v, field).map((name, i) => {
    if (!HEADER_NAME.test(name)) throw new ConfigError(`${field}[${i}]`, `'${name}' is not a header field name`);
    if (refuseOwn && isOwnHeader(name)) throw new ConfigError(`${field}[${i}]`, `${name} is each leg's own and never crosses (docs/sbc.md)`);
    return name;
  });
}

function unknown(field: string, known: string[]): ConfigError {
  return new ConfigError(field, `unknown setting (${known.join(', ')})`);
}

/** The config file's `sbc` section laid over `base`; every field checked, unknown ones refused. */
export function readSbcConfig(base: SbcConfig, value: unknown): SbcConfig {
  if (!isObject(value)) throw new ConfigError('sbc', 'must be an object');
  const c: SbcConfig = structuredClone(base);
  for (const [k, v] of Object.entries(value)) {
    const field = `sbc.${k}`;
    switch (k) {
      case 'enabled':
        c.enabled = bool(v, field);
        break;
      case 'calls':
        if (v !== 'all' && v !== 'nat') throw new ConfigError(field, "must be 'all' or 'nat'");
        c.calls = v;
        break;
      case 'media':
        readMedia(c.media, v);
        break;
      case 'headers':
        if (!isObject(v)) throw new ConfigError(field, 'must be an object like { pass: [...], deny: [...] }');
        for (const [hk, hv] of Object.entries(v)) {
          if (hk === 'pass') c.headers.pass = headerNames(hv, 'sbc.headers.pass', true);
          else if (hk === 'deny') c.headers.deny = headerNames(hv, 'sbc.headers.deny', false);
          else throw unknown(`sbc.headers.${hk}`, ['pass', 'deny']);
        }
        break;
      case 'identity':
        if (!isObject(v)) throw new ConfigError(field, 'must be an object like { trusted: [...] }');
        for (const [ik, iv] of Object.entries(v)) {
          if (ik === 'trusted') c.identity.trusted = strList(iv, 'sbc.identity.trusted').map((h) => h.toLowerCase());
          else if (ik === 'trustedSources') c.identity.trustedSources = strList(iv, 'sbc.identity.trustedSources').map((a, i) => address(a, `sbc.identity.trustedSources[${i}]`));
          else throw unknown(`sbc.identity.${ik}`, ['trusted', 'trustedSources']);
        }
        break;
      case 'limits':
        if (!isObject(v)) throw new ConfigError(field, 'must be an object');
        for (const [lk, lv] of Object.entries(v)) {
          if (lk === 'perAccount' || lk === 'perTrunk' || lk === 'callsPerSecond') c.limits[lk] = num(lv, `sbc.limits.${lk}`, 0, 1_000_000);
          else if (lk === 'burst') c.limits.burst = num(lv, 'sbc.limits.burst', 1, 1_000_000);
          else if (lk === 'retryAfterS') c.limits.retryAfterS = num(lv, 'sbc.limits.retryAfterS', 1, 86_400);
          else throw unknown(`sbc.limits.${lk}`, ['perAccount', 'perTrunk', 'callsPerSecond', 'burst', 'retryAfterS']);
        }
        break;
      case 'maxCallSeconds':
        c.maxCallSeconds = num(v, field, 0, 7 * 86_400);
        break;
      case 'refer':
        if (v !== 'transfer' && v !== 'decline') throw new ConfigError(field, "must be 'transfer' or 'decline'");
        c.refer = v;
        break;
      default:
        throw unknown(field, ['enabled', 'calls', 'media', 'headers', 'identity', 'limits', 'maxCallSeconds', 'refer']);
    }
  }
  return c;
}

function readMedia(m: SbcMediaConfig, value: unknown): void {
  if (!isObject(value)) throw new ConfigError('sbc.media', 'must be an object');
  for (const [k, v] of Object.entries(value)) {
    const field = `sbc.media.${k}`;
    switch (k) {
      case 'engine':
        if (v !== 'embedded' && v !== 'rtpengine') throw new ConfigError(field, "must be 'embedded' or 'rtpengine'");
        m.engine = v;
        break;
      case 'address':
        m.address = address(v, field);
        break;
      case 'advertise':
        m.advertise = address(v, field);
        break;
      case 'portMin':
      case 'portMax':
        m[k] = num(v, field, 1024, 65535);
        break;
      case 'inactivityMs':
        m.inactivityMs = num(v, field, 100, 86_400_000);
        break;
      case 'latch':
      case 'strictSource':
        m[k] = bool(v, field);
        break;
      case 'codecs':
        m.codecs = strList(v, field);
        if (m.codecs.length === 0) throw new ConfigError(field, 'must name at least one codec (leave it out to keep all)');
        break;
      case 'rtpengine':
        if (!isObject(v)) throw new ConfigError(field, "must be an object like { host: '127.0.0.1', port: 2223 }");
        for (const [rk, rv] of Object.entries(v)) {
          if (rk === 'host') m.rtpengine.host = address(rv, 'sbc.media.rtpengine.host');
          else if (rk === 'port') m.rtpengine.port = num(rv, 'sbc.media.rtpengine.port', 1, 65535);
          else if (rk === 'timeoutMs') m.rtpengine.timeoutMs = num(rv, 'sbc.media.rtpengine.timeoutMs', 10, 60_000);
          else if (rk === 'flags') m.rtpengine.flags = strList(rv, 'sbc.media.rtpengine.flags');
          else throw unknown(`sbc.media.rtpengine.${rk}`, ['host', 'port', 'timeoutMs', 'flags']);
        }
        break;
      default:
        throw unknown(field, ['engine', 'address', 'advertise', 'portMin', 'portMax', 'inactivityMs', 'latch', 'strictSource', 'codecs', 'rtpengine']);
    }
  }
}

/**
 * Cross-field rules, once the whole config is known: the port range, and an address to advertise when the embedded
 * relay binds every interface (`fallback`: the server's advertised host or its one listener address, if an IP).
 */
export function checkSbcConfig(c: SbcConfig, fallback: string | undefined): void {
  if (!c.enabled) return;
  const m = c.media;
  if (m.portMax < m.portMin + 3) throw new ConfigError('sbc.media.portMax', `must be at least sbc.media.portMin + 3 (one call needs two port pairs)`);
  if (m.engine !== 'embedded') return;
  const unspecified = m.address === '0.0.0.0' || m.address === '::';
  if (unspecified && m.advertise === undefined && (fallback === undefined || isIP(fallback) === 0 || fallback === '0.0.0.0' || fallback === '::')) {
    throw new ConfigError('sbc.media.advertise', `the relay binds ${m.address}: name the address phones send media to (docs/sbc.md)`);
  }
}
