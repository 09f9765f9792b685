import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallLimits, defaultSbcConfig } from '../../src/sbc/index.js';
import { pcmuTarget } from '../../src/media/index.js';
import { clock, DOMAIN, headerValues, lab, until, within } from './harness.js';

const limits = (l: Partial<ReturnType<typeof defaultSbcConfig>['limits']>) => new CallLimits({ ...defaultSbcConfig().limits, ...l });

test('CallLimits: concurrent calls per account (486) and per trunk (503), Retry-After, places given back once', () => {
  const perAccount = limits({ perAccount: 1, retryAfterS: 20 });
  const first = perAccount.admit('alice@example.com', 'gw.example.net', 0);
  assert.equal(first.ok, true);
  const second = perAccount.admit('alice@example.com', 'gw.example.net', 0);
  assert.deepEqual(second.ok ? undefined : [second.status, second.retryAfter], [486, 20]);
  assert.equal(perAccount.admit('bob@example.com', 'gw.example.net', 0).ok, true, 'another account is not limited');
  if (first.ok) {
    first.release();
    first.release();
  }
  assert.equal(perAccount.callsOf('alice@example.com'), 0, 'released once, however often asked');
  assert.equal(perAccount.admit('alice@example.com', 'gw.example.net', 0).ok, true);

  const perTrunk = limits({ perTrunk: 2 });
  assert.equal(perTrunk.admit('a', 'gw', 0).ok, true);
  assert.equal(perTrunk.admit('b', 'gw', 0).ok, true);
  const third = perTrunk.admit('c', 'gw', 0);
  assert.deepEqual(third.ok ? undefined : third.status, 503);
  assert.equal(perTrunk.admit('c', 'other-gw', 0).ok, true);
});

test('CallLimits: new calls per second per account, on the clock given (a token bucket): 503 with the seconds to the next token', () => {
  const rate = limits({ callsPerSecond: 0.5, burst: 2 });
  const at = (ms: number) => rate.admit('alice@example.com', 'gw', ms);
  const calls = [at(0), at(10)];
  assert.ok(calls.every((c) => c.ok), 'the burst');
  for (const c of calls) if (c.ok) c.release();
  const refused = at(20);
  assert.equal(refused.ok, false);
  if (!refused.ok) {
    assert.equal(refused.status, 503);
    assert.equal(refused.retryAfter, 2, 'one token every 2 s');
  }
  assert.equal(at(2100).ok, true, 'a token again after 2 s');
});

test('SBC limits: the second concurrent call of a limited account is refused 486 with Retry-After; the first goes on', async () => {
  // Without authentication the account is the caller's source address (docs/sbc.md).
  const l = await lab({}, { limits: { perAccount: 1, retryAfterS: 15 } });
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const carol = await l.phone('carol');
    const first = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(first.answered, 'the first call', 5000)).status, 200);
    const second = await alice.ua.call(`sip:carol@${DOMAIN}`, { sdp: alice.sdp() });
    const refused = await within(second.answered, 'the second call', 5000);
    assert.equal(refused.status, 486);
    const response = alice.received.find((r) => r.startsWith('SIP/2.0 486'));
    assert.deepEqual(headerValues(response!, 'Retry-After'), ['15']);
    assert.equal(carol.incoming.length, 0);
    assert.equal(first.state, 'Confirmed');
    assert.ok(await until(() => !first.awaitingAck && !bob.incoming[0]!.awaitingAck, 2000));
    assert.equal(await first.bye(), 200);
    // Its place is given back at the end of the first call.
    assert.ok(await until(async () => (await l.ts.server.sbcCalls()).length === 0, 2000));
    const third = await alice.ua.call(`sip:carol@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(third.answered, 'the third call', 5000)).status, 200);
    assert.ok(await until(() => !third.awaitingAck, 2000));
    assert.equal(await third.bye(), 200);
  } finally {
    await l.close();
  }
});

test('SBC: a call that reaches sbc.maxCallSeconds is ended with BYE on both legs', async () => {
  const l = await lab({}, { maxCallSeconds: 1 });
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const started = Date.now();
    const [a, b] = await within(Promise.all([call.ended, bob.incoming[0]!.ended]), 'both legs ended', 4000);
    assert.equal(a.by, 'remote');
    assert.equal(b.by, 'remote');
    // RFC 3326: both phones are told why.
    assert.equal(a.cause, 'Q.850;cause=16;text="the call reached its longest duration (1 s)"');
    assert.equal(b.cause, a.cause);
    const lasted = Date.now() - started;
    assert.ok(lasted >= 900 && lasted < 3000, `ended after about a second (${lasted} ms)`);
  } finally {
    await l.close();
  }
});

test('SBC: no media for sbc.media.inactivityMs ends the call with BYE on both legs; media keeps it up', async () => {
  const l = await lab({}, { media: { inactivityMs: 400 } });
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    // Audio from Alice alone for three times the limit: the call stays up.
    alice.rtp.start(pcmuTarget(call.remoteSdp)!, new Uint8Array(160), clock);
    await new Promise((r) => setTimeout(r, 1200));
    alice.rtp.stop();
    assert.equal(call.state, 'Confirmed', 'media kept the call up');
    assert.ok(bob.rtp.counters.received > 20, 'the audio reached Bob');
    const [a, b] = await within(Promise.all([call.ended, bob.incoming[0]!.ended]), 'both legs ended for want of media', 4000);
    assert.equal(a.by, 'remote');
    assert.equal(b.by, 'remote');
    assert.match(a.cause ?? '', /^Q\.850;cause=16;text="no media for \d+ s"$/);
    assert.ok(await until(async () => (await l.ts.server.sbcCalls()).length === 0, 2000));
  } finally {
    await l.close();
  }
});
