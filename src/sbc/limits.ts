import { KeyedBuckets } from '../util/token-bucket.js';
import type { SbcConfig } from './config.js';

/** A call the limits let through: `release` gives its places back when it is over (once; more calls do nothing). */
export interface Admitted {
  ok: true;
  release(): void;
}

/** A call the limits refuse, with the SIP answer that says so. */
export interface Refused {
  ok: false;
  status: 486 | 503;
  reason: string;
  /** Seconds, for Retry-After (RFC 3261 §20.33). */
  retryAfter: number;
}

/**
 * Where the SBC asks for a call's places: this process's own CallLimits, or, under `serve --workers N`, the primary
 * process, which counts for every worker (an account's calls are steered to workers by Call-ID, so a count per worker
 * would let N times the limit through).
 */
export interface LimitKeeper {
  admit(account: string, trunk: string, now: number): Promise<Admitted | Refused>;
}

/** The limits counted in this process. */
export function localLimits(limits: CallLimits): LimitKeeper {
  return { admit: async (account, trunk, now) => limits.admit(account, trunk, now) };
}

/** How many keys the call-rate buckets remember (the least recently used goes first). */
const MAX_RATE_KEYS = 100_000;

/**
 * The SBC's call limits, counted in this process: concurrent calls per account (486 Busy Here: the account is busy)
 * and per trunk (503: the trunk is, not the callee), and new calls per second per account (503, Retry-After the time
 * to the next token). A limit of 0 is none.
 */
export class CallLimits {
  private readonly accounts = new Map<string, number>();
  private readonly trunks = new Map<string, number>();
  private readonly rate: KeyedBuckets | undefined;

  constructor(private readonly limits: SbcConfig['limits']) {
    this.rate = limits.callsPerSecond > 0 ? new KeyedBuckets({ rate: limits.callsPerSecond, burst: limits.burst }, MAX_RATE_KEYS) : undefined;
  }

  admit(account: string, trunk: string, now: number): Admitted | Refused {
    const { perAccount, perTrunk, retryAfterS } = this.limits;
    if (perAccount > 0 && (this.accounts.get(account) ?? 0) >= perAccount) {
      return { ok: false, status: 486, reason: `Busy Here - ${perAccount} calls at once is this account's limit`, retryAfter: retryAfterS };
    }
    if (perTrunk > 0 && (this.trunks.get(trunk) ?? 0) >= perTrunk) {
      return { ok: false, status: 503, reason: 'Service Unavailable - the trunk has no call left', retryAfter: retryAfterS };
    }
    // A token only for a call the concurrent limits let through: a refused call must not use up the rate too.
    if (this.rate && !this.rate.take(account, now)) {
      return { ok: false, status: 503, reason: 'Service Unavailable - too many new calls from this account', retryAfter: this.rate.secondsToNextToken(account) };
    }
    bump(this.accounts, account, 1);
    bump(this.trunks, trunk, 1);
    return admitted(() => {
      bump(this.accounts, account, -1);
      bump(this.trunks, trunk, -1);
    });
  }

  /** Calls in progress of one account (for tests and listings). */
  callsOf(account: string): number {
    return this.accounts.get(account) ?? 0;
  }
}

/** A call let through whose places `giveBack` returns, once however often it is released. */
export function admitted(giveBack: () => void): Admitted {
  let released = false;
  return {
    ok: true,
    release: () => {
      if (released) return;
      released = true;
      giveBack();
    },
  };
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
