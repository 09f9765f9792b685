import type { Redis } from 'ioredis';
import { byUserName, canonicalDomain, type PerUser } from './per-user-map.js';
import { parseRecord } from './record.js';
import { RedisScript, scanSet } from './redis-script.js';

/**
 * KEYS: the domain hash, the domain set. ARGV: username, domain. The domain leaves the set in the same atomic step as
 * its last user, so a concurrent `put` on another node cannot be left out of `list()`.
 */
const REMOVE_USER = new RedisScript(`
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if removed == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return removed
`);

export interface RedisPerUserLayout<T extends PerUser> {
  /** Prepended to every key ('sipway:' by default). */
  prefix?: string;
  /** `<prefix><hash><domain>` is a hash username -> record JSON (e.g. 'subscribers:'). */
  hash: string;
  /** `<prefix><domains>` is the set of domains that have records (e.g. 'subscriber-domains'). */
  domains: string;
  /** Validates and canonicalises a record on the way in. */
  accept: (record: T) => T;
  /** What is wrong with a stored record, or undefined (records are checked on the way out too). */
  check: (value: unknown) => string | undefined;
}

/** The Redis backend shared by the per-user stores (subscribers, CPL scripts), shared by the nodes of a cluster. */
export class RedisPerUserMap<T extends PerUser> {
  private readonly prefix: string;
  private readonly domainsKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly layout: RedisPerUserLayout<T>,
  ) {
    this.prefix = layout.prefix ?? 'sipway:';
    this.domainsKey = `${this.prefix}${layout.domains}`;
  }

  async get(username: string, domain: string): Promise<T | undefined> {
    const key = this.domainKey(canonicalDomain(domain));
    const json = await this.redis.hget(key, username);
    return json === null ? undefined : this.decode(json, key, username);
  }

  async put(record: T): Promise<void> {
    const kept = this.layout.accept(record);
    await this.redis.multi().hset(this.domainKey(kept.domain), kept.username, JSON.stringify(kept)).sadd(this.domainsKey, kept.domain).exec();
  }

  async remove(username: string, domain: string): Promise<boolean> {
    const d = canonicalDomain(domain);
    return (await REMOVE_USER.run(this.redis, [this.domainKey(d), this.domainsKey], [username, d])) === 1;
  }

  /** All records, or those of one domain, ordered by domain then username. */
  async list(domain?: string): Promise<T[]> {
    const domains = new Set<string>();
    if (domain !== undefined) domains.add(canonicalDomain(domain));
    else for await (const batch of scanSet(this.redis, this.domainsKey)) for (const d of batch) domains.add(d);
    const out: T[] = [];
    for (const d of domains) {
      const key = this.domainKey(d);
      for (const [username, json] of Object.entries(await this.redis.hgetall(key))) out.push(this.decode(json, key, username));
    }
    return out.sort(byUserName);
  }

  async close(): Promise<void> {}

  private domainKey(domain: string): string {
    return `${this.prefix}${this.layout.hash}${domain}`;
  }

  private decode(json: string, key: string, username: string): T {
    return parseRecord<T>(json, `at ${key} field ${username}`, this.layout.check);
  }
}
