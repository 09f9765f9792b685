/**
 * Issue 13, WebSocket: walt's JsSIP runs in headless Chromium on a public lab host and registers over ws:// (JsSIP
 * sends reg-id and +sip.instance, so sipway keeps a flow); bob's baresip (ICE, DTLS-SRTP, rtcp-mux: media a browser
 * accepts) on another. Without a GRUU, JsSIP's dialogs carry its Contact `sip:<random>@<random>.invalid;transport=ws;ob`,
 * which only the WebSocket connection it registered on can reach: every request toward walt must go over that
 * connection, never to a DNS lookup of the `.invalid` name. With a GRUU (the control) the dialog Contact is walt's
 * pub-GRUU, which sipway resolves through the location service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { JsSipPhone, type JsSipEvent } from '../helpers/jssip-browser.js';
import type { Baresip } from '../helpers/baresip.js';
import { DOMAIN, establishedBy, hangUpBy, inEdgeLab, PORTS, phone, registered, SERVER, startSipway, STEP_MS, withTranscript, type EdgeLab } from './lab.js';


async function jssipAndBaresip(el: EdgeLab, withoutGruu: boolean, body: (walt: JsSipPhone, bob: Baresip) => Promise<void>): Promise<void> {
  const sipway = await startSipway(el, ['walt', 'bob'], { listen: [`udp:${SERVER}:${PORTS.udp}`, `ws:${SERVER}:${PORTS.ws}`] });
  try {
    const bob = await phone(el, sipway, el.publicHost('bob', 12), 'bob', { webrtc: true });
    const walt = await JsSipPhone.start('walt', el.publicHost('walt', 20), path.join(el.work, 'walt'), {
      uri: `sip:walt@${DOMAIN}`,
      password: 'walt-pw',
      wsUrl: `ws://${SERVER}:${PORTS.ws}`,
      autoAnswer: true,
      withoutGruu,
    }).catch(async (e: unknown) => {
      await bob.stop();
      throw e;
    });
    await withTranscript([walt, bob], sipway.server, async () => {
      await walt.waitForEvent('registered', STEP_MS);
      await registered(sipway.data, 'walt', /^ws:10\.213\.0\.20:/);
      assert.ok(
        walt.events.some((e) => e.type === 'ws-out' && /^REGISTER [^]*?Contact: <sip:\w+@\w+\.invalid;transport=ws>/.test(e.data ?? '')),
        'JsSIP registers its .invalid Contact',
      );
      await registered(sipway.data, 'bob', /^udp:10\.213\.0\.12:/);
      await body(walt, bob);
    });
  } finally {
    await sipway.server.stop();
  }
}

/** Index of the next event, for waits on what happens after now. */
function mark(walt: JsSipPhone): number {
  return walt.events.length;
}

function after(walt: JsSipPhone, since: number): (e: JsSipEvent) => boolean {
  return (e) => walt.events.indexOf(e) >= since;
}

/** walt dials bob, bob answers; walt's session is confirmed (he got the 200 and sent the ACK), bob's established. */
async function waltCallsBob(walt: JsSipPhone, bob: Baresip): Promise<void> {
  const w = mark(walt);
  const b = bob.events.length;
  await walt.call(`sip:bob@${DOMAIN}`);
  await walt.waitForEvent('confirmed', STEP_MS, after(walt, w));
  await establishedBy(bob, b);
}

/** bob dials walt, walt answers; walt's session is confirmed only by bob's ACK reaching him. */
async function bobCallsWalt(walt: JsSipPhone, bob: Baresip): Promise<void> {
  const w = mark(walt);
  const b = bob.events.length;
  const dial = await bob.command('dial', `sip:walt@${DOMAIN}`);
  assert.ok(dial.ok, `bob: dial refused: ${dial.data}`);
  await establishedBy(bob, b);
  await walt.waitForEvent('confirmed', STEP_MS, after(walt, w));
}

/** bob's BYE must reach walt (his session ends by the remote side) and get walt's 200. */
async function bobHangsUp(walt: JsSipPhone, bob: Baresip): Promise<void> {
  const w = mark(walt);
  await hangUpBy(bob);
  const ended = await walt.waitForEvent('ended', STEP_MS, after(walt, w));
  assert.equal(ended.originator, 'remote', `walt's call ended by bob's BYE: ${JSON.stringify(ended)}`);
}

/** walt's BYE must reach bob (his call closes by it) and walt must get bob's 200. */
async function waltHangsUp(walt: JsSipPhone, bob: Baresip): Promise<void> {
  const w = mark(walt);
  const b = bob.events.length;
  await walt.hangup();
  await walt.waitForEvent('ws-in', STEP_MS, (e) => after(walt, w)(e) && /^SIP\/2\.0 200 [^]*?CSeq: \d+ BYE/.test(e.data ?? ''));
  const closed = await bob.waitForEvent('CALL_CLOSED', STEP_MS, (e) => bob.events.indexOf(e) >= b);
  assert.match(closed.param ?? '', /reset by peer/i, `bob's call was closed by walt's BYE: ${JSON.stringify(closed)}`);
}

test('WebSocket control: JsSIP with a GRUU ↔ baresip, calls both ways, BYE from each side', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, (el) =>
    jssipAndBaresip(el, false, async (walt, bob) => {
      await waltCallsBob(walt, bob);
      await bobHangsUp(walt, bob);
      await bobCallsWalt(walt, bob);
      await waltHangsUp(walt, bob);
    }),
  );
});

test('WebSocket: JsSIP without GRUU calls baresip; baresip hangs up; JsSIP calls again and hangs up', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, (el) =>
    jssipAndBaresip(el, true, async (walt, bob) => {
      await waltCallsBob(walt, bob);
      await bobHangsUp(walt, bob);
      await waltCallsBob(walt, bob);
      await waltHangsUp(walt, bob);
    }),
  );
});

test('WebSocket: baresip calls JsSIP without GRUU (the ACK must reach it); JsSIP hangs up; baresip calls again and hangs up', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, (el) =>
    jssipAndBaresip(el, true, async (walt, bob) => {
      await bobCallsWalt(walt, bob);
      await waltHangsUp(walt, bob);
      await bobCallsWalt(walt, bob);
      await bobHangsUp(walt, bob);
    }),
  );
});
