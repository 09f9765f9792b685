import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, type SipRequest } from '../../src/message/index.js';
import { aggregateChallenges, selectBest } from '../../src/proxy/index.js';
import { startProxy } from './harness.js';
import { wire } from '../helpers/messages.js';
import { invite, outOfDialog, parse, register } from './ua.js';

const base = parse(
  wire([
    'INVITE sip:bob@sipway.test SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKbase',
    'From: <sip:alice@sipway.test>;tag=1',
    'To: <sip:bob@sipway.test>',
    'Call-ID: base@test',
    'CSeq: 1 INVITE',
  ]),
) as SipRequest;
const response = (status: number, headers: Array<[string, string]> = []) => createResponse(base, status, { headers });

test('§16.7 step 6: 6xx first, else the lowest class; 401/407/415/420/484 preferred within 4xx; first among equals', () => {
  const pick = (...statuses: number[]) => selectBest(statuses.map((s) => response(s)))?.status;
  assert.equal(pick(486, 404, 503), 404);
  assert.equal(pick(503, 486), 486, '4xx before 5xx');
  assert.equal(pick(486, 302, 500), 302);
  assert.equal(pick(486, 603, 302), 603);
  assert.equal(pick(486, 407, 404), 407, 'a challenge tells the caller how to retry');
  assert.equal(pick(487, 486), 486);
  assert.equal(pick(), undefined);
  const first = response(480);
  assert.equal(selectBest([first, response(480)]), first);
});

test('§16.7 step 7: a forwarded 401/407 carries the challenges of every 401 and 407', () => {
  const a = response(407, [['Proxy-Authenticate', 'Digest realm="a", nonce="1"']]);
  const b = response(401, [['WWW-Authenticate', 'Digest realm="b", nonce="2"']]);
  const c = response(407, [['Proxy-Authenticate', 'Digest realm="c", nonce="3"']]);
  aggregateChallenges(b, [a, b, c, response(486)]);
  assert.deepEqual(b.headers.getAll('www-authenticate'), ['Digest realm="b", nonce="2"']);
  assert.deepEqual(b.headers.getAll('proxy-authenticate'), ['Digest realm="a", nonce="1"', 'Digest realm="c", nonce="3"']);
});

test('401 and 407 from two branches reach the caller as one response with both challenges', async () => {
  const h = await startProxy();
  try {
    const one = (await h.ua('one')).serve({ status: 407, headers: [['Proxy-Authenticate', 'Digest realm="one.example", nonce="n1", algorithm=MD5']] });
    const two = (await h.ua('two')).serve({ status: 401, headers: [['WWW-Authenticate', 'Digest realm="two.example", nonce="n2", algorithm=MD5']] });
    await register(one, h.port, 'bob', { contact: one.contact('bob') });
    await register(two, h.port, 'bob', { contact: two.contact('bob') });
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const res = await alice.response(inv.callId);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate')!, /two\.example/);
    assert.match(res.headers.get('proxy-authenticate')!, /one\.example/);
  } finally {
    await h.stop();
  }
});

test('a 503 from downstream goes upstream as 500 (§16.7 step 6); an unreachable next hop too', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve({ status: 503, headers: [['Retry-After', '30']] });
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const res = await alice.response(inv.callId);
    assert.equal(res.status, 500);
    assert.equal(res.headers.has('retry-after'), false, 'the 503 itself is not forwarded');

    // A contact the server may not send to (the test filter allows loopback only): a transport error, §16.9.
    const far = await h.ua('far');
    await register(far, h.port, 'carol', { contact: 'sip:carol@192.0.2.7:5060' });
    const inv2 = invite(alice, { to: 'sip:carol@sipway.test' });
    alice.send(inv2, h.port);
    const res2 = await alice.response(inv2.callId);
    assert.equal(res2.status, 500);
    assert.match(res2.reason, /no reachable next hop/);
  } finally {
    await h.stop();
  }
});

test('a 6xx cancels the other branches and is what the caller gets', async () => {
  const h = await startProxy();
  try {
    const decline = (await h.ua('decline')).serve({ status: 603, delayMs: 100 });
    const ringing = (await h.ua('ringing')).serve({ status: null });
    await register(decline, h.port, 'bob', { contact: decline.contact('bob') });
    await register(ringing, h.port, 'bob', { contact: ringing.contact('bob') });
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    await ringing.request('CANCEL');
    assert.equal((await alice.response(inv.callId)).status, 603);
  } finally {
    await h.stop();
  }
});

test('Timer C (§16.8): a branch that only rings is cancelled and the caller gets 408; one that never answers counts as 408', async () => {
  const h = await startProxy({ timerCMs: 250 });
  try {
    const bob = (await h.ua('bob')).serve({ status: null });
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    await alice.response(inv.callId, 180);
    await bob.request('CANCEL', 1500);
    assert.equal((await alice.response(inv.callId, undefined, 1500)).status, 408, 'the 487 of a timed-out branch stands as 408');

    const mute = (await h.ua('mute')).serve({ status: null, ring: false });
    await register(mute, h.port, 'dave');
    const inv2 = invite(alice, { to: 'sip:dave@sipway.test' });
    alice.send(inv2, h.port);
    assert.equal((await alice.response(inv2.callId, undefined, 1500)).status, 408, 'long before Timer B (32 s)');
  } finally {
    await h.stop();
  }
});

test('inviteTimeoutMs: no final answer in time cancels every branch and answers inviteTimeoutStatus', async () => {
  const h = await startProxy({ inviteTimeoutMs: 300, inviteTimeoutStatus: 480 });
  try {
    const bob = (await h.ua('bob')).serve({ status: null });
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const started = Date.now();
    assert.equal((await alice.response(inv.callId, undefined, 2000)).status, 480);
    assert.ok(Date.now() - started < 1500);
    await bob.request('CANCEL');
    assert.ok(await alice.nothing((m) => !m.isRequest && m.status === 487, 300), 'the 487 of the cancelled branch stays here');
  } finally {
    await h.stop();
  }
});

test('by default a caller that did not authenticate gets 404 for an offline subscriber and for nobody alike', async () => {
  const h = await startProxy();
  try {
    await h.ts.server.subscribers.put({ username: 'erin', domain: 'sipway.test', ha1Md5: '0'.repeat(32), ha1Sha256: '0'.repeat(64), groups: [], createdAt: 0 });
    const alice = await h.ua('alice');
    const answers: Array<[number, string]> = [];
    for (const user of ['erin', 'nobody']) {
      const inv = invite(alice, { to: `sip:${user}@sipway.test` });
      alice.send(inv, h.port);
      const res = await alice.response(inv.callId);
      answers.push([res.status, res.reason]);
    }
    assert.deepEqual(answers[0], answers[1], 'svwar and friends learn nothing');
    assert.equal(answers[0]![0], 404);
    // Each failed lookup charged the source (here loopback, trusted: counted, not limited).
    assert.equal(h.ts.server.flood.stats().penalties, 0, 'a trusted source is not charged');
  } finally {
    await h.stop();
  }
});

test('an extension scan from an untrusted source runs out of budget: failed lookups cost more than a request', async () => {
  const h = await startProxy({}, { flood: { trusted: [], budgets: { invite: { rate: 0.01, burst: 20 } }, failedLookupCost: 5 } });
  try {
    const scanner = await h.ua('scanner');
    const statuses: number[] = [];
    for (let ext = 100; ext < 110; ext++) {
      const inv = invite(scanner, { to: `sip:${ext}@sipway.test` });
      scanner.send(inv, h.port);
      const answered = await scanner.nothing((m) => !m.isRequest && m.callId === inv.callId && m.status >= 200, 300);
      statuses.push(answered ? 0 : 404);
    }
    // 20 tokens: the first lookup costs 1 + 5, so four scans are answered and the rest dropped unread.
    assert.deepEqual(statuses, [404, 404, 404, 404, 0, 0, 0, 0, 0, 0]);
    assert.equal(h.ts.server.flood.stats().penalties, 4);
  } finally {
    await h.stop();
  }
});

test('users without bindings, when revealed: 480 for a subscriber, 404 for an unknown user; non-INVITE requests are forwarded too', async () => {
  const h = await startProxy({ revealUserExistence: true });
  try {
    await h.ts.server.subscribers.put({ username: 'erin', domain: 'sipway.test', ha1Md5: '0'.repeat(32), ha1Sha256: '0'.repeat(64), groups: [], createdAt: 0 });
    const alice = await h.ua('alice');
    const toErin = invite(alice, { to: 'sip:erin@sipway.test' });
    alice.send(toErin, h.port);
    assert.equal((await alice.response(toErin.callId)).status, 480);
    const toNobody = invite(alice, { to: 'sip:nobody@sipway.test' });
    alice.send(toNobody, h.port);
    assert.equal((await alice.response(toNobody.callId)).status, 404);

    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const message = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test', ['Content-Type: text/plain']);
    alice.send(message, h.port);
    const atBob = (await bob.request('MESSAGE')).message;
    assert.equal(atBob.uri.toString(), bob.contact('bob'));
    assert.equal((await alice.response(message.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('redirect mode: 302 with every contact, its q and expires, and nothing proxied', async () => {
  const h = await startProxy({ redirectDomains: ['sipway.test'] });
  try {
    const desk = (await h.ua('desk')).serve();
    const mobile = (await h.ua('mobile')).serve();
    await register(desk, h.port, 'bob', { contact: desk.contact('bob'), contactParams: ';q=0.7' });
    await register(mobile, h.port, 'bob', { contact: mobile.contact('bob') });
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const res = await alice.response(inv.callId);
    assert.equal(res.status, 302);
    const contacts = res.contacts.map((c) => [c.uri.toString(), c.params.get('q') ?? '1', Number(c.params.get('expires'))] as const);
    assert.deepEqual(
      contacts.map(([uri, q]) => [uri, q]),
      [
        [mobile.contact('bob'), '1'],
        [desk.contact('bob'), '0.7'],
      ],
    );
    for (const [, , expires] of contacts) assert.ok(expires > 3500 && expires <= 3600, `expires ${expires}`);
    assert.ok(await desk.nothing((m) => m.isRequest && m.method === 'INVITE', 200));
  } finally {
    await h.stop();
  }
});

test('followRedirects: a 302 from a branch adds its contacts as new branches', async () => {
  const h = await startProxy({ followRedirects: true });
  try {
    const forwarded = (await h.ua('forwarded')).serve({ status: 200 });
    const redirector = (await h.ua('redirector')).serve({ status: 302, ring: false, headers: [['Contact', `<${forwarded.contact('bob')}>`]] });
    await register(redirector, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    await redirector.request('INVITE');
    const atNew = (await forwarded.request('INVITE')).message;
    assert.equal(atNew.uri.toString(), forwarded.contact('bob'));
    assert.equal((await alice.response(inv.callId)).status, 200);
  } finally {
    await h.stop();
  }
});
