import type { Redis } from 'ioredis';
import { RedisPerUserMap } from './redis-per-user-map.js';
import type { SqliteDatabase } from './sqlite.js';
import { SqlitePerUserTable } from './sqlite-per-user-table.js';
import { MemoryPerUserMap, canonicalDomain, type PerUserStore } from './per-user-map.js';

/** One entry of a buddy list: an address of record (`sip:bob@example.com`) and the name the owner knows it by. */
export interface BuddyListMember {
  uri: string;
  name?: string;
}

/**
 * A user's buddy list, served as an RFC 4662 resource list: one subscription of the owner's phone to the list's URI
 * watches every member. The URI is not stored: the presence server derives it from the owner (docs/presence.md).
 */
export interface BuddyListRecord {
  username: string;
  domain: string;
  /** In the order the owner added them: the order a phone shows them in. */
  members: BuddyListMember[];
}

export type BuddyListStore = PerUserStore<BuddyListRecord>;

/** A phone shows a few dozen; the bound keeps one NOTIFY of the full state within reason (every member's PIDF). */
export const MAX_BUDDIES = 500;

export class InvalidBuddyListError extends Error {
  constructor(problem: string) {
    super(`invalid buddy list: ${problem}`);
    this.name = 'InvalidBuddyListError';
  }
}

export function checkBuddyList(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const r = value as Record<string, unknown>;
  if (typeof r.username !== 'string' || r.username.length === 0) return 'username must be a non-empty string';
  if (typeof r.domain !== 'string' || r.domain.length === 0) return 'domain must be a non-empty string';
  if (!Array.isArray(r.members)) return 'members must be an array';
  if (r.members.length > MAX_BUDDIES) return `at most ${MAX_BUDDIES} members`;
  const seen = new Set<string>();
  for (const m of r.members as unknown[]) {
    if (typeof m !== 'object' || m === null) return 'a member must be an object';
    const { uri, name } = m as Record<string, unknown>;
    // The URI goes into XML attributes and is compared as the registrar's canonical AOR: no room for odd characters.
    if (typeof uri !== 'string' || !/^sips?:[^\s<>"&']{1,510}$/.test(uri)) return 'a member uri must be a sip: or sips: URI of at most 512 characters';
    if (seen.has(uri)) return `${uri} is listed twice`;
    seen.add(uri);
    if (name !== undefined && (typeof name !== 'string' || name.length > 256 || /[\u0000-\u001f\u007f]/.test(name))) return `the name of ${uri} must be at most 256 characters without control characters`;
  }
  return undefined;
}

function accept(r: BuddyListRecord): BuddyListRecord {
  const problem = checkBuddyList(r);
  if (problem) throw new InvalidBuddyListError(problem);
  return { username: r.username, domain: canonicalDomain(r.domain), members: copyMembers(r.members) };
}

function copyMembers(members: readonly BuddyListMember[]): BuddyListMember[] {
  return members.map((m) => (m.name === undefined ? { uri: m.uri } : { uri: m.uri, name: m.name }));
}

/** Buddy lists in process memory (tests, labs). */
export class MemoryBuddyListStore extends MemoryPerUserMap<BuddyListRecord> implements BuddyListStore {
  constructor() {
    super(accept, (r) => ({ ...r, members: copyMembers(r.members) }));
  }
}

interface BuddyListRow {
  domain: string;
  username: string;
  members: string;
}

/** Buddy lists in the `buddy_lists` table (the members as a JSON array per user): they survive a restart. */
export class SqliteBuddyListStore extends SqlitePerUserTable<BuddyListRecord, BuddyListRow> implements BuddyListStore {
  constructor(db: SqliteDatabase) {
    super(db, {
      table: 'buddy_lists',
      columns: ['domain', 'username', 'members'],
      accept,
      toRow: (k) => [k.domain, k.username, JSON.stringify(k.members)],
      fromRow: (row) => ({ username: row.username, domain: row.domain, members: JSON.parse(row.members) as BuddyListMember[] }),
    });
  }
}

/** Buddy lists shared by a cluster: `<prefix>buddies:<domain>` is a hash username -> record JSON. */
export class RedisBuddyListStore extends RedisPerUserMap<BuddyListRecord> implements BuddyListStore {
  constructor(redis: Redis, options: { prefix?: string } = {}) {
    super(redis, { prefix: options.prefix, hash: 'buddies:', domains: 'buddies-domains', accept, check: checkBuddyList });
  }
}
