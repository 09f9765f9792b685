import type { Redis } from 'ioredis';
import { RedisScript } from './redis-script.js';
import type { SqliteDatabase } from './sqlite.js';

/**
 * The state a presence server must not lose with a process: publications (RFC 3903) and subscriptions (RFC 6665).
 * Kept in the shared store so that every worker of a server (and every node sharing Redis) composes the same
 * document, whichever took the PUBLISH, and so that subscriptions go on after a restart. Written on PUBLISH,
 * SUBSCRIBE, refresh and decision — never on NOTIFY.
 */
export interface StoredPublication {
  event: string;
  resource: string;
  etag: string;
  contentType: string;
  body: string;
  /** When it was published or modified (composition: newest wins). */
  at: number;
  expiresAt: number;
}

/** A subscription as the notifier keeps it, opaque here (its dialog and state, as JSON). */
export interface StoredSubscription {
  /** Its dialog ID and event: unique. */
  key: string;
  /** Which worker owns it after a restart (the worker bus routes by Call-ID). */
  callId: string;
  expiresAt: number;
  data: string;
}

export interface PresenceStateStore {
  /**
   * Adds a publication; with `replaces`, takes the place of that entity tag atomically (refresh or modify), and
   * returns false, changing nothing, when that one is not there (anymore): 412 (RFC 3903 §6 step 3).
   */
  putPublication(p: StoredPublication, replaces?: string): Promise<boolean>;
  /** Removes one publication; false when it was not there. */
  removePublication(event: string, resource: string, etag: string): Promise<boolean>;
  /** The live publications of (event, resource), oldest first. */
  publications(event: string, resource: string, now: number): Promise<StoredPublication[]>;
  /** Removes publications expired by `now`; returns the (event, resource) pairs whose state so changed. */
  removeExpiredPublications(now: number): Promise<Array<{ event: string; resource: string }>>;
  saveSubscription(s: StoredSubscription): Promise<void>;
  removeSubscription(key: string): Promise<void>;
  /** Every live subscription (expired ones are removed on the way). */
  subscriptions(now: number): Promise<StoredSubscription[]>;
  close(): Promise<void>;
}

/** Oldest first; within a millisecond by entity tag (Redis keeps no order of its own). */
const byAt = (a: StoredPublication, b: StoredPublication): number => a.at - b.at || (a.etag < b.etag ? -1 : 1);

export class MemoryPresenceStateStore implements PresenceStateStore {
  private readonly pubs = new Map<string, Map<string, StoredPublication>>();
  private readonly subs = new Map<string, StoredSubscription>();

  async putPublication(p: StoredPublication, replaces?: string): Promise<boolean> {
    const k = `${p.event}\n${p.resource}`;
    const map = this.pubs.get(k) ?? new Map<string, StoredPublication>();
    if (replaces !== undefined && !map.delete(replaces)) return false;
    map.set(p.etag, { ...p });
    this.pubs.set(k, map);
    return true;
  }

  async removePublication(event: string, resource: string, etag: string): Promise<boolean> {
    const k = `${event}\n${resource}`;
    const map = this.pubs.get(k);
    const removed = map?.delete(etag) ?? false;
    if (map?.size === 0) this.pubs.delete(k);
    return removed;
  }

  async publications(event: string, resource: string, now: number): Promise<StoredPublication[]> {
    const map = this.pubs.get(`${event}\n${resource}`);
    if (map === undefined) return [];
    // Stable: publications of the same millisecond stay in the order they were made (the last is the newest).
    return [...map.values()].filter((p) => p.expiresAt > now).map((p) => ({ ...p })).sort((a, b) => a.at - b.at);
  }

  async removeExpiredPublications(now: number): Promise<Array<{ event: string; resource: string }>> {
    const changed: Array<{ event: string; resource: string }> = [];
    for (const [k, map] of this.pubs) {
      let any = false;
      for (const [etag, p] of map) {
        if (p.expiresAt <= now) {
          map.delete(etag);
          any = true;
        }
      }
      if (map.size === 0) this.pubs.delete(k);
      if (any) {
        const [event, resource] = k.split('\n') as [string, string];
        changed.push({ event, resource });
      }
    }
    return changed;
  }

  async saveSubscription(s: StoredSubscription): Promise<void> {
    this.subs.set(s.key, { ...s });
  }

  async removeSubscription(key: string): Promise<void> {
    this.subs.delete(key);
  }

  async subscriptions(now: number): Promise<StoredSubscription[]> {
    for (const [k, s] of this.subs) if (s.expiresAt <= now) this.subs.delete(k);
    return [...this.subs.values()].map((s) => ({ ...s }));
  }

  async close(): Promise<void> {}
}

interface PublicationRow {
  event: string;
  resource: string;
  etag: string;
  content_type: string;
  body: string;
  at: number;
  expires_at: number;
}

const fromRow = (r: PublicationRow): StoredPublication => ({
  event: r.event,
  resource: r.resource,
  etag: r.etag,
  contentType: r.content_type,
  body: r.body,
  at: r.at,
  expiresAt: r.expires_at,
});

/**
 * In the server's SQLite file (tables presence_publications, presence_subscriptions). better-sqlite3 runs a
 * statement to its end before another starts, and the replace is one transaction, so two workers refreshing one
 * entity tag at once leave one publication, and the loser gets 412.
 */
export class SqlitePresenceStateStore implements PresenceStateStore {
  private readonly insert;
  private readonly remove;
  private readonly select;
  private readonly expired;
  private readonly removeExpired;
  private readonly replace;
  private readonly saveSub;
  private readonly removeSub;
  private readonly selectSubs;
  private readonly removeExpiredSubs;

  constructor(db: SqliteDatabase) {
    this.insert = db.prepare(
      'INSERT OR REPLACE INTO presence_publications (event, resource, etag, content_type, body, at, expires_at) VALUES (@event, @resource, @etag, @contentType, @body, @at, @expiresAt)',
    );
    this.remove = db.prepare('DELETE FROM presence_publications WHERE event = ? AND resource = ? AND etag = ?');
    this.select = db.prepare('SELECT * FROM presence_publications WHERE event = ? AND resource = ? AND expires_at > ? ORDER BY at, rowid');
    this.expired = db.prepare('SELECT DISTINCT event, resource FROM presence_publications WHERE expires_at <= ?');
    this.removeExpired = db.prepare('DELETE FROM presence_publications WHERE expires_at <= ?');
    this.replace = db.transaction((p: StoredPublication, replaces: string | undefined): boolean => {
      if (replaces !== undefined && this.remove.run(p.event, p.resource, replaces).changes === 0) return false;
      this.insert.run(p);
      return true;
    });
    this.saveSub = db.prepare('INSERT OR REPLACE INTO presence_subscriptions (key, call_id, expires_at, data) VALUES (?, ?, ?, ?)');
    this.removeSub = db.prepare('DELETE FROM presence_subscriptions WHERE key = ?');
    this.selectSubs = db.prepare('SELECT key, call_id, expires_at, data FROM presence_subscriptions');
    this.removeExpiredSubs = db.prepare('DELETE FROM presence_subscriptions WHERE expires_at <= ?');
  }

  async putPublication(p: StoredPublication, replaces?: string): Promise<boolean> {
    return this.replace(p, replaces);
  }

  async removePublication(event: string, resource: string, etag: string): Promise<boolean> {
    return this.remove.run(event, resource, etag).changes > 0;
  }

  async publications(event: string, resource: string, now: number): Promise<StoredPublication[]> {
    return (this.select.all(event, resource, now) as PublicationRow[]).map(fromRow);
  }

  async removeExpiredPublications(now: number): Promise<Array<{ event: string; resource: string }>> {
    const changed = this.expired.all(now) as Array<{ event: string; resource: string }>;
    if (changed.length > 0) this.removeExpired.run(now);
    return changed.map((c) => ({ event: c.event, resource: c.resource }));
  }

  async saveSubscription(s: StoredSubscription): Promise<void> {
    this.saveSub.run(s.key, s.callId, s.expiresAt, s.data);
  }

  async removeSubscription(key: string): Promise<void> {
    this.removeSub.run(key);
  }

  async subscriptions(now: number): Promise<StoredSubscription[]> {
    this.removeExpiredSubs.run(now);
    return (this.selectSubs.all() as Array<{ key: string; call_id: string; expires_at: number; data: string }>).map((r) => ({
      key: r.key,
      callId: r.call_id,
      expiresAt: r.expires_at,
      data: r.data,
    }));
  }

  async close(): Promise<void> {}
}

/** KEYS: the publications hash, the expiry zset. ARGV: old etag ('' for none), new etag, JSON, expiresAt, member. */
const REPLACE_PUBLICATION = new RedisScript(`
if ARGV[1] ~= '' then
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
  redis.call('ZREM', KEYS[2], ARGV[5] .. '\\n' .. ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5] .. '\\n' .. ARGV[2])
return 1
`);

/**
 * In Redis, shared by every node: a hash of publications per (event, resource), a sorted set of their expiries
 * (for the sweep), a hash of subscriptions. The replace is a Lua script: atomic across nodes.
 */
export class RedisPresenceStateStore implements PresenceStateStore {
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    options: { prefix?: string } = {},
  ) {
    this.prefix = options.prefix ?? 'sipway:';
  }

  private pubKey(event: string, resource: string): string {
    return `${this.prefix}pub:${event}\n${resource}`;
  }

  private get expiryKey(): string {
    return `${this.prefix}pub-expiry`;
  }

  private get subsKey(): string {
    return `${this.prefix}presence-subs`;
  }

  async putPublication(p: StoredPublication, replaces?: string): Promise<boolean> {
    const member = `${p.event}\n${p.resource}`;
    const done = await REPLACE_PUBLICATION.run(this.redis, [this.pubKey(p.event, p.resource), this.expiryKey], [replaces ?? '', p.etag, JSON.stringify(p), p.expiresAt, member]);
    return done === 1;
  }

  async removePublication(event: string, resource: string, etag: string): Promise<boolean> {
    const [[, removed]] = (await this.redis
      .multi()
      .hdel(this.pubKey(event, resource), etag)
      .zrem(this.expiryKey, `${event}\n${resource}\n${etag}`)
      .exec()) as [[unknown, number]];
    return removed > 0;
  }

  async publications(event: string, resource: string, now: number): Promise<StoredPublication[]> {
    const all = await this.redis.hvals(this.pubKey(event, resource));
    return all.map((j) => JSON.parse(j) as StoredPublication).filter((p) => p.expiresAt > now).sort(byAt);
  }

  async removeExpiredPublications(now: number): Promise<Array<{ event: string; resource: string }>> {
    const members = await this.redis.zrangebyscore(this.expiryKey, 0, now, 'LIMIT', 0, 1000);
    const changed = new Map<string, { event: string; resource: string }>();
    for (const m of members) {
      const [event, resource, etag] = m.split('\n') as [string, string, string];
      // Only the node whose ZREM removes the member reports it: a change is announced once.
      if ((await this.redis.zrem(this.expiryKey, m)) === 0) continue;
      await this.redis.hdel(this.pubKey(event, resource), etag);
      changed.set(`${event}\n${resource}`, { event, resource });
    }
    return [...changed.values()];
  }

  async saveSubscription(s: StoredSubscription): Promise<void> {
    await this.redis.hset(this.subsKey, s.key, JSON.stringify(s));
  }

  async removeSubscription(key: string): Promise<void> {
    await this.redis.hdel(this.subsKey, key);
  }

  async subscriptions(now: number): Promise<StoredSubscription[]> {
    const all = await this.redis.hgetall(this.subsKey);
    const live: StoredSubscription[] = [];
    for (const [key, json] of Object.entries(all)) {
      const s = JSON.parse(json) as StoredSubscription;
      if (s.expiresAt > now) live.push(s);
      else await this.redis.hdel(this.subsKey, key);
    }
    return live;
  }

  async close(): Promise<void> {}
}
