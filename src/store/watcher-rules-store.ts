import type { Redis } from 'ioredis';
import { RedisPerUserMap } from './redis-per-user-map.js';
import type { SqliteDatabase } from './sqlite.js';
import { SqlitePerUserTable } from './sqlite-per-user-table.js';
import { MemoryPerUserMap, canonicalDomain, type PerUserStore } from './per-user-map.js';

/** What a presentity decided about a watcher (RFC 5025 sub-handling). */
export type WatcherRule = 'allow' | 'block' | 'polite-block' | 'confirm';

export const WATCHER_RULES: readonly WatcherRule[] = ['allow', 'block', 'polite-block', 'confirm'];

/**
 * A presentity's rules about its watchers: by watcher AOR (`sip:alice@example.com`), or for a whole domain
 * (`*@example.com`). Who has no rule gets the server's default.
 */
export interface WatcherRulesRecord {
  username: string;
  domain: string;
  rules: Record<string, WatcherRule>;
}

export type WatcherRulesStore = PerUserStore<WatcherRulesRecord>;

export class InvalidWatcherRulesError extends Error {
  constructor(problem: string) {
    super(`invalid watcher rules: ${problem}`);
    this.name = 'InvalidWatcherRulesError';
  }
}

export function checkWatcherRules(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const r = value as Record<string, unknown>;
  if (typeof r.username !== 'string' || r.username.length === 0) return 'username must be a non-empty string';
  if (typeof r.domain !== 'string' || r.domain.length === 0) return 'domain must be a non-empty string';
  if (typeof r.rules !== 'object' || r.rules === null || Array.isArray(r.rules)) return 'rules must be an object';
  const entries = Object.entries(r.rules as Record<string, unknown>);
  if (entries.length > 10_000) return 'at most 10000 rules';
  for (const [watcher, rule] of entries) {
    if (watcher.length === 0 || watcher.length > 512) return 'a watcher must be 1 to 512 characters';
    if (!WATCHER_RULES.includes(rule as WatcherRule)) return `rule for ${watcher} must be one of ${WATCHER_RULES.join(', ')}`;
  }
  return undefined;
}

function accept(r: WatcherRulesRecord): WatcherRulesRecord {
  const problem = checkWatcherRules(r);
  if (problem) throw new InvalidWatcherRulesError(problem);
  return { username: r.username, domain: canonicalDomain(r.domain), rules: { ...r.rules } };
}

export class MemoryWatcherRulesStore extends MemoryPerUserMap<WatcherRulesRecord> implements WatcherRulesStore {
  constructor() {
    super(accept, (r) => ({ ...r, rules: { ...r.rules } }));
  }
}

interface WatcherRulesRow {
  domain: string;
  username: string;
  rules: string;
}

/** Rules in the `watcher_rules` table (a JSON object per presentity). */
export class SqliteWatcherRulesStore extends SqlitePerUserTable<WatcherRulesRecord, WatcherRulesRow> implements WatcherRulesStore {
  constructor(db: SqliteDatabase) {
    super(db, {
      table: 'watcher_rules',
      columns: ['domain', 'username', 'rules'],
      accept,
      toRow: (k) => [k.domain, k.username, JSON.stringify(k.rules)],
      fromRow: (row) => ({ username: row.username, domain: row.domain, rules: JSON.parse(row.rules) as Record<string, WatcherRule> }),
    });
  }
}

/** Rules shared by a cluster: `<prefix>watchers:<domain>` is a hash username -> record JSON. */
export class RedisWatcherRulesStore extends RedisPerUserMap<WatcherRulesRecord> implements WatcherRulesStore {
  constructor(redis: Redis, options: { prefix?: string } = {}) {
    super(redis, { prefix: options.prefix, hash: 'watchers:', domains: 'watchers-domains', accept, check: checkWatcherRules });
  }
}
