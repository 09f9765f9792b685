import type { Redis } from 'ioredis';
import { RedisPerUserMap } from './redis-per-user-map.js';
import { type Subscriber, type SubscriberStore, acceptSubscriber, checkSubscriber } from './subscriber-store.js';

export interface RedisSubscriberStoreOptions {
  /** Prepended to every key; 'sipway:' by default. */
  prefix?: string;
}

/**
 * Subscribers shared by a cluster. Layout: `<prefix>subscribers:<domain>` is a hash username -> subscriber JSON;
 * `<prefix>subscriber-domains` is the set of domains that have subscribers.
 */
export class RedisSubscriberStore extends RedisPerUserMap<Subscriber> implements SubscriberStore {
  constructor(redis: Redis, options: RedisSubscriberStoreOptions = {}) {
    super(redis, { prefix: options.prefix, hash: 'subscribers:', domains: 'subscriber-domains', accept: acceptSubscriber, check: checkSubscriber });
  }
}
