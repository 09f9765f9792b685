import { isIP } from 'node:net';
import type { Clock, TimerHandle } from '../util/clock.js';
import { ConfigError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { refilled, shareOf, type Budget } from '../util/token-bucket.js';
import { addressBits, normalizeAddress } from './address.js';

/** Requests are budgeted by kind: registrations, calls, pings and the rest are different traffic with different peaks. */
export type RequestClass = 'register' | 'invite' | 'options' | 'other';
export const REQUEST_CLASSES: readonly RequestClass[] = ['register', 'invite', 'options', 'other'];

export type { Budget };

export interface FloodGuardConfig {
  enabled: boolean;
  /** What a source over its budget gets: nothing ('drop', the default: no amplification) or '503' with Retry-After. */
  action: 'drop' | '503';
  /** Per source address and request class. */
  budgets: Record<RequestClass, Budget>;
  /** Per authenticated account, all its requests (after digest authentication; 503 + Retry-After beyond). */
  perAccount: Budget;
  /** Tokens a lookup that finds none of our users costs its (unauthenticated) source: scans run out of budget. */
  failedLookupCost: number;
  /** Refused requests from one source within `banWindowMs` that ban it. */
  banAfter: number;
  banWindowMs: number;
  /** How long a ban lasts: every message from the source is dropped unread, its connections closed. */
  banMs: number;
  /** Addresses and CIDR blocks never limited (gateways, peers, the operator's own elements). */
  trusted: string[];
  /** Sources remembered at once; the least recently seen is forgotten first (spoofed floods cannot grow memory). */
  maxSources: number;
}

export function defaultFloodGuardConfig(): FloodGuardConfig {
  return {
    enabled: true,
    action: 'drop',
    // A NAT in front of a few hundred phones re-registers them all at once after a reboot: REGISTER bursts large.
    budgets: {
      register: { rate: 100, burst: 1000 },
      invite: { rate: 50, burst: 250 },
      options: { rate: 50, burst: 250 },
      other: { rate: 100, burst: 500 },
    },
    // A runaway account (a stolen password, a looping PBX) is held back; a busy trunk account needs a higher budget.
    perAccount: { rate: 200, burst: 1000 },
    failedLookupCost: 5,
    banAfter: 500,
    banWindowMs: 10_000,
    banMs: 120_000,
    // Test tools, a local SBC or PBX: loopback is the operator's own machine.
    trusted: ['127.0.0.0/8', '::1/128'],
    maxSources: 100_000,
  };
}

/** Pass; Refuse: over budget, dropped or answered 503 (config.action); Banned: dropped unread, connections closed. */
export const Verdict = { Pass: 0, Refuse: 1, Banned: 2 } as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export interface BanInfo {
  address: string;
  /** Epoch ms (clock time) the ban ends. */
  until: number;
  /** Requests refused in the window that started it. */
  refused: number;
}

export interface FloodGuardStats {
  sources: number;
  banned: number;
  bansStarted: number;
  refused: Record<RequestClass, number>;
  droppedWhileBanned: number;
  penalties: number;
}

interface SourceState {
  /** Tokens left per class (REQUEST_CLASSES order). */
  tokens: Float64Array;
  last: number;
  windowStart: number;
  refusedInWindow: number;
  bannedUntil: number;
  trusted: boolean;
}

const SWEEP_MS = 30_000;

/**
 * Per-source flood protection before any parsing (Kamailio's pike and ratelimit, OpenSIPS's pike): a token bucket
 * per source address and request class, decided from the first bytes of a message; a source that keeps sending over
 * its budget is banned for a while and dropped unread. Trusted sources are exempt. Memory is bounded by
 * `maxSources`; idle sources are forgotten by a sweep. With several worker processes each holds a share of the
 * budgets (the kernel spreads a source's datagrams over them).
 */
export class FloodGuard {
  private readonly sources = new Map<string, SourceState>();
  private readonly trustedBlocks: TrustedBlock[];
  private readonly budgets: Budget[];
  private readonly counters = { bansStarted: 0, droppedWhileBanned: 0, penalties: 0, refused: [0, 0, 0, 0] };
  private sweeper: TimerHandle | undefined;

  constructor(
    readonly config: FloodGuardConfig,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** Worker processes sharing the budgets: each holds 1/N of them. */
    workers = 1,
  ) {
    this.trustedBlocks = config.trusted.map((t, i) => parseTrusted(t, `flood.trusted[${i}]`));
    this.budgets = REQUEST_CLASSES.map((c) => shareOf(config.budgets[c], workers));
  }

  start(): void {
    if (!this.config.enabled || this.sweeper) return;
    const sweep = (): void => {
      this.sweep();
      this.sweeper = this.clock.setTimer(SWEEP_MS, sweep);
    };
    this.sweeper = this.clock.setTimer(SWEEP_MS, sweep);
  }

  stop(): void {
    this.sweeper?.cancel();
    this.sweeper = undefined;
  }

  /** The verdict on one message from `address` (normalised); responses are only subject to bans. */
  check(address: string, bytes: Buffer): Verdict {
    if (!this.config.enabled) return Verdict.Pass;
    const now = this.clock.now();
    const state = this.state(address, now);
    if (state.trusted) return Verdict.Pass;
    if (state.bannedUntil > now) {
      this.counters.droppedWhileBanned++;
      return Verdict.Banned;
    }
    const cls = classify(bytes);
    if (cls < 0) return Verdict.Pass;
    this.refill(state, now);
    if (state.tokens[cls]! >= 1) {
      state.tokens[cls]! -= 1;
      return Verdict.Pass;
    }
    this.counters.refused[cls]!++;
    this.refused(address, state, now, 1);
    return Verdict.Refuse;
  }

  /**
   * Charges a source for a request that cost more than its token (a lookup of a user that is not there: a scan),
   * `tokens` from the class's bucket; a source left without tokens is refused from then on, and counts toward a ban.
   */
  penalize(address: string, cls: RequestClass, tokens: number): void {
    if (!this.config.enabled) return;
    const now = this.clock.now();
    const state = this.state(normalizeAddress(address), now);
    if (state.trusted) return;
    this.counters.penalties++;
    this.refill(state, now);
    const i = REQUEST_CLASSES.indexOf(cls);
    state.tokens[i] = Math.max(0, state.tokens[i]! - tokens);
  }

  /** Seconds until a refused source has a token of `cls` again (Retry-After of a 503). */
  retryAfter(address: string, bytes: Buffer): number {
    const state = this.sources.get(address);
    const cls = classify(bytes);
    if (!state || cls < 0) return 1;
    const missing = 1 - state.tokens[cls]!;
    return Math.max(1, Math.ceil(missing / this.budgets[cls]!.rate));
  }

  isBanned(address: string): boolean {
    return (this.sources.get(address)?.bannedUntil ?? 0) > this.clock.now();
  }

  bans(): BanInfo[] {
    const now = this.clock.now();
    const out: BanInfo[] = [];
    for (const [address, s] of this.sources) if (s.bannedUntil > now) out.push({ address, until: s.bannedUntil, refused: s.refusedInWindow });
    return out;
  }

  /** Lifts a ban (and forgets the source's history); false when it was not banned. */
  lift(address: string): boolean {
    const key = normalizeAddress(address);
    const state = this.sources.get(key);
    if (!state || state.bannedUntil <= this.clock.now()) return false;
    this.sources.delete(key);
    this.logger.info({ address: key }, 'ban lifted');
    return true;
  }

  isTrusted(address: string): boolean {
    return this.trustedBlocks.some((b) => b.contains(normalizeAddress(address)));
  }

  stats(): FloodGuardStats {
    const refused = Object.fromEntries(REQUEST_CLASSES.map((c, i) => [c, this.counters.refused[i]!])) as Record<RequestClass, number>;
    return {
      sources: this.sources.size,
      banned: this.bans().length,
      bansStarted: this.counters.bansStarted,
      refused,
      droppedWhileBanned: this.counters.droppedWhileBanned,
      penalties: this.counters.penalties,
    };
  }

  private refused(address: string, state: SourceState, now: number, n: number): void {
    if (now - state.windowStart >= this.config.banWindowMs) {
      state.windowStart = now;
      state.refusedInWindow = 0;
    }
    state.refusedInWindow += n;
    if (state.refusedInWindow < this.config.banAfter) return;
    state.bannedUntil = now + this.config.banMs;
    this.counters.bansStarted++;
    // One line per ban, never one per message.
    this.logger.warn({ address, refused: state.refusedInWindow, windowMs: this.config.banWindowMs, banMs: this.config.banMs }, 'source banned for flooding');
  }

  private refill(state: SourceState, now: number): void {
    const elapsed = now - state.last;
    if (elapsed <= 0) return;
    state.last = now;
    for (let i = 0; i < this.budgets.length; i++) state.tokens[i] = refilled(state.tokens[i]!, elapsed, this.budgets[i]!);
  }

  private state(address: string, now: number): SourceState {
    let s = this.sources.get(address);
    if (s) return s;
    if (this.sources.size >= this.config.maxSources) this.evictOne(now);
    s = {
      tokens: Float64Array.from(this.budgets, (b) => b.burst),
      last: now,
      windowStart: now,
      refusedInWindow: 0,
      bannedUntil: 0,
      trusted: this.trustedBlocks.some((b) => b.contains(address)),
    };
    this.sources.set(address, s);
    return s;
  }

  /** Makes room: the oldest source that is not banned (a banned one is moved to the back, to be kept). */
  private evictOne(now: number): void {
    for (let i = 0; i < 8; i++) {
      const first = this.sources.entries().next().value as [string, SourceState] | undefined;
      if (!first) return;
      this.sources.delete(first[0]);
      if (first[1].bannedUntil <= now) return;
      this.sources.set(first[0], first[1]);
    }
  }

  /** Forgets sources whose buckets have refilled and that are not banned: they are as if never seen. */
  private sweep(): void {
    const now = this.clock.now();
    for (const [address, s] of this.sources) {
      if (s.bannedUntil > now) continue;
      this.refill(s, now);
      if (this.budgets.every((b, i) => s.tokens[i]! >= b.burst)) this.sources.delete(address);
    }
  }
}

/** The class of a request method. */
export function classOf(method: string): RequestClass {
  return method === 'REGISTER' ? 'register' : method === 'INVITE' ? 'invite' : method === 'OPTIONS' ? 'options' : 'other';
}

/** The request class from a message's first bytes; -1 for a response (or what is not a request line). */
export function classify(bytes: Buffer): number {
  const c0 = bytes[0];
  // 'SIP/2.0 ...' is a response.
  if (c0 === 0x53 && bytes[1] === 0x49 && bytes[2] === 0x50 && bytes[3] === 0x2f) return -1;
  if (c0 === 0x52 && startsWith(bytes, REGISTER)) return 0;
  if (c0 === 0x49 && startsWith(bytes, INVITE)) return 1;
  if (c0 === 0x4f && startsWith(bytes, OPTIONS)) return 2;
  return 3;
}

const REGISTER = Buffer.from('REGISTER ');
const INVITE = Buffer.from('INVITE ');
const OPTIONS = Buffer.from('OPTIONS ');

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 1; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

interface TrustedBlock {
  contains(address: string): boolean;
}

/** `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`. */
export function parseTrusted(text: string, field: string): TrustedBlock {
  const [addr = '', len] = text.trim().split('/');
  const family = isIP(addr);
  const max = family === 6 ? 128 : 32;
  const prefix = len === undefined ? max : Number(len);
  if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (len !== undefined && !/^\d+$/.test(len))) {
    throw new ConfigError(field, `'${text}' is not an address or CIDR block (192.0.2.0/24, 2001:db8::/32)`);
  }
  const net = addressBits(normalizeAddress(addr));
  return {
    contains(address: string): boolean {
      const f = isIP(address);
      if (f !== family) return false;
      const bits = addressBits(address);
      for (let i = 0; i < prefix; i++) if (bits[i] !== net[i]) return false;
      return true;
    },
  };
}

/** Applies the `flood` object of a config file onto `base`, validating every field; unknown fields are errors. */
export function readFloodConfig(base: FloodGuardConfig, value: unknown): FloodGuardConfig {
  if (!isObject(value)) throw new ConfigError('flood', 'must be an object');
  const c: FloodGuardConfig = { ...base, budgets: { ...base.budgets }, perAccount: { ...base.perAccount }, trusted: [...base.trusted] };
  for (const [k, v] of Object.entries(value)) {
    const field = `flood.${k}`;
    switch (k) {
      case 'enabled':
        if (typeof v !== 'boolean') throw new ConfigError(field, 'must be true or false');
        c.enabled = v;
        break;
      case 'action':
        if (v !== 'drop' && v !== '503') throw new ConfigError(field, "must be 'drop' or '503'");
        c.action = v;
        break;
      case 'budgets':
        if (!isObject(v)) throw new ConfigError(field, `must be an object with any of ${REQUEST_CLASSES.join(', ')}`);
        for (const [cls, b] of Object.entries(v)) {
          if (!(REQUEST_CLASSES as readonly string[]).includes(cls)) throw new ConfigError(`${field}.${cls}`, `unknown class (known: ${REQUEST_CLASSES.join(', ')})`);
          c.budgets[cls as RequestClass] = readBudget(c.budgets[cls as RequestClass], b, `${field}.${cls}`);
        }
        break;
      case 'perAccount':
        c.perAccount = readBudget(c.perAccount, v, field);
        break;
      case 'failedLookupCost':
      case 'banAfter':
      case 'banWindowMs':
      case 'banMs':
      case 'maxSources':
        c[k] = positiveNumber(v, field);
        break;
      case 'trusted':
        if (!Array.isArray(v)) throw new ConfigError(field, 'must be a list of addresses or CIDR blocks');
        c.trusted = v.map((t, i) => {
          if (typeof t !== 'string') throw new ConfigError(`${field}[${i}]`, 'must be a string');
          parseTrusted(t, `${field}[${i}]`);
          return t;
        });
        break;
      default:
        throw new ConfigError(field, 'unknown setting');
    }
  }
  return c;
}

function readBudget(base: Budget, value: unknown, field: string): Budget {
  if (!isObject(value)) throw new ConfigError(field, 'must be { "rate": N, "burst": N }');
  const budget = { ...base };
  for (const [k, v] of Object.entries(value)) {
    if (k !== 'rate' && k !== 'burst') throw new ConfigError(`${field}.${k}`, 'unknown setting (rate, burst)');
    budget[k] = positiveNumber(v, `${field}.${k}`);
  }
  return budget;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveNumber(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(field, 'must be a positive number');
  return v;
}
