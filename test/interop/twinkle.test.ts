/**
 * Twinkle (Debian 12: twinkle-console 1.10.2, a real SIP phone driven through its console; test/helpers/twinkle.ts)
 * against an in-process sipway (registrar + record-routing proxy, digest for REGISTER and INVITE) and sipway's own
 * UserAgent: Twinkle registers; the UA calls Twinkle, which answers and hangs up; Twinkle calls the UA, which answers
 * and hangs up; Twinkle holds the UA and takes it off hold by re-INVITE. With ext_100rel=required: Twinkle's reliable
 * 180 PRACKed by the UA, and the UA's reliable 183 (with the answer) PRACKed by Twinkle. Transfers with a second
 * sipway UA (carol): Twinkle as transferee, blind and attended (Replaces), and as transferor (`transfer URI`) with the
 * UA following its REFER. Twinkle as transferee BYEs the transferor before its last NOTIFYs (numbered before that
 * BYE): the UA keeps the dialog for the REFER's subscription (RFC 5057) and takes those NOTIFYs out of order.
 *
 * Twinkle escapes an upper-case Z of a URI user part as %5a (see the helper), flow tokens in sipway's Record-Route
 * included; the last test makes a token with a Z and checks that sipway reads it unescaped (RFC 3261 §19.1.4).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import { createAnswer, createOffer, PCMU } from '../../src/sdp/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { FlowTokens } from '../../src/transport/index.js';
import type { SipResponse } from '../../src/message/index.js';
import { UserAgent, type Answer, type InviteSession, type RegistrationClient, type Transfer, type UserAgentOptions } from '../../src/ua/index.js';
import { freePort, skipWithout } from '../helpers/process.js';
import { headerOf, startTwinkle, type Twinkle, type TwinkleSipMessage } from '../helpers/twinkle.js';
import { until as pollUntil, within as waitWithin } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
/** alice and carol: sipway's UserAgent; bob: Twinkle. */
const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret', carol: 'carol-secret' } as const;
/** Every single wait (an answer, a line Twinkle prints, a session ending). */
const STEP_MS = 5000;
const UA_MEDIA = { address: '127.0.0.1', port: 40100, codecs: [PCMU] };
/** carol's media, and alice's for a second call. */
const CAROL_MEDIA = { address: '127.0.0.1', port: 40110, codecs: [PCMU] };
const UA_MEDIA_2 = { address: '127.0.0.1', port: 40120, codecs: [PCMU] };

/** `promise`, or a rejection naming `what` after STEP_MS (or `ms`). */
const within = <T>(promise: Promise<T>, what: string, ms = STEP_MS): Promise<T> => waitWithin(promise, what, ms);

/** Polls `condition` until it holds; false when STEP_MS (or `ms`) passed first. */
const until = (condition: () => boolean, ms = STEP_MS): Promise<boolean> => pollUntil(condition, ms);

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

/** `user` as a sipway UserAgent registered at `ts` (600 s), with its hooks. */
async function startUser(
  ts: TestServer,
  user: 'alice' | 'carol',
  hooks: Pick<UserAgentOptions, 'onInvite' | 'onRefer'>,
): Promise<{ ua: UserAgent; registration: RegistrationClient }> {
  const ua = await UserAgent.start({
    aor: `sip:${user}@${DOMAIN}`,
    credentials: { username: user, password: PASSWORDS[user] },
    proxy: { transport: 'udp', address: '127.0.0.1', port: ts.port },
    listen: { transport: 'udp', host: '127.0.0.1', port: 0 },
    ...hooks,
  });
  const registration = ua.registration({ expires: 600 });
  const result = await within(registration.register(), `${user}'s REGISTER`);
  assert.equal(result.status, 200, `${user} registered: ${JSON.stringify(result)}`);
  return { ua, registration };
}

/** Answers `s` at once: 180, then 200 with an answer to its offer from `media`. */
function answerWith(s: InviteSession, media: typeof UA_MEDIA): void {
  s.ring();
  const answer = createAnswer(s.remoteSdp ?? '', media);
  if (answer.ok) s.accept(answer.sdp);
  else s.reject(answer.status, answer.reason);
}

/** Runs `body`; a failure comes back with the output and SIP log of the Twinkle `twinkle()` returns. */
async function withTranscript(twinkle: () => Twinkle | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${twinkle()?.transcript(12000) ?? '(twinkle not started)'}`, { cause: e });
  }
}

/** The first line of a traced message. */
function startLine(m: TwinkleSipMessage): string {
  return m.text.split('\n', 1)[0] ?? '';
}

/** The body of a traced message ('' when none). */
function bodyOf(m: TwinkleSipMessage): string {
  const blank = m.text.indexOf('\n\n');
  return blank < 0 ? '' : m.text.slice(blank + 2).trim();
}

/** Messages of Twinkle's trace from index `from` on, in `direction`, whose start line matches `re`. */
function traced(twinkle: Twinkle, from: number, direction: 'in' | 'out', re: RegExp): TwinkleSipMessage[] {
  return twinkle
    .sipTrace()
    .slice(from)
    .filter((m) => m.direction === direction && re.test(startLine(m)));
}

/** The sequence number of a CSeq value (`2 INVITE` → 2). */
function cseqNumber(m: TwinkleSipMessage): number {
  return Number.parseInt(headerOf(m, 'CSeq') ?? '', 10);
}

describe('Twinkle with ext_100rel=required: reliable provisional responses (RFC 3262) both ways', { skip: skipWithout('twinkle-console') }, () => {
  let ts: TestServer | undefined;
  let twinkle: Twinkle | undefined;
  let alice: { ua: UserAgent; registration: RegistrationClient } | undefined;
  /** How alice answers a call (set by each test). */
  let onInvite: (s: InviteSession) => void = (s) => s.reject(480);
  const explained = (body: () => Promise<void>): Promise<void> => withTranscript(() => twinkle, body);

  before(async () => {
    ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, proxy: { authenticateCallers: true } });
    await addUsers(ts);
    twinkle = await startTwinkle({ user: 'bob', password: PASSWORDS.bob, domain: DOMAIN, proxyPort: ts.port, ext100rel: 'required' });
    alice = await startUser(ts, 'alice', { onInvite: (s) => onInvite(s) });
  });

  after(async () => {
    alice?.registration.stop();
    await twinkle?.stop();
    await alice?.ua.stop();
    await ts?.stop();
  });

  test('the UA calls Twinkle: Twinkle rings reliably (Require: 100rel, RSeq), the UA PRACKs it (RAck, 200), Twinkle answers, the UA hangs up', { timeout: 30000 }, () =>
    explained(async () => {
      const since = twinkle!.mark();
      const from = twinkle!.sipTrace().length;
      const provisionals: SipResponse[] = [];
      const call = await alice!.ua.call(`sip:bob@${DOMAIN}`, { sdp: createOffer(UA_MEDIA) });
      call.onProvisional = (r) => provisionals.push(r);
      await twinkle!.waitFor(/Line 1: incoming call\s+From:\s+sip:alice@sipway\.test/, STEP_MS, since);

      // Twinkle's 180 is reliable, and the UA's PRACK for it is answered 200 before Twinkle is told to answer.
      const prackOk = (): TwinkleSipMessage[] => traced(twinkle!, from, 'out', /^SIP\/2\.0 200 /).filter((m) => / PRACK$/.test(headerOf(m, 'CSeq') ?? ''));
      assert.ok(await until(() => prackOk().length > 0), 'Twinkle answered a PRACK with 200');
      const invite = traced(twinkle!, from, 'in', /^INVITE sip:bob@/).at(-1)!;
      assert.ok(invite, 'the UA\'s INVITE reached Twinkle');
      const ringing = traced(twinkle!, from, 'out', /^SIP\/2\.0 180 /);
      assert.ok(ringing.length >= 1, 'Twinkle sent 180');
      assert.match(headerOf(ringing[0]!, 'Require') ?? '', /\b100rel\b/, 'Twinkle\'s 180 requires 100rel');
      const rseq = Number.parseInt(headerOf(ringing[0]!, 'RSeq') ?? '', 10);
      assert.ok(Number.isInteger(rseq) && rseq > 0, `the 180 has an RSeq: ${headerOf(ringing[0]!, 'RSeq')}`);
      assert.equal(bodyOf(ringing[0]!), '', 'no SDP in the 180: Twinkle answers in its 200');
      const pracks = traced(twinkle!, from, 'in', /^PRACK /);
      assert.equal(pracks.length, 1, 'the UA sent one PRACK');
      assert.equal(headerOf(pracks[0]!, 'RAck'), `${rseq} ${cseqNumber(invite)} INVITE`, 'the PRACK\'s RAck names the 180\'s RSeq and the INVITE\'s CSeq');
      assert.equal(headerOf(prackOk()[0]!, 'CSeq'), headerOf(pracks[0]!, 'CSeq'), 'the 200 answers that PRACK');
      assert.deepEqual(
        provisionals.map((r) => [r.status, r.headers.get('rseq')]),
        [[180, String(rseq)]],
        'onProvisional saw the reliable 180',
      );

      twinkle!.send('answer');
      assert.deepEqual(await within(call.answered, 'the answer to the UA\'s INVITE'), { status: 200, reason: 'OK' });
      assert.match(call.remoteSdp ?? '', new RegExp(`m=audio ${twinkle!.rtpPort} RTP/AVP 0[ \\r\\n]`), 'Twinkle answered with PCMU in its 200');
      await twinkle!.waitFor(/Line 1: call established\./, STEP_MS, since);
      assert.equal(await within(call.bye(), 'the UA\'s BYE'), 200);
      await twinkle!.waitFor(/Line 1: far end ended call\./, STEP_MS, since);
    }));

  test('Twinkle calls the UA with Require: 100rel: the UA answers in a reliable 183, Twinkle PRACKs it (200), the 200 to the INVITE has no SDP; the UA hangs up', { timeout: 30000 }, () =>
    explained(async () => {
      const since = twinkle!.mark();
      const from = twinkle!.sipTrace().length;
      const sessions: InviteSession[] = [];
      onInvite = (s) => {
        sessions.push(s);
        const answer = createAnswer(s.remoteSdp ?? '', UA_MEDIA);
        if (!answer.ok) {
          s.reject(answer.status, answer.reason);
          return;
        }
        s.progress(183, { sdp: answer.sdp });
        s.accept();
      };
      await twinkle!.call(`sip:alice@${DOMAIN}`);
      await twinkle!.waitFor(/Line 1: far end answered call\./, STEP_MS, since);
      assert.equal(sessions.length, 1, 'one call reached the UA');
      const session = sessions[0]!;
      assert.equal(session.state, 'Confirmed');
      assert.match(session.invite.headers.get('require') ?? '', /\b100rel\b/, 'Twinkle\'s INVITE requires 100rel');
      assert.ok(await until(() => !session.awaitingAck), 'Twinkle\'s ACK reached the UA');

      const progress = traced(twinkle!, from, 'in', /^SIP\/2\.0 183 /);
      assert.ok(progress.length >= 1, 'the 183 reached Twinkle');
      assert.match(headerOf(progress[0]!, 'Require') ?? '', /\b100rel\b/, 'the UA\'s 183 requires 100rel');
      const rseq = headerOf(progress[0]!, 'RSeq');
      assert.match(rseq ?? '', /^\d+$/, 'the 183 has an RSeq');
      assert.match(bodyOf(progress[0]!), /^v=0/, 'the 183 carries the UA\'s answer');
      const invite = traced(twinkle!, from, 'out', /^INVITE sip:alice@/).at(-1)!;
      const pracks = traced(twinkle!, from, 'out', /^PRACK /);
      assert.equal(pracks.length, 1, 'Twinkle sent one PRACK');
      assert.equal(headerOf(pracks[0]!, 'RAck'), `${rseq} ${cseqNumber(invite)} INVITE`);
      const prackOk = traced(twinkle!, from, 'in', /^SIP\/2\.0 200 /).filter((m) => headerOf(m, 'CSeq') === headerOf(pracks[0]!, 'CSeq'));
      assert.equal(prackOk.length, 1, 'the UA answered the PRACK 200');
      const inviteOk = traced(twinkle!, from, 'in', /^SIP\/2\.0 200 /).filter((m) => headerOf(m, 'CSeq') === `${cseqNumber(invite)} INVITE`);
      assert.ok(inviteOk.length >= 1, 'the 200 to the INVITE reached Twinkle');
      assert.equal(bodyOf(inviteOk[0]!), '', 'no SDP in the 200: the answer was in the 183');
      assert.equal(headerOf(inviteOk[0]!, 'Content-Type'), undefined);
      const trace = twinkle!.sipTrace().slice(from);
      const at = (m: TwinkleSipMessage): number => trace.findIndex((x) => x.direction === m.direction && x.text === m.text);
      assert.ok(at(prackOk[0]!) < at(inviteOk[0]!), 'the 200 to the INVITE came after the PRACK\'s 200');

      assert.equal(await within(session.bye(), 'the UA\'s BYE'), 200);
      assert.deepEqual(await within(session.ended, 'the UA session ending'), { by: 'local', reason: 'BYE sent' });
      await twinkle!.waitFor(/Line 1: far end ended call\./, STEP_MS, since);
    }));
});

/** Twinkle's messages of the dialog with Call-ID `callId` from trace index `from` on, one line each (a sipfrag named). */
function dialogFlow(twinkle: Twinkle, from: number, callId: string): string {
  return twinkle
    .sipTrace()
    .slice(from)
    .filter((m) => headerOf(m, 'Call-ID') === callId)
    .map((m) => {
      const frag = headerOf(m, 'Content-Type') === 'message/sipfrag' ? ` [${bodyOf(m).split('\n', 1)[0]}; ${headerOf(m, 'Subscription-State')}]` : '';
      return `  Twinkle ${m.direction === 'out' ? 'sent' : 'got '} ${startLine(m).replace(/ SIP\/2\.0$/, '')} (CSeq ${headerOf(m, 'CSeq')})${frag}`;
    })
    .join('\n');
}

/**
 * The outcome of alice's REFER, the transfer done (Twinkle's BYE to alice received): 200 expected. Twinkle sends its
 * NOTIFYs one at a time and the BYE before the last ones: the outcome must still come, within a few seconds.
 */
async function transferOutcome(_t: TestContext, referred: Promise<Answer>, progress: number[], flow: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([referred, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 3000)))]);
  clearTimeout(timer);
  if (outcome === undefined) assert.fail(`refer() not settled 3 s after the transferee's BYE (progress reported: ${progress.join(', ')})\n${flow}`);
  assert.deepEqual(outcome, { status: 200, reason: 'OK' }, `progress: ${progress.join(', ')}\n${flow}`);
  assert.equal(progress.at(-1), 200);
}

/** BYE for each session still up (a failed test's leftovers); bounded. */
async function hangUp(sessions: Array<InviteSession | undefined>): Promise<void> {
  const up = sessions.filter((s): s is InviteSession => s?.state === 'Confirmed');
  await Promise.all(up.map((s) => within(s.bye(), 'cleanup BYE').catch(() => undefined)));
}

describe('Twinkle in transfers: REFER (RFC 3515), Replaces (RFC 3891), Referred-By (RFC 3892)', { skip: skipWithout('twinkle-console') }, () => {
  let ts: TestServer | undefined;
  let twinkle: Twinkle | undefined;
  let alice: { ua: UserAgent; registration: RegistrationClient } | undefined;
  let carol: { ua: UserAgent; registration: RegistrationClient } | undefined;
  const aliceCalls: InviteSession[] = [];
  const carolCalls: InviteSession[] = [];
  /** The REFERs alice followed, and the calls she placed for them. */
  const transfers: Transfer[] = [];
  const referredCalls: InviteSession[] = [];
  const explained = (body: () => Promise<void>): Promise<void> => withTranscript(() => twinkle, body);

  before(async () => {
    ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, proxy: { authenticateCallers: true } });
    await addUsers(ts);
    twinkle = await startTwinkle({ user: 'bob', password: PASSWORDS.bob, domain: DOMAIN, proxyPort: ts.port });
    alice = await startUser(ts, 'alice', {
      onInvite: (s) => {
        aliceCalls.push(s);
        answerWith(s, UA_MEDIA);
      },
      onRefer: async (transfer) => {
        transfers.push(transfer);
        const call = await transfer.call({ sdp: createOffer(UA_MEDIA_2) });
        referredCalls.push(call);
        return call;
      },
    });
    carol = await startUser(ts, 'carol', {
      onInvite: (s) => {
        carolCalls.push(s);
        answerWith(s, CAROL_MEDIA);
      },
    });
  });

  after(async () => {
    alice?.registration.stop();
    carol?.registration.stop();
    await twinkle?.stop();
    await alice?.ua.stop();
    await carol?.ua.stop();
    await ts?.stop();
  });

  /** alice calls Twinkle, Twinkle answers: alice's confirmed session. */
  async function aliceCallsTwinkle(since: number): Promise<InviteSession> {
    const call = await alice!.ua.call(`sip:bob@${DOMAIN}`, { sdp: createOffer(UA_MEDIA) });
    await twinkle!.waitFor(/Line \d: incoming call\s+From:\s+sip:alice@sipway\.test/, STEP_MS, since);
    twinkle!.send('answer');
    assert.deepEqual(await within(call.answered, 'Twinkle\'s answer to alice'), { status: 200, reason: 'OK' });
    await twinkle!.waitFor(/Line \d: call established\./, STEP_MS, since);
    return call;
  }

  test('blind, Twinkle transferee: alice REFERs it to carol; Twinkle calls carol with alice\'s Referred-By, then BYEs alice', { timeout: 30000 }, async (t) => {
    const progress: number[] = [];
    let referred: Promise<Answer> | undefined;
    let call: InviteSession | undefined;
    let carolCall: InviteSession | undefined;
    let flow = '';
    await explained(async () => {
      const since = twinkle!.mark();
      const from = twinkle!.sipTrace().length;
      const before = carolCalls.length;
      call = await aliceCallsTwinkle(since);
      referred = call.refer(`sip:carol@${DOMAIN}`, { onProgress: (s) => progress.push(s) });
      assert.ok(await until(() => carolCalls.length > before), 'Twinkle\'s call reached carol');
      carolCall = carolCalls[before]!;
      assert.deepEqual(await within(carolCall.answered, 'carol answering Twinkle'), { status: 200, reason: 'OK' });
      assert.equal(carolCall.invite.headers.get('referred-by'), `<sip:alice@${DOMAIN}>`, 'carol\'s INVITE names alice in Referred-By');
      assert.match(carolCall.invite.headers.get('from') ?? '', /<sip:bob@sipway\.test>/, 'the call to carol is Twinkle\'s');
      assert.equal(carolCall.invite.headers.get('replaces'), undefined, 'no Replaces in a blind transfer');
      await twinkle!.waitFor(/Transfer requested by sip:alice@sipway\.test[\s\S]*Line \d: far end answered call\./, STEP_MS, since);
      const callId = call.invite.headers.get('call-id')!;
      const accepted = traced(twinkle!, from, 'out', /^SIP\/2\.0 202 /).filter((m) => headerOf(m, 'Call-ID') === callId);
      assert.equal(accepted.length, 1, 'Twinkle accepted the REFER with 202');
      // Twinkle ends its call with the transferor itself once the target answered ("End call with referrer.").
      assert.deepEqual(await within(call.ended, 'Twinkle\'s BYE to alice'), { by: 'remote', reason: 'BYE received' });
      assert.ok(await until(() => !carolCall!.awaitingAck), 'Twinkle ACKed carol\'s 200');
      assert.equal(await within(carolCall.bye(), 'carol\'s BYE'), 200);
      await twinkle!.waitFor(/Line \d: far end ended call\./, STEP_MS, since);
      await until(() => dialogFlow(twinkle!, from, callId).includes('got  SIP/2.0 481'), 500);
      flow = dialogFlow(twinkle!, from, callId);
    }).finally(() => hangUp([call, carolCall]));
    await transferOutcome(t, referred!, progress, flow);
  });

  test('attended, Twinkle transferee: alice REFERs it to carol replacing her call with carol; Twinkle\'s INVITE with Replaces takes that call\'s place', { timeout: 30000 }, async (t) => {
    const progress: number[] = [];
    let referred: Promise<Answer> | undefined;
    let toBob: InviteSession | undefined;
    let toCarol: InviteSession | undefined;
    let newCarol: InviteSession | undefined;
    let flow = '';
    await explained(async () => {
      const since = twinkle!.mark();
      const from = twinkle!.sipTrace().length;
      const before = carolCalls.length;
      toBob = await aliceCallsTwinkle(since);
      toCarol = await alice!.ua.call(`sip:carol@${DOMAIN}`, { sdp: createOffer(UA_MEDIA_2) });
      assert.deepEqual(await within(toCarol.answered, 'carol answering alice'), { status: 200, reason: 'OK' });
      const oldCarol = carolCalls[before]!;
      assert.ok(await until(() => !oldCarol.awaitingAck), 'alice\'s ACK reached carol');
      referred = toBob.refer(`sip:carol@${DOMAIN}`, { replacing: toCarol, onProgress: (s) => progress.push(s) });
      assert.ok(await until(() => carolCalls.length > before + 1), 'Twinkle\'s call reached carol');
      newCarol = carolCalls[before + 1]!;
      const d = toCarol.dialog!;
      assert.equal(
        newCarol.invite.headers.get('replaces'),
        `${d.callId};to-tag=${d.remoteTag};from-tag=${d.localTag}`,
        'Twinkle\'s INVITE carries the Replaces of alice\'s Refer-To',
      );
      assert.equal(newCarol.replaces, oldCarol, 'carol\'s new session replaces her call with alice');
      assert.deepEqual(await within(newCarol.answered, 'carol answering Twinkle'), { status: 200, reason: 'OK' });
      assert.equal(newCarol.invite.headers.get('referred-by'), `<sip:alice@${DOMAIN}>`);
      assert.deepEqual(await within(toCarol.ended, 'carol ending her call with alice'), { by: 'remote', reason: 'BYE received' });
      assert.deepEqual(await within(oldCarol.ended, 'carol\'s old session'), { by: 'local', reason: 'BYE sent' });
      assert.deepEqual(await within(toBob.ended, 'Twinkle\'s BYE to alice'), { by: 'remote', reason: 'BYE received' });
      assert.ok(await until(() => !newCarol!.awaitingAck), 'Twinkle ACKed carol\'s 200');
      assert.equal(await within(newCarol.bye(), 'carol\'s BYE'), 200);
      await twinkle!.waitFor(/Line \d: far end ended call\./, STEP_MS, since);
      const callId = toBob.invite.headers.get('call-id')!;
      await until(() => dialogFlow(twinkle!, from, callId).includes('got  SIP/2.0 481'), 500);
      flow = dialogFlow(twinkle!, from, callId);
    }).finally(() => hangUp([toBob, toCarol, newCarol]));
    await transferOutcome(t, referred!, progress, flow);
  });

  test('blind, Twinkle transferor (console `transfer URI`): alice follows its REFER and calls carol; Twinkle hears 100, 180, 200 and hangs up', { timeout: 30000 }, () => {
    let session: InviteSession | undefined;
    let newCall: InviteSession | undefined;
    return explained(async () => {
      const since = twinkle!.mark();
      const from = twinkle!.sipTrace().length;
      const beforeAlice = aliceCalls.length;
      const beforeCarol = carolCalls.length;
      const beforeReferred = referredCalls.length;
      await twinkle!.call(`sip:alice@${DOMAIN}`);
      await twinkle!.waitFor(/Line 1: far end answered call\./, STEP_MS, since);
      session = aliceCalls[beforeAlice]!;
      assert.ok(await until(() => !session!.awaitingAck), 'Twinkle\'s ACK reached alice');

      twinkle!.send(`transfer sip:carol@${DOMAIN}`);
      assert.ok(await until(() => referredCalls.length > beforeReferred), 'alice followed the REFER');
      newCall = referredCalls[beforeReferred]!;
      assert.deepEqual(await within(newCall.answered, 'carol answering alice\'s call for the transfer'), { status: 200, reason: 'OK' });
      const transfer = transfers.at(-1)!;
      assert.equal(transfer.target, `sip:carol@${DOMAIN}`);
      assert.equal(transfer.session, session);
      assert.equal(transfer.replaces, undefined);
      assert.equal(carolCalls.length, beforeCarol + 1);
      assert.equal(transfer.referredBy, '"bob" <sip:bob@sipway.test>', 'Twinkle\'s REFER names it in Referred-By');
      assert.equal(carolCalls[beforeCarol]!.invite.headers.get('referred-by'), transfer.referredBy, 'alice passed Twinkle\'s Referred-By on to carol');

      await twinkle!.waitFor(/Line 1: call successfully referred\./, STEP_MS, since);
      // Twinkle hangs up on the transferee once the transfer succeeded.
      assert.deepEqual(await within(session.ended, 'Twinkle\'s BYE to alice'), { by: 'remote', reason: 'BYE received' });
      const callId = session.invite.headers.get('call-id')!;
      const notifies = traced(twinkle!, from, 'in', /^NOTIFY /).filter((m) => headerOf(m, 'Call-ID') === callId);
      assert.deepEqual(
        notifies.map((m) => [bodyOf(m).split('\n', 1)[0], (headerOf(m, 'Subscription-State') ?? '').split(';')[0]]),
        [
          ['SIP/2.0 100 Trying', 'active'],
          ['SIP/2.0 180 Ringing', 'active'],
          ['SIP/2.0 200 OK', 'terminated'],
        ],
        `alice's NOTIFYs to Twinkle\n${dialogFlow(twinkle!, from, callId)}`,
      );
      const refer = traced(twinkle!, from, 'out', /^REFER /).filter((m) => headerOf(m, 'Call-ID') === callId);
      assert.equal(refer.length, 1);
      assert.match(headerOf(refer[0]!, 'Refer-To') ?? '', /^<?sip:carol@sipway\.test>?$/);

      assert.equal(await within(newCall.bye(), 'alice\'s BYE to carol'), 200);
      assert.deepEqual(await within(carolCalls[beforeCarol]!.ended, 'carol\'s session ending'), { by: 'remote', reason: 'BYE received' });
    }).finally(() => hangUp([session, newCall]));
  });
});
