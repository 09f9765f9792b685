import { Redis } from 'ioredis';
import type { Clock } from '../util/clock.js';
import { UnavailableError } from '../util/errors.js';
import { type CplStore, RedisCplStore, SqliteCplStore } from './cpl-store.js';
import { type MailboxStore, RedisMailboxStore, SqliteMailboxStore } from './mailbox-store.js';
import { type MessageBoxStore, RedisMessageBoxStore, SqliteMessageBoxStore } from './message-box-store.js';
import { type WatcherRulesStore, RedisWatcherRulesStore, SqliteWatcherRulesStore } from './watcher-rules-store.js';
import { type BuddyListStore, RedisBuddyListStore, SqliteBuddyListStore } from './buddy-list-store.js';
export {
  type PresenceStateStore,
  type StoredPublication,
  type StoredSubscription,
  MemoryPresenceStateStore,
  RedisPresenceStateStore,
  SqlitePresenceStateStore,
} from './presence-state-store.js';
import { type PresenceStateStore, RedisPresenceStateStore, SqlitePresenceStateStore } from './presence-state-store.js';
import { type ChangeChannel, RedisChangeChannel } from './change-channel.js';
export { type ChangeChannel, RedisChangeChannel } from './change-channel.js';
import { type GatewayStore, RedisGatewayStore, SqliteGatewayStore } from './gateway-store.js';
import type { LocationStore } from './location-store.js';
import { RedisLocationStore } from './redis-location-store.js';
import { RedisSubscriberStore } from './redis-subscriber-store.js';
import { openDatabase } from './sqlite.js';
import { SqliteLocationStore } from './sqlite-location-store.js';
import { SqliteSubscriberStore } from './sqlite-subscriber-store.js';
import type { SubscriberStore } from './subscriber-store.js';

export { type Binding, type BindingSource, bindingKey, checkBinding } from './binding.js';
export {
  type LocationStore,
  type LocationStoreOptions,
  DEFAULT_SWEEP_INTERVAL_MS,
  InvalidBindingError,
} from './location-store.js';
export { MemoryLocationStore } from './memory-location-store.js';
export { SqliteLocationStore } from './sqlite-location-store.js';
export { LocationContentionError, RedisLocationStore, type RedisLocationStoreOptions } from './redis-location-store.js';
export { CorruptRecordError } from './record.js';
export { storeFailure } from './store-failure.js';
export { DATABASE_FILE, SCHEMA_VERSION, type SqliteDatabase, inspectDatabase, openDatabase } from './sqlite.js';
export {
  type Subscriber,
  type SubscriberStore,
  InvalidSubscriberError,
  MemorySubscriberStore,
  checkSubscriber,
} from './subscriber-store.js';
export { SqliteSubscriberStore } from './sqlite-subscriber-store.js';
export { RedisSubscriberStore, type RedisSubscriberStoreOptions } from './redis-subscriber-store.js';
export {
  type CallEnd,
  type CdrQuery,
  type CdrMedia,
  type CdrMediaCounters,
  type CdrRecord,
  type CdrStore,
  type CdrType,
  type MemoryCdrStoreOptions,
  type MissedCause,
  type OpenCdrStore,
  CDR_TYPES,
  MISSED_CAUSES,
  InvalidCdrError,
  MemoryCdrStore,
  SqliteCdrStore,
  checkCdr,
  openCdrStore,
} from './cdr-store.js';
export {
  type CplScriptRecord,
  type CplStore,
  type RedisCplStoreOptions,
  InvalidCplRecordError,
  MAX_CPL_SCRIPT_BYTES,
  MemoryCplStore,
  RedisCplStore,
  SqliteCplStore,
  checkCplRecord,
} from './cpl-store.js';

export {
  type WatcherRule,
  type WatcherRulesRecord,
  type WatcherRulesStore,
  InvalidWatcherRulesError,
  MemoryWatcherRulesStore,
  RedisWatcherRulesStore,
  SqliteWatcherRulesStore,
  WATCHER_RULES,
  checkWatcherRules,
} from './watcher-rules-store.js';

export {
  type BuddyListMember,
  type BuddyListRecord,
  type BuddyListStore,
  InvalidBuddyListError,
  MAX_BUDDIES,
  MemoryBuddyListStore,
  RedisBuddyListStore,
  SqliteBuddyListStore,
  checkBuddyList,
} from './buddy-list-store.js';

export {
  type MessageBoxRecord,
  type MessageBoxStore,
  type StoredMessage,
  InvalidMessageBoxError,
  MemoryMessageBoxStore,
  RedisMessageBoxStore,
  SqliteMessageBoxStore,
  checkMessageBox,
} from './message-box-store.js';

export {
  type MailboxRecord,
  type MailboxStore,
  InvalidMailboxRecordError,
  MemoryMailboxStore,
  RedisMailboxStore,
  SqliteMailboxStore,
  checkMailboxRecord,
} from './mailbox-store.js';

export {
  type Gateway,
  type GatewayStore,
  type GatewayTables,
  type RedisGatewayStoreOptions,
  type Route,
  InvalidGatewayError,
  MAX_PREFIX_LENGTH,
  MemoryGatewayStore,
  RedisGatewayStore,
  SqliteGatewayStore,
  checkGateway,
  checkRoute,
} from './gateway-store.js';

/** Single node, durable on disk; or a cluster sharing Redis. */
export type StoreConfig = { dataDir: string } | { redisUrl: string; prefix?: string };

export interface OpenStoresOptions {
  sweepIntervalMs?: number;
  /** Told about background failures: a failed expiry sweep, a lost Redis connection (it reconnects by itself). */
  onError?: (err: unknown) => void;
}

export interface Stores {
  location: LocationStore;
  subscribers: SubscriberStore;
  /** Per-user CPL scripts, shared by a cluster like the subscribers. */
  cpl: CplStore;
  /** Per-user message-waiting counts (RFC 3842). */
  mailboxes: MailboxStore;
  /** Instant messages kept for offline users (RFC 3428). */
  messages: MessageBoxStore;
  /** Presentities' rules about their watchers. */
  watcherRules: WatcherRulesStore;
  /** Users' buddy lists, served as resource lists (RFC 4662). */
  buddyLists: BuddyListStore;
  /** Publications and subscriptions of the presence server (shared by workers, kept over restarts). */
  presenceState: PresenceStateStore;
  /** Presence changes told to every process sharing the store (Redis); absent for the embedded store (one node). */
  presenceChanges?: ChangeChannel;
  /** Closes the stores and the database file or Redis connection they share. */
  close(): Promise<void>;
}

/** Opens the configured backend; rejects with an UnavailableError naming the field when it cannot. */
export async function openStores(config: StoreConfig, clock: Clock, options: OpenStoresOptions = {}): Promise<Stores> {
  const storeOptions = { sweepIntervalMs: options.sweepIntervalMs, onSweepError: options.onError };
  if ('dataDir' in config) {
    const db = openDatabase(config.dataDir);
    let location: SqliteLocationStore;
    try {
      location = new SqliteLocationStore(db, clock, storeOptions);
    } catch (err) {
      db.close();
      throw err;
    }
    const subscribers = new SqliteSubscriberStore(db);
    const cpl = new SqliteCplStore(db);
    const mailboxes = new SqliteMailboxStore(db);
    const messages = new SqliteMessageBoxStore(db);
    const watcherRules = new SqliteWatcherRulesStore(db);
    const buddyLists = new SqliteBuddyListStore(db);
    const presenceState = new SqlitePresenceStateStore(db);
    return {
      location,
      subscribers,
      cpl,
      mailboxes,
      messages,
      watcherRules,
      buddyLists,
      presenceState,
      close: async () => {
        await location.close();
        await subscribers.close();
        await cpl.close();
        await mailboxes.close();
        await messages.close();
        await watcherRules.close();
        await buddyLists.close();
        db.close();
      },
    };
  }
  const redis = await connectRedis(config.redisUrl, options.onError);
  const prefix = config.prefix ?? 'sipway:';
  const location = new RedisLocationStore(redis, clock, { ...storeOptions, prefix });
  const subscribers = new RedisSubscriberStore(redis, { prefix });
  const cpl = new RedisCplStore(redis, { prefix });
  const mailboxes = new RedisMailboxStore(redis, { prefix });
  const messages = new RedisMessageBoxStore(redis, { prefix });
  const watcherRules = new RedisWatcherRulesStore(redis, { prefix });
  const buddyLists = new RedisBuddyListStore(redis, { prefix });
  const presenceState = new RedisPresenceStateStore(redis, { prefix });
  const presenceChanges = new RedisChangeChannel(redis, `${prefix}presence-changes`, options.onError);
  return {
    location,
    subscribers,
    cpl,
    mailboxes,
    messages,
    watcherRules,
    buddyLists,
    presenceState,
    presenceChanges,
    close: async () => {
      await location.close();
      await subscribers.close();
      await cpl.close();
      await mailboxes.close();
      await messages.close();
      await watcherRules.close();
      await buddyLists.close();
      await presenceChanges.close();
      await redis.quit();
    },
  };
}

/**
 * The gateway and route tables of the configured backend, on a database handle or connection of their own that
 * `close` releases. The tables have no in-memory index, so a second SQLite handle beside openStores' is safe.
 */
export async function openGatewayStore(config: StoreConfig, options: Pick<OpenStoresOptions, 'onError'> = {}): Promise<GatewayStore> {
  if ('dataDir' in config) {
    const db = openDatabase(config.dataDir);
    return new SqliteGatewayStore(db, () => db.close());
  }
  const redis = await connectRedis(config.redisUrl, options.onError);
  return new RedisGatewayStore(redis, { prefix: config.prefix ?? 'sipway:' }, () => redis.quit());
}

/** Connects to Redis and asks PING within `timeoutMs` (`sipway doctor`); rejects with an UnavailableError naming redisUrl. */
export async function pingRedis(url: string, timeoutMs: number): Promise<void> {
  const redis = await connectRedis(url, undefined, timeoutMs);
  try {
    await redis.ping();
  } finally {
    redis.disconnect();
  }
}

async function connectRedis(url: string, onError: ((err: unknown) => void) | undefined, connectTimeoutMs = 5000): Promise<Redis> {
  // A request fails after a couple of reconnection attempts instead of queueing while Redis is down: a SIP
  // transaction cannot wait for it, it must answer.
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: connectTimeoutMs });
  let connected = false;
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
    if (connected) onError?.(err);
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    // connect() only says "Connection is closed"; the error event carried the reason (ECONNREFUSED, auth...).
    const cause = lastError ?? (err as Error);
    throw new UnavailableError('redisUrl', `cannot connect to ${redactUrl(url)}: ${cause.message}`);
  }
  connected = true;
  return redis;
}

/** The URL without its password, for error messages and logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured Redis URL';
  }
}
