import type { Redis } from 'ioredis';
import { parseRecord } from './record.js';
import { RedisScript, scanSet } from './redis-script.js';
import {
  type Subscriber,
  type SubscriberStore,
  acceptSubscriber,
  bySubscriberName,
  canonicalDomain,
  checkSubscriber,
} from './subscriber-store.js';

export interface RedisSubscriberStoreOptions {
  /** Prepended to every key; 'sipway:' by default. */
  prefix?: string;
}

/**
 * KEYS: the domain hash, the domain set. ARGV: username, domain. The domain leaves the set in the same atomic
 * step as its last subscriber, so a concurrent `put` on another node cannot be left out of `list()`.
 */
const REMOVE_SUBSCRIBER = new RedisScript(`
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if removed == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return removed
`);

/**
 * Subscribers shared by a cluster. Layout: `<prefix>subscribers:<domain>` is a hash username -> subscriber JSON;
 * `<prefix>subscriber-domains` is the set of domains that have subscribers.
 */
export class RedisSubscriberStore implements SubscriberStore {
  private readonly prefix: string;
  private readonly domainsKey: string;

  constructor(
    private readonly redis: Redis,
    options: RedisSubscriberStoreOptions = {},
  ) {
    this.prefix = options.prefix ?? 'sipway:';
    this.domainsKey = `${this.prefix}subscriber-domains`;
  }

  async get(username: string, domain: string): Promise<Subscriber | undefined> {
    const key = this.domainKey(canonicalDomain(domain));
    const json = await this.redis.hget(key, username);
    return json === null ? undefined : this.decode(json, key, username);
  }

  async put(s: Subscriber): Promise<void> {
    const kept = acceptSubscriber(s);
    await this.redis
      .multi()
      .hset(this.domainKey(kept.domain), kept.username, JSON.stringify(kept))
      .sadd(this.domainsKey, kept.domain)
      .exec();
  }

  async remove(username: string, domain: string): Promise<boolean> {
    const d = canonicalDomain(domain);
    return (await REMOVE_SUBSCRIBER.run(this.redis, [this.domainKey(d), this.domainsKey], [username, d])) === 1;
  }

  async list(domain?: string): Promise<Subscriber[]> {
    const domains = new Set<string>();
    if (domain !== undefined) domains.add(canonicalDomain(domain));
    else for await (const batch of scanSet(this.redis, this.domainsKey)) for (const d of batch) domains.add(d);
    const out: Subscriber[] = [];
    for (const d of domains) {
      const key = this.domainKey(d);
      for (const [username, json] of Object.entries(await this.redis.hgetall(key))) out.push(this.decode(json, key, username));
    }
    return out.sort(bySubscriberName);
  }

  async close(): Promise<void> {}

  private domainKey(domain: string): string {
    return `${this.prefix}subscribers:${domain}`;
  }

  private decode(json: string, key: string, username: string): Subscriber {
    return parseRecord<Subscriber>(json, `at ${key} field ${username}`, checkSubscriber);
  }
}
