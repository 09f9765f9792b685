/**
 * Slows down, then blocks, online guessing of Digest passwords. Failures are counted per source address and per
 * username; a source is blocked, a username only makes its unknown sources slow (see check). Fixed windows: a window opens at the first failure and closes `windowMs` later, so a burst
 * straddling two windows can reach twice the limit; in exchange the state is three numbers per key and needs no
 * timers, since expiry is computed from the clock when a key is read.
 *
 * Sources and users live in separate tables: usernames cost an attacker nothing, so flooding the user table with
 * invented names must not evict the entry that blocks the attacker's source. A full table forgets its least
 * recently failed key first.
 */
import type { Clock } from '../util/clock.js';
import { ConfigError } from '../util/errors.js';

export interface AuthFailureThrottleConfig {
  clock: Clock;
  /** Length of a counting window; default 60 s. */
  windowMs?: number;
  /** Failures from one source within a window that block it; default 10. */
  maxFailuresPerSource?: number;
  /** Failures for one username within a window that block it; default 10. */
  maxFailuresPerUser?: number;
  /** How long a block lasts; default 300 s. */
  blockMs?: number;
  /** Failures within a window after which answers are delayed; default 3. */
  slowdownAfter?: number;
  /** The first delay, doubled with each further failure; default 500 ms. */
  slowdownBaseMs?: number;
  /** Cap on the delay, kept well under the 32 s a SIP client waits for an answer (Timer F); default 5 s. */
  maxDelayMs?: number;
  /** Keys remembered per table (sources, users, trusted pairs); default 100,000. */
  maxTrackedKeys?: number;
}

export interface ThrottleDecision {
  /** Refuse without checking credentials. */
  blocked: boolean;
  /** Wait this long before answering. */
  delayMs: number;
}

interface FailureEntry {
  windowStart: number;
  failures: number;
  blockedUntil: number;
}

interface KeyState {
  failures: number;
  blocked: boolean;
}

const IDLE: KeyState = { failures: 0, blocked: false };

interface TableLimits {
  windowMs: number;
  blockMs: number;
  maxKeys: number;
}

class FailureTable {
  /** Insertion order is recency of failure: the first key is the least recently failed. */
  private readonly entries = new Map<string, FailureEntry>();

  constructor(
    private readonly limits: TableLimits,
    private readonly maxFailures: number,
  ) {}

  state(key: string, now: number): KeyState {
    const entry = this.entries.get(key);
    if (!entry || this.inert(entry, now)) return IDLE;
    return { failures: entry.failures, blocked: entry.blockedUntil > now };
  }

  /** Counts a failure; true if it started a block. */
  record(key: string, now: number): boolean {
    const entry = this.entries.get(key);
    if (entry && entry.blockedUntil > now) return false;
    const next: FailureEntry =
      entry && !this.inert(entry, now)
        ? { ...entry, failures: entry.failures + 1 }
        : { windowStart: now, failures: 1, blockedUntil: 0 };
    if (next.failures >= this.maxFailures) next.blockedUntil = now + this.limits.blockMs;
    this.entries.delete(key);
    this.entries.set(key, next);
    this.prune(now);
    return next.blockedUntil > 0;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** An entry whose block is over, or whose window has closed without a block, no longer affects anything. */
  private inert(entry: FailureEntry, now: number): boolean {
    if (entry.blockedUntil > 0) return entry.blockedUntil <= now;
    return now - entry.windowStart >= this.limits.windowMs;
  }

  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      if (!this.inert(entry, now) && this.entries.size <= this.limits.maxKeys) return;
      this.entries.delete(key);
    }
  }
}

export class AuthFailureThrottle {
  private readonly clock: Clock;
  private readonly sources: FailureTable;
  private readonly users: FailureTable;
  /**
   * (source, user) pairs that have authenticated. A per-user block would otherwise let anyone lock a user out
   * by failing with their name; the user's own devices, at addresses that have succeeded before, stay exempt
   * from it (the per-source limit still applies to them).
   */
  private readonly trusted = new Set<string>();
  private readonly maxTrusted: number;
  private readonly slowdownAfter: number;
  private readonly slowdownBaseMs: number;
  private readonly maxDelayMs: number;

  constructor(config: AuthFailureThrottleConfig) {
    this.clock = config.clock;
    const limits: TableLimits = {
      windowMs: positive('windowMs', config.windowMs, 60_000),
      blockMs: positive('blockMs', config.blockMs, 300_000),
      maxKeys: positive('maxTrackedKeys', config.maxTrackedKeys, 100_000),
    };
    this.sources = new FailureTable(limits, positive('maxFailuresPerSource', config.maxFailuresPerSource, 10));
    this.users = new FailureTable(limits, positive('maxFailuresPerUser', config.maxFailuresPerUser, 10));
    this.maxTrusted = limits.maxKeys;
    this.slowdownAfter = positive('slowdownAfter', config.slowdownAfter, 3);
    this.slowdownBaseMs = nonNegative('slowdownBaseMs', config.slowdownBaseMs, 500);
    this.maxDelayMs = nonNegative('maxDelayMs', config.maxDelayMs, 5_000);
  }

  /**
   * Call before checking credentials. A user under attack is never locked out: its blocked state refuses only
   * sources that have failed themselves (the guessers); any other source is slowed down to the longest delay but
   * still gets its password checked, so the real user, from an address it never used before, still gets in.
   */
  check(source: string, user?: string): ThrottleDecision {
    const now = this.clock.now();
    const bySource = this.sources.state(source, now);
    const byUser = user === undefined || this.trusted.has(pairKey(source, user)) ? IDLE : this.users.state(user, now);
    if (bySource.blocked) return { blocked: true, delayMs: 0 };
    if (byUser.blocked) return bySource.failures > 0 ? { blocked: true, delayMs: 0 } : { blocked: false, delayMs: this.maxDelayMs };
    const failures = Math.max(bySource.failures, byUser.failures);
    if (failures < this.slowdownAfter) return { blocked: false, delayMs: 0 };
    return {
      blocked: false,
      delayMs: Math.min(this.maxDelayMs, this.slowdownBaseMs * 2 ** (failures - this.slowdownAfter)),
    };
  }

  /** Returns true when this failure started a block, so that the caller logs (or alerts) once per block. */
  recordFailure(source: string, user?: string): boolean {
    const now = this.clock.now();
    const sourceBlocked = this.sources.record(source, now);
    const userBlocked = user !== undefined && this.users.record(user, now);
    return sourceBlocked || userBlocked;
  }

  /**
   * Clears the user's count (earlier failures were most likely the user's own typos) but not the source's:
   * otherwise one valid account would let an attacker reset the source limit between guesses at others.
   */
  recordSuccess(source: string, user: string): void {
    this.users.delete(user);
    const key = pairKey(source, user);
    this.trusted.delete(key);
    this.trusted.add(key);
    if (this.trusted.size > this.maxTrusted) {
      for (const oldest of this.trusted) {
        this.trusted.delete(oldest);
        break;
      }
    }
  }

  /** Keys currently remembered (for metrics). */
  get trackedKeys(): { sources: number; users: number; trusted: number } {
    return { sources: this.sources.size, users: this.users.size, trusted: this.trusted.size };
  }
}

function pairKey(source: string, user: string): string {
  return JSON.stringify([source, user]);
}

function positive(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`auth.throttle.${field}`, 'must be a positive number');
  return v;
}

function nonNegative(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw new ConfigError(`auth.throttle.${field}`, 'must be zero or more');
  return v;
}
