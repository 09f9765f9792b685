import type { Clock } from '../util/clock.js';
import { type Binding, bindingKey, checkBinding, liveBindings } from './binding.js';
import { type LocationStore, type LocationStoreOptions, SweepTimer, acceptNext } from './location-store.js';
import { parseRecord } from './record.js';
import type { SqliteDatabase } from './sqlite.js';

type Mutate = (current: Binding[]) => { next: Binding[]; result: unknown };

/**
 * Bindings that survive a restart, served straight from SQLite with nothing cached in memory, so the worker
 * processes of one server can share `<dataDir>/sipway.db`: a REGISTER taken by one worker is routed by every
 * other at once. `modify` holds the database write lock from its read to its write, which makes it atomic across
 * those processes too. Corrupt rows are reported (CorruptRecordError naming the AOR) when their AOR is read.
 */
export class SqliteLocationStore implements LocationStore {
  private readonly sweeper: SweepTimer;
  private readonly selectLive: (aor: string, now: number) => string[];
  private readonly modifyLocked: (aor: string, mutate: Mutate) => { result: unknown };
  private readonly deleteAor: (aor: string) => void;
  private readonly selectAors: (now: number) => string[];
  private readonly countLive: (now: number) => number;
  private readonly deleteExpired: (now: number) => number;
  private readonly selectPage: (after: readonly [string, string], now: number, limit: number) => Array<{ aor: string; key: string; binding: string }>;

  constructor(
    db: SqliteDatabase,
    private readonly clock: Clock,
    options: LocationStoreOptions = {},
  ) {
    const selectLive = db.prepare<[string, number], string>(
      'SELECT binding FROM bindings WHERE aor = ? AND expires_at > ?',
    ).pluck();
    const deleteAor = db.prepare<[string]>('DELETE FROM bindings WHERE aor = ?');
    const insert = db.prepare<[string, string, number, string]>(
      'INSERT INTO bindings (aor, binding_key, expires_at, binding) VALUES (?, ?, ?, ?)',
    );
    // The planner scans the table, JSON and all, when (as usual) nearly every row is unexpired; the expiry index
    // holds the AOR too and is a fraction of the size: half the time at 100k bindings.
    const selectAors = db.prepare<[number], string>(
      'SELECT DISTINCT aor FROM bindings INDEXED BY bindings_by_expiry WHERE expires_at > ?',
    ).pluck();
    const countLive = db.prepare<[number], number>('SELECT COUNT(*) FROM bindings WHERE expires_at > ?').pluck();
    const deleteExpired = db.prepare<[number]>('DELETE FROM bindings WHERE expires_at <= ?');
    // Keyset pagination on the primary key: each page is an index range scan, however far the walk has got.
    const selectPage = db.prepare<[string, string, number, number], { aor: string; key: string; binding: string }>(
      'SELECT aor, binding_key AS key, binding FROM bindings WHERE (aor, binding_key) > (?, ?) AND expires_at > ? ORDER BY aor, binding_key LIMIT ?',
    );

    this.selectLive = (aor, now) => selectLive.all(aor, now);
    this.deleteAor = (aor) => void deleteAor.run(aor);
    this.selectAors = (now) => selectAors.all(now);
    this.countLive = (now) => countLive.get(now) ?? 0;
    this.deleteExpired = (now) => deleteExpired.run(now).changes;
    this.selectPage = (after, now, limit) => selectPage.all(after[0], after[1], now, limit);

    const modify = db.transaction((aor: string, mutate: Mutate): { result: unknown } => {
      // Read once the lock is held, so what expired while waiting for another worker's write is not handed on.
      const now = this.clock.now();
      const { next, result } = mutate(this.read(aor, now));
      const live = acceptNext(aor, next, now);
      // The AOR's whole set is rewritten: it is a handful of rows, and this also drops its expired ones.
      deleteAor.run(aor);
      for (const b of live) insert.run(aor, bindingKey(b), b.expiresAt, JSON.stringify(b));
      // Boxed: better-sqlite3 refuses a transaction function that returns a promise, and T may be one.
      return { result };
    });
    // IMMEDIATE takes the write lock before the read. A deferred transaction would read under a shared lock and
    // then fail with SQLITE_BUSY (busy_timeout cannot help a read-to-write upgrade) when another worker wrote first.
    this.modifyLocked = (aor, mutate) => modify.immediate(aor, mutate);

    // What expired while sipway was down goes now rather than at the first sweep.
    this.deleteExpired(clock.now());
    this.sweeper = new SweepTimer(clock, () => this.deleteExpired(this.clock.now()), options);
  }

  /** Fresh objects parsed from the rows, so every caller owns what it gets; best first. */
  private read(aor: string, now: number): Binding[] {
    const bindings = this.selectLive(aor, now).map((json) =>
      parseRecord<Binding>(json, `in table bindings for ${aor}`, checkBinding),
    );
    return liveBindings(bindings, now);
  }

  async page(cursor: string | undefined, limit: number): Promise<{ bindings: Binding[]; cursor: string | undefined }> {
    const after = cursor === undefined ? (['', ''] as const) : decodeCursor(cursor);
    const rows = this.selectPage(after, this.clock.now(), Math.max(1, Math.floor(limit)));
    const bindings: Binding[] = [];
    for (const row of rows) {
      // A corrupt row must not end a walk over everyone else's bindings: it is reported when its AOR is read.
      try {
        bindings.push(parseRecord<Binding>(row.binding, `in table bindings for ${row.aor}`, checkBinding));
      } catch {
        continue;
      }
    }
    const last = rows[rows.length - 1];
    return { bindings, cursor: last && rows.length >= limit ? JSON.stringify([last.aor, last.key]) : undefined };
  }

  async lookup(aor: string): Promise<Binding[]> {
    return this.read(aor, this.clock.now());
  }

  async modify<T>(aor: string, mutate: (current: Binding[]) => { next: Binding[]; result: T }): Promise<T> {
    return this.modifyLocked(aor, mutate).result as T;
  }

  async removeAor(aor: string): Promise<void> {
    this.deleteAor(aor);
  }

  async listAors(): Promise<string[]> {
    return this.selectAors(this.clock.now());
  }

  async count(): Promise<number> {
    return this.countLive(this.clock.now());
  }

  async sweep(): Promise<number> {
    return this.deleteExpired(this.clock.now());
  }

  async close(): Promise<void> {
    await this.sweeper.stop();
  }
}

function decodeCursor(cursor: string): readonly [string, string] {
  try {
    const v: unknown = JSON.parse(cursor);
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    // fall through
  }
  throw new RangeError(`not a location page cursor: ${cursor.slice(0, 40)}`);
}
