import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeHa1 } from '../../src/auth/index.js';
import { basicStatuses } from '../../src/presence/index.js';
import { openStores } from '../../src/store/index.js';
import { SystemClock } from '../../src/util/clock.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { UserAgent, type ClientSubscription } from '../../src/ua/index.js';
import { freePort, skipWithout, startCliServer } from '../helpers/process.js';
import { startRedisServer } from '../store/redis-server.js';
import { until } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
const pidf = (basic: string, text: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@${DOMAIN}"><tuple id="bob-phone"><status><basic>${basic}</basic></status><note>${text}</note></tuple></presence>`;

const USERS = ['alice', 'bob', ...Array.from({ length: 6 }, (_, i) => `w${i}`)];
const credentials = (user: string) => ({ username: user, password: `pw-${user}` });
const subscriber = (user: string) => ({
  username: user,
  domain: DOMAIN,
  ha1Md5: computeHa1(user, DOMAIN, `pw-${user}`, 'MD5'),
  ha1Sha256: computeHa1(user, DOMAIN, `pw-${user}`, 'SHA-256'),
  groups: [],
  createdAt: Date.now(),
});

async function server(data: string, port: number): Promise<TestServer> {
  const ts = await startTestServer({ domains: [DOMAIN], data, listen: [`udp:127.0.0.1:${port}`], presence: { notifyIntervalMs: 100 } });
  for (const user of USERS) await ts.server.subscribers.put(subscriber(user));
  return ts;
}

test('RFC 6665 over a restart: a subscription kept in the store goes on in its dialog (full-state NOTIFY at start, higher CSeq), takes later changes and a refresh, and ends by unsubscribe', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-presence-restart-'));
  const port = await freePort();
  let ts = await server(data, port);
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port };
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, credentials: credentials('alice'), proxy });
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: credentials('bob'), proxy });
  try {
    const answer = await alice.subscribe(`sip:bob@${DOMAIN}`, 'presence', { expires: 600 });
    assert.equal(answer.status, 200, answer.reason);
    const sub: ClientSubscription = answer.subscription!;
    await until(() => sub.notifications.length >= 1, 3000);
    assert.deepEqual(basicStatuses(sub.notifications[0]!.body), { 'sipway-registration': 'closed' });
    const seqs: number[] = [];
    const seen = (): number => sub.notifications.length;

    await ts.server.stop();
    ts = await server(data, port);
    // Restored: a NOTIFY with the full state in the same dialog, numbered past any sent before the restart.
    await until(() => seen() >= 2, 3000);
    assert.equal(sub.notifications[1]!.state, 'active');
    assert.deepEqual(basicStatuses(sub.notifications[1]!.body), { 'sipway-registration': 'closed' });
    seqs.push(...sub.notifications.map((n) => n.cseq));
    assert.ok(seqs[1]! > seqs[0]!, `CSeq ${seqs[1]} after ${seqs[0]}`);

    const published = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['Expires', '600']], body: Buffer.from(pidf('open', 'back after the restart')), contentType: 'application/pidf+xml' });
    assert.equal(published.status, 200, published.reason);
    await until(() => /back after the restart/.test(sub.notifications.at(-1)!.body), 3000);

    // The publication is in the store too: a second restart composes it for the restored subscription.
    await ts.server.stop();
    ts = await server(data, port);
    await until(() => seen() >= 4, 3000);
    assert.match(sub.notifications.at(-1)!.body, /back after the restart/);
    assert.equal((await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['SIP-If-Match', published.response!.headers.get('sip-etag')!]] })).status, 200, 'its entity tag is known after the restart');

    assert.equal(await sub.refresh(600), 200, 'a refresh in the restored dialog');
    assert.equal(await sub.unsubscribe(), 200);
    assert.equal((await sub.ended)?.state, 'terminated');
  } finally {
    await alice.stop();
    await bob.stop();
    await ts.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test('serve --workers 2: a publication reaches every watcher exactly once, whichever worker took the PUBLISH or holds the subscription; refreshes of one entity tag work from any worker', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-presence-workers-'));
  const port = await freePort();
  const config = path.join(data, 'config.json');
  writeFileSync(config, JSON.stringify({ presence: { notifyIntervalMs: 200 } }));
  const stores = await openStores({ dataDir: data }, new SystemClock());
  for (const user of USERS) await stores.subscribers.put(subscriber(user));
  await stores.close();
  const srv = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', data, '--config', config, '--workers', '2']);
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port };
  const watchers = await Promise.all(Array.from({ length: 6 }, (_, i) => UserAgent.start({ aor: `sip:w${i}@${DOMAIN}`, credentials: credentials(`w${i}`), proxy })));
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: credentials('bob'), proxy });
  try {
    const subs: ClientSubscription[] = [];
    for (const w of watchers) {
      const answer = await w.subscribe(`sip:bob@${DOMAIN}`, 'presence', { expires: 600 });
      assert.equal(answer.status, 200, answer.reason);
      subs.push(answer.subscription!);
    }
    await until(() => subs.every((s) => s.notifications.length >= 1), 5000);
    // Six Call-IDs over two workers: both hold some (the odds of one holding all six are 1 in 32).
    const published = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['Expires', '600']], body: Buffer.from(pidf('open', 'in a meeting')), contentType: 'application/pidf+xml' });
    assert.equal(published.status, 200, published.reason);
    await until(() => subs.every((s) => /in a meeting/.test(s.notifications.at(-1)!.body)), 5000);
    let etag = published.response!.headers.get('sip-etag')!;
    // Each PUBLISH has its own Call-ID, so the refreshes land on either worker.
    for (let i = 0; i < 6; i++) {
      const refreshed = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['Expires', '600'], ['SIP-If-Match', etag]] });
      assert.equal(refreshed.status, 200, `refresh ${i}: ${refreshed.reason}`);
      etag = refreshed.response!.headers.get('sip-etag')!;
    }
    await new Promise((r) => setTimeout(r, 600));
    for (const [i, s] of subs.entries()) {
      const told = s.notifications.filter((n) => /in a meeting/.test(n.body));
      assert.equal(told.length, 1, `watcher ${i} heard of the publication ${told.length} times`);
      assert.deepEqual(basicStatuses(told[0]!.body), { 'bob-phone': 'open' });
    }
  } finally {
    await Promise.all(watchers.map((w) => w.stop()));
    await bob.stop();
    await srv.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test('two nodes sharing Redis: a PUBLISH taken by one node reaches a watcher subscribed at the other, once; the entity tag refreshes at either', { skip: skipWithout('redis-server') }, async () => {
  const redis = await startRedisServer();
  const nodes: TestServer[] = [];
  const agents: UserAgent[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const ts = await startTestServer({ domains: [DOMAIN], store: redis.url, nodeId: `node${i}`, presence: { notifyIntervalMs: 100 } });
      nodes.push(ts);
    }
    for (const user of USERS) await nodes[0]!.server.subscribers.put(subscriber(user));
    const at = (n: number) => ({ transport: 'udp' as const, address: '127.0.0.1', port: nodes[n]!.port });
    const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, credentials: credentials('alice'), proxy: at(0) });
    const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: credentials('bob'), proxy: at(1) });
    agents.push(alice, bob);
    const answer = await alice.subscribe(`sip:bob@${DOMAIN}`, 'presence', { expires: 600 });
    assert.equal(answer.status, 200, answer.reason);
    const sub = answer.subscription!;
    await until(() => sub.notifications.length >= 1, 3000);
    const published = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['Expires', '600']], body: Buffer.from(pidf('open', 'at node 1')), contentType: 'application/pidf+xml' });
    assert.equal(published.status, 200, published.reason);
    await until(() => /at node 1/.test(sub.notifications.at(-1)!.body), 3000);
    const bobAtNode0 = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: credentials('bob'), proxy: at(0) });
    agents.push(bobAtNode0);
    const refreshed = await bobAtNode0.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['Expires', '600'], ['SIP-If-Match', published.response!.headers.get('sip-etag')!]] });
    assert.equal(refreshed.status, 200, 'the other node knows the entity tag');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sub.notifications.filter((n) => /at node 1/.test(n.body)).length, 1, 'told once');
  } finally {
    for (const a of agents) await a.stop();
    for (const n of nodes) await n.stop();
    await redis.stop();
  }
});
