/**
 * Issue 13, TLS: two baresip phones on public lab hosts register at sipway over TLS (trusting the test CA; they have
 * no certificate of their own, like most phones, so nobody can open a TLS connection *to* them) and call each other.
 * Every request of the dialog must reach the phone over the connection it registered on. A control test over UDP,
 * where the Contact is reachable, shows the lab and the phones work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, establish, hangUp, inEdgeLab, phone, registered, startSipway, STEP_MS, withTranscript, type EdgeLab } from './lab.js';

test('lab control: baresip ↔ baresip over UDP on the public network, each side hangs up once', { timeout: 60000 }, async (t) => {
  await inEdgeLab(t, async (el) => {
    const sipway = await startSipway(el, ['alice', 'bob']);
    try {
      const alice = await phone(el, sipway, el.publicHost('alice', 11), 'alice');
      const bob = await phone(el, sipway, el.publicHost('bob', 12), 'bob');
      await withTranscript([alice, bob], sipway.server, async () => {
        await registered(sipway.data, 'alice', /^udp:10\.213\.0\.11:/);
        await registered(sipway.data, 'bob', /^udp:10\.213\.0\.12:/);
        await establish(alice, bob, `sip:bob@${DOMAIN}`);
        await hangUp(alice, bob);
        await establish(alice, bob, `sip:bob@${DOMAIN}`);
        await hangUp(bob, alice);
      });
    } finally {
      await sipway.server.stop();
    }
  });
});

test('TLS: baresip ↔ baresip, the callee hangs up, then the caller hangs up', { timeout: 60000 }, async (t) => {
  await inEdgeLab(t, async (el) => {
    const sipway = await startSipway(el, ['alice', 'bob']);
    try {
      const alice = await phone(el, sipway, el.publicHost('alice', 11), 'alice', { transport: 'tls' });
      const bob = await phone(el, sipway, el.publicHost('bob', 12), 'bob', { transport: 'tls' });
      await withTranscript([alice, bob], sipway.server, async () => {
        await registered(sipway.data, 'alice', /^tls:10\.213\.0\.11:/);
        await registered(sipway.data, 'bob', /^tls:10\.213\.0\.12:/);
        await establish(alice, bob, `sip:bob@${DOMAIN}`);
        await hangUp(bob, alice);
        await establish(alice, bob, `sip:bob@${DOMAIN}`);
        await hangUp(alice, bob);
      });
    } finally {
      await sipway.server.stop();
    }
  });
});

/**
 * alice calls bob, bob transfers alice to carol (REFER, RFC 3515): alice must get the REFER, call carol, and bob must
 * get the NOTIFYs with the transfer's progress (sipfrag), after which he leaves the call.
 */
async function transfer(el: EdgeLab, transport: 'udp' | 'tls'): Promise<void> {
  const sipway = await startSipway(el, ['alice', 'bob', 'carol']);
  try {
    const alice = await phone(el, sipway, el.publicHost('alice', 11), 'alice', { transport });
    const bob = await phone(el, sipway, el.publicHost('bob', 12), 'bob', { transport });
    const carol = await phone(el, sipway, el.publicHost('carol', 13), 'carol', { transport });
    await withTranscript([alice, bob, carol], sipway.server, async () => {
      for (const [user, n] of [['alice', 11], ['bob', 12], ['carol', 13]] as const) await registered(sipway.data, user, new RegExp(`^${transport}:10\\.213\\.0\\.${n}:`));
      await establish(alice, bob, `sip:bob@${DOMAIN}`);
      const bobLog = bob.output().length;
      const r = await bob.command('transfer', `sip:carol@${DOMAIN}`);
      assert.ok(r.ok, `bob: transfer refused: ${r.data}`);
      await alice.waitForEvent('TRANSFER', STEP_MS);
      await carol.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'incoming');
      await bob.waitForOutput(/message\/sipfrag\s+Content-Length: \d+\s+SIP\/2\.0 200/, STEP_MS, bobLog);
      await bob.waitForEvent('CALL_CLOSED', STEP_MS);
      await hangUp(carol, alice);
    });
  } finally {
    await sipway.server.stop();
  }
}

test('lab control: REFER transfer over UDP on the public network, with its NOTIFYs', { timeout: 60000 }, async (t) => {
  await inEdgeLab(t, (el) => transfer(el, 'udp'));
});

test('TLS: REFER transfer between baresip phones, with its NOTIFYs', { timeout: 60000 }, async (t) => {
  await inEdgeLab(t, (el) => transfer(el, 'tls'));
});
