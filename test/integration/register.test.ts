/**
 * The registrar over real UDP sockets with digest authentication (RFC 3261 §10.3, RFC 7616/8760), users created
 * in the store the server uses.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildAuthorization } from '../../src/auth/digest.js';
import { computeHa1 } from '../../src/auth/digest.js';
import { serialize } from '../../src/message/index.js';
import { startTestServer, UdpClient, type TestServer } from '../helpers/server.js';
import { register, registerBytes, challengeOf, boundContacts } from '../helpers/register.js';

const DOMAIN = 'sipway.test';
let ts: TestServer;
let client: UdpClient;

async function addUser(server: TestServer, user: string, password: string, groups: string[] = []): Promise<void> {
  await server.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, password, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, password, 'SHA-256'), groups, createdAt: Date.now() });
}

before(async () => {
  ts = await startTestServer({ domains: [DOMAIN], auth: { nonceLifetimeMs: 1000, throttle: { maxFailuresPerSource: 1000, maxFailuresPerUser: 5, slowdownAfter: 100 } } });
  client = new UdpClient();
  await client.bind();
  await addUser(ts, 'alice', 'wonderland');
  await addUser(ts, 'bob', 'builder');
  await addUser(ts, 'admin', 'root-pw', ['registrar-admin']);
});

after(async () => {
  client.close();
  await ts.stop();
});

test('unauthenticated REGISTER is challenged with MD5 alone by default, realm = domain, qop=auth', async () => {
  const res = await client.request(registerBytes(client, { user: 'alice', domain: DOMAIN, expires: 600, callId: 'c-challenge' }), ts.port);
  assert.equal(res?.status, 401);
  const values = res.headers.getAll('www-authenticate');
  assert.equal(values.length, 1);
  assert.match(values[0]!, /algorithm=MD5/);
  const c = challengeOf(res);
  assert.equal(c.realm, DOMAIN);
  assert.deepEqual(c.qop, ['auth']);
});

test('register, refresh, query, unregister (MD5)', async () => {
  const o = { user: 'alice', domain: DOMAIN, password: 'wonderland', callId: 'c-alice-1', expires: 600 };
  const { res } = await register(client, ts.port, { ...o, cseq: 1 });
  assert.equal(res.status, 200);
  const contact = `sip:alice@127.0.0.1:${client.port}`;
  assert.equal(boundContacts(res).get(contact), 600);
  assert.ok(res.headers.has('date'));
  // Refresh with a shorter interval.
  const refresh = await register(client, ts.port, { ...o, cseq: 3, expires: 300 });
  assert.equal(refresh.res.status, 200);
  assert.equal(boundContacts(refresh.res).get(contact), 300);
  // Query: no Contact lists the bindings.
  const query = await register(client, ts.port, { user: 'alice', domain: DOMAIN, password: 'wonderland', callId: 'c-alice-q', cseq: 1 });
  assert.equal(query.res.status, 200);
  assert.equal(boundContacts(query.res).get(contact), 300);
  const looked = await ts.server.registrar.lookup(`sip:alice@${DOMAIN}`);
  assert.equal(looked.targets.length, 1);
  assert.equal(looked.targets[0]!.binding.source.address, '127.0.0.1');
  assert.equal(looked.targets[0]!.binding.source.port, client.port);
  // Unregister.
  const un = await register(client, ts.port, { ...o, cseq: 5, expires: 0 });
  assert.equal(un.res.status, 200);
  assert.equal(un.res.contacts.length, 0);
  assert.equal((await ts.server.registrar.lookup(`sip:alice@${DOMAIN}`)).targets.length, 0);
});

test('with auth.algorithms SHA-256 then MD5, both are offered in that order and a SHA-256 digest (RFC 8760) registers', async () => {
  const sha = await startTestServer({ domains: [DOMAIN], auth: { algorithms: ['SHA-256', 'MD5'] } });
  try {
    await addUser(sha, 'bob', 'builder');
    const first = await client.request(registerBytes(client, { user: 'bob', domain: DOMAIN, expires: 120, callId: 'c-bob-sha-0' }), sha.port);
    assert.deepEqual(first?.headers.getAll('www-authenticate').map((v) => /algorithm=([\w-]+)/.exec(v)?.[1]), ['SHA-256', 'MD5']);
    const { res, challenge } = await register(client, sha.port, { user: 'bob', domain: DOMAIN, password: 'builder', algorithm: 'SHA-256', callId: 'c-bob-sha', expires: 120 });
    assert.equal(challenge?.algorithm, 'SHA-256');
    assert.equal(res.status, 200);
  } finally {
    await sha.stop();
  }
});

test('multiple contacts with q-values, wildcard removal, 423 with Min-Expires', async () => {
  const base = { user: 'bob', domain: DOMAIN, password: 'builder', callId: 'c-bob-multi' };
  await register(client, ts.port, { ...base, cseq: 1, contact: 'sip:bob@192.0.2.10', contactParams: ';q=0.5', expires: 600 });
  const two = await register(client, ts.port, { ...base, cseq: 3, contact: 'sip:bob@192.0.2.11', contactParams: ';q=0.9', expires: 600 });
  assert.equal(two.res.status, 200);
  assert.ok(two.res.contacts.length >= 2);
  const targets = (await ts.server.registrar.lookup(`sip:bob@${DOMAIN}`)).targets.map((t) => t.binding.contact);
  assert.ok(targets.indexOf('sip:bob@192.0.2.11') < targets.indexOf('sip:bob@192.0.2.10'), 'higher q first');
  const brief = await register(client, ts.port, { ...base, cseq: 5, contact: 'sip:bob@192.0.2.12', expires: 10 });
  assert.equal(brief.res.status, 423);
  assert.equal(brief.res.headers.get('min-expires'), '60');
  const star = await register(client, ts.port, { ...base, cseq: 7, contact: '*', expires: 0 });
  assert.equal(star.res.status, 200);
  assert.equal((await ts.server.registrar.lookup(`sip:bob@${DOMAIN}`)).targets.length, 0);
  const badStar = await register(client, ts.port, { ...base, cseq: 9, contact: '*', expires: 60 });
  assert.equal(badStar.res.status, 400);
});

test('third-party registration only for a user allowed to', async () => {
  const denied = await register(client, ts.port, { user: 'bob', authUser: 'alice', domain: DOMAIN, password: 'wonderland', callId: 'c-3p-1', expires: 60 });
  assert.equal(denied.res.status, 403);
  const allowed = await register(client, ts.port, { user: 'bob', authUser: 'admin', domain: DOMAIN, password: 'root-pw', callId: 'c-3p-2', expires: 60, contact: 'sip:bob@192.0.2.99' });
  assert.equal(allowed.res.status, 200);
  assert.ok(boundContacts(allowed.res).has('sip:bob@192.0.2.99'));
});

test('stale nonce gets a new challenge with stale=true, then succeeds', async () => {
  const o = { user: 'alice', domain: DOMAIN, expires: 60, callId: 'c-stale' };
  const first = await client.request(registerBytes(client, { ...o, cseq: 1 }), ts.port);
  const challenge = challengeOf(first!);
  await new Promise((r) => setTimeout(r, 1100)); // nonceLifetimeMs is 1000 for this server
  const authorization = buildAuthorization({ challenge, username: 'alice', password: 'wonderland', method: 'REGISTER', uri: `sip:${DOMAIN}` });
  const stale = await client.request(registerBytes(client, { ...o, cseq: 2, authorization }), ts.port);
  assert.equal(stale?.status, 401);
  assert.match(stale.headers.get('www-authenticate')!, /stale=true/i);
  const fresh = challengeOf(stale);
  const ok = await client.request(registerBytes(client, { ...o, cseq: 3, authorization: buildAuthorization({ challenge: fresh, username: 'alice', password: 'wonderland', method: 'REGISTER', uri: `sip:${DOMAIN}` }) }), ts.port);
  assert.equal(ok?.status, 200);
});

test('a replayed nonce-count is rejected', async () => {
  const o = { user: 'alice', domain: DOMAIN, expires: 60, callId: 'c-replay' };
  const first = await client.request(registerBytes(client, { ...o, cseq: 1 }), ts.port);
  const challenge = challengeOf(first!);
  const authorization = buildAuthorization({ challenge, username: 'alice', password: 'wonderland', method: 'REGISTER', uri: `sip:${DOMAIN}`, nc: 1, cnonce: 'fixedcnonce' });
  assert.equal((await client.request(registerBytes(client, { ...o, cseq: 2, authorization }), ts.port))?.status, 200);
  // The same credentials (same nc) in a new request: a captured REGISTER being replayed.
  assert.equal((await client.request(registerBytes(client, { ...o, cseq: 3, authorization }), ts.port))?.status, 401);
  const next = buildAuthorization({ challenge, username: 'alice', password: 'wonderland', method: 'REGISTER', uri: `sip:${DOMAIN}`, nc: 2, cnonce: 'fixedcnonce' });
  assert.equal((await client.request(registerBytes(client, { ...o, cseq: 4, authorization: next }), ts.port))?.status, 200);
});

test('unknown user and wrong password get the same answer', async () => {
  const wrong = await register(client, ts.port, { user: 'alice', domain: DOMAIN, password: 'nope', callId: 'c-wrong', expires: 60 });
  const unknown = await register(client, ts.port, { user: 'mallory', domain: DOMAIN, password: 'nope', callId: 'c-unknown', expires: 60 });
  assert.equal(wrong.res.status, 401);
  assert.equal(unknown.res.status, wrong.res.status);
  assert.equal(unknown.res.reason, wrong.res.reason);
  const names = (r: typeof wrong.res): string[] => r.headers.fields.map((f) => f.name).filter((n) => n !== 'to');
  assert.deepEqual(names(unknown.res), names(wrong.res));
});

test('repeated failures for one user end in 403 (blocked)', async () => {
  let last = 0;
  for (let i = 0; i < 7 && last !== 403; i++) {
    const r = await register(client, ts.port, { user: 'bob', domain: DOMAIN, password: `guess${i}`, callId: `c-brute-${i}`, expires: 60 });
    last = r.res.status;
  }
  assert.equal(last, 403);
});

test('a retransmitted REGISTER over UDP gets the same final response again, byte for byte, and binds nothing new', async () => {
  const { challenge } = await register(client, ts.port, { user: 'bob', domain: DOMAIN, password: 'builder', expires: 600, callId: 'c-retransmit' });
  assert.ok(challenge);
  const authorization = buildAuthorization({ challenge, username: 'bob', password: 'builder', method: 'REGISTER', uri: `sip:${DOMAIN}`, nc: 2 });
  const bytes = registerBytes(client, { user: 'bob', domain: DOMAIN, expires: 600, callId: 'c-retransmit', cseq: 3, authorization, contact: `sip:bob-second@127.0.0.1:${client.port}` });
  const first = await client.request(bytes, ts.port);
  assert.equal(first?.status, 200);
  const again = await client.request(bytes, ts.port);
  assert.equal(again?.status, 200);
  assert.ok(serialize(first).equals(serialize(again)), 'the same bytes');
  assert.equal(again.headers.get('cseq'), '3 REGISTER');
});
