import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A Lua script run by its SHA1 (EVALSHA), sending the source only when the server does not have it cached
 * (after a restart or SCRIPT FLUSH). Scripts run atomically on the server, which is what makes them the
 * cross-node compare-and-set and cleanup primitives of the Redis stores.
 */
export class RedisScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** SSCAN over a set in batches. Members may repeat across batches (SSCAN's guarantee is "at least once"). */
export async function* scanSet(redis: Redis, key: string): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    const [next, batch] = await redis.sscan(key, cursor, 'COUNT', 500);
    cursor = next;
    if (batch.length > 0) yield batch;
  } while (cursor !== '0');
}
