import type { Statement } from 'better-sqlite3';
import { canonicalDomain, type PerUser } from './per-user-map.js';
import type { SqliteDatabase } from './sqlite.js';

export interface SqlitePerUserLayout<T extends PerUser, Row extends { domain: string; username: string }> {
  table: string;
  /** Column names; the first two are `domain` and `username`, the table's key. */
  columns: readonly string[];
  /** Validates and canonicalises a record on the way in. */
  accept: (record: T) => T;
  /** The column values of an accepted record, in `columns` order. */
  toRow: (record: T) => unknown[];
  fromRow: (row: Row) => T;
}

/**
 * The SQLite backend shared by the per-user stores (subscribers, CPL scripts). Reads go to the table each time, so
 * provisioning tools may edit it while sipway runs.
 */
export class SqlitePerUserTable<T extends PerUser, Row extends { domain: string; username: string }> {
  private readonly selectOne: Statement<[string, string], Row>;
  private readonly selectDomain: Statement<[string], Row>;
  private readonly selectAll: Statement<[], Row>;
  private readonly upsert: Statement<unknown[]>;
  private readonly deleteOne: Statement<[string, string]>;

  constructor(
    db: SqliteDatabase,
    private readonly layout: SqlitePerUserLayout<T, Row>,
  ) {
    const { table } = layout;
    const columns = layout.columns.join(', ');
    this.selectOne = db.prepare<[string, string], Row>(`SELECT ${columns} FROM ${table} WHERE domain = ? AND username = ?`);
    this.selectDomain = db.prepare<[string], Row>(`SELECT ${columns} FROM ${table} WHERE domain = ? ORDER BY username`);
    this.selectAll = db.prepare<[], Row>(`SELECT ${columns} FROM ${table} ORDER BY domain, username`);
    this.upsert = db.prepare<unknown[]>(`INSERT OR REPLACE INTO ${table} (${columns}) VALUES (${layout.columns.map(() => '?').join(', ')})`);
    this.deleteOne = db.prepare<[string, string]>(`DELETE FROM ${table} WHERE domain = ? AND username = ?`);
  }

  async get(username: string, domain: string): Promise<T | undefined> {
    const row = this.selectOne.get(canonicalDomain(domain), username);
    return row && this.layout.fromRow(row);
  }

  async put(record: T): Promise<void> {
    this.upsert.run(...this.layout.toRow(this.layout.accept(record)));
  }

  async remove(username: string, domain: string): Promise<boolean> {
    return this.deleteOne.run(canonicalDomain(domain), username).changes > 0;
  }

  /** All records, or those of one domain, ordered by domain then username. */
  async list(domain?: string): Promise<T[]> {
    const rows = domain === undefined ? this.selectAll.all() : this.selectDomain.all(canonicalDomain(domain));
    return rows.map((r) => this.layout.fromRow(r));
  }

  async close(): Promise<void> {}
}
