/**
 * Missed calls through a running server (the default policy, real UDP on loopback): any call to a local user that the
 * callee did not answer gives exactly one missed-call record naming its cause, whatever the forking; an answered
 * call gives none.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/digest.js';
import { openCdrStore, type CdrRecord, type MissedCause } from '../../src/store/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { DOMAIN, startProxy, type ProxyHarness } from '../proxy/harness.js';
import { startWithPolicy } from '../policy/policy-harness.js';
import { cancelOf, invite, register, type TestUa, type UasBehaviour } from '../proxy/ua.js';

const INVITE_TIMEOUT_MS = 30_000;
const clock = new FakeClock(Date.now());
let h: ProxyHarness;
let alice: TestUa;

before(async () => {
  h = await startProxy({ inviteTimeoutMs: INVITE_TIMEOUT_MS, serialBranchTimeoutMs: INVITE_TIMEOUT_MS }, {}, { clock });
  alice = await h.ua('alice');
});

after(() => h.stop());

/** A registered phone for `user` that answers INVITEs as `behaviour` says. */
async function phone(user: string, behaviour: UasBehaviour, contactParams = ''): Promise<TestUa> {
  const ua = (await h.ua(user)).serve(behaviour);
  await register(ua, h.port, user, { contact: ua.contact(user), contactParams });
  return ua;
}

/** The records of one call, once its attempt (written with any missed record, after the final response) is in. */
async function recordsOf(callId: string, dataDir = h.ts.dataDir): Promise<CdrRecord[]> {
  const { cdrs, close } = openCdrStore(dataDir);
  try {
    for (let i = 0; i < 100; i++) {
      const rows = (await cdrs.query({ limit: 1000 })).filter((r) => r.callId === callId);
      if (rows.some((r) => r.type === 'attempt')) return rows;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`no attempt record for ${callId}`);
  } finally {
    close();
  }
}

/** alice calls `user`; resolves with the final status and the call's records. */
async function call(user: string, whileRinging?: (inv: ReturnType<typeof invite>) => Promise<void>): Promise<{ status: number; records: CdrRecord[] }> {
  const inv = invite(alice, { to: `sip:${user}@${DOMAIN}` });
  alice.send(inv, h.port);
  if (whileRinging) {
    await alice.response(inv.callId, 180);
    await whileRinging(inv);
  }
  const final = await alice.waitFor(`the final response for ${user}`, (m) => !m.isRequest && m.callId === inv.callId && m.cseq.method === 'INVITE' && m.status >= 200, 5000);
  assert.ok(!final.message.isRequest);
  return { status: final.message.status, records: await recordsOf(inv.callId) };
}

function missed(records: CdrRecord[]): Array<[string, number, string, MissedCause | undefined]> {
  return records.filter((r) => r.type === 'missed').map((r) => [r.callee, r.status, r.reason, r.cause]);
}

test('nobody registered: a missed call, cause not-registered', async () => {
  await h.ts.server.subscribers.put({ username: 'carol', domain: DOMAIN, ha1Md5: computeHa1('carol', DOMAIN, 'pw', 'MD5'), ha1Sha256: computeHa1('carol', DOMAIN, 'pw', 'SHA-256'), groups: [], createdAt: clock.now() });
  const { status, records } = await call('carol');
  // A caller that did not authenticate is not told carol exists (docs/security.md): 404, and the record says why.
  assert.equal(status, 404);
  assert.deepEqual(missed(records), [[`sip:carol@${DOMAIN}`, 404, 'Not Found', 'not-registered']]);
});

for (const [user, status, reason, cause] of [
  ['busy', 486, 'Busy Here', 'busy'],
  ['busyeverywhere', 600, 'Busy Everywhere', 'busy'],
  ['away', 480, 'Temporarily Unavailable', 'no-answer'],
  ['declines', 603, 'Decline', 'declined'],
  ['broken', 488, 'Not Acceptable Here', 'failed'],
] as const) {
  test(`the callee's phone answers ${status}: a missed call, cause ${cause}`, async () => {
    await phone(user, { status });
    const result = await call(user);
    assert.equal(result.status, status);
    assert.deepEqual(missed(result.records), [[`sip:${user}@${DOMAIN}`, status, reason, cause]]);
  });
}

test('no answer before the INVITE timeout: 408 to the caller, a missed call, cause no-answer', async () => {
  await phone('slow', { status: null });
  const { status, records } = await call('slow', async () => clock.advance(INVITE_TIMEOUT_MS));
  assert.equal(status, 408);
  assert.deepEqual(missed(records), [[`sip:slow@${DOMAIN}`, 408, 'Request Timeout', 'no-answer']]);
});

test('the caller hangs up while it rings: 487, a missed call, cause cancelled', async () => {
  const ringing = await phone('ringing', { status: null });
  const { status, records } = await call('ringing', async (inv) => {
    alice.send(cancelOf(inv), h.port);
    await ringing.request('CANCEL');
  });
  assert.equal(status, 487);
  assert.deepEqual(missed(records), [[`sip:ringing@${DOMAIN}`, 487, 'Request Terminated', 'cancelled']]);
});

test('an answered call gives no missed-call record', async () => {
  await phone('answers', { status: 200 });
  const { status, records } = await call('answers');
  assert.equal(status, 200);
  assert.deepEqual(missed(records), []);
  assert.deepEqual(records.map((r) => r.type), ['attempt']);
});

test('parallel forking: two phones busy and declining give one missed-call record, with the final response', async () => {
  await phone('twophones', { status: 486 });
  await phone('twophones', { status: 603 });
  const { status, records } = await call('twophones');
  // §16.7 step 6: a 6xx is the best response.
  assert.equal(status, 603);
  assert.deepEqual(missed(records), [[`sip:twophones@${DOMAIN}`, 603, 'Decline', 'declined']]);
});

test('serial forking: one phone after the other, neither answers: one missed-call record; one answers: none', async () => {
  const serial = await startProxy({ forking: 'serial' });
  try {
    const caller = await serial.ua('caller');
    for (const [user, second, missedCount] of [['dave', 480, 1], ['erin', 200, 0]] as const) {
      const first = (await serial.ua(`${user}-desk`)).serve({ status: 486 });
      const mobile = (await serial.ua(`${user}-mobile`)).serve({ status: second });
      await register(first, serial.port, user, { contact: first.contact(user), contactParams: ';q=0.9' });
      await register(mobile, serial.port, user, { contact: mobile.contact(user), contactParams: ';q=0.1' });
      const inv = invite(caller, { to: `sip:${user}@${DOMAIN}` });
      caller.send(inv, serial.port);
      await first.request('INVITE');
      await mobile.request('INVITE');
      const final = await caller.waitFor('final', (m) => !m.isRequest && m.callId === inv.callId && m.status >= 200);
      assert.ok(!final.message.isRequest);
      assert.equal(final.message.status === 200, second === 200, `${user}: ${final.message.status}`);
      const rows = await recordsOf(inv.callId, serial.ts.dataDir);
      assert.equal(rows.filter((r) => r.type === 'attempt').length, 1);
      assert.equal(rows.filter((r) => r.type === 'missed').length, missedCount, `${user}: ${JSON.stringify(rows)}`);
    }
  } finally {
    await serial.stop();
  }
});

test('a routing policy: its location plugin answering for an offline user, and a CANCEL before it forwards, are missed calls too', async () => {
  // The policy holds each call to dave at this gate after its lookup, until the test opens it.
  const gate = globalThis as { sipwayMissedGate?: Promise<void> };
  let open = (): void => {};
  gate.sipwayMissedGate = new Promise<void>((resolve) => (open = resolve));
  const p = await startWithPolicy(`
export default P.definePolicy({
  async onRequest(ctx) {
    const targets = await P.location(ctx);
    if (!targets) return;
    await globalThis.sipwayMissedGate;
    await ctx.relay(targets);
  },
});`);
  try {
    await p.ts.server.subscribers.put({ username: 'frank', domain: DOMAIN, ha1Md5: computeHa1('frank', DOMAIN, 'pw', 'MD5'), ha1Sha256: computeHa1('frank', DOMAIN, 'pw', 'SHA-256'), groups: [], createdAt: Date.now() });
    const caller = await p.ua('caller');
    const dave = (await p.ua('dave')).serve({ status: 200 });
    await register(dave, p.port, 'dave');

    const offline = invite(caller, { to: `sip:frank@${DOMAIN}` });
    caller.send(offline, p.port);
    assert.equal((await caller.response(offline.callId)).status, 404);
    assert.deepEqual(missed(await recordsOf(offline.callId, p.ts.dataDir)), [[`sip:frank@${DOMAIN}`, 404, 'Not Found', 'not-registered']]);

    const early = invite(caller, { to: `sip:dave@${DOMAIN}` });
    caller.send(early, p.port);
    await caller.response(early.callId, 100);
    caller.send(cancelOf(early), p.port);
    const final = await caller.waitFor('487', (m) => !m.isRequest && m.callId === early.callId && m.cseq.method === 'INVITE' && m.status >= 200);
    assert.ok(!final.message.isRequest && final.message.status === 487);
    open();
    assert.deepEqual(missed(await recordsOf(early.callId, p.ts.dataDir)), [[`sip:dave@${DOMAIN}`, 487, 'Request Terminated', 'cancelled']]);
    assert.equal(await dave.nothing((m) => m.isRequest && m.method === 'INVITE'), true, 'the call never reached dave');
  } finally {
    open();
    delete gate.sipwayMissedGate;
    await p.stop();
  }
});
