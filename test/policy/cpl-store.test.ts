import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { loadCplScript, putCplScript } from '../../src/policy/cpl/scripts.js';
import {
  type CplScriptRecord,
  type CplStore,
  InvalidCplRecordError,
  MAX_CPL_SCRIPT_BYTES,
  MemoryCplStore,
  RedisCplStore,
  SqliteCplStore,
} from '../../src/store/cpl-store.js';
import { openStores } from '../../src/store/index.js';
import { CorruptRecordError } from '../../src/store/record.js';
import { openDatabase } from '../../src/store/sqlite.js';
import { FakeClock } from '../../src/util/clock.js';
import { randomToken } from '../../src/util/ids.js';
import { startRedisServer, type RedisServer } from '../store/redis-server.js';
import { skipWithout } from '../helpers/process.js';

const SCRIPT = '<cpl xmlns="urn:ietf:params:xml:ns:cpl"><incoming><reject status="busy"/></incoming></cpl>';

function record(username: string, domain: string, overrides: Partial<CplScriptRecord> = {}): CplScriptRecord {
  return { username, domain, script: SCRIPT, updatedAt: 1_700_000_000_000, ...overrides };
}

/** The behaviour every backend shares; `open` gives a fresh, empty store. */
function cplStoreSuite(name: string, open: () => Promise<{ store: CplStore; close(): Promise<void> }>): void {
  describe(`CplStore contract: ${name}`, () => {
    async function withStore(fn: (store: CplStore) => Promise<void>): Promise<void> {
      const opened = await open();
      try {
        await fn(opened.store);
      } finally {
        await opened.close();
      }
    }

    it('stores, replaces and returns a user\'s script; the domain is case-insensitive, the user is not', () =>
      withStore(async (store) => {
        assert.equal(await store.get('alice', 'example.com'), undefined);
        await store.put(record('alice', 'Example.COM'));
        assert.deepEqual(await store.get('alice', 'EXAMPLE.com'), record('alice', 'example.com'));
        assert.equal(await store.get('Alice', 'example.com'), undefined);
        await store.put(record('alice', 'example.com', { script: '<cpl xmlns="urn:ietf:params:xml:ns:cpl"/>', updatedAt: 1_700_000_000_001 }));
        assert.equal((await store.get('alice', 'example.com'))?.updatedAt, 1_700_000_000_001);
      }));

    it('lists all scripts or a domain\'s, ordered by domain then user', () =>
      withStore(async (store) => {
        for (const [u, d] of [['bob', 'b.example'], ['carol', 'a.example'], ['alice', 'b.example']] as const) await store.put(record(u, d));
        assert.deepEqual((await store.list()).map((r) => `${r.username}@${r.domain}`), ['carol@a.example', 'alice@b.example', 'bob@b.example']);
        assert.deepEqual((await store.list('B.example')).map((r) => r.username), ['alice', 'bob']);
        assert.deepEqual(await store.list('none.example'), []);
      }));

    it('removes a script and says whether there was one', () =>
      withStore(async (store) => {
        await store.put(record('alice', 'example.com'));
        assert.equal(await store.remove('alice', 'EXAMPLE.COM'), true);
        assert.equal(await store.remove('alice', 'example.com'), false);
        assert.equal(await store.get('alice', 'example.com'), undefined);
        assert.deepEqual(await store.list(), []);
      }));

    it('refuses malformed and oversized records', () =>
      withStore(async (store) => {
        await assert.rejects(store.put(record('', 'example.com')), InvalidCplRecordError);
        await assert.rejects(store.put(record('alice', 'example.com', { updatedAt: 1.5 })), /updatedAt/);
        await assert.rejects(store.put(record('alice', 'example.com', { script: 'x'.repeat(MAX_CPL_SCRIPT_BYTES + 1) })), /larger than/);
        assert.deepEqual(await store.list(), []);
      }));
  });
}

cplStoreSuite('memory', async () => {
  const store = new MemoryCplStore();
  return { store, close: () => store.close() };
});

cplStoreSuite('sqlite', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cpl-'));
  const db = openDatabase(dir);
  const store = new SqliteCplStore(db);
  return {
    store,
    close: async () => {
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('CplStore: redis', { skip: skipWithout('redis-server') }, () => {
  let server: RedisServer;
  let redis: Redis;
  before(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
  });
  after(async () => {
    await redis?.quit();
    await server?.stop();
  });

  cplStoreSuite('redis', async () => {
    const store = new RedisCplStore(redis, { prefix: `test-${randomToken(8)}:` });
    return { store, close: () => store.close() };
  });

  it('reports a stored value that does not decode', async () => {
    const prefix = `test-${randomToken(8)}:`;
    await redis.hset(`${prefix}cpl:example.com`, 'alice', '{"username":"alice"}');
    await assert.rejects(new RedisCplStore(redis, { prefix }).get('alice', 'example.com'), CorruptRecordError);
  });

  it('is shared through openStores({ redisUrl }) like the subscribers', async () => {
    const prefix = `test-${randomToken(8)}:`;
    const a = await openStores({ redisUrl: server.url, prefix }, new FakeClock());
    const b = await openStores({ redisUrl: server.url, prefix }, new FakeClock());
    try {
      await a.cpl.put(record('alice', 'example.com'));
      assert.equal((await b.cpl.get('alice', 'example.com'))?.script, SCRIPT);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('CPL scripts in the sipway database', () => {
  it('survive a restart (openStores({ dataDir }))', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cpl-'));
    try {
      let stores = await openStores({ dataDir: dir }, new FakeClock());
      await stores.cpl.put(record('alice', 'example.com'));
      await stores.close();
      stores = await openStores({ dataDir: dir }, new FakeClock());
      assert.deepEqual(await stores.cpl.list(), [record('alice', 'example.com')]);
      await stores.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('putCplScript stores only scripts that validate; loadCplScript parses what is stored', async () => {
    const store = new MemoryCplStore();
    const alice = { username: 'alice', domain: 'example.com' };
    const bad = await putCplScript(store, alice, '<cpl xmlns="urn:ietf:params:xml:ns:cpl"><incoming><forward/></incoming></cpl>', 5);
    assert.equal(bad.ok, false);
    assert.equal(await store.get('alice', 'example.com'), undefined);
    assert.equal(await loadCplScript(store, alice), undefined);
    const good = await putCplScript(store, alice, SCRIPT, 7);
    assert.ok(good.ok);
    assert.equal((await store.get('alice', 'example.com'))?.updatedAt, 7);
    const loaded = await loadCplScript(store, alice);
    assert.ok(loaded?.ok);
    assert.equal(loaded.script.incoming?.kind, 'reject');
    // A stored script that no longer validates comes back with its errors.
    await store.put(record('alice', 'example.com', { script: '<cpl/>' }));
    assert.equal((await loadCplScript(store, alice))?.ok, false);
  });
});
