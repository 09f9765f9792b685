import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { DEFAULT_GATEWAY_CONFIG, GatewayRouting } from '../../src/policy/gateways.js';
import {
  type Gateway,
  type GatewayStore,
  InvalidGatewayError,
  MemoryGatewayStore,
  RedisGatewayStore,
  type Route,
  SqliteGatewayStore,
} from '../../src/store/gateway-store.js';
import { openGatewayStore } from '../../src/store/index.js';
import { CorruptRecordError } from '../../src/store/record.js';
import { openDatabase } from '../../src/store/sqlite.js';
import { randomToken } from '../../src/util/ids.js';
import { startRedisServer, type RedisServer } from '../store/redis-server.js';
import { skipWithout } from '../helpers/process.js';

const gw1: Gateway = { id: 'gw1', uri: 'sip:gw1.example.net:5060;transport=tcp', group: 'de', enabled: true };
const gw2: Gateway = { id: 'gw2', uri: 'sips:gw2.example.net', group: 'de', weight: 10, enabled: false };
const de: Route = { prefix: '+49', group: 'de', cost: 0.25, description: 'Germany' };
const fallback: Route = { prefix: '', group: 'world', cost: 1 };

/** The behaviour every backend shares; `open` gives a fresh, empty store. */
function gatewayStoreSuite(name: string, open: () => Promise<GatewayStore>): void {
  describe(`GatewayStore contract: ${name}`, () => {
    async function withStore(fn: (store: GatewayStore) => Promise<void>): Promise<void> {
      const store = await open();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    }

    it('starts empty, then keeps gateways by id and routes by prefix and group, in order', () =>
      withStore(async (store) => {
        assert.deepEqual(await store.load(), { gateways: [], routes: [] });
        await store.putGateway(gw2);
        await store.putGateway(gw1);
        await store.putRoute(de);
        await store.putRoute(fallback);
        await store.putRoute({ prefix: '+49', group: 'backup', cost: 2 });
        assert.deepEqual(await store.load(), {
          gateways: [gw1, gw2],
          routes: [fallback, { prefix: '+49', group: 'backup', cost: 2 }, de],
        });
      }));

    it('replaces by key and removes, saying whether there was one', () =>
      withStore(async (store) => {
        await store.putGateway(gw1);
        await store.putGateway({ ...gw1, group: 'at', enabled: false });
        await store.putRoute(de);
        await store.putRoute({ ...de, cost: 3, description: undefined });
        assert.deepEqual(await store.load(), { gateways: [{ ...gw1, group: 'at', enabled: false }], routes: [{ prefix: '+49', group: 'de', cost: 3 }] });
        assert.equal(await store.removeGateway('gw1'), true);
        assert.equal(await store.removeGateway('gw1'), false);
        assert.equal(await store.removeRoute('+49', 'other'), false);
        assert.equal(await store.removeRoute('+49', 'de'), true);
        assert.deepEqual(await store.load(), { gateways: [], routes: [] });
      }));

    it('refuses malformed entries with InvalidGatewayError, storing nothing', () =>
      withStore(async (store) => {
        const bad: unknown[] = [
          { ...gw1, id: '' },
          { ...gw1, uri: 'sip:1234@gw.example.net' },
          { ...gw1, uri: 'http://gw.example.net' },
          { ...gw1, weight: 1.5 },
          { ...gw1, enabled: 'yes' },
        ];
        for (const g of bad) await assert.rejects(store.putGateway(g as Gateway), InvalidGatewayError, JSON.stringify(g));
        for (const r of [{ ...de, prefix: '+4-9' }, { ...de, prefix: '1'.repeat(33) }, { ...de, cost: NaN }, { ...de, group: 'a/b' }]) {
          await assert.rejects(store.putRoute(r), InvalidGatewayError, JSON.stringify(r));
        }
        assert.deepEqual(await store.load(), { gateways: [], routes: [] });
      }));

    it('feeds a GatewayRouting that sees edits on reload', () =>
      withStore(async (store) => {
        const routing = await GatewayRouting.open(DEFAULT_GATEWAY_CONFIG, store);
        assert.deepEqual(routing.dialplan.route('+4930'), []);
        await store.putGateway(gw1);
        await store.putRoute(de);
        await routing.reload();
        assert.deepEqual(routing.dialplan.route('+4930').map((c) => c.requestUri.toString()), ['sip:+4930@gw1.example.net:5060;transport=tcp;user=phone']);
      }));
  });
}

gatewayStoreSuite('memory', async () => new MemoryGatewayStore());

describe('GatewayStore: sqlite', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-gateways-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  gatewayStoreSuite('sqlite', async () => {
    const db = openDatabase(path.join(dir, randomToken(8)));
    return new SqliteGatewayStore(db, () => db.close());
  });

  it('keeps the tables across a restart (openGatewayStore({ dataDir }))', async () => {
    const dataDir = path.join(dir, 'restart');
    let store = await openGatewayStore({ dataDir });
    await store.putGateway(gw2);
    await store.putRoute(de);
    await store.close();
    store = await openGatewayStore({ dataDir });
    assert.deepEqual(await store.load(), { gateways: [gw2], routes: [de] });
    await store.close();
  });
});

describe('GatewayStore: redis', { skip: skipWithout('redis-server') }, () => {
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

  gatewayStoreSuite('redis', async () => new RedisGatewayStore(redis, { prefix: `test-${randomToken(8)}:` }));

  it('reports a stored value that does not decode', async () => {
    const prefix = `test-${randomToken(8)}:`;
    await redis.hset(`${prefix}gateways`, 'gw1', '{"id":"gw1"}');
    await assert.rejects(new RedisGatewayStore(redis, { prefix }).load(), CorruptRecordError);
  });

  it('is shared by nodes through openGatewayStore({ redisUrl })', async () => {
    const prefix = `test-${randomToken(8)}:`;
    const a = await openGatewayStore({ redisUrl: server.url, prefix });
    const b = await openGatewayStore({ redisUrl: server.url, prefix });
    try {
      await a.putGateway(gw1);
      assert.deepEqual((await b.load()).gateways, [gw1]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
