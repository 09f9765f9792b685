/**
 * No registration is lost on restart: the embedded SQLite store (restart keeps unexpired bindings, drops expired ones)
 * and the Redis store shared by two sipway nodes (any node sees any AOR; a node restart loses nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../src/util/clock.js';
import { computeHa1 } from '../../src/auth/digest.js';
import { startTestServer, UdpClient, type TestServer } from '../helpers/server.js';
import { register, registerBytes, challengeOf, boundContacts } from '../helpers/register.js';
import { buildAuthorization } from '../../src/auth/digest.js';
import { startRedisServer } from '../store/redis-server.js';
import { skipWithout } from '../helpers/process.js';

const DOMAIN = 'sipway.test';

test('SQLite store: a restart keeps unexpired bindings and drops expired ones', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-restart-'));
  const clock = new FakeClock(Date.UTC(2026, 10, 23, 12, 0, 0));
  const client = new UdpClient();
  await client.bind();
  const config = { domains: [DOMAIN], data, auth: { register: false } };
  let ts: TestServer | undefined = await startTestServer(config, { clock });
  try {
    const short = await register(client, ts.port, { user: 'carol', domain: DOMAIN, contact: 'sip:carol@192.0.2.1', expires: 60, callId: 'p1' });
    assert.equal(short.res.status, 200);
    const long = await register(client, ts.port, { user: 'carol', domain: DOMAIN, contact: 'sip:carol@192.0.2.2', expires: 3600, callId: 'p2' });
    assert.equal(long.res.status, 200);
    assert.equal(long.res.contacts.length, 2);
    await ts.server.stop(); // the data dir stays
    clock.advance(120_000);
    ts = await startTestServer(config, { clock });
    const after = await ts.server.registrar.lookup(`sip:carol@${DOMAIN}`);
    assert.deepEqual(after.targets.map((t) => t.binding.contact), ['sip:carol@192.0.2.2']);
    assert.equal(after.targets[0]!.binding.expiresAt, Date.UTC(2026, 10, 23, 13, 0, 0), 'expiry kept to the ms');
    const query = await register(client, ts.port, { user: 'carol', domain: DOMAIN, callId: 'p3' });
    assert.equal(boundContacts(query.res).get('sip:carol@192.0.2.2'), 3600 - 120);
  } finally {
    client.close();
    await ts?.server.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test('Redis store: two sipway nodes share users, nonces and bindings; a node restart loses nothing', { timeout: 60000, skip: skipWithout('redis-server') }, async () => {
  const redis = await startRedisServer();
  const client = new UdpClient();
  await client.bind();
  const config = { domains: [DOMAIN], store: redis.url, auth: { secret: 'cluster-shared-nonce-secret' } };
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  try {
    a = await startTestServer({ ...config, nodeId: 'node-a' });
    b = await startTestServer({ ...config, nodeId: 'node-b' });
    // A user provisioned through node A authenticates on node B.
    await a.server.subscribers.put({ username: 'dave', domain: DOMAIN, ha1Md5: computeHa1('dave', DOMAIN, 'pw', 'MD5'), ha1Sha256: computeHa1('dave', DOMAIN, 'pw', 'SHA-256'), groups: [], createdAt: Date.now() });
    const viaA = await register(client, a.port, { user: 'dave', domain: DOMAIN, password: 'pw', contact: 'sip:dave@192.0.2.1', expires: 600, callId: 'r1' });
    assert.equal(viaA.res.status, 200);
    const seenOnB = await b.server.registrar.lookup(`sip:dave@${DOMAIN}`);
    assert.deepEqual(seenOnB.targets.map((t) => [t.binding.contact, t.binding.node]), [['sip:dave@192.0.2.1', 'node-a']]);
    // A nonce issued by A is honoured by B (shared secret): challenge from A, answer to B.
    const first = await client.request(registerBytes(client, { user: 'dave', domain: DOMAIN, contact: 'sip:dave@192.0.2.2', expires: 600, callId: 'r2' }), a.port);
    const authorization = buildAuthorization({ challenge: challengeOf(first!), username: 'dave', password: 'pw', method: 'REGISTER', uri: `sip:${DOMAIN}` });
    const viaB = await client.request(registerBytes(client, { user: 'dave', domain: DOMAIN, contact: 'sip:dave@192.0.2.2', expires: 600, callId: 'r2', cseq: 2, authorization }), b.port);
    assert.equal(viaB?.status, 200);
    assert.equal(viaB.contacts.length, 2, "B's 200 lists A's binding too");
    // Restart node A: nothing is lost, it still sees both bindings.
    await a.server.stop();
    a = await startTestServer({ ...config, nodeId: 'node-a' });
    const afterRestart = await a.server.registrar.lookup(`sip:dave@${DOMAIN}`);
    assert.deepEqual(afterRestart.targets.map((t) => t.binding.contact).sort(), ['sip:dave@192.0.2.1', 'sip:dave@192.0.2.2']);
  } finally {
    client.close();
    await a?.stop();
    await b?.stop();
    await redis.stop();
  }
});
