import { parseRecord } from './record.js';
import type { SqliteDatabase } from './sqlite.js';
import { SqlitePerUserTable } from './sqlite-per-user-table.js';
import { type Subscriber, type SubscriberStore, acceptSubscriber } from './subscriber-store.js';

interface SubscriberRow {
  domain: string;
  username: string;
  ha1_md5: string;
  ha1_sha256: string;
  groups: string;
  created_at: number;
}

/**
 * Subscribers in the `subscribers` table of the sipway database (the file the location store uses). Reads go
 * to SQLite each time: subscriber lookups happen once per challenge answer, and the table may be edited by
 * provisioning tools while sipway runs.
 */
export class SqliteSubscriberStore extends SqlitePerUserTable<Subscriber, SubscriberRow> implements SubscriberStore {
  constructor(db: SqliteDatabase) {
    super(db, {
      table: 'subscribers',
      columns: ['domain', 'username', 'ha1_md5', 'ha1_sha256', 'groups', 'created_at'],
      accept: acceptSubscriber,
      toRow: (k) => [k.domain, k.username, k.ha1Md5, k.ha1Sha256, JSON.stringify(k.groups), k.createdAt],
      fromRow,
    });
  }
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
