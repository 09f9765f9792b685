import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { MemoryPresenceStateStore, RedisPresenceStateStore, SqlitePresenceStateStore, type PresenceStateStore, type StoredPublication } from '../../src/store/index.js';
import { openDatabase } from '../../src/store/sqlite.js';
import { randomToken } from '../../src/util/ids.js';
import { skipWithout } from '../helpers/process.js';
import { startRedisServer, type RedisServer } from './redis-server.js';

const pub = (etag: string, at: number, expiresAt: number, body = `<doc ${etag}/>`): StoredPublication => ({
  event: 'presence',
  resource: 'sip:bob@example.com',
  etag,
  contentType: 'application/pidf+xml',
  body,
  at,
  expiresAt,
});

/** The contract every backend keeps; `open` gives two handles on one store (two workers or two nodes). */
function presenceStateSuite(name: string, open: () => Promise<{ a: PresenceStateStore; b: PresenceStateStore; close: () => Promise<void> }>): void {
  describe(`PresenceStateStore contract: ${name}`, () => {
    it('publications: add, list live ones oldest first, replace a tag atomically (a spent tag is refused), remove', async () => {
      const { a, b, close } = await open();
      try {
        assert.equal(await a.putPublication(pub('t1', 10, 1000)), true);
        assert.equal(await a.putPublication(pub('t2', 20, 500)), true);
        assert.deepEqual((await b.publications('presence', 'sip:bob@example.com', 100)).map((p) => p.etag), ['t1', 't2'], 'the other handle sees both');
        assert.deepEqual((await b.publications('presence', 'sip:bob@example.com', 600)).map((p) => p.etag), ['t1'], 'an expired one is not live');
        // Two workers refresh t1 at once: one wins, the other is told its tag is spent (412).
        const [x, y] = await Promise.all([a.putPublication(pub('t3', 10, 2000), 't1'), b.putPublication(pub('t4', 10, 2000), 't1')]);
        assert.deepEqual([x, y].sort(), [false, true]);
        const live = (await a.publications('presence', 'sip:bob@example.com', 100)).map((p) => p.etag);
        assert.equal(live.length, 2, `one version left, not two: ${live.join(',')}`);
        assert.ok(!live.includes('t1'));
        assert.equal(await b.removePublication('presence', 'sip:bob@example.com', 't2'), true);
        assert.equal(await a.removePublication('presence', 'sip:bob@example.com', 't2'), false, 'removed once');
        assert.deepEqual(await a.publications('presence', 'sip:nobody@example.com', 0), []);
      } finally {
        await close();
      }
    });

    it('the sweep removes expired publications once and names what changed', async () => {
      const { a, b, close } = await open();
      try {
        await a.putPublication(pub('e1', 1, 50));
        await a.putPublication({ ...pub('e2', 1, 50), resource: 'sip:carol@example.com' });
        await a.putPublication(pub('keep', 1, 5000));
        const first = await a.removeExpiredPublications(100);
        assert.deepEqual(first.map((c) => c.resource).sort(), ['sip:bob@example.com', 'sip:carol@example.com']);
        assert.deepEqual(await b.removeExpiredPublications(100), [], 'the other handle finds nothing left to announce');
        assert.deepEqual((await a.publications('presence', 'sip:bob@example.com', 100)).map((p) => p.etag), ['keep']);
      } finally {
        await close();
      }
    });

    it('subscriptions: saved, replaced by key, removed, and expired ones left out', async () => {
      const { a, b, close } = await open();
      try {
        await a.saveSubscription({ key: 'k1', callId: 'c1', expiresAt: 1000, data: '{"v":1}' });
        await a.saveSubscription({ key: 'k1', callId: 'c1', expiresAt: 2000, data: '{"v":2}' });
        await a.saveSubscription({ key: 'k2', callId: 'c2', expiresAt: 50, data: '{}' });
        const live = await b.subscriptions(100);
        assert.deepEqual(live, [{ key: 'k1', callId: 'c1', expiresAt: 2000, data: '{"v":2}' }]);
        await b.removeSubscription('k1');
        assert.deepEqual(await a.subscriptions(100), []);
      } finally {
        await close();
      }
    });
  });
}

presenceStateSuite('memory', async () => {
  const store = new MemoryPresenceStateStore();
  return { a: store, b: store, close: async () => undefined };
});

presenceStateSuite('sqlite (two handles on one file, as two workers)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipway-presence-store-'));
  const dbA = openDatabase(dir);
  const dbB = openDatabase(dir);
  return {
    a: new SqlitePresenceStateStore(dbA),
    b: new SqlitePresenceStateStore(dbB),
    close: async () => {
      dbA.close();
      dbB.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('Redis presence state on a redis-server of its own', { skip: skipWithout('redis-server') }, () => {
  let server: RedisServer;
  let nodeA: Redis;
  let nodeB: Redis;
  before(async () => {
    server = await startRedisServer();
    nodeA = new Redis(server.url);
    nodeB = new Redis(server.url);
  });
  after(async () => {
    await Promise.all([nodeA?.quit(), nodeB?.quit()]);
    await server?.stop();
  });
  presenceStateSuite('redis (two connections, as two nodes)', async () => {
    const prefix = `test-${randomToken(8)}:`;
    return { a: new RedisPresenceStateStore(nodeA, { prefix }), b: new RedisPresenceStateStore(nodeB, { prefix }), close: async () => undefined };
  });
});
