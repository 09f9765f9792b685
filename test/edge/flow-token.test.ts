/**
 * Issue 13, forged flow tokens: once sipway puts a flow token in its Record-Route (RFC 5626 §5.3), a request whose
 * Route carries that token goes over the flow it names, e.g. through gina's NAT mapping. The token is authenticated,
 * so a Route with a tampered token must get no request delivered. mallory, a raw UDP client on the public network,
 * copies the route set bob learnt in his call to gina: with the genuine Record-Route value facing gina her
 * mid-dialog OPTIONS reaches gina (as bob's in-dialog requests would); with the tokens altered it reaches nobody and
 * is refused.
 *
 * The token's format is the fix's to choose: the tampering changes the user part of each Record-Route entry naming
 * sipway (or adds one, where there is none) and one character of every parameter value other than lr/transport.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Baresip } from '../helpers/baresip.js';
import type { NetHost } from '../helpers/netns.js';
import { DOMAIN, establishedBy, inEdgeLab, NAT_OUTSIDE, phone, registered, SERVER, startSipway, STEP_MS, withTranscript } from './lab.js';

/** The last 200 to an INVITE in a baresip's trace, as text. */
function last200ToInvite(b: Baresip): string {
  const blocks = b.output().split(/\n(?=SIP\/2\.0 |[A-Z]+ sip:)/);
  const found = blocks.filter((m) => /^SIP\/2\.0 200 /.test(m) && /^CSeq: \d+ INVITE/m.test(m)).at(-1);
  assert.ok(found, `${b.name} never received a 200 to an INVITE`);
  return found;
}

function headerValues(message: string, name: string): string[] {
  return [...message.matchAll(new RegExp(`^${name}:\\s*(.*?)\\r?$`, 'gim'))].flatMap((m) => m[1]!.split(/(?<=>)\s*,\s*(?=<)/));
}

/** `uri` (a name-addr naming sipway) with its user part and extra parameter values altered. */
function tamper(entry: string): string {
  const flip = (s: string): string => s.slice(0, -1) + (s.at(-1) === 'A' ? 'B' : 'A');
  return entry
    .replace(/sip:(?:([^@;>]+)@)?/, (_m, user: string | undefined) => `sip:${user ? flip(user) : 'forged'}@`)
    .replace(/;(?!lr\b|transport=)([\w.-]+)=([^;>]+)/g, (_m, k: string, v: string) => `;${k}=${flip(v)}`);
}

function options(ruri: string, route: string[], mallory: NetHost, callId: string): string {
  return [
    `OPTIONS ${ruri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${mallory.address}:5060;branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
    'Max-Forwards: 70',
    ...route.map((r) => `Route: ${r}`),
    `From: <sip:mallory@${DOMAIN}>;tag=${randomBytes(4).toString('hex')}`,
    // A To tag makes it a mid-dialog request for the proxy (routed by its Route set, not challenged); gina has no
    // such dialog and answers 481, which still shows that it reached her.
    `To: <sip:gina@${DOMAIN}>;tag=${randomBytes(4).toString('hex')}`,
    `Call-ID: ${callId}`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** The final status mallory got, or undefined. */
function finalStatus(replies: Array<{ data: string }>): number | undefined {
  const finals = replies.map((r) => Number(/^SIP\/2\.0 (\d{3})/.exec(r.data)?.[1])).filter((s) => s >= 200);
  return finals[0];
}

test('a forged flow token gets no request delivered; the genuine route set does reach the phone behind NAT', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, async (el) => {
    const sipway = await startSipway(el, ['gina', 'bob'], { listen: [`udp:${SERVER}:5060`] });
    try {
      const gina = await phone(el, sipway, el.natHost('gina', 10), 'gina');
      const bob = await phone(el, sipway, el.publicHost('bob', 12), 'bob');
      const mallory = el.publicHost('mallory', 66);
      await withTranscript([gina, bob], sipway.server, async () => {
        await registered(sipway.data, 'gina', new RegExp(`^udp:${NAT_OUTSIDE.replace(/\./g, '\\.')}:`));
        await registered(sipway.data, 'bob', /^udp:10\.213\.0\.12:/);
        const before = bob.events.length;
        const dial = await bob.command('dial', `sip:gina@${DOMAIN}`);
        assert.ok(dial.ok, `bob: dial refused: ${dial.data}`);
        await establishedBy(bob, before);
        const ok = last200ToInvite(bob);
        const routeSet = headerValues(ok, 'Record-Route').reverse();
        const target = /<([^>]+)>/.exec(headerValues(ok, 'Contact')[0] ?? '')?.[1];
        assert.ok(target && routeSet.length > 0, `bob's 200 has a Contact and a Record-Route:\n${ok}`);
        const ours = (r: string): boolean => r.includes(`@${SERVER}`) || r.includes(`sip:${SERVER}`);
        const forged = routeSet.map((r) => (ours(r) ? tamper(r) : r));

        const forgedCall = `forged-${randomBytes(6).toString('hex')}`;
        const forgedReplies = await mallory.udpExchange(SERVER, 5060, options(target, forged, mallory, forgedCall), 3000);
        assert.ok(!gina.output().includes(forgedCall), `the forged route set (${forged.join(', ')}) delivered mallory's OPTIONS to gina`);
        const refused = finalStatus(forgedReplies);
        assert.ok(refused !== undefined && refused >= 400, `the forged route set is refused (got ${refused ?? 'no final answer'}): ${forgedReplies.map((r) => r.data.split('\r\n')[0]).join(' | ')}`);

        // RFC 5626 §5.3 judges the topmost Route: bob's route set starts with the value carrying bob's own flow, which
        // sends a request that does not come from bob back to bob. The value facing gina, alone, carries hers.
        const towardsGina = routeSet.filter(ours).slice(-1);
        const genuineCall = `genuine-${randomBytes(6).toString('hex')}`;
        const genuineReplies = await mallory.udpExchange(SERVER, 5060, options(target, towardsGina, mallory, genuineCall), STEP_MS);
        assert.ok(gina.output().includes(genuineCall), `the genuine route value (${towardsGina.join(', ')}) did not deliver mallory's OPTIONS to gina (answers: ${genuineReplies.map((r) => r.data.split('\r\n')[0]).join(' | ') || 'none'})`);
        assert.ok(!bob.output().includes(forgedCall), 'nothing forged reached bob either');
        assert.ok(finalStatus(genuineReplies) !== undefined, 'gina answers the OPTIONS that reached her');
      });
    } finally {
      await sipway.server.stop();
    }
  });
});
