import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge, type BridgeOptions } from '../../src/b2bua/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { UserAgent, type InviteSession, type RegistrationClient } from '../../src/ua/index.js';

const DOMAIN = 'sipway.test';
const sdp = (port: number, dir = 'sendrecv', version = 1): string =>
  `v=0\r\no=- ${port} ${version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=${dir}\r\n`;
/** The rewrite the bridge applies: the session name says which way the SDP crossed. */
const mark = (text: string, crossing: string): string => text.replace(/^s=.*$/m, `s=${crossing}`);

/** Alice, a gateway UA that bridges every call for it to Bob, and Bob, registered at a sipway server (no auth). */
async function setUp(bobAnswers: (s: InviteSession) => void, options: Partial<BridgeOptions> = {}) {
  const ts: TestServer = await startTestServer({ domains: [DOMAIN], auth: { register: false }, proxy: { authenticateCallers: false } });
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const bridges: Bridge[] = [];
  const bobCalls: InviteSession[] = [];
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, proxy });
  const gw: UserAgent = await UserAgent.start({
    aor: `sip:gw@${DOMAIN}`,
    proxy,
    onInvite: (a) => void Bridge.connect(gw, a, { target: `sip:bob@${DOMAIN}`, sdp: mark, ...options }).then((b) => bridges.push(b)),
  });
  const bob = await UserAgent.start({
    aor: `sip:bob@${DOMAIN}`,
    proxy,
    onInvite: (s) => {
      bobCalls.push(s);
      bobAnswers(s);
    },
  });
  const regs: RegistrationClient[] = [gw.registration(), bob.registration()];
  for (const r of regs) assert.equal((await r.register()).status, 200);
  return {
    alice,
    bridges,
    bobCalls,
    close: async () => {
      for (const r of regs) r.stop();
      for (const ua of [alice, gw, bob]) await ua.stop();
      await ts.stop();
    },
  };
}

const until = async (what: string, cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
};

test('B2BUA: a new call on the far side (own Call-ID, the caller\'s From, chosen headers), SDP rewritten both ways, ringing, hold, UPDATE, INFO and BYE relayed', async () => {
  const info: string[] = [];
  const setup = await setUp(
    (s) => {
      s.onInfo = (r) => void info.push(r.body.toString());
      s.ring();
      setTimeout(() => s.accept(sdp(40002)), 50);
    },
    { passHeaders: ['X-Account'] },
  );
  try {
    const call = await setup.alice.call(`sip:gw@${DOMAIN}`, { sdp: sdp(40000), headers: [['X-Account', 'acme-42'], ['X-Secret', 'inner']] });
    await until('ringing relayed to the caller', () => call.state === 'Early');
    assert.equal((await call.answered).status, 200);
    const bob = setup.bobCalls[0]!;
    const bridge = setup.bridges[0]!;
    assert.notEqual(bob.invite.callId, call.invite.callId, 'leg b has a Call-ID of its own');
    assert.equal(bob.invite.from.uri.toString(), `sip:alice@${DOMAIN}`);
    assert.notEqual(bob.invite.from.tag, call.invite.from.tag);
    assert.equal(bob.invite.headers.get('x-account'), 'acme-42');
    assert.equal(bob.invite.headers.get('x-secret'), undefined, 'only the headers named cross');
    assert.match(bob.remoteSdp!, /^s=a-to-b\r$/m);
    assert.match(call.remoteSdp!, /^s=b-to-a\r$/m);
    assert.match(call.remoteSdp!, /^m=audio 40002 /m);

    assert.equal((await call.hold()).status, 200);
    assert.equal(bob.held, true, 'the hold reached Bob through the bridge');
    assert.match(call.remoteSdp!, /a=recvonly/);
    assert.match(call.remoteSdp!, /^s=b-to-a\r$/m, 'Bob\'s answer came back through the bridge');

    await until('Bob\'s ACK', () => !bob.awaitingAck);
    assert.equal((await bob.update(sdp(40004, 'sendrecv', 3))).status, 200);
    assert.match(call.remoteSdp!, /^m=audio 40004 /m, 'Bob\'s UPDATE reached Alice');

    assert.equal(await call.info('Signal=7\r\nDuration=160\r\n', 'application/dtmf-relay'), 200);
    await until('the INFO at Bob', () => info.length === 1);
    assert.equal(info[0], 'Signal=7\r\nDuration=160\r\n');

    assert.equal(await bob.bye(), 200);
    assert.deepEqual(await call.ended, { by: 'remote', reason: 'BYE received' });
    assert.equal((await bridge.ended).by, 'b');
  } finally {
    await setup.close();
  }
});

test('B2BUA: the caller\'s CANCEL cancels leg b (487 both sides); a busy callee is the caller\'s 486', async () => {
  let n = 0;
  const setup = await setUp((s) => (n++ === 0 ? s.ring() : s.reject(486)));
  try {
    const ringing = await setup.alice.call(`sip:gw@${DOMAIN}`, { sdp: sdp(40010) });
    await until('ringing', () => ringing.state === 'Early');
    assert.equal(ringing.cancel(), true);
    assert.equal((await ringing.answered).status, 487);
    assert.deepEqual(await setup.bobCalls[0]!.ended, { by: 'failure', reason: '487 Request Terminated' });

    const busy = await setup.alice.call(`sip:gw@${DOMAIN}`, { sdp: sdp(40012) });
    assert.equal((await busy.answered).status, 486);
  } finally {
    await setup.close();
  }
});

test('B2BUA: a call without an offer gets leg b\'s offer in the 2xx, and the caller\'s answer travels in both ACKs', async () => {
  const setup = await setUp((s) => s.accept(sdp(40022)));
  try {
    const call = await setup.alice.call(`sip:gw@${DOMAIN}`, { onOffer: (offer) => offer.replace('m=audio 40022', 'm=audio 40020').replace(/^s=.*$/m, 's=alice') });
    assert.equal((await call.answered).status, 200);
    assert.match(call.remoteSdp!, /^m=audio 40022 /m);
    const bob = setup.bobCalls[0]!;
    await until('the answer at Bob', () => bob.remoteSdp !== undefined);
    assert.match(bob.remoteSdp!, /^m=audio 40020 /m);
    assert.match(bob.remoteSdp!, /^s=a-to-b\r$/m);
    assert.equal(await call.bye(), 200);
    assert.equal((await bob.ended).by, 'remote');
  } finally {
    await setup.close();
  }
});
