import { parseRecord } from './record.js';
import type { SqliteDatabase } from './sqlite.js';
import { type Subscriber, type SubscriberStore, acceptSubscriber, canonicalDomain } from './subscriber-store.js';

interface SubscriberRow {
  domain: string;
  username: string;
  ha1_md5: string;
  ha1_sha256: string;
  groups: string;
  created_at: number;
}

const COLUMNS = 'domain, username, ha1_md5, ha1_sha256, groups, created_at';

/**
 * Subscribers in the `subscribers` table of the sipway database (the file the location store uses). Reads go
 * to SQLite each time: subscriber lookups happen once per challenge answer, and the table may be edited by
 * provisioning tools while sipway runs.
 */
export class SqliteSubscriberStore implements SubscriberStore {
  private readonly selectOne;
  private readonly selectDomain;
  private readonly selectAll;
  private readonly upsert;
  private readonly deleteOne;

  constructor(db: SqliteDatabase) {
    this.selectOne = db.prepare<[string, string], SubscriberRow>(
      `SELECT ${COLUMNS} FROM subscribers WHERE domain = ? AND username = ?`,
    );
    this.selectDomain = db.prepare<[string], SubscriberRow>(
      `SELECT ${COLUMNS} FROM subscribers WHERE domain = ? ORDER BY username`,
    );
    this.selectAll = db.prepare<[], SubscriberRow>(`SELECT ${COLUMNS} FROM subscribers ORDER BY domain, username`);
    this.upsert = db.prepare<[string, string, string, string, string, number]>(
      `INSERT OR REPLACE INTO subscribers (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.deleteOne = db.prepare<[string, string]>('DELETE FROM subscribers WHERE domain = ? AND username = ?');
  }

  async get(username: string, domain: string): Promise<Subscriber | undefined> {
    const row = this.selectOne.get(canonicalDomain(domain), username);
    return row && fromRow(row);
  }

  async put(s: Subscriber): Promise<void> {
    const k = acceptSubscriber(s);
    this.upsert.run(k.domain, k.username, k.ha1Md5, k.ha1Sha256, JSON.stringify(k.groups), k.createdAt);
  }

  async remove(username: string, domain: string): Promise<boolean> {
    return this.deleteOne.run(canonicalDomain(domain), username).changes > 0;
  }

  async list(domain?: string): Promise<Subscriber[]> {
    const rows = domain === undefined ? this.selectAll.all() : this.selectDomain.all(canonicalDomain(domain));
    return rows.map(fromRow);
  }

  async close(): Promise<void> {}
}

function fromRow(row: SubscriberRow): Subscriber {
  return {
    username: row.username,
    domain: row.domain,
    ha1Md5: row.ha1_md5,
    ha1Sha256: row.ha1_sha256,
    groups: parseRecord<string[]>(row.groups, `in table subscribers for ${row.username}@${row.domain}`, checkGroups),
    createdAt: row.created_at,
  };
}

function checkGroups(value: unknown): string | undefined {
  return Array.isArray(value) && value.every((g) => typeof g === 'string') ? undefined : 'groups is not a JSON array of strings';
}
