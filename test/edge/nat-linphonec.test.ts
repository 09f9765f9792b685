/**
 * Issue 13, NAT with linphonec: hank's linphonec lives at 192.168.77.11 behind the MASQUERADE NAT, bob's baresip on
 * the public network. Out of the box liblinphone gets past the NAT by itself (it re-registers with the received/rport
 * of its REGISTER's answer as Contact and uses its pub-GRUU as dialog Contact), so that test guards what works today.
 * As a plain phone (NAT helper and GRUU off) it depends on the proxy, as baresip does.
 */
import { test } from 'node:test';
import path from 'node:path';
import { LinphonecNs } from '../helpers/linphonec-ns.js';
import type { Baresip } from '../helpers/baresip.js';
import { DOMAIN, establishedBy, hangUpBy, holdAndResume, inEdgeLab, NAT_OUTSIDE, phone, registered, startSipway, STEP_MS, withTranscript, type EdgeLab } from './lab.js';

async function linphonecBehindNat(el: EdgeLab, plain: boolean): Promise<void> {
  const sipway = await startSipway(el, ['hank', 'bob'], { listen: ['udp:10.213.0.1:5060'] });
  try {
    const hank = await LinphonecNs.start('hank', path.join(el.work, 'hank'), { user: 'hank', domain: DOMAIN, password: 'hank-pw', proxy: 'sip:10.213.0.1:5060', autoAnswer: true, plain }, el.natHost('hank', 11));
    const bob = await phone(el, sipway, el.publicHost('bob', 12), 'bob');
    await withTranscript([hank, bob], sipway.server, async () => {
      await hank.waitRegistered(STEP_MS);
      await registered(sipway.data, 'hank', new RegExp(`^udp:${NAT_OUTSIDE.replace(/\./g, '\\.')}:`));
      await registered(sipway.data, 'bob', /^udp:10\.213\.0\.12:/);
      await hankCallsBob(hank, bob);
      await bobCallsHank(hank, bob);
    });
  } finally {
    await sipway.server.stop();
  }
}

/** hank calls bob; hank holds and resumes, bob holds and resumes; bob hangs up. */
async function hankCallsBob(hank: LinphonecNs, bob: Baresip): Promise<void> {
  let mark = hank.mark();
  hank.send(`call sip:bob@${DOMAIN}`);
  await hank.waitForOutput(/Call \d+ with sip:bob@\S+ connected\./, STEP_MS, mark);
  await establishedBy(bob, 0);
  for (const [command, direction, said] of [['pause', 'sendonly', /is now paused\./], ['resume', 'sendrecv', /Media streams established/]] as const) {
    const bobLog = bob.output().length;
    mark = hank.mark();
    hank.send(command);
    await bob.waitForOutput(new RegExp(`INVITE sip:[^]*?a=${direction}`), STEP_MS, bobLog);
    await hank.waitForOutput(said, STEP_MS, mark);
  }
  await holdAndResume(bob, undefined);
  mark = hank.mark();
  await hangUpBy(bob);
  await hank.waitForOutput(/Call \d+ with sip:bob@\S+ ended/, STEP_MS, mark);
}

/** bob calls hank (auto-answer), hank must get the ACK (his media then runs); hank hangs up. */
async function bobCallsHank(hank: LinphonecNs, bob: Baresip): Promise<void> {
  const mark = hank.mark();
  const bobEvents = bob.events.length;
  const dial = await bob.command('dial', `sip:hank@${DOMAIN}`);
  if (!dial.ok) throw new Error(`bob: dial refused: ${dial.data}`);
  await hank.waitForOutput(/Call \d+ with sip:bob@\S+ connected\./, STEP_MS, mark);
  await establishedBy(bob, bobEvents);
  const sip = hank.sipLog().length;
  await waitFor(() => /\nACK sip:/.test(hank.sipLog().slice(sip - 4000)), `hank never got bob's ACK`);
  const bobLog = bob.output().length;
  hank.send('terminate');
  await bob.waitForEvent('CALL_CLOSED', STEP_MS, (e) => bob.events.indexOf(e) >= bobEvents);
  await bob.waitForOutput(/\nBYE sip:/, STEP_MS, bobLog);
  await hank.waitForOutput(/Call \d+ with sip:bob@\S+ ended/, STEP_MS, mark);
}

async function waitFor(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + STEP_MS;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${STEP_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('NAT: linphonec behind NAT (its NAT helper and GRUU on, as shipped) ↔ public baresip: call, hold, BYE, both directions', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, (el) => linphonecBehindNat(el, false));
});

test('NAT: linphonec behind NAT as a plain phone (no NAT helper, no GRUU) ↔ public baresip: call, hold, BYE, both directions', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, (el) => linphonecBehindNat(el, true));
});
