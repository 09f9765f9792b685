import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import { UserAgent, type InviteSession } from '../../src/ua/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';

const DOMAIN = 'sipway.test';
const OFFER = 'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';
const ANSWER = 'v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n';

async function twoPhones(onInvite: (s: InviteSession) => void) {
  const ts: TestServer = await startTestServer({ domains: [DOMAIN], auth: { register: true }, proxy: { authenticateCallers: true } });
  for (const [user, pw] of [['alice', 'pa'], ['bob', 'pb']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const listen = { transport: 'udp' as const, host: '127.0.0.1', port: 0 };
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, credentials: { username: 'alice', password: 'pa' }, proxy, listen });
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: { username: 'bob', password: 'pb' }, proxy, listen, onInvite });
  const regs = [alice.registration(), bob.registration()];
  for (const r of regs) assert.equal((await r.register()).status, 200);
  return {
    alice,
    bob,
    proxyPort: ts.port,
    close: async () => {
      for (const r of regs) r.stop();
      await alice.stop();
      await bob.stop();
      await ts.stop();
    },
  };
}

test('a call through sipway: 407 answered, ringing, 200 with the SDP answer, ACK stops the 2xx, BYE from the caller ends both', async () => {
  let callee: InviteSession | undefined;
  const phones = await twoPhones((s) => {
    callee = s;
    s.ring();
    setTimeout(() => s.accept(ANSWER), 20);
  });
  try {
    const call = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: OFFER });
    const answered = await call.answered;
    assert.deepEqual(answered, { status: 200, reason: 'OK' });
    assert.equal(call.state, 'Confirmed');
    assert.equal(call.remoteSdp, ANSWER);
    assert.equal(callee!.remoteSdp, OFFER);
    assert.equal(callee!.state, 'Confirmed');
    for (let i = 0; i < 100 && callee!.awaitingAck; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(callee!.awaitingAck, false, 'the ACK reached the callee and stopped its 2xx retransmissions');
    // sipway record-routes (with a flow token per side of the call): every route of the dialog names it.
    const routes = call.dialog!.routeSet.map(String);
    assert.ok(routes.length >= 1 && routes.every((r) => r.includes(`@127.0.0.1:${phones.proxyPort};lr`)), routes.join(' '));
    assert.equal(await call.bye(), 200);
    assert.deepEqual(await call.ended, { by: 'local', reason: 'BYE sent' });
    assert.deepEqual(await callee!.ended, { by: 'remote', reason: 'BYE received' });
    assert.equal(phones.bob.sessions.size + phones.alice.sessions.size, 0);
    assert.equal(phones.bob.dialogs.size + phones.alice.dialogs.size, 0);
  } finally {
    await phones.close();
  }
});

test('busy and cancelled calls end with 486 and 487; the callee hangs up a call it answered', async () => {
  const behaviours: Array<(s: InviteSession) => void> = [
    (s) => s.reject(486),
    (s) => s.ring(), // left ringing: the caller cancels
    (s) => s.accept(ANSWER),
  ];
  const callees: InviteSession[] = [];
  const phones = await twoPhones((s) => {
    callees.push(s);
    behaviours[callees.length - 1]!(s);
  });
  try {
    const busy = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: OFFER });
    assert.equal((await busy.answered).status, 486);
    assert.equal((await busy.ended).by, 'failure');

    const ringing = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: OFFER });
    for (let i = 0; i < 100 && ringing.state !== 'Early'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(ringing.state, 'Early', 'the 180 made an early dialog');
    assert.equal(ringing.cancel(), true);
    assert.equal((await ringing.answered).status, 487);
    assert.deepEqual(await callees[1]!.ended, { by: 'failure', reason: '487 Request Terminated' });

    const answered = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: OFFER });
    assert.equal((await answered.answered).status, 200);
    assert.equal(await callees[2]!.bye(), 200);
    assert.equal((await answered.ended).by, 'remote');
  } finally {
    await phones.close();
  }
});

test('hold and resume by re-INVITE both ways: sendonly answered recvonly, the held side sees it, sendrecv resumes', async () => {
  let callee: InviteSession | undefined;
  let changes = 0;
  const phones = await twoPhones((s) => {
    callee = s;
    s.onChange = () => changes++;
    s.accept(ANSWER);
  });
  try {
    const call = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: OFFER });
    assert.equal((await call.answered).status, 200);
    for (let i = 0; i < 100 && callee!.awaitingAck; i++) await new Promise((r) => setTimeout(r, 10));

    assert.deepEqual(await call.hold(), { status: 200, reason: 'OK' });
    assert.match(call.localSdp!, /a=sendonly/);
    assert.match(call.remoteSdp!, /a=recvonly/, 'the callee accepted the hold');
    assert.equal(callee!.held, true);
    assert.equal(changes, 1);
    for (let i = 0; i < 100 && callee!.awaitingAck; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(callee!.awaitingAck, false, 'the re-INVITE 2xx was ACKed');

    assert.equal((await call.resume()).status, 200);
    assert.equal(callee!.held, false);
    assert.match(call.remoteSdp!, /a=sendrecv/);
    for (let i = 0; i < 100 && callee!.awaitingAck; i++) await new Promise((r) => setTimeout(r, 10));

    // The callee holds the caller in turn, through the route set it got from the INVITE.
    assert.equal((await callee!.hold()).status, 200);
    assert.equal(call.held, true);
    assert.match(call.localSdp!, /a=recvonly/);
    assert.equal(await call.bye(), 200);
  } finally {
    await phones.close();
  }
});

test('stopCalls() (the first half of stop()) ends the calls of a user agent: BYE for an answered one, CANCEL for one still ringing', async () => {
  const callees: InviteSession[] = [];
  const phones = await twoPhones((s) => {
    callees.push(s);
    if (callees.length === 1) s.accept(ANSWER);
    else s.ring();
  });
  try {
    const answered = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: OFFER });
    assert.equal((await answered.answered).status, 200);
    const ringing = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: OFFER });
    for (let i = 0; i < 100 && ringing.state !== 'Early'; i++) await new Promise((r) => setTimeout(r, 10));
    await phones.alice.stopCalls();
    assert.deepEqual(await callees[0]!.ended, { by: 'remote', reason: 'BYE received' });
    assert.deepEqual(await callees[1]!.ended, { by: 'failure', reason: '487 Request Terminated' });
    assert.equal((await ringing.answered).status, 487);
  } finally {
    await phones.close();
  }
});
