import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import type { SipRequest } from '../../src/message/index.js';
import { startTestServer } from '../../src/testing/index.js';
import { UserAgent, type RegistrationClient } from '../../src/ua/index.js';
import { until } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';

test('RFC 3428 store and forward: MESSAGEs to an offline user are kept (202) and delivered once when they register; unknown users 404, too large 513', async () => {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true } });
  for (const [user, pw] of [['alice', 'pa'], ['bob', 'pb']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const received: SipRequest[] = [];
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, credentials: { username: 'alice', password: 'pa' }, proxy });
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: { username: 'bob', password: 'pb' }, proxy, onMessage: (m) => void received.push(m) });
  let registration: RegistrationClient | undefined;
  const send = (to: string, text: string) => alice.request('MESSAGE', to, { body: Buffer.from(text), contentType: 'text/plain;charset=utf-8' });
  try {
    const first = await send(`sip:bob@${DOMAIN}`, 'are you there?');
    assert.equal(first.status, 202, first.reason);
    assert.match(first.reason, /stored for delivery when the user registers/);
    assert.equal((await send(`sip:bob@${DOMAIN}`, 'call me')).status, 202);
    assert.equal((await send(`sip:nobody@${DOMAIN}`, 'hello?')).status, 404, 'only subscribers get a message box');
    assert.equal((await send(`sip:bob@${DOMAIN}`, 'x'.repeat(9000))).status, 513);

    registration = bob.registration({ expires: 600 });
    assert.equal((await registration.register()).status, 200);
    await until(() => received.length >= 2, 3000);
    assert.deepEqual(received.map((m) => m.body.toString()), ['are you there?', 'call me']);
    assert.match(received[0]!.from.uri.toString(), /^sip:alice@sipway\.test$/);
    assert.ok(received[0]!.headers.get('date'), 'the time it was sent');

    assert.equal((await registration.register()).status, 200, 'a refresh');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(received.length, 2, 'delivered once: they left the store, a refresh sends nothing again');
    const online = await send(`sip:bob@${DOMAIN}`, 'now you are');
    assert.equal(online.status, 200, 'an online user gets it at once');
    assert.equal(received.length, 3);
  } finally {
    registration?.stop();
    await alice.stop();
    await bob.stop();
    await ts.stop();
  }
});

test('RFC 3428 §7: a MESSAGE to a user registered from two devices reaches both (parallel fork); the sender gets one 200', async () => {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true } });
  for (const [user, pw] of [['alice', 'pa'], ['bob', 'pb']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const desk: SipRequest[] = [];
  const mobile: SipRequest[] = [];
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, credentials: { username: 'alice', password: 'pa' }, proxy });
  const bobDesk = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: { username: 'bob', password: 'pb' }, proxy, onMessage: (m) => void desk.push(m) });
  const bobMobile = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: { username: 'bob', password: 'pb' }, proxy, onMessage: (m) => void mobile.push(m) });
  const registrations = [bobDesk.registration({ expires: 600 }), bobMobile.registration({ expires: 600 })];
  try {
    for (const r of registrations) assert.equal((await r.register()).status, 200);
    const sent = await alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { body: Buffer.from('lunch?'), contentType: 'text/plain' });
    assert.equal(sent.status, 200, sent.reason);
    await until(() => desk.length === 1 && mobile.length === 1, 3000);
    assert.equal(desk[0]!.body.toString(), 'lunch?');
    assert.equal(mobile[0]!.body.toString(), 'lunch?');
  } finally {
    for (const r of registrations) r.stop();
    await alice.stop();
    await bobDesk.stop();
    await bobMobile.stop();
    await ts.stop();
  }
});
