import type { Clock } from '../util/clock.js';
import { type Binding, bindingKey, checkBinding } from './binding.js';
import { BindingIndex } from './binding-index.js';
import { type LocationStore, type LocationStoreOptions, SweepTimer, acceptNext } from './location-store.js';
import { parseRecord } from './record.js';
import type { SqliteDatabase } from './sqlite.js';

interface Row {
  key: string;
  expiresAt: number;
  json: string;
}

/**
 * Bindings that survive a restart: every write goes through to SQLite in a transaction, and lookups are served
 * from an in-memory index loaded when the store opens. Single process per database (see `openDatabase`).
 */
export class SqliteLocationStore implements LocationStore {
  private readonly index = new BindingIndex();
  private readonly sweeper: SweepTimer;
  private readonly writeAor: (aor: string, rows: readonly Row[]) => void;
  private readonly deleteExpired: (now: number) => void;

  constructor(
    db: SqliteDatabase,
    private readonly clock: Clock,
    options: LocationStoreOptions = {},
  ) {
    const deleteAor = db.prepare<[string]>('DELETE FROM bindings WHERE aor = ?');
    const insert = db.prepare<[string, string, number, string]>(
      'INSERT INTO bindings (aor, binding_key, expires_at, binding) VALUES (?, ?, ?, ?)',
    );
    const deleteExpired = db.prepare<[number]>('DELETE FROM bindings WHERE expires_at <= ?');
    // The AOR's whole set is rewritten: it is a handful of rows and this keeps the table equal to the index.
    this.writeAor = db.transaction((aor: string, rows: readonly Row[]) => {
      deleteAor.run(aor);
      for (const r of rows) insert.run(aor, r.key, r.expiresAt, r.json);
    });
    this.deleteExpired = (now) => deleteExpired.run(now);
    this.load(db);
    this.sweeper = new SweepTimer(clock, () => this.sweepNow(), options);
  }

  /** Restart persistence: what expired while sipway was down is dropped, everything else is served again. */
  private load(db: SqliteDatabase): void {
    const now = this.clock.now();
    this.deleteExpired(now);
    const rows = db.prepare<[], { aor: string; binding: string }>('SELECT aor, binding FROM bindings ORDER BY aor').all();
    let aor: string | undefined;
    let group: Binding[] = [];
    for (const row of rows) {
      if (row.aor !== aor) {
        if (aor !== undefined) this.index.replace(aor, group);
        aor = row.aor;
        group = [];
      }
      group.push(parseRecord<Binding>(row.binding, `in table bindings for ${row.aor}`, checkBinding));
    }
    if (aor !== undefined) this.index.replace(aor, group);
  }

  async lookup(aor: string): Promise<Binding[]> {
    return this.index.live(aor, this.clock.now());
  }

  async modify<T>(aor: string, mutate: (current: Binding[]) => { next: Binding[]; result: T }): Promise<T> {
    // Read, mutate, write and index update run without yielding: atomic within the process.
    const now = this.clock.now();
    const { next, result } = mutate(this.index.live(aor, now));
    const rows = acceptNext(aor, next, now).map((b) => ({
      key: bindingKey(b),
      expiresAt: b.expiresAt,
      json: JSON.stringify(b),
    }));
    this.writeAor(aor, rows);
    // Indexed from the JSON just written: fresh flat strings that retain nothing of the parsed REGISTER.
    this.index.replace(
      aor,
      rows.map((r) => JSON.parse(r.json) as Binding),
    );
    return result;
  }

  async removeAor(aor: string): Promise<void> {
    this.writeAor(aor, []);
    this.index.replace(aor, []);
  }

  async listAors(): Promise<string[]> {
    return this.index.aors(this.clock.now());
  }

  async count(): Promise<number> {
    return this.index.count(this.clock.now());
  }

  async sweep(): Promise<number> {
    return this.sweepNow();
  }

  private sweepNow(): number {
    const now = this.clock.now();
    this.deleteExpired(now);
    return this.index.sweep(now);
  }

  async close(): Promise<void> {
    await this.sweeper.stop();
  }
}
