import type { Redis } from 'ioredis';
import { RedisPerUserMap } from './redis-per-user-map.js';
import type { SqliteDatabase } from './sqlite.js';
import { SqlitePerUserTable } from './sqlite-per-user-table.js';
import { MemoryPerUserMap, canonicalDomain } from './per-user-map.js';

/**
 * Per-user CPL scripts (RFC 3880), kept as the XML the user uploaded: one document per user, holding both the
 * incoming and the outgoing actions. The store does not validate CPL (the policy layer does, before `put`); it
 * checks the record's shape and bounds its size. Users are named like subscribers: the domain compares
 * case-insensitively and is stored lower-cased, the username compares case-sensitively.
 */
export interface CplScriptRecord {
  username: string;
  domain: string;
  /** The XML text. */
  script: string;
  /** When it was stored (ms since the epoch). */
  updatedAt: number;
}

export interface CplStore {
  get(username: string, domain: string): Promise<CplScriptRecord | undefined>;
  /** Adds or replaces; rejects with InvalidCplRecordError on a malformed or oversized record. */
  put(record: CplScriptRecord): Promise<void>;
  /** Resolves to whether there was a script. */
  remove(username: string, domain: string): Promise<boolean>;
  /** All scripts, or those of one domain, ordered by domain then username. */
  list(domain?: string): Promise<CplScriptRecord[]>;
  close(): Promise<void>;
}

/** Larger than any sensible script (the policy layer's parser has its own, smaller, limit). */
export const MAX_CPL_SCRIPT_BYTES = 256 * 1024;

export class InvalidCplRecordError extends Error {
  constructor(problem: string) {
    super(`invalid CPL script record: ${problem}`);
    this.name = 'InvalidCplRecordError';
  }
}

export function checkCplRecord(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const r = value as Record<string, unknown>;
  if (typeof r.username !== 'string' || r.username.length === 0) return 'username must be a non-empty string';
  if (typeof r.domain !== 'string' || r.domain.length === 0) return 'domain must be a non-empty string';
  if (typeof r.script !== 'string') return 'script must be a string';
  if (Buffer.byteLength(r.script, 'utf8') > MAX_CPL_SCRIPT_BYTES) return `script is larger than ${MAX_CPL_SCRIPT_BYTES} bytes`;
  if (!Number.isSafeInteger(r.updatedAt)) return 'updatedAt must be an integer (ms since the epoch)';
  return undefined;
}

function accept(r: CplScriptRecord): CplScriptRecord {
  const problem = checkCplRecord(r);
  if (problem) throw new InvalidCplRecordError(problem);
  return { username: r.username, domain: canonicalDomain(r.domain), script: r.script, updatedAt: r.updatedAt };
}


/** Scripts in process memory (tests, labs). */
export class MemoryCplStore extends MemoryPerUserMap<CplScriptRecord> implements CplStore {
  constructor() {
    super(accept, (r) => ({ ...r }));
  }
}

interface CplRow {
  domain: string;
  username: string;
  script: string;
  updated_at: number;
}

/**
 * Scripts in the `cpl_scripts` table of the sipway database. Reads go to SQLite each time: a script is read once
 * per call to its owner, and provisioning tools may edit the table while sipway runs.
 */
export class SqliteCplStore extends SqlitePerUserTable<CplScriptRecord, CplRow> implements CplStore {
  constructor(db: SqliteDatabase) {
    super(db, {
      table: 'cpl_scripts',
      columns: ['domain', 'username', 'script', 'updated_at'],
      accept,
      toRow: (k) => [k.domain, k.username, k.script, k.updatedAt],
      fromRow,
    });
  }
}

function fromRow(row: CplRow): CplScriptRecord {
  return { username: row.username, domain: row.domain, script: row.script, updatedAt: row.updated_at };
}

export interface RedisCplStoreOptions {
  /** Prepended to every key; 'sipway:' by default. */
  prefix?: string;
}

/**
 * Scripts shared by a cluster. Layout: `<prefix>cpl:<domain>` is a hash username -> record JSON;
 * `<prefix>cpl-domains` is the set of domains that have scripts.
 */
export class RedisCplStore extends RedisPerUserMap<CplScriptRecord> implements CplStore {
  constructor(redis: Redis, options: RedisCplStoreOptions = {}) {
    super(redis, { prefix: options.prefix, hash: 'cpl:', domains: 'cpl-domains', accept, check: checkCplRecord });
  }
}
