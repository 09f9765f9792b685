import type { Redis } from 'ioredis';
import { RedisPerUserMap } from './redis-per-user-map.js';
import type { SqliteDatabase } from './sqlite.js';
import { SqlitePerUserTable } from './sqlite-per-user-table.js';
import { MemoryPerUserMap, canonicalDomain, type PerUserStore } from './per-user-map.js';

/** An instant message (RFC 3428) kept for a user who was offline when it came. */
export interface StoredMessage {
  /** The sender's From (name-addr, without tag). */
  from: string;
  contentType: string;
  /** The body as text (MESSAGE bodies are text or small documents). */
  body: string;
  receivedAt: number;
  expiresAt: number;
}

/** A user's stored messages, oldest first. */
export interface MessageBoxRecord {
  username: string;
  domain: string;
  messages: StoredMessage[];
}

export type MessageBoxStore = PerUserStore<MessageBoxRecord>;

export class InvalidMessageBoxError extends Error {
  constructor(problem: string) {
    super(`invalid message box: ${problem}`);
    this.name = 'InvalidMessageBoxError';
  }
}

/** Far above what a server keeps per user (its own cap is smaller): a record that large is refused. */
const MAX_STORED = 1000;

export function checkMessageBox(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const r = value as Record<string, unknown>;
  if (typeof r.username !== 'string' || r.username.length === 0) return 'username must be a non-empty string';
  if (typeof r.domain !== 'string' || r.domain.length === 0) return 'domain must be a non-empty string';
  if (!Array.isArray(r.messages) || r.messages.length > MAX_STORED) return `messages must be an array of at most ${MAX_STORED}`;
  for (const m of r.messages as unknown[]) {
    const x = m as Record<string, unknown>;
    if (typeof x !== 'object' || x === null || typeof x.from !== 'string' || typeof x.contentType !== 'string' || typeof x.body !== 'string') return 'a message needs from, contentType and body';
    if (!Number.isSafeInteger(x.receivedAt) || !Number.isSafeInteger(x.expiresAt)) return 'a message needs receivedAt and expiresAt (ms since the epoch)';
  }
  return undefined;
}

function accept(r: MessageBoxRecord): MessageBoxRecord {
  const problem = checkMessageBox(r);
  if (problem) throw new InvalidMessageBoxError(problem);
  return { username: r.username, domain: canonicalDomain(r.domain), messages: r.messages.map((m) => ({ ...m })) };
}

const copy = (r: MessageBoxRecord): MessageBoxRecord => ({ ...r, messages: r.messages.map((m) => ({ ...m })) });

export class MemoryMessageBoxStore extends MemoryPerUserMap<MessageBoxRecord> implements MessageBoxStore {
  constructor() {
    super(accept, copy);
  }
}

interface MessageBoxRow {
  domain: string;
  username: string;
  messages: string;
}

/** Stored messages in the `message_boxes` table (one JSON array per user): they survive a restart. */
export class SqliteMessageBoxStore extends SqlitePerUserTable<MessageBoxRecord, MessageBoxRow> implements MessageBoxStore {
  constructor(db: SqliteDatabase) {
    super(db, {
      table: 'message_boxes',
      columns: ['domain', 'username', 'messages'],
      accept,
      toRow: (k) => [k.domain, k.username, JSON.stringify(k.messages)],
      fromRow: (row) => ({ username: row.username, domain: row.domain, messages: JSON.parse(row.messages) as StoredMessage[] }),
    });
  }
}

/** Stored messages shared by a cluster: `<prefix>msgs:<domain>` is a hash username -> record JSON. */
export class RedisMessageBoxStore extends RedisPerUserMap<MessageBoxRecord> implements MessageBoxStore {
  constructor(redis: Redis, options: { prefix?: string } = {}) {
    super(redis, { prefix: options.prefix, hash: 'msgs:', domains: 'msgs-domains', accept, check: checkMessageBox });
  }
}
