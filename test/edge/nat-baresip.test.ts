/**
 * Issue 13, NAT: gina's baresip lives at 192.168.77.10 behind a MASQUERADE NAT (random source ports), bob's on the
 * public network. Neither uses SIP Outbound (baresip's default): the proxy has only the REGISTER's source to go on.
 * Every request of a dialog toward gina (ACK, re-INVITE, BYE) must reach her through the NAT mapping she registered
 * from, whether she called or was called.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DOMAIN, establish, hangUp, holdAndResume, inEdgeLab, NAT_OUTSIDE, phone, registered, startSipway, STEP_MS, withTranscript, type EdgeLab } from './lab.js';
import type { Baresip } from '../helpers/baresip.js';


async function natPair(el: EdgeLab, body: (gina: Baresip, bob: Baresip) => Promise<void>): Promise<void> {
  const sipway = await startSipway(el, ['gina', 'bob'], { listen: [`udp:10.213.0.1:5060`] });
  try {
    const gina = await phone(el, sipway, el.natHost('gina', 10), 'gina');
    const bob = await phone(el, sipway, el.publicHost('bob', 12), 'bob');
    await withTranscript([gina, bob], sipway.server, async () => {
      await registered(sipway.data, 'gina', new RegExp(`^udp:${NAT_OUTSIDE.replace(/\./g, '\\.')}:`));
      // What the proxy has to cope with: gina names her private address, and nothing helps past the NAT.
      assert.match(gina.output(), /REGISTER sip:[^]*?Contact: <sip:gina-\w+@192\.168\.77\.10:5060>/, 'gina registers her private address as Contact');
      await registered(sipway.data, 'bob', /^udp:10\.213\.0\.12:/);
      await body(gina, bob);
    });
  } finally {
    await sipway.server.stop();
  }
}

/** The callee must get the caller's ACK for its 200 (else it retransmits the 200 and drops the call after 32 s). */
async function ackReaches(callee: Baresip, since: number): Promise<void> {
  await callee.waitForOutput(/\nACK sip:/, STEP_MS, since);
}

test('NAT: gina (behind NAT) calls bob; each holds and resumes; bob hangs up; then gina calls again and hangs up', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, (el) =>
    natPair(el, async (gina, bob) => {
      await establish(gina, bob, `sip:bob@${DOMAIN}`);
      await holdAndResume(gina, bob);
      await holdAndResume(bob, gina);
      await hangUp(bob, gina);
      await establish(gina, bob, `sip:bob@${DOMAIN}`);
      await hangUp(gina, bob);
    }),
  );
});

test('NAT: bob calls gina (behind NAT), the ACK reaches her; each holds and resumes; gina hangs up; then bob calls again and hangs up', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, (el) =>
    natPair(el, async (gina, bob) => {
      let ginaLog = gina.output().length;
      await establish(bob, gina, `sip:gina@${DOMAIN}`);
      await ackReaches(gina, ginaLog);
      await holdAndResume(bob, gina);
      await holdAndResume(gina, bob);
      await hangUp(gina, bob);
      ginaLog = gina.output().length;
      await establish(bob, gina, `sip:gina@${DOMAIN}`);
      await ackReaches(gina, ginaLog);
      await hangUp(bob, gina);
    }),
  );
});
