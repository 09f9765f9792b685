import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { openStores } from '../../src/store/index.js';
import { CorruptRecordError } from '../../src/store/record.js';
import { LocationContentionError, RedisLocationStore } from '../../src/store/redis-location-store.js';
import { RedisSubscriberStore } from '../../src/store/redis-subscriber-store.js';
import { FakeClock } from '../../src/util/clock.js';
import { randomToken } from '../../src/util/ids.js';
import { UnavailableError } from '../../src/util/errors.js';
import { startRedisServer, type RedisServer } from './redis-server.js';
import { skipWithout } from '../helpers/process.js';
import { binding, locationStoreSuite, subscriber, subscriberStoreSuite, upsert } from './suites.js';

describe('Redis stores on a redis-server of their own', { skip: skipWithout('redis-server') }, () => {
  let server: RedisServer;
  /** Two connections stand for two sipway nodes. */
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

  /** Every store gets its own key space, so tests never see each other's data. */
  function freshPrefix(): string {
    return `test-${randomToken(8)}:`;
  }

  locationStoreSuite('redis', async (clock) => {
    const store = new RedisLocationStore(nodeA, clock, { prefix: freshPrefix() });
    return { store, close: () => store.close() };
  });

  subscriberStoreSuite('redis', async () => {
    const store = new RedisSubscriberStore(nodeA, { prefix: freshPrefix() });
    return { store, close: () => store.close() };
  });

  const ALICE = 'sip:alice@example.com';

  describe('RedisLocationStore', () => {
    function twoNodes(clock: FakeClock, maxAttempts?: number): [RedisLocationStore, RedisLocationStore, string] {
      const prefix = freshPrefix();
      return [
        new RedisLocationStore(nodeA, clock, { prefix, maxAttempts }),
        new RedisLocationStore(nodeB, clock, { prefix, maxAttempts }),
        prefix,
      ];
    }

    it('two nodes share bindings', async () => {
      const clock = new FakeClock(Date.now());
      const [a, b] = twoNodes(clock);
      const alice = binding(ALICE, 1, clock.now(), { node: 'a' });
      await upsert(a, alice);
      assert.deepEqual(await b.lookup(ALICE), [alice]);
      assert.deepEqual(await b.listAors(), [ALICE]);
      await b.removeAor(ALICE);
      assert.deepEqual(await a.lookup(ALICE), []);
      await Promise.all([a.close(), b.close()]);
    });

    it('concurrent modifies of one AOR from two nodes lose no update', async () => {
      const clock = new FakeClock(Date.now());
      const [a, b] = twoNodes(clock);
      let mutations = 0;
      const add = (store: RedisLocationStore, n: number) =>
        store.modify(ALICE, (current) => {
          mutations++;
          return { next: [...current, binding(ALICE, n, clock.now())], result: undefined };
        });
      await Promise.all(Array.from({ length: 40 }, (_, n) => add(n % 2 === 0 ? a : b, n)));
      const contacts = (await a.lookup(ALICE)).map((x) => x.contact).sort();
      assert.deepEqual(contacts, Array.from({ length: 40 }, (_, n) => binding(ALICE, n, 0).contact).sort());
      assert.ok(mutations >= 40);
      await Promise.all([a.close(), b.close()]);
    });

    it('gives up with LocationContentionError when every attempt loses the race', async () => {
      const clock = new FakeClock(Date.now());
      const prefix = freshPrefix();
      const store = new RedisLocationStore(nodeA, clock, { prefix, maxAttempts: 3 });
      let attempts = 0;
      await assert.rejects(
        store.modify(ALICE, (current) => {
          attempts++;
          // Someone else writes the AOR between this read and the compare-and-set, every time. Sent on the same
          // connection, the write is ordered before the store's compare-and-set.
          void nodeA.set(`${prefix}aor:${ALICE}`, JSON.stringify([binding(ALICE, 100 + attempts, clock.now())]));
          return { next: [...current, binding(ALICE, 1, clock.now())], result: undefined };
        }),
        LocationContentionError,
      );
      assert.equal(attempts, 3);
      assert.deepEqual(
        (await store.lookup(ALICE)).map((x) => x.contact),
        [binding(ALICE, 103, 0).contact],
      );
      await store.close();
    });

    it('stores one JSON key per AOR whose TTL follows the latest expiry, and an AOR set', async () => {
      const clock = new FakeClock(Date.now());
      const prefix = freshPrefix();
      const store = new RedisLocationStore(nodeA, clock, { prefix });
      const key = `${prefix}aor:${ALICE}`;
      await upsert(store, binding(ALICE, 1, clock.now(), { expiresAt: clock.now() + 60_000 }));
      let pttl = await nodeA.pttl(key);
      assert.ok(pttl > 50_000 && pttl <= 60_000, `PTTL ${pttl}`);
      await upsert(store, binding(ALICE, 2, clock.now(), { expiresAt: clock.now() + 3_600_000 }));
      pttl = await nodeA.pttl(key);
      assert.ok(pttl > 3_500_000 && pttl <= 3_600_000, `PTTL ${pttl}`);
      const stored = JSON.parse((await nodeA.get(key))!) as unknown[];
      assert.equal(stored.length, 2);
      assert.deepEqual(await nodeA.smembers(`${prefix}aors`), [ALICE]);
      await store.modify(ALICE, () => ({ next: [], result: undefined }));
      assert.equal(await nodeA.exists(key), 0);
      assert.deepEqual(await nodeA.smembers(`${prefix}aors`), []);
      await store.close();
    });

    it('the sweep drops AORs whose key Redis has expired, on a timer or on demand', async () => {
      const clock = new FakeClock(Date.now());
      const prefix = freshPrefix();
      const store = new RedisLocationStore(nodeA, clock, { prefix, sweepIntervalMs: 30_000 });
      for (const n of [1, 2, 3]) await upsert(store, binding(`sip:u${n}@example.com`, n, clock.now()));
      // Deleting the key is what Redis does when its TTL runs out.
      await nodeA.del(`${prefix}aor:sip:u1@example.com`);
      assert.equal(await store.sweep(), 1);
      assert.deepEqual((await nodeA.smembers(`${prefix}aors`)).sort(), ['sip:u2@example.com', 'sip:u3@example.com']);

      await nodeA.del(`${prefix}aor:sip:u2@example.com`);
      clock.advance(30_000);
      await store.close(); // waits for the sweep the timer started
      assert.deepEqual(await nodeA.smembers(`${prefix}aors`), ['sip:u3@example.com']);
    });

    it('reports a record it cannot decode instead of crashing', async () => {
      const clock = new FakeClock(Date.now());
      const prefix = freshPrefix();
      const store = new RedisLocationStore(nodeA, clock, { prefix });
      await nodeA.set(`${prefix}aor:${ALICE}`, '{"not": "an array"}');
      await assert.rejects(store.lookup(ALICE), CorruptRecordError);
      await nodeA.set(`${prefix}aor:${ALICE}`, 'garbage');
      await assert.rejects(store.lookup(ALICE), /corrupt record at test-.*aor:sip:alice@example\.com/);
      await store.close();
    });
  });

  describe('RedisSubscriberStore', () => {
    it('shares subscribers between nodes in a hash per domain', async () => {
      const prefix = freshPrefix();
      const a = new RedisSubscriberStore(nodeA, { prefix });
      const b = new RedisSubscriberStore(nodeB, { prefix });
      await a.put(subscriber('alice', 'Example.com'));
      assert.deepEqual(await b.get('alice', 'example.COM'), subscriber('alice', 'example.com'));
      assert.deepEqual(await nodeA.hkeys(`${prefix}subscribers:example.com`), ['alice']);
      assert.deepEqual(await nodeA.smembers(`${prefix}subscriber-domains`), ['example.com']);
      assert.equal(await b.remove('alice', 'example.com'), true);
      assert.deepEqual(await nodeA.smembers(`${prefix}subscriber-domains`), [], 'an emptied domain leaves the set');
    });
  });

  describe('openStores({ redisUrl })', () => {
    it('connects, works and closes its connection', async () => {
      const clock = new FakeClock(Date.now());
      const stores = await openStores({ redisUrl: server.url, prefix: freshPrefix() }, clock);
      await stores.subscribers.put(subscriber('alice', 'example.com'));
      await upsert(stores.location, binding(ALICE, 1, clock.now()));
      assert.equal((await stores.location.lookup(ALICE)).length, 1);
      assert.ok(await stores.subscribers.get('alice', 'example.com'));
      await stores.close();
      assert.equal(clock.pending, 0);
    });

    it('rejects with an UnavailableError naming redisUrl when Redis is unreachable', async () => {
      const port = await closedPort();
      await assert.rejects(
        openStores({ redisUrl: `redis://:hunter2@127.0.0.1:${port}` }, new FakeClock()),
        (err: unknown) =>
          err instanceof UnavailableError &&
          /^redisUrl: cannot connect to redis:\/\/:\*\*\*@127\.0\.0\.1:\d+.*ECONNREFUSED/.test(err.message) &&
          !err.message.includes('hunter2'),
      );
    });
  });
});

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
