import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import { basicStatuses } from '../../src/presence/index.js';
import { startTestServer } from '../../src/testing/index.js';
import { UserAgent, type RegistrationClient } from '../../src/ua/index.js';
import { until } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
const note = (basic: string, text: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@${DOMAIN}"><tuple id="bob-phone"><status><basic>${basic}</basic></status><note>${text}</note></tuple></presence>`;

test('presence through sipway serve: a watcher sees registration state, then what the presentity publishes, then its removal; a SUBSCRIBE to another event still reaches the phone', async () => {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, presence: { notifyIntervalMs: 200 } });
  for (const [user, pw] of [['alice', 'pa'], ['bob', 'pb']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, credentials: { username: 'alice', password: 'pa' }, proxy });
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: { username: 'bob', password: 'pb' }, proxy });
  let bobRegistration: RegistrationClient | undefined;
  try {
    const watching = await alice.subscribe(`sip:bob@${DOMAIN}`, 'presence', { expires: 600, accept: 'application/pidf+xml' });
    assert.equal(watching.status, 200, watching.reason);
    const sub = watching.subscription!;
    await until(() => sub.notifications.length >= 1, 3000);
    assert.deepEqual(basicStatuses(sub.notifications[0]!.body), { 'sipway-registration': 'closed' }, 'bob is not registered');
    assert.equal(sub.notifications[0]!.state, 'active');

    bobRegistration = bob.registration({ expires: 600 });
    assert.equal((await bobRegistration.register()).status, 200);
    await until(() => sub.notifications.length >= 2, 3000);
    assert.deepEqual(basicStatuses(sub.notifications.at(-1)!.body), { 'sipway-registration': 'open' }, 'a REGISTER reaches the watcher');

    const published = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['Expires', '600']], body: Buffer.from(note('closed', 'in a meeting')), contentType: 'application/pidf+xml' });
    assert.equal(published.status, 200, published.reason);
    const etag = published.response!.headers.get('sip-etag')!;
    await until(() => /in a meeting/.test(sub.notifications.at(-1)!.body), 3000);
    assert.deepEqual(basicStatuses(sub.notifications.at(-1)!.body), { 'bob-phone': 'closed' });

    const removed = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['Expires', '0'], ['SIP-If-Match', etag]] });
    assert.equal(removed.status, 200);
    await until(() => /sipway-registration/.test(sub.notifications.at(-1)!.body), 3000);
    assert.deepEqual(basicStatuses(sub.notifications.at(-1)!.body), { 'sipway-registration': 'open' });
    assert.equal((await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: [['Event', 'presence'], ['SIP-If-Match', etag]] })).status, 412);

    // An event the presence server does not serve (conference, RFC 4575) goes on to Bob's UA, which refuses it (501).
    const conference = await alice.subscribe(`sip:bob@${DOMAIN}`, 'conference');
    assert.equal(conference.status, 501);

    assert.equal(await sub.unsubscribe(), 200);
    const last = await sub.ended;
    assert.equal(last?.state, 'terminated');
  } finally {
    bobRegistration?.stop();
    await alice.stop();
    await bob.stop();
    await ts.stop();
  }
});

test('the reg event package (RFC 3680): a user\'s own device sees its registrations come and go; others are refused 403', async () => {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, presence: { notifyIntervalMs: 50 } });
  for (const [user, pw] of [['alice', 'pa'], ['bob', 'pb']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, credentials: { username: 'alice', password: 'pa' }, proxy });
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: { username: 'bob', password: 'pb' }, proxy });
  const registration = bob.registration({ expires: 600 });
  try {
    const watching = await bob.subscribe(`sip:bob@${DOMAIN}`, 'reg', { expires: 600 });
    assert.equal(watching.status, 200, watching.reason);
    const sub = watching.subscription!;
    await until(() => sub.notifications.length >= 1, 3000);
    assert.equal(sub.notifications[0]!.contentType, 'application/reginfo+xml');
    assert.match(sub.notifications[0]!.body, /<registration aor="sip:bob@sipway\.test" id="\w+" state="init">/);
    assert.equal((await registration.register()).status, 200);
    await until(() => /state="active"/.test(sub.notifications.at(-1)!.body), 3000);
    assert.match(sub.notifications.at(-1)!.body, new RegExp(`<uri>${bob.contact.replace(/^<|>$/g, '').replace(/\./g, '\\.')}</uri>`));
    assert.match(sub.notifications.at(-1)!.body, / expires="(59\d|600)" /);
    assert.match(sub.notifications.at(-1)!.body, /version="1"/);
    assert.equal((await registration.unregister()).status, 200);
    await until(() => /state="init"/.test(sub.notifications.at(-1)!.body), 3000);
    assert.equal((await alice.subscribe(`sip:bob@${DOMAIN}`, 'reg')).status, 403, 'nobody else sees Bob\'s registrations');
    await sub.unsubscribe();
  } finally {
    registration.stop();
    await alice.stop();
    await bob.stop();
    await ts.stop();
  }
});

test('a SUBSCRIBE or PUBLISH addressed to the server itself (no user, not through the policy) makes nothing: 404 for a served event, 489 for another', async () => {
  const ts = await startTestServer({ domains: [DOMAIN] });
  // A stranger of another domain, without credentials: the policy would have challenged or refused it.
  const mallory = await UserAgent.start({ aor: 'sip:mallory@elsewhere.example', proxy: { transport: 'udp', address: '127.0.0.1', port: ts.port } });
  try {
    for (const target of [`sip:${DOMAIN}`, `sip:127.0.0.1:${ts.port}`]) {
      for (const event of ['presence', 'message-summary']) {
        const answer = await mallory.subscribe(target, event, { expires: 600 });
        assert.equal(answer.status, 404, `${event} at ${target}: ${answer.reason}`);
        assert.equal(answer.subscription, undefined);
      }
      assert.equal((await mallory.subscribe(target, 'foo-unknown')).status, 489);
      const published = await mallory.request('PUBLISH', target, { headers: [['Event', 'presence']], body: Buffer.from('<presence/>'), contentType: 'application/pidf+xml' });
      assert.equal(published.status, 404);
    }
    assert.equal(ts.server.stats().presence?.subscriptions, 0);
  } finally {
    await mallory.stop();
    await ts.stop();
  }
});
