import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import type { SipRequest } from '../../src/message/index.js';
import { parseText } from '../../src/testing/index.js';
import { ANONYMOUS_FROM, passedHeaders, secondLegIdentity } from '../../src/sbc/index.js';
import { DOMAIN, lab, until, within } from './harness.js';

const invite = (...extra: string[]): SipRequest =>
  parseText<SipRequest>(
    [
      'INVITE sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx1',
      'Max-Forwards: 70',
      'From: "Alice Smith" <sip:alice@example.com>;tag=a1',
      'To: <sip:bob@example.com>',
      'Call-ID: c1@192.0.2.1',
      'CSeq: 1 INVITE',
      'Contact: <sip:alice@192.0.2.1:5060>',
      ...extra,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );

test('identity: the authenticated caller is asserted (P-Asserted-Identity) toward a trusted target only', () => {
  const trusted = secondLegIdentity(invite(), { authenticatedUser: 'alice', trusted: true, trustedSource: false });
  assert.equal(trusted.from, '"Alice Smith" <sip:alice@example.com>');
  assert.deepEqual(trusted.headers, [['P-Asserted-Identity', '"Alice Smith" <sip:alice@example.com>']]);
  const untrusted = secondLegIdentity(invite(), { authenticatedUser: 'alice', trusted: false, trustedSource: false });
  assert.deepEqual(untrusted.headers, [], 'nothing asserted outside the trust domain');
  assert.equal(untrusted.from, '"Alice Smith" <sip:alice@example.com>');
});

test('identity: Privacy: id anonymises the From; a trusted target still gets the assertion and the Privacy header, an untrusted one neither', () => {
  const trusted = secondLegIdentity(invite('Privacy: id'), { authenticatedUser: 'alice', trusted: true, trustedSource: false });
  assert.equal(trusted.from, ANONYMOUS_FROM);
  assert.deepEqual(trusted.headers, [
    ['P-Asserted-Identity', '"Alice Smith" <sip:alice@example.com>'],
    ['Privacy', 'id'],
  ]);
  const untrusted = secondLegIdentity(invite('Privacy: id; header'), { authenticatedUser: 'alice', trusted: false, trustedSource: false });
  assert.equal(untrusted.from, ANONYMOUS_FROM);
  assert.deepEqual(untrusted.headers, []);
  assert.equal(secondLegIdentity(invite('Privacy: none'), { authenticatedUser: 'alice', trusted: false, trustedSource: false }).from, '"Alice Smith" <sip:alice@example.com>');
});

test("identity: a phone's own P-Asserted-Identity is not believed; a trusted source's is", () => {
  const claimed = invite('P-Asserted-Identity: <sip:boss@example.com>');
  assert.deepEqual(secondLegIdentity(claimed, { authenticatedUser: undefined, trusted: true, trustedSource: false }).headers, []);
  assert.deepEqual(secondLegIdentity(claimed, { authenticatedUser: undefined, trusted: true, trustedSource: true }).headers, [['P-Asserted-Identity', '<sip:boss@example.com>']]);
});

test('headers: only those passed cross, never one on the deny list or one each leg makes itself', () => {
  const request = invite('X-Account: acme-42', 'User-Agent: phone/1.0', 'Alert-Info: <http://ring/1>', 'X-Other: no');
  assert.deepEqual(passedHeaders(request, ['X-Account', 'User-Agent', 'Via', 'Contact', 'alert-info'], ['User-Agent']), [
    ['X-Account', 'acme-42'],
    ['alert-info', '<http://ring/1>'],
  ]);
});

test('SBC identity through the server: authenticated caller asserted to a trusted domain, Privacy: id honoured; passed headers cross, denied ones not', async () => {
  const l = await lab({ proxy: { authenticateCallers: true } }, { identity: { trusted: [DOMAIN] }, headers: { pass: ['X-Account', 'User-Agent'] } });
  try {
    await l.ts.server.subscribers.put({ username: 'alice', domain: DOMAIN, ha1Md5: computeHa1('alice', DOMAIN, 'pw', 'MD5'), ha1Sha256: computeHa1('alice', DOMAIN, 'pw', 'SHA-256'), groups: [], createdAt: Date.now() });
    const alice = await l.phone('alice', { register: false, ua: { credentials: { username: 'alice', password: 'pw' } } });
    const bob = await l.phone('bob');
    // The SBC's second leg comes from the server itself with Alice's From: the proxy admits it without a challenge.
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp(), headers: [['X-Account', 'acme-42'], ['User-Agent', 'alice-phone']] });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const first = bob.incoming[0]!.invite;
    assert.equal(first.headers.get('p-asserted-identity'), `<sip:alice@${DOMAIN}>`);
    assert.equal(first.headers.get('x-account'), 'acme-42');
    assert.equal(first.headers.get('user-agent'), undefined, 'User-Agent is denied by default');
    assert.equal(first.headers.get('proxy-authorization'), undefined, 'the caller\'s credentials stay on leg a');
    assert.ok(await until(() => !call.awaitingAck && !bob.incoming[0]!.awaitingAck, 2000));
    assert.equal(await call.bye(), 200);

    const hidden = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp(), headers: [['Privacy', 'id']] });
    assert.equal((await within(hidden.answered, 'the answer', 5000)).status, 200);
    const second = bob.incoming[1]!.invite;
    assert.equal(second.from.uri.toString(), 'sip:anonymous@anonymous.invalid');
    assert.equal(second.headers.get('p-asserted-identity'), `<sip:alice@${DOMAIN}>`, 'the trust domain still knows who calls');
    assert.equal(second.headers.get('privacy'), 'id', 'and is told to keep it to itself');
    assert.ok(await until(() => !hidden.awaitingAck, 2000));
    assert.equal(await hidden.bye(), 200);
  } finally {
    await l.close();
  }
});

test('SBC identity: toward an untrusted target no P-Asserted-Identity; with Privacy: id the From is anonymous', async () => {
  const l = await lab({ proxy: { authenticateCallers: true } });
  try {
    await l.ts.server.subscribers.put({ username: 'alice', domain: DOMAIN, ha1Md5: computeHa1('alice', DOMAIN, 'pw', 'MD5'), ha1Sha256: computeHa1('alice', DOMAIN, 'pw', 'SHA-256'), groups: [], createdAt: Date.now() });
    const alice = await l.phone('alice', { register: false, ua: { credentials: { username: 'alice', password: 'pw' } } });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp(), headers: [['Privacy', 'id'], ['P-Asserted-Identity', '<sip:boss@sipway.test>']] });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const got = bob.incoming[0]!.invite;
    assert.equal(got.headers.get('p-asserted-identity'), undefined);
    assert.equal(got.headers.get('privacy'), undefined);
    assert.equal(got.from.uri.toString(), 'sip:anonymous@anonymous.invalid');
    assert.ok(!bob.received.some((r) => r.includes('alice@')), 'nothing names Alice at Bob');
    assert.ok(await until(() => !call.awaitingAck, 2000));
    assert.equal(await call.bye(), 200);
  } finally {
    await l.close();
  }
});
