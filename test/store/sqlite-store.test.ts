import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { openStores } from '../../src/store/index.js';
import { CorruptRecordError } from '../../src/store/record.js';
import { DATABASE_FILE, SCHEMA_VERSION, type SqliteDatabase, openDatabase } from '../../src/store/sqlite.js';
import { SqliteLocationStore } from '../../src/store/sqlite-location-store.js';
import { SqliteSubscriberStore } from '../../src/store/sqlite-subscriber-store.js';
import { FakeClock } from '../../src/util/clock.js';
import { UnavailableError } from '../../src/util/errors.js';
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
      (err: unknown) => err instanceof UnavailableError && /dataDir: .*newer than this sipway/.test(err.message),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a file that is not a database with a clear error', () => {
    const dir = tempDir();
    writeFileSync(join(dir, DATABASE_FILE), 'this is not sqlite'.repeat(100));
    assert.throws(
      () => openDatabase(dir),
      (err: unknown) => err instanceof UnavailableError && /dataDir: cannot open .*sipway\.db/.test(err.message),
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

  it('reports a corrupt row when its AOR is read, naming it, and keeps serving the others', async () => {
    const dir = tempDir();
    const db = openDatabase(dir);
    const clock = new FakeClock(Date.now());
    db.prepare('INSERT INTO bindings (aor, binding_key, expires_at, binding) VALUES (?, ?, ?, ?)').run(
      'sip:x@example.com',
      'sip:x@h',
      clock.now() + 60_000,
      '{"aor": "sip:x@example.com"',
    );
    const store = new SqliteLocationStore(db, clock);
    const corrupt = (err: unknown): boolean =>
      err instanceof CorruptRecordError && /sip:x@example\.com/.test(err.message);
    await assert.rejects(store.lookup('sip:x@example.com'), corrupt);
    await assert.rejects(store.modify('sip:x@example.com', () => ({ next: [], result: undefined })), corrupt);
    assert.equal(rowCount(db), 1, 'a modify that could not read the AOR writes nothing');
    await upsert(store, binding('sip:y@example.com', 1, clock.now()));
    assert.equal((await store.lookup('sip:y@example.com')).length, 1);
    // The way out for an operator: drop the AOR, its UAs register again.
    await store.removeAor('sip:x@example.com');
    assert.deepEqual(await store.lookup('sip:x@example.com'), []);
    await store.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('SqliteLocationStore shared by several processes (serve --workers)', () => {
  it('two handles on one data directory see each other\'s writes at once', async () => {
    const dir = tempDir();
    const clock = new FakeClock(Date.now());
    const [dbA, dbB] = [openDatabase(dir), openDatabase(dir)];
    const [a, b] = [new SqliteLocationStore(dbA, clock), new SqliteLocationStore(dbB, clock)];
    const alice = binding('sip:alice@example.com', 1, clock.now(), { expiresAt: clock.now() + 10_000 });
    await upsert(a, alice);
    assert.deepEqual(await b.lookup('sip:alice@example.com'), [alice]);
    assert.equal(await b.count(), 1);
    assert.deepEqual(await b.listAors(), ['sip:alice@example.com']);

    await upsert(b, binding('sip:bob@example.com', 2, clock.now()));
    assert.deepEqual((await a.listAors()).sort(), ['sip:alice@example.com', 'sip:bob@example.com']);
    await b.removeAor('sip:alice@example.com');
    assert.deepEqual(await a.lookup('sip:alice@example.com'), []);
    assert.equal(await a.count(), 1);

    // A modify through one handle starts from what the other wrote, not from a copy of its own.
    await upsert(a, binding('sip:bob@example.com', 3, clock.now()));
    assert.equal((await b.lookup('sip:bob@example.com')).length, 2);
    await Promise.all([a.close(), b.close()]);
    dbA.close();
    dbB.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pages walk every unexpired binding exactly once, in slices, skipping expired and corrupt rows', async () => {
    const dir = tempDir();
    const clock = new FakeClock(Date.now());
    const db = openDatabase(dir);
    const store = new SqliteLocationStore(db, clock);
    const expected = new Set<string>();
    for (let u = 0; u < 37; u++) {
      const aor = `sip:user${u}@example.com`;
      for (let n = 0; n < 3; n++) {
        // Every third user's third binding expires soon: it must not be walked once it has.
        const soon = u % 3 === 0 && n === 2;
        await upsert(store, binding(aor, n, clock.now(), soon ? { expiresAt: clock.now() + 1000 } : {}));
        if (!soon) expected.add(`${aor} ${n}`);
      }
    }
    db.prepare("INSERT INTO bindings (aor, binding_key, expires_at, binding) VALUES ('sip:zz@example.com', 'k', ?, '{oops')").run(clock.now() + 60_000);
    clock.advance(2000);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.page!(cursor, 10);
      assert.ok(page.bindings.length <= 10);
      for (const b of page.bindings) seen.push(`${b.aor} ${/ua(\d+)@/.exec(b.contact)![1]}`);
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined);
    assert.equal(seen.length, expected.size, 'no binding twice, none missing');
    assert.deepEqual(new Set(seen), expected);
    assert.ok(pages >= Math.ceil(expected.size / 10), `walked in slices (${pages} pages)`);
    await assert.rejects(store.page!('not a cursor', 10), /not a location page cursor/);
    await store.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('modifies of one AOR alternating between two handles lose no update', async () => {
    const dir = tempDir();
    const clock = new FakeClock(Date.now());
    const [dbA, dbB] = [openDatabase(dir), openDatabase(dir)];
    const stores = [new SqliteLocationStore(dbA, clock), new SqliteLocationStore(dbB, clock)];
    const aor = 'sip:alice@example.com';
    await Promise.all(Array.from({ length: 200 }, (_, n) => upsert(stores[n % 2]!, binding(aor, n, clock.now()))));
    for (const store of stores) {
      assert.equal((await store.lookup(aor)).length, 200);
      assert.equal(await store.count(), 200);
    }
    await Promise.all(stores.map((s) => s.close()));
    dbA.close();
    dbB.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('worker processes registering on one AOR at the same time lose no update', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const clock = new FakeClock(Date.now());
    // The test process opens first, so the schema exists before the workers start.
    const db = openDatabase(dir);
    const store = new SqliteLocationStore(db, clock);
    const aor = 'sip:alice@example.com';
    const perWorker = 150;
    const workers = ['w1', 'w2'].map((name) => startWorker(dir, aor, name, perWorker));
    try {
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.child.stdin!.write('go\n');
      // This process is a third writer, interleaving with the other two.
      for (let n = 0; n < perWorker; n++) {
        await upsert(store, binding(aor, n, clock.now()));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(workers.map((w) => w.done));
      const all = await store.lookup(aor);
      assert.equal(all.length, 3 * perWorker);
      for (const name of ['w1', 'w2']) assert.equal(all.filter((x) => x.node === name).length, perWorker, name);
      assert.equal(await store.count(), 3 * perWorker);
    } finally {
      for (const w of workers) w.child.kill();
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const WORKER = fileURLToPath(new URL('./sqlite-worker.js', import.meta.url));

/** A worker process; `ready` and `done` resolve when it prints those lines and reject if it exits first. */
function startWorker(dir: string, aor: string, name: string, count: number) {
  const child = spawn(process.execPath, [WORKER, dir, aor, name, String(count)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  // Registered first: the line checks below run after the text is appended.
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close', not 'exit': it comes after the last output has been read.
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const printed = (line: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (stdout.split('\n').includes(line)) resolve();
      };
      child.stdout!.on('data', check);
      void exited.then((code) => {
        check();
        reject(new Error(`worker ${name} exited (${code}) before printing "${line}": ${stderr}`));
      });
    });
  const ready = printed('ready');
  const done = printed('done');
  // Handled here too: a test that fails before awaiting `done` kills the worker in its finally block.
  ready.catch(() => undefined);
  done.catch(() => undefined);
  return { child, ready, done };
}

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
