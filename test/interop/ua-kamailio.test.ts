/**
 * sipway's user agent (UserAgent, InviteSession) against Kamailio 5.6 as registrar and record-routing stateful proxy
 * (test/interop/kamailio/ua-registrar.cfg: usrloc in memory, REGISTER challenged 401 and INVITE 407 with qop=auth,
 * lookup("location") then t_relay). Alice and Bob register with digest; Alice calls Bob through Kamailio; the dialog's
 * route set is Kamailio's Record-Route, and every in-dialog request (ACK, re-INVITE for hold and resume, UPDATE, INFO,
 * BYE) goes through it both ways; a call to a user without a binding gets Kamailio's 404, and so does a call to Bob
 * once he has unregistered.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAnswer, createOffer, PCMU } from '../../src/sdp/index.js';
import { UserAgent, type InviteSession, type RegistrationClient } from '../../src/ua/index.js';
import type { SipRequest } from '../../src/message/index.js';
import { skipWithout } from '../helpers/process.js';
import { startKamailio, type RunningKamailio } from '../helpers/kamailio.js';
import { until as pollUntil, within as waitWithin } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret' } as const;
/** Every single wait of the test (an answer, an ACK arriving, a session ending). */
const STEP_MS = 5000;
/** What the config's registrar grants at most (modparam registrar max_expires). */
const MAX_EXPIRES = 300;

let work = '';
let kamailio: RunningKamailio | undefined;

/** `promise`, or a rejection naming `what` after STEP_MS (or `ms`). */
const within = <T>(promise: Promise<T>, what: string, ms = STEP_MS): Promise<T> => waitWithin(promise, what, ms);

/** Polls `condition` until it holds; false when STEP_MS (or `ms`) passed first. */
const until = (condition: () => boolean, ms = STEP_MS): Promise<boolean> => pollUntil(condition, ms);

/**
 * Kamailio's log lines (xlog 'ua-registrar: in ...') for the requests it received with method `method`. Its log comes
 * through a pipe, possibly after the reply: assertions on it wait with `until`.
 */
function received(method: string): string[] {
  return (kamailio?.output() ?? '').split('\n').filter((l) => l.includes(`ua-registrar: in ${method} `));
}

/** Runs `body`; a failure comes back with Kamailio's log appended. */
async function withKamailioLog(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- kamailio (tail) ---\n${kamailio?.output().slice(-8000) ?? '(not started)'}`, { cause: e });
  }
}

function phone(user: keyof typeof PASSWORDS, onInvite?: (s: InviteSession) => void): Promise<UserAgent> {
  return UserAgent.start({
    aor: `sip:${user}@${DOMAIN}`,
    credentials: { username: user, password: PASSWORDS[user] },
    proxy: { transport: 'udp', address: '127.0.0.1', port: kamailio!.port },
    listen: { transport: 'udp', host: '127.0.0.1', port: 0 },
    onInvite,
  });
}

describe('sipway user agents through Kamailio 5.6 (registrar + record-routing proxy, digest)', { skip: skipWithout('kamailio') }, () => {
  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'sipway-ua-kamailio-'));
    // NEXT_HOP is a define the helper passes to every config; ua-registrar.cfg routes by its location table instead.
    kamailio = await startKamailio('ua-registrar.cfg', path.join(work, 'kamailio'), 'sip:127.0.0.1');
  });

  after(async () => {
    await kamailio?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('register with digest, call through Kamailio (route set, hold/resume, UPDATE, INFO, BYE from the callee), unregister', { timeout: 40000 }, async () => {
    const agents: UserAgent[] = [];
    const registrations: RegistrationClient[] = [];
    try {
      await withKamailioLog(async () => {
        const kam = `127.0.0.1:${kamailio!.port}`;
        const bobMedia = { address: '127.0.0.1', port: 40002, codecs: [PCMU] };
        let callee: InviteSession | undefined;
        const infos: SipRequest[] = [];
        const bob = await phone('bob', (s) => {
          callee = s;
          s.onInfo = (request) => {
            infos.push(request);
            return 200;
          };
          s.ring();
          const answer = createAnswer(s.remoteSdp ?? '', bobMedia);
          if (answer.ok) s.accept(answer.sdp);
          else s.reject(answer.status, answer.reason);
        });
        agents.push(bob);
        const alice = await phone('alice');
        agents.push(alice);

        // REGISTER: 401, then 200 granting Kamailio's maximum to the Contact we sent (it is listed in the 200).
        for (const [name, ua] of [['alice', alice], ['bob', bob]] as const) {
          const registration = ua.registration({ expires: 600 });
          registrations.push(registration);
          const result = await within(registration.register(), `${name}'s REGISTER`);
          assert.equal(result.status, 200, `${name} registered: ${JSON.stringify(result)}`);
          assert.equal(result.expires, MAX_EXPIRES, `${name}'s Contact is in the 200 with the registrar's grant: ${JSON.stringify(result)}`);
          assert.equal(registration.state, 'Registered');
          const port = ua.transport.listeners()[0]!.port;
          const saved = `saved binding of sip:${name}@${DOMAIN}: <<sip:${name}@127.0.0.1:${port}>>`;
          assert.ok(await until(() => kamailio!.output().includes(saved)), `Kamailio logged '${saved}'`);
        }
        const aliceCredentials = (l: string): boolean => /auth=<Digest [^>]*username="alice"/.test(l);
        assert.ok(await until(() => received('REGISTER').some(aliceCredentials)), `alice's REGISTER carried credentials:\n${received('REGISTER').join('\n')}`);

        // INVITE: 407 from Kamailio answered with alice's credentials, lookup, relayed to bob, who rings and answers.
        const offer = createOffer({ address: '127.0.0.1', port: 40000, codecs: [PCMU] });
        const call = await alice.call(`sip:bob@${DOMAIN}`, { sdp: offer });
        assert.deepEqual(await within(call.answered, 'the answer to alice\'s INVITE'), { status: 200, reason: 'OK' });
        assert.equal(call.state, 'Confirmed');
        assert.ok(callee !== undefined, 'bob got the call');
        assert.equal(callee.state, 'Confirmed');
        assert.match(call.remoteSdp ?? '', /m=audio 40002 RTP\/AVP 0/, 'bob\'s answer came back through Kamailio');
        assert.equal(callee.remoteSdp, offer, 'bob got alice\'s offer unchanged');
        assert.ok(await until(() => !callee!.awaitingAck), 'the ACK for the 2xx went through Kamailio and stopped bob\'s retransmissions');
        const aliceProxyCredentials = (l: string): boolean => /pauth=<Digest [^>]*username="alice"/.test(l);
        assert.ok(await until(() => received('INVITE').some(aliceProxyCredentials)), `alice answered the 407:\n${received('INVITE').join('\n')}`);
        assert.equal(callee.invite.headers.has('proxy-authorization'), false, 'Kamailio consumed the credentials before relaying');

        // The route set on both sides is Kamailio's Record-Route (loose routing).
        const aliceRoutes = call.dialog!.routeSet.map(String);
        const bobRoutes = callee.dialog!.routeSet.map(String);
        assert.ok(aliceRoutes.length === 1 && aliceRoutes[0]!.includes(kam) && aliceRoutes[0]!.includes(';lr'), `alice's route set is Kamailio: ${aliceRoutes.join(' | ')}`);
        assert.deepEqual(bobRoutes, aliceRoutes, 'bob\'s route set is the same single Record-Route');
        assert.equal(call.dialog!.remoteTarget.toString(), `sip:bob@127.0.0.1:${bob.transport.listeners()[0]!.port}`, 'alice\'s remote target is bob\'s Contact');

        // Hold and resume: re-INVITEs through Kamailio, bob sees held flip and ACKs reach him.
        assert.deepEqual(await within(call.hold(), 'alice\'s hold re-INVITE'), { status: 200, reason: 'OK' });
        assert.equal(callee.held, true, 'bob is held');
        assert.match(call.remoteSdp ?? '', /a=recvonly/, 'bob answered the hold recvonly');
        assert.ok(await until(() => !callee!.awaitingAck), 'the ACK for the hold re-INVITE reached bob');
        assert.deepEqual(await within(call.resume(), 'alice\'s resume re-INVITE'), { status: 200, reason: 'OK' });
        assert.equal(callee.held, false, 'bob is taken off hold');
        assert.match(call.remoteSdp ?? '', /a=sendrecv/);
        assert.ok(await until(() => !callee!.awaitingAck), 'the ACK for the resume re-INVITE reached bob');

        // UPDATE from bob (his route set: Kamailio) with a new offer: alice answers, her remote SDP follows.
        const moved = createOffer({ ...bobMedia, port: 40012 });
        assert.deepEqual(await within(callee.update(moved), 'bob\'s UPDATE'), { status: 200, reason: 'OK' });
        assert.match(call.remoteSdp ?? '', /m=audio 40012 /, 'alice took bob\'s new port from the UPDATE');
        assert.match(callee.remoteSdp ?? '', /m=audio 40000 /, 'alice answered the UPDATE');

        // INFO from alice.
        const dtmf = 'Signal=5\r\nDuration=160\r\n';
        assert.equal(await within(call.info(dtmf, 'application/dtmf-relay'), 'alice\'s INFO'), 200);
        assert.equal(infos.length, 1);
        assert.equal(infos[0]!.body.toString(), dtmf);
        assert.equal(infos[0]!.headers.get('content-type'), 'application/dtmf-relay');

        // Every in-dialog request went through Kamailio with its Route (loose_route).
        for (const method of ['ACK', 'UPDATE', 'INFO']) {
          const routed = (): number => received(method).filter((l) => l.includes(`route=<<sip:${kam}`)).length;
          assert.ok(await until(() => routed() >= 1), `an in-dialog ${method} reached Kamailio with its Route:\n${received(method).join('\n')}`);
        }
        const reinvites = (): number => received('INVITE').filter((l) => l.includes(`route=<<sip:${kam}`)).length;
        assert.ok(await until(() => reinvites() >= 2), `both re-INVITEs went along the route set:\n${received('INVITE').join('\n')}`);

        // BYE from bob ends alice's session as 'remote'.
        assert.equal(await within(callee.bye(), 'bob\'s BYE'), 200);
        assert.deepEqual(await within(call.ended, 'alice\'s session ending'), { by: 'remote', reason: 'BYE received' });
        assert.deepEqual(await within(callee.ended, 'bob\'s session ending'), { by: 'local', reason: 'BYE sent' });
        assert.ok(await until(() => received('BYE').some((l) => l.includes(`route=<<sip:${kam}`))), `bob's BYE went along the route set:\n${received('BYE').join('\n')}`);
        assert.equal(alice.sessions.size + bob.sessions.size, 0, 'no session left');
        assert.equal(alice.dialogs.size + bob.dialogs.size, 0, 'no dialog left');

        // Both unregister (Expires 0, answered 200); a call to bob then finds no binding: Kamailio's 404.
        for (const [i, name] of ['alice', 'bob'].entries()) {
          const result = await within(registrations[i]!.unregister(), `${name}'s unregistering REGISTER`);
          assert.deepEqual(result, { status: 200, reason: 'OK', expires: 0 }, `${name} unregistered`);
          assert.equal(registrations[i]!.state, 'Unregistered');
        }
        const late = await alice.call(`sip:bob@${DOMAIN}`, { sdp: offer });
        const lateAnswer = await within(late.answered, 'the answer to a call to bob after he unregistered');
        assert.equal(lateAnswer.status, 404, `no binding left for bob: ${JSON.stringify(lateAnswer)}`);
        assert.equal((await within(late.ended, 'the failed call ending')).by, 'failure');
      });
    } finally {
      for (const r of registrations) r.stop();
      for (const ua of agents) await ua.stop();
    }
  });

  test('a call to a user that is not registered gets Kamailio\'s 404 after the 407 round', { timeout: 20000 }, async () => {
    let alice: UserAgent | undefined;
    try {
      await withKamailioLog(async () => {
        alice = await phone('alice');
        const call = await alice.call(`sip:carol@${DOMAIN}`, { sdp: createOffer({ address: '127.0.0.1', port: 40020, codecs: [PCMU] }) });
        const answer = await within(call.answered, 'the answer to a call to carol');
        assert.deepEqual(answer, { status: 404, reason: 'Not Found' });
        assert.deepEqual(await within(call.ended, 'the failed call ending'), { by: 'failure', reason: '404 Not Found' });
        const toCarol = (): string[] => received('INVITE').filter((l) => l.includes(`sip:carol@${DOMAIN}`));
        await until(() => toCarol().length >= 2);
        assert.equal(toCarol().length, 2, `one INVITE without and one with credentials:\n${toCarol().join('\n')}`);
        assert.match(toCarol()[0]!, /pauth=<<null>>/);
        assert.match(toCarol()[1]!, /pauth=<Digest [^>]*username="alice"/);
      });
    } finally {
      await alice?.stop();
    }
  });
});
