import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import { UserAgent, type InviteSession, type RegistrationClient, type UserAgentOptions } from '../../src/ua/index.js';
import { parseReferTo, parseReplaces, referTo, sipfragStatus } from '../../src/ua/index.js';
import { startTestServer } from '../../src/testing/index.js';

const DOMAIN = 'sipway.test';
const sdp = (port: number): string => `v=0\r\no=- ${port} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\n`;

type Hooks = Pick<UserAgentOptions, 'onInvite' | 'onRefer'>;

/** Alice, Bob and Carol registered at a sipway server on loopback (digest on), each with its hooks. */
async function threePhones(hooks: Record<'alice' | 'bob' | 'carol', Hooks>) {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, proxy: { authenticateCallers: true } });
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const uas: Record<string, UserAgent> = {};
  const regs: RegistrationClient[] = [];
  for (const user of ['alice', 'bob', 'carol'] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, `pw-${user}`, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, `pw-${user}`, 'SHA-256'), groups: [], createdAt: Date.now() });
    uas[user] = await UserAgent.start({ aor: `sip:${user}@${DOMAIN}`, credentials: { username: user, password: `pw-${user}` }, proxy, ...hooks[user] });
    const r = uas[user]!.registration();
    assert.equal((await r.register()).status, 200);
    regs.push(r);
  }
  return {
    alice: uas.alice!,
    bob: uas.bob!,
    carol: uas.carol!,
    close: async () => {
      for (const r of regs) r.stop();
      for (const ua of Object.values(uas)) await ua.stop();
      await ts.stop();
    },
  };
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

test('RFC 3515 §2.4.4/§3891 §6.1: Refer-To with Replaces written and read back; sipfrag status', () => {
  const value = referTo('sip:carol@sipway.test', { callId: 'c1@h', localTag: 'aaa', remoteTag: 'ccc' });
  assert.equal(value, '<sip:carol@sipway.test?Replaces=c1%40h%3Bto-tag%3Dccc%3Bfrom-tag%3Daaa>');
  const back = parseReferTo(value)!;
  assert.equal(back.uri.toString(), 'sip:carol@sipway.test');
  assert.deepEqual(back.replaces, { callId: 'c1@h', toTag: 'ccc', fromTag: 'aaa', earlyOnly: false });
  assert.equal(parseReferTo('<tel:+123>'), undefined);
  assert.equal(parseReplaces('abc;to-tag=1'), undefined, 'both tags are required');
  assert.equal(parseReplaces('abc;from-tag=2;to-tag=1;early-only')?.earlyOnly, true);
  assert.equal(sipfragStatus('SIP/2.0 180 Ringing\r\n'), 180);
  assert.equal(sipfragStatus('hello'), undefined);
});

test('blind transfer: Bob follows Alice\'s REFER to Carol, Alice hears 100, 180 and 200 in NOTIFYs, Carol sees Referred-By', async () => {
  const carolCalls: InviteSession[] = [];
  let bobsNewCall: InviteSession | undefined;
  const phones = await threePhones({
    alice: {},
    bob: {
      onInvite: (s) => s.accept(sdp(40002)),
      onRefer: async (transfer) => (bobsNewCall = await transfer.call({ sdp: sdp(40004) })),
    },
    carol: {
      onInvite: (s) => {
        carolCalls.push(s);
        s.ring();
        setTimeout(() => s.accept(sdp(40006)), 30);
      },
    },
  });
  try {
    const call = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: sdp(40000) });
    assert.equal((await call.answered).status, 200);
    const progress: number[] = [];
    const outcome = await call.refer(`sip:carol@${DOMAIN}`, { onProgress: (status) => progress.push(status) });
    assert.deepEqual(outcome, { status: 200, reason: 'OK' });
    assert.deepEqual(progress, [100, 180, 200]);
    assert.equal(carolCalls.length, 1);
    assert.equal(carolCalls[0]!.invite.headers.get('referred-by'), `<sip:alice@${DOMAIN}>`);
    assert.equal(bobsNewCall!.state, 'Confirmed');
    assert.equal(await call.bye(), 200, 'the transferor hangs up once the transfer succeeded');
    assert.equal(await bobsNewCall!.bye(), 200);
  } finally {
    await phones.close();
  }
});

test('attended transfer: the INVITE with Replaces takes the place of Alice\'s call with Carol, which Carol ends with BYE', async () => {
  const carolCalls: InviteSession[] = [];
  const phones = await threePhones({
    alice: {},
    bob: { onInvite: (s) => s.accept(sdp(40012)), onRefer: (transfer) => transfer.call({ sdp: sdp(40014) }) },
    carol: {
      onInvite: (s) => {
        carolCalls.push(s);
        s.accept(sdp(40016));
      },
    },
  });
  try {
    const toBob = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: sdp(40010) });
    const toCarol = await phones.alice.call(`sip:carol@${DOMAIN}`, { sdp: sdp(40018) });
    assert.equal((await toBob.answered).status, 200);
    assert.equal((await toCarol.answered).status, 200);
    await until(() => !carolCalls[0]!.awaitingAck);
    const outcome = await toBob.refer(`sip:carol@${DOMAIN}`, { replacing: toCarol });
    assert.equal(outcome.status, 200);
    assert.equal(carolCalls.length, 2);
    assert.equal(carolCalls[1]!.replaces, carolCalls[0], 'Carol knows which call the new one replaces');
    assert.deepEqual(await toCarol.ended, { by: 'remote', reason: 'BYE received' });
    assert.equal(await toBob.bye(), 200);
    assert.equal(await carolCalls[1]!.bye(), 200);
  } finally {
    await phones.close();
  }
});

test('a UA that follows no transfers declines a REFER with 603; an INVITE replacing an unknown dialog gets 481', async () => {
  const phones = await threePhones({ alice: {}, bob: { onInvite: (s) => s.accept(sdp(40022)) }, carol: { onInvite: (s) => s.accept(sdp(40024)) } });
  try {
    const call = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: sdp(40020) });
    assert.equal((await call.answered).status, 200);
    const outcome = await call.refer(`sip:carol@${DOMAIN}`);
    assert.equal(outcome.status, 603);
    assert.equal(call.state, 'Confirmed', 'the call goes on');
    const bogus = await phones.alice.call(`sip:carol@${DOMAIN}`, { sdp: sdp(40026), headers: [['Replaces', 'nope@x;to-tag=1;from-tag=2']] });
    assert.equal((await bogus.answered).status, 481);
    await call.bye();
  } finally {
    await phones.close();
  }
});

test('RFC 5057: a transferee that hangs up as soon as the target answers (as Twinkle does) still reports the outcome; the dialog lasts until it has', async () => {
  const phones = await threePhones({
    alice: {},
    bob: {
      onInvite: (s) => s.accept(sdp(40032)),
      onRefer: async (transfer) => {
        const call = await transfer.call({ sdp: sdp(40034) });
        // Hang up on the transferor the moment the target answers, before the final NOTIFY is through.
        void call.answered.then(() => transfer.session.bye());
        return call;
      },
    },
    carol: { onInvite: (s) => s.accept(sdp(40036)) },
  });
  try {
    const call = await phones.alice.call(`sip:bob@${DOMAIN}`, { sdp: sdp(40030) });
    assert.equal((await call.answered).status, 200);
    const outcome = await call.refer(`sip:carol@${DOMAIN}`);
    assert.deepEqual(outcome, { status: 200, reason: 'OK' });
    assert.deepEqual(await call.ended, { by: 'remote', reason: 'BYE received' });
    await until(() => phones.alice.dialogs.size === 0);
    assert.equal(phones.alice.sessions.size, 0, 'the dialog went once the subscription ended');
  } finally {
    await phones.close();
  }
});
