/** A token bucket: `rate` tokens per second on average, at most `burst` at once. */
export interface Budget {
  rate: number;
  burst: number;
}

/** A budget divided among `workers` processes, each of which sees about 1/N of a key's requests. */
export function shareOf(budget: Budget, workers: number): Budget {
  return { rate: budget.rate / workers, burst: Math.max(1, budget.burst / workers) };
}

/** Tokens after `elapsedMs` of refilling `tokens` under `budget`. */
export function refilled(tokens: number, elapsedMs: number, budget: Budget): number {
  const t = tokens + (elapsedMs * budget.rate) / 1000;
  return t > budget.burst ? budget.burst : t;
}

/**
 * Token buckets by key (an account, a source) with bounded memory: the least recently used key is forgotten first,
 * and a forgotten key starts again with a full bucket.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, { tokens: number; last: number }>();

  constructor(
    private readonly budget: Budget,
    private readonly maxKeys: number,
  ) {}

  /** Takes a token for `key` at time `now` (ms); false when there is none. */
  take(key: string, now: number): boolean {
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key);
      b.tokens = refilled(b.tokens, now - b.last, this.budget);
      b.last = now;
    } else {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.budget.burst, last: now };
    }
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Whole seconds until `key` has a token again (at least 1). */
  secondsToNextToken(key: string): number {
    const b = this.buckets.get(key);
    return Math.max(1, Math.ceil((1 - (b?.tokens ?? 1)) / this.budget.rate));
  }

  get size(): number {
    return this.buckets.size;
  }
}
