import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStores } from '../../src/store/index.js';
import { CorruptRecordError } from '../../src/store/record.js';
import { DATABASE_FILE, SCHEMA_VERSION, type SqliteDatabase, openDatabase } from '../../src/store/sqlite.js';
import { SqliteLocationStore } from '../../src/store/sqlite-location-store.js';
import { SqliteSubscriberStore } from '../../src/store/sqlite-subscriber-store.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { binding, locationStoreSuite, subscriber, subscriberStoreSuite, upsert } from './suites.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sipway-store-'));
}

function rowCount(db: SqliteDatabase): number {
  return (db.prepare('SELECT COUNT(*) AS n FROM bindings').get() as { n: number }).n;
}

locationStoreSuite('sqlite', async (clock) => {
  const dir = tempDir();
  const db = openDatabase(dir);
  const store = new SqliteLocationStore(db, clock);
  return {
    store,
    close: async () => {
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

subscriberStoreSuite('sqlite', async () => {
  const dir = tempDir();
  const db = openDatabase(dir);
  const store = new SqliteSubscriberStore(db);
  return {
    store,
    close: async () => {
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite database', () => {
  it('creates <dataDir>/sipway.db (and the directory) in WAL mode at the current schema version', () => {
    const parent = tempDir();
    const dir = join(parent, 'nested', 'data');
    const db = openDatabase(dir);
    try {
      assert.ok(existsSync(join(dir, DATABASE_FILE)));
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('synchronous', { simple: true }), 1); // NORMAL
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    } finally {
      db.close();
    }
    // Reopening an up-to-date database runs no migration again.
    openDatabase(dir).close();
    rmSync(parent, { recursive: true, force: true });
  });

  it('refuses a database written by a newer sipway, naming the field', () => {
    const dir = tempDir();
    const db = openDatabase(dir);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(
      () => openDatabase(dir),
      (err: unknown) => err instanceof ConfigError && /dataDir: .*newer than this sipway/.test(err.message),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a file that is not a database with a clear error', () => {
    const dir = tempDir();
    writeFileSync(join(dir, DATABASE_FILE), 'this is not sqlite'.repeat(100));
    assert.throws(
      () => openDatabase(dir),
      (err: unknown) => err instanceof ConfigError && /dataDir: cannot open .*sipway\.db/.test(err.message),
    );
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('SqliteLocationStore', () => {
  it('survives a restart: unexpired bindings come back, expired ones are dropped from disk', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    let db = openDatabase(dir);
    let store = new SqliteLocationStore(db, clock);
    const t = clock.now();
    const keep = [
      binding('sip:alice@example.com', 1, t, {
        expiresAt: t + 3_600_000,
        path: ['<sip:edge.example.net;lr>'],
        instanceId: '<urn:uuid:a>',
        regId: 1,
      }),
      binding('sip:alice@example.com', 2, t, { expiresAt: t + 600_000, q: 0.5 }),
      binding('sip:bob@example.com', 3, t, { expiresAt: t + 120_001 }),
    ];
    const lose = [
      binding('sip:alice@example.com', 4, t, { expiresAt: t + 60_000 }),
      binding('sip:carol@example.com', 5, t, { expiresAt: t + 120_000 }),
    ];
    for (const b of [...keep, ...lose]) await upsert(store, b);
    await store.close();
    db.close();

    const later = new FakeClock(t + 120_000);
    db = openDatabase(dir);
    store = new SqliteLocationStore(db, later);
    assert.deepEqual(await store.lookup('sip:alice@example.com'), [keep[0], keep[1]]);
    assert.deepEqual(await store.lookup('sip:bob@example.com'), [keep[2]]);
    assert.deepEqual((await store.listAors()).sort(), ['sip:alice@example.com', 'sip:bob@example.com']);
    assert.equal(rowCount(db), 3, 'expired rows are deleted on open');
    await store.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes through: the table always equals the live set, keyed by binding', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const db = openDatabase(dir);
    const store = new SqliteLocationStore(db, clock);
    const aor = 'sip:alice@example.com';
    await store.modify(aor, () => ({ next: [1, 2, 3].map((n) => binding(aor, n, clock.now())), result: undefined }));
    await store.modify(aor, (current) => ({ next: current.slice(1), result: undefined }));
    const rows = db.prepare('SELECT aor, binding_key FROM bindings').all() as Array<{ aor: string; binding_key: string }>;
    assert.equal(rows.length, 2);
    assert.ok(rows.every((r) => r.aor === aor && r.binding_key.startsWith('sip:ua')));
    await assert.rejects(store.modify(aor, () => ({ next: [{ ...binding(aor, 9, clock.now()), q: 7 }], result: undefined })));
    assert.equal(rowCount(db), 2, 'a refused write leaves the table alone');
    await store.removeAor(aor);
    assert.equal(rowCount(db), 0);
    await store.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the periodic sweep deletes expired rows', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const db = openDatabase(dir);
    const store = new SqliteLocationStore(db, clock, { sweepIntervalMs: 30_000 });
    await upsert(store, binding('sip:a@example.com', 1, clock.now(), { expiresAt: clock.now() + 10_000 }));
    await upsert(store, binding('sip:a@example.com', 2, clock.now(), { expiresAt: clock.now() + 40_000 }));
    clock.advance(29_999);
    assert.equal(rowCount(db), 2, 'expired but not yet swept: reads already skip it');
    assert.equal(await store.count(), 1);
    clock.advance(1);
    assert.equal(rowCount(db), 1);
    clock.advance(30_000);
    assert.equal(rowCount(db), 0);
    assert.equal(await store.sweep(), 0);
    await store.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to load a corrupt row with an error naming it', async () => {
    const dir = tempDir();
    const db = openDatabase(dir);
    db.prepare('INSERT INTO bindings (aor, binding_key, expires_at, binding) VALUES (?, ?, ?, ?)').run(
      'sip:x@example.com',
      'sip:x@h',
      Date.now() + 60_000,
      '{"aor": "sip:x@example.com"',
    );
    assert.throws(() => new SqliteLocationStore(db, new FakeClock(Date.now())), (err: unknown) =>
      err instanceof CorruptRecordError && /sip:x@example\.com/.test(err.message),
    );
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('openStores({ dataDir })', () => {
  it('opens both stores on one database file that keeps subscribers and bindings across restarts', async () => {
    const dir = tempDir();
    const clock = new FakeClock();
    let stores = await openStores({ dataDir: dir }, clock);
    await stores.subscribers.put(subscriber('alice', 'example.com'));
    await upsert(stores.location, binding('sip:alice@example.com', 1, clock.now()));
    await stores.close();
    assert.equal(clock.pending, 0);

    stores = await openStores({ dataDir: dir }, clock);
    assert.deepEqual(await stores.subscribers.get('alice', 'example.com'), subscriber('alice', 'example.com'));
    assert.equal((await stores.location.lookup('sip:alice@example.com')).length, 1);
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
