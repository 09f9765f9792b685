import type { Redis } from 'ioredis';
import type { Clock } from '../util/clock.js';
import { type Binding, checkBinding, liveBindings } from './binding.js';
import { type LocationStore, type LocationStoreOptions, SweepTimer, acceptNext } from './location-store.js';
import { parseRecord } from './record.js';
import { RedisScript, scanSet } from './redis-script.js';

export interface RedisLocationStoreOptions extends LocationStoreOptions {
  /** Prepended to every key, so that several deployments can share one Redis; 'sipway:' by default. */
  prefix?: string;
  /** Compare-and-set attempts per `modify` before giving up; 10 by default. */
  maxAttempts?: number;
}

/** `modify` lost the compare-and-set race `attempts` times in a row. */
export class LocationContentionError extends Error {
  constructor(
    readonly aor: string,
    readonly attempts: number,
  ) {
    super(`bindings of ${aor} changed under ${attempts} consecutive attempts to modify them`);
    this.name = 'LocationContentionError';
  }
}

/**
 * KEYS: the AOR key, the AOR set. ARGV: the value read ('' = absent), the value to write ('' = delete), its
 * TTL in ms, the AOR. Writes only if the key still holds what `modify` read, so a concurrent write by another
 * node cannot be lost. Returns 1 when written; otherwise the current value ('' = absent), so that the loser
 * retries straight from it: one round trip instead of two, which keeps a busy winner from starving it.
 */
const COMPARE_AND_SET = new RedisScript(`
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current ~= ARGV[1] then return current end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[4])
end
return 1
`);

/**
 * KEYS: the AOR set, then the keys of the AORs in ARGV. Drops members whose key Redis has expired; checking and
 * removing in one script means a node re-registering the AOR at the same moment cannot lose its membership.
 */
const PRUNE_AORS = new RedisScript(`
local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    removed = removed + redis.call('SREM', KEYS[1], ARGV[i])
  end
end
return removed
`);

/**
 * Bindings shared by several sipway nodes. Layout (see docs/storage.md): `<prefix>aor:<aor>` holds the AOR's
 * bindings as one JSON array, expiring with the last of them; `<prefix>aors` is the set of AORs.
 * Redis Cluster is not supported: the scripts touch the AOR key and the set together.
 */
export class RedisLocationStore implements LocationStore {
  private readonly prefix: string;
  private readonly aorsKey: string;
  private readonly maxAttempts: number;
  private readonly sweeper: SweepTimer;
  /** Per-AOR tail of this node's pending modifies: they queue locally so they never race each other. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly redis: Redis,
    private readonly clock: Clock,
    options: RedisLocationStoreOptions = {},
  ) {
    this.prefix = options.prefix ?? 'sipway:';
    this.aorsKey = `${this.prefix}aors`;
    this.maxAttempts = options.maxAttempts ?? 10;
    this.sweeper = new SweepTimer(clock, () => this.sweep(), options);
  }

  async lookup(aor: string): Promise<Binding[]> {
    return this.decode(aor, await this.redis.get(this.aorKey(aor)), this.clock.now());
  }

  modify<T>(aor: string, mutate: (current: Binding[]) => { next: Binding[]; result: T }): Promise<T> {
    return this.queued(aor, async () => {
      const key = this.aorKey(aor);
      let read = (await this.redis.get(key)) ?? '';
      for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
        const now = this.clock.now();
        const { next, result } = mutate(this.decode(aor, read, now));
        const live = acceptNext(aor, next, now);
        // Relative TTL (PX) rather than PXAT: Redis measures it on its own clock, so skew between this node and
        // the Redis host cannot expire the key early. Reads filter on expiresAt either way.
        const ttl = live.reduce((max, b) => Math.max(max, b.expiresAt - now), 0);
        const value = live.length > 0 ? JSON.stringify(live) : '';
        const outcome = await COMPARE_AND_SET.run(this.redis, [key, this.aorsKey], [read, value, ttl, aor]);
        if (outcome === 1) return result;
        read = String(outcome);
      }
      throw new LocationContentionError(aor, this.maxAttempts);
    });
  }

  removeAor(aor: string): Promise<void> {
    return this.queued(aor, async () => {
      await this.redis.multi().del(this.aorKey(aor)).srem(this.aorsKey, aor).exec();
    });
  }

  async listAors(): Promise<string[]> {
    const aors = new Set<string>();
    await this.scanAors((aor, live) => {
      if (live.length > 0) aors.add(aor);
    });
    return [...aors];
  }

  async count(): Promise<number> {
    let n = 0;
    await this.scanAors((_aor, live) => {
      n += live.length;
    });
    return n;
  }

  /**
   * Redis expires the AOR keys itself; what is left is set members whose key is gone. Returns how many AORs it
   * dropped from the set. Expired bindings inside a live key stay until the AOR's next write (reads skip them).
   */
  async sweep(): Promise<number> {
    let removed = 0;
    for await (const batch of scanSet(this.redis, this.aorsKey)) {
      const keys = [this.aorsKey, ...batch.map((aor) => this.aorKey(aor))];
      removed += Number(await PRUNE_AORS.run(this.redis, keys, batch));
    }
    return removed;
  }

  async close(): Promise<void> {
    await this.sweeper.stop();
    await Promise.allSettled(this.queues.values());
  }

  private aorKey(aor: string): string {
    return `${this.prefix}aor:${aor}`;
  }

  /** `value` is the key's content; null or '' when the key does not exist. */
  private decode(aor: string, value: string | null, now: number): Binding[] {
    if (!value) return [];
    return liveBindings(parseRecord<Binding[]>(value, `at ${this.aorKey(aor)}`, checkBindingList), now);
  }

  /** Visits each AOR once with its live bindings (SSCAN may repeat members; they are visited once). */
  private async scanAors(visit: (aor: string, live: Binding[]) => void): Promise<void> {
    const seen = new Set<string>();
    for await (const batch of scanSet(this.redis, this.aorsKey)) {
      const fresh = batch.filter((aor) => !seen.has(aor));
      if (fresh.length === 0) continue;
      const values = await this.redis.mget(fresh.map((aor) => this.aorKey(aor)));
      const now = this.clock.now();
      fresh.forEach((aor, i) => {
        seen.add(aor);
        visit(aor, this.decode(aor, values[i] ?? null, now));
      });
    }
  }

  private queued<T>(aor: string, task: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(aor) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(aor, tail);
    void tail.then(() => {
      if (this.queues.get(aor) === tail) this.queues.delete(aor);
    });
    return run;
  }
}

function checkBindingList(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'not a JSON array of bindings';
  for (const b of value) {
    const problem = checkBinding(b);
    if (problem) return problem;
  }
  return undefined;
}
