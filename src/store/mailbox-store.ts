import type { Redis } from 'ioredis';
import { RedisPerUserMap } from './redis-per-user-map.js';
import type { SqliteDatabase } from './sqlite.js';
import { SqlitePerUserTable } from './sqlite-per-user-table.js';
import { MemoryPerUserMap, canonicalDomain, type PerUserStore } from './per-user-map.js';

/**
 * A user's voice mailbox as message-waiting indication reports it (RFC 3842 §5.2: new and old messages, and of them
 * the urgent ones). Set from the CLI or a program (later a voicemail service); phones learn it by subscribing to
 * message-summary.
 */
export interface MailboxRecord {
  username: string;
  domain: string;
  newMessages: number;
  oldMessages: number;
  urgentNew: number;
  urgentOld: number;
  /** When it was last set (ms since the epoch). */
  updatedAt: number;
}

export type MailboxStore = PerUserStore<MailboxRecord>;

export class InvalidMailboxRecordError extends Error {
  constructor(problem: string) {
    super(`invalid mailbox record: ${problem}`);
    this.name = 'InvalidMailboxRecordError';
  }
}

const COUNTS = ['newMessages', 'oldMessages', 'urgentNew', 'urgentOld'] as const;

export function checkMailboxRecord(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const r = value as Record<string, unknown>;
  if (typeof r.username !== 'string' || r.username.length === 0) return 'username must be a non-empty string';
  if (typeof r.domain !== 'string' || r.domain.length === 0) return 'domain must be a non-empty string';
  for (const k of COUNTS) {
    if (!Number.isInteger(r[k]) || (r[k] as number) < 0 || (r[k] as number) > 1_000_000) return `${k} must be a whole number from 0 to 1000000`;
  }
  if ((r.urgentNew as number) > (r.newMessages as number)) return 'urgentNew must not exceed newMessages';
  if ((r.urgentOld as number) > (r.oldMessages as number)) return 'urgentOld must not exceed oldMessages';
  if (!Number.isSafeInteger(r.updatedAt)) return 'updatedAt must be an integer (ms since the epoch)';
  return undefined;
}

function accept(r: MailboxRecord): MailboxRecord {
  const problem = checkMailboxRecord(r);
  if (problem) throw new InvalidMailboxRecordError(problem);
  return { username: r.username, domain: canonicalDomain(r.domain), newMessages: r.newMessages, oldMessages: r.oldMessages, urgentNew: r.urgentNew, urgentOld: r.urgentOld, updatedAt: r.updatedAt };
}

/** Mailboxes in process memory (tests, labs). */
export class MemoryMailboxStore extends MemoryPerUserMap<MailboxRecord> implements MailboxStore {
  constructor() {
    super(accept, (r) => ({ ...r }));
  }
}

interface MailboxRow {
  domain: string;
  username: string;
  new_messages: number;
  old_messages: number;
  urgent_new: number;
  urgent_old: number;
  updated_at: number;
}

/** Mailboxes in the `mailboxes` table of the sipway database: they survive a restart. */
export class SqliteMailboxStore extends SqlitePerUserTable<MailboxRecord, MailboxRow> implements MailboxStore {
  constructor(db: SqliteDatabase) {
    super(db, {
      table: 'mailboxes',
      columns: ['domain', 'username', 'new_messages', 'old_messages', 'urgent_new', 'urgent_old', 'updated_at'],
      accept,
      toRow: (k) => [k.domain, k.username, k.newMessages, k.oldMessages, k.urgentNew, k.urgentOld, k.updatedAt],
      fromRow: (row) => ({
        username: row.username,
        domain: row.domain,
        newMessages: row.new_messages,
        oldMessages: row.old_messages,
        urgentNew: row.urgent_new,
        urgentOld: row.urgent_old,
        updatedAt: row.updated_at,
      }),
    });
  }
}

/** Mailboxes shared by a cluster: `<prefix>mwi:<domain>` is a hash username -> record JSON. */
export class RedisMailboxStore extends RedisPerUserMap<MailboxRecord> implements MailboxStore {
  constructor(redis: Redis, options: { prefix?: string } = {}) {
    super(redis, { prefix: options.prefix, hash: 'mwi:', domains: 'mwi-domains', accept, check: checkMailboxRecord });
  }
}
