/**
 * Twinkle (Debian 12: twinkle-console 1.10.2, a real SIP phone driven through its console; test/helpers/twinkle.ts)
 * against an in-process sipway (registrar + record-routing proxy, digest for REGISTER and INVITE) and sipway's own
 * UserAgent: Twinkle registers; the UA calls Twinkle, which answers and hangs up; Twinkle calls the UA, which answers
 * and hangs up; Twinkle holds the UA and takes it off hold by re-INVITE.
 *
 * Twinkle escapes an upper-case Z of a URI user part as %5a (see the helper), flow tokens in sipway's Record-Route
 * included; the last test makes a token with a Z and checks that sipway reads it unescaped (RFC 3261 §19.1.4).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import { createAnswer, createOffer, PCMU } from '../../src/sdp/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { FlowTokens } from '../../src/transport/index.js';
import { UserAgent, type InviteSession, type RegistrationClient } from '../../src/ua/index.js';
import { freePort, skipWithout } from '../helpers/process.js';
import { startTwinkle, type Twinkle } from '../helpers/twinkle.js';

const DOMAIN = 'sipway.test';
/** alice: sipway's UserAgent; bob: Twinkle. */
const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret' } as const;
/** Every single wait (an answer, a line Twinkle prints, a session ending). */
const STEP_MS = 5000;
const UA_MEDIA = { address: '127.0.0.1', port: 40100, codecs: [PCMU] };

/** `promise`, or a rejection naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, what: string, ms = STEP_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every 10 ms until it holds; false when `ms` passed first. */
async function until(condition: () => boolean, ms = STEP_MS): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

async function addUsers(ts: TestServer): Promise<void> {
  for (const [user, pw] of Object.entries(PASSWORDS)) {
    await ts.server.subscribers.put({
      username: user,
      domain: DOMAIN,
      ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'),
      ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'),
      groups: [],
      createdAt: Date.now(),
    });
  }
}

/** alice, answering every call at once (180, then 200 with a PCMU answer to Twinkle's offer). */
async function startAlice(ts: TestServer, calls: InviteSession[], port = 0): Promise<{ ua: UserAgent; registration: RegistrationClient }> {
  const ua = await UserAgent.start({
    aor: `sip:alice@${DOMAIN}`,
    credentials: { username: 'alice', password: PASSWORDS.alice },
    proxy: { transport: 'udp', address: '127.0.0.1', port: ts.port },
    listen: { transport: 'udp', host: '127.0.0.1', port },
    onInvite: (s) => {
      calls.push(s);
      s.ring();
      const answer = createAnswer(s.remoteSdp ?? '', UA_MEDIA);
      if (answer.ok) s.accept(answer.sdp);
      else s.reject(answer.status, answer.reason);
    },
  });
  const registration = ua.registration({ expires: 600 });
  const result = await within(registration.register(), 'alice\'s REGISTER');
  assert.equal(result.status, 200, `alice registered: ${JSON.stringify(result)}`);
  return { ua, registration };
}

describe('Twinkle (twinkle-console 1.10.2) at sipway, with sipway\'s user agent at the other end', { skip: skipWithout('twinkle-console') }, () => {
  let ts: TestServer | undefined;
  let twinkle: Twinkle | undefined;
  let alice: UserAgent | undefined;
  let registration: RegistrationClient | undefined;
  const calls: InviteSession[] = [];

  /** Runs `body`; a failure comes back with Twinkle's output and SIP log. */
  async function explained(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${twinkle?.transcript() ?? '(twinkle not started)'}`, { cause: e });
    }
  }

  before(async () => {
    ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, proxy: { authenticateCallers: true } });
    await addUsers(ts);
    twinkle = await startTwinkle({ user: 'bob', password: PASSWORDS.bob, domain: DOMAIN, proxyPort: ts.port });
    ({ ua: alice, registration } = await startAlice(ts, calls));
  });

  after(async () => {
    registration?.stop();
    // Twinkle first: its quit unregisters at the server.
    await twinkle?.stop();
    await alice?.stop();
    await ts?.stop();
  });

  test('Twinkle registers with digest: sipway\'s location store holds its Contact', { timeout: 15000 }, () =>
    explained(async () => {
      const bindings = await ts!.server.location.lookup(`sip:bob@${DOMAIN}`);
      assert.equal(bindings.length, 1, JSON.stringify(bindings));
      assert.match(bindings[0]!.contact, new RegExp(`^sip:bob@127\\.0\\.0\\.1:${twinkle!.sipPort}(;transport=udp)?$`));
      assert.match(bindings[0]!.userAgent ?? '', /^Twinkle\//);
      const registers = twinkle!.sipTrace().filter((m) => m.direction === 'out' && m.text.startsWith('REGISTER '));
      assert.ok(registers.some((m) => /^Authorization: Digest [^\n]*username="bob"/m.test(m.text)), 'Twinkle answered the 401');
    }));

  test('the UA calls Twinkle: Twinkle answers (200 to the UA, ACK to Twinkle), Twinkle hangs up: the UA session ends by the remote', { timeout: 30000 }, () =>
    explained(async () => {
      const since = twinkle!.mark();
      const call = await alice!.call(`sip:bob@${DOMAIN}`, { sdp: createOffer(UA_MEDIA) });
      await twinkle!.waitFor(/Line 1: incoming call\s+From:\s+sip:alice@sipway\.test/, STEP_MS, since);
      twinkle!.send('answer');
      assert.deepEqual(await within(call.answered, 'the answer to the UA\'s INVITE'), { status: 200, reason: 'OK' });
      assert.equal(call.state, 'Confirmed');
      assert.match(call.remoteSdp ?? '', new RegExp(`m=audio ${twinkle!.rtpPort} RTP/AVP 0[ \\r\\n]`), 'Twinkle answered with PCMU on its line 1 RTP port');
      await twinkle!.waitFor(/Line 1: call established\./, STEP_MS, since);
      twinkle!.send('bye');
      assert.deepEqual(await within(call.ended, 'the UA session ending'), { by: 'remote', reason: 'BYE received' });
      await twinkle!.waitFor(/Line 1: call ended\./, STEP_MS, since);
      assert.equal(alice!.sessions.size + alice!.dialogs.size, 0, 'no session or dialog left on the UA');
    }));

  test('Twinkle calls the UA (407 answered, UA answers), the UA hangs up with BYE: Twinkle reports the far end released', { timeout: 30000 }, () =>
    explained(async () => {
      const since = twinkle!.mark();
      const before = calls.length;
      await twinkle!.call(`sip:alice@${DOMAIN}`);
      await twinkle!.waitFor(/Line 1: far end answered call\./, STEP_MS, since);
      assert.equal(calls.length, before + 1, 'one call reached the UA');
      const session = calls[before]!;
      assert.equal(session.state, 'Confirmed');
      assert.match(session.remoteSdp ?? '', new RegExp(`m=audio ${twinkle!.rtpPort} RTP/AVP [^\\r\\n]*\\b0\\b`), 'Twinkle offered PCMU');
      assert.ok(await until(() => !session.awaitingAck), 'Twinkle\'s ACK reached the UA and stopped its 2xx');
      const invites = twinkle!.sipTrace().filter((m) => m.direction === 'out' && m.text.startsWith(`INVITE sip:alice@${DOMAIN} `));
      assert.ok(invites.some((m) => /^Proxy-Authorization: Digest [^\n]*username="bob"/m.test(m.text)), 'Twinkle answered the 407');
      assert.equal(await within(session.bye(), 'the UA\'s BYE'), 200);
      assert.deepEqual(await within(session.ended, 'the UA session ending'), { by: 'local', reason: 'BYE sent' });
      await twinkle!.waitFor(/Line 1: far end ended call\./, STEP_MS, since);
    }));

  test('Twinkle holds the UA (re-INVITE a=sendonly): held becomes true; retrieve (a=sendrecv): false; Twinkle hangs up', { timeout: 30000 }, () =>
    explained(async () => {
      let since = twinkle!.mark();
      const before = calls.length;
      await twinkle!.call(`sip:alice@${DOMAIN}`);
      await twinkle!.waitFor(/Line 1: far end answered call\./, STEP_MS, since);
      const session = calls[before]!;
      assert.ok(await until(() => !session.awaitingAck), 'the call is confirmed on both sides');
      const changes: boolean[] = [];
      session.onChange = () => changes.push(session.held);

      since = twinkle!.mark();
      twinkle!.send('hold');
      assert.ok(await until(() => session.held), `the UA session is held (changes: ${changes.join(',')})`);
      assert.match(session.remoteSdp ?? '', /a=sendonly/, 'Twinkle\'s hold offer is sendonly (hold_variant=rfc3264)');
      assert.match(session.localSdp ?? '', /a=recvonly/, 'the UA answered recvonly');
      await twinkle!.waitFor(/Line 1: re-INVITE successful\./, STEP_MS, since);
      assert.ok(await until(() => !session.awaitingAck), 'the ACK for the hold re-INVITE reached the UA');

      since = twinkle!.mark();
      twinkle!.send('retrieve');
      assert.ok(await until(() => !session.held), `the UA session is off hold (changes: ${changes.join(',')})`);
      assert.doesNotMatch(session.remoteSdp ?? '', /a=(sendonly|inactive)/, 'Twinkle\'s retrieve offer sends again');
      await twinkle!.waitFor(/Line 1: re-INVITE successful\./, STEP_MS, since);
      assert.deepEqual(changes, [true, false], 'onChange saw the hold and the retrieve');

      twinkle!.send('bye');
      assert.deepEqual(await within(session.ended, 'the UA session ending'), { by: 'remote', reason: 'BYE received' });
    }));
});

describe('Twinkle at sipway with flow tokens in the Record-Route', { skip: skipWithout('twinkle-console') }, () => {
  test(
    'a flow token with a Z, escaped %5a by Twinkle in its 2xx, still routes the UA\'s ACK to Twinkle',
    { timeout: 30000 },
    async () => {
      // The Record-Route value facing the UA carries the UA's flow: with the ports fixed beforehand, a secret can be
      // picked that makes that token contain a Z.
      const serverPort = await freePort();
      const alicePort = await freePort();
      const aliceFlow = { transport: 'udp' as const, address: '127.0.0.1', port: alicePort, localAddress: '127.0.0.1', localPort: serverPort };
      let secret = '';
      for (let i = 0; i < 1000 && secret === ''; i++) {
        const candidate = `twinkle-flow-token-secret-${i}`;
        if (new FlowTokens(candidate).encode(aliceFlow).includes('Z')) secret = candidate;
      }
      assert.notEqual(secret, '', 'a secret that puts a Z into the token');
      const ts = await startTestServer({
        listen: [`udp:127.0.0.1:${serverPort}`],
        domains: [DOMAIN],
        auth: { register: true },
        proxy: { authenticateCallers: true },
        nat: { flowTokens: true, flowTokenSecret: secret },
      });
      let twinkle: Twinkle | undefined;
      let alice: { ua: UserAgent; registration: RegistrationClient } | undefined;
      try {
        await addUsers(ts);
        twinkle = await startTwinkle({ user: 'bob', password: PASSWORDS.bob, domain: DOMAIN, proxyPort: ts.port });
        alice = await startAlice(ts, [], alicePort);
        const since = twinkle.mark();
        const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: createOffer(UA_MEDIA) });
        await twinkle.waitFor(/Line 1: incoming call/, STEP_MS, since);
        twinkle.send('answer');
        assert.equal((await within(call.answered, 'the answer to the UA\'s INVITE')).status, 200);
        const routes = call.dialog!.routeSet.map(String);
        assert.ok(routes.some((r) => /^<?sip:ft\.[^@]*%5a/i.test(r)), `precondition: Twinkle sent a flow token back with its Z escaped: ${routes.join(' | ')}`);
        await twinkle.waitFor(/Line 1: call established\./, STEP_MS, since);
        twinkle.send('bye');
        assert.equal((await within(call.ended, 'the UA session ending')).by, 'remote');
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${twinkle?.transcript() ?? ''}`, { cause: e });
      } finally {
        alice?.registration.stop();
        await twinkle?.stop();
        await alice?.ua.stop();
        await ts.stop();
      }
    },
  );
});
