/**
 * sipway's own user agent against baresip (Debian 12: baresip 1.0.0, libre 1.1.0), registered with digest at sipway:
 * - the CLI (`sipway call`, `sipway answer`) at `sipway serve`: a call each way through the proxy, G.711 RTP both
 *   ways, each side hanging up once;
 * - the library's UserAgent at an in-process server (digest for REGISTER and INVITE): hold and resume both ways with
 *   real RTP (the UA's RtpStream counters, baresip's from its `audio_debug` command), and a blind transfer (REFER)
 *   of a baresip to a second baresip.
 *
 * What baresip 1.0 does here (its menu module, driven over ctrl_tcp): it answers a sendonly re-INVITE recvonly and
 * stops sending RTP until the resume; its `hold`/`resume` commands send re-INVITEs with a=sendonly/a=sendrecv and
 * stop its RTP meanwhile (`listcalls` says "(on hold)"); it follows a REFER by itself (no command, no setting: event
 * TRANSFER, then it dials the Refer-To through its outbound proxy, 407 answered) without holding or hanging up the
 * transferor's call, and reports 100 then the final status in its NOTIFYs (no 180).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RtpStream, writeWav } from '../../src/media/index.js';
import { computeHa1 } from '../../src/auth/index.js';
import { agreedStream, createOffer, PCMU } from '../../src/sdp/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { UserAgent, type InviteSession } from '../../src/ua/index.js';
import { SystemClock } from '../../src/util/clock.js';
import { freePort, runCli, runCliAsync, skipWithout, spawnCli, startCliServer, type RunningServer } from '../helpers/process.js';
import { Baresip } from '../helpers/baresip.js';
import { waitForBindings } from '../helpers/location.js';
import { until as pollUntil, within as waitWithin } from '../helpers/waits.js';

const STEP_MS = 10000;

test('sipway call and sipway answer talk to baresip through sipway: digest, 200, RTP both ways, BYE each way', { timeout: 120000, skip: skipWithout('baresip') }, async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-ua-baresip-'));
  const data = path.join(work, 'data');
  let server: RunningServer | undefined;
  let bob: Baresip | undefined;
  try {
    for (const user of ['alice', 'bob', 'carol']) assert.equal(runCli(['user', 'add', `${user}@localhost`, '--password', `${user}-pw`, '--data', data]).status, 0);
    const port = await freePort();
    server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', 'localhost', '--data', data]);
    const proxy = `udp:127.0.0.1:${port}`;
    bob = await Baresip.start('bob', path.join(work, 'bob'), { user: 'bob', domain: 'localhost', password: 'bob-pw', outboundProxy: `sip:127.0.0.1:${port}`, autoAnswer: true, regint: 600 });
    await waitForBindings(data, [{ aor: 'sip:bob@localhost', port: bob.sipPort }]);

    // Our UA calls baresip (which answers at once) and hangs up after 2 s.
    const tone = path.join(work, 'tone.wav');
    writeFileSync(tone, writeWav(Int16Array.from({ length: 8000 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)))));
    const call = await runCliAsync(['call', 'sip:bob@localhost', '--from', 'sip:alice@localhost', '--proxy', proxy, '--password', 'alice-pw', '--play', tone, '--duration', '2']);
    assert.equal(call.status, 0, `${call.stdout}${call.stderr}`);
    const counters = /^sip:bob@localhost: 200 [^;]*; PCM[UA]; hung up by us; RTP sent (\d+), received (\d+)/.exec(call.stdout);
    assert.ok(counters && Number(counters[1]) >= 80 && Number(counters[2]) >= 50, `RTP both ways: ${call.stdout}`);
    await bob.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'incoming');
    await bob.waitForEvent('CALL_CLOSED', STEP_MS);

    // baresip calls our UA, which answers and is hung up on by baresip.
    const answer = spawnCli(['answer', 'sip:carol@localhost', '--proxy', proxy, '--password', 'carol-pw', '--duration', '30']);
    const out = (): string => answer.stdout() + answer.stderr();
    try {
      await answer.waitForStdout('waiting for');
      assert.match(answer.stdout(), /waiting for 1 call/, out());
      const closedBefore = bob.events.filter((e) => e.type === 'CALL_CLOSED').length;
      assert.ok((await bob.command('dial', 'sip:carol@localhost')).ok);
      await bob.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'outgoing');
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok((await bob.command('hangup')).ok);
      assert.equal(await answer.exited, 0, out());
      const line = /sip:bob@localhost: answered; PCM[UA]; hung up by the peer; RTP sent (\d+), received (\d+)/.exec(answer.stdout());
      assert.ok(line && Number(line[1]) >= 40 && Number(line[2]) >= 40, `RTP both ways: ${out()}`);
      assert.ok(bob.events.filter((e) => e.type === 'CALL_CLOSED').length > closedBefore);
    } finally {
      answer.child.kill();
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- baresip ---\n${bob?.output().slice(-5000) ?? ''}\n--- sipway ---\n${server?.output().slice(-4000) ?? ''}`, { cause: e });
  } finally {
    await bob?.stop();
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

// ---- the library's UserAgent against baresip, through an in-process sipway ----

const DOMAIN = 'sipway.test';
/** Each wait on the UA (an answer, a report, a session ending). */
const UA_STEP_MS = 5000;
/** 20 ms packets: about 50 a second each way. */
const FLOWING = 20;

/** `promise`, or a rejection naming `what` after UA_STEP_MS (or `ms`). */
const within = <T>(promise: Promise<T>, what: string, ms = UA_STEP_MS): Promise<T> => waitWithin(promise, what, ms);

/** Polls `condition` (sync or async) every 20 ms until it holds; false when UA_STEP_MS (or `ms`) passed first. */
const until = (condition: () => boolean | Promise<boolean>, ms = UA_STEP_MS): Promise<boolean> => pollUntil(condition, ms, 20);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** baresip's view of its audio stream (`audio_debug`): direction, RTP packets received (all sources) and sent. */
interface BaresipAudio {
  dir: string;
  received: number;
  sent: number;
  text: string;
}

async function audioOf(b: Baresip): Promise<BaresipAudio> {
  const r = await b.command('audio_debug');
  const text = r.data ?? '';
  const dir = /audio dir=(\w+)/.exec(text)?.[1] ?? '?';
  const received = [...text.matchAll(/\brcvd=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  const sent = Number(/TX: packets=(\d+)/.exec(text)?.[1] ?? -1);
  return { dir, received, sent, text };
}

async function listCalls(b: Baresip): Promise<string> {
  return (await b.command('listcalls')).data ?? '';
}

interface Lab {
  ts: TestServer;
  alice: UserAgent;
  phones: Map<string, Baresip>;
  rtp: RtpStream;
}

/**
 * An in-process sipway (digest for REGISTER and INVITE) with subscribers alice, bob and carol, the baresips `users`
 * (auto-answer, registered through sipway as outbound proxy), the UA alice and an RTP port for her. `body` failing
 * comes back with every baresip's events and output; everything is stopped whatever happens.
 */
async function withLab(prefix: string, users: string[], body: (lab: Lab) => Promise<void>): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), prefix));
  const phones = new Map<string, Baresip>();
  let ts: TestServer | undefined;
  let alice: UserAgent | undefined;
  let rtp: RtpStream | undefined;
  try {
    ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, proxy: { authenticateCallers: true } });
    for (const user of ['alice', 'bob', 'carol']) {
      const pw = `${user}-pw`;
      await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
    }
    for (const user of users) {
      phones.set(user, await Baresip.start(user, path.join(work, user), { user, domain: DOMAIN, password: `${user}-pw`, outboundProxy: `sip:127.0.0.1:${ts.port}`, autoAnswer: true, regint: 600 }));
    }
    for (const [user, b] of phones) {
      const registered = await until(async () => (await ts!.server.location.lookup(`sip:${user}@${DOMAIN}`)).some((r) => r.contact.includes(`@127.0.0.1:${b.sipPort}`)), STEP_MS);
      assert.ok(registered, `baresip ${user} registered at sipway: ${JSON.stringify(await ts.server.location.lookup(`sip:${user}@${DOMAIN}`))}`);
    }
    alice = await UserAgent.start({
      aor: `sip:alice@${DOMAIN}`,
      credentials: { username: 'alice', password: 'alice-pw' },
      proxy: { transport: 'udp', address: '127.0.0.1', port: ts.port },
      listen: { transport: 'udp', host: '127.0.0.1', port: 0 },
    });
    rtp = await RtpStream.open('127.0.0.1');
    await body({ ts, alice, phones, rtp });
  } catch (e) {
    const phonesText = [...phones.values()].map((b) => `--- baresip ${b.name} (events: ${b.events.map((e) => `${e.type}${e.param ? `(${e.param})` : ''}`).join(', ')}) ---\n${b.output().slice(-6000)}`);
    throw new Error(`${(e as Error).message}\n${phonesText.join('\n')}`, { cause: e });
  } finally {
    rtp?.close();
    await alice?.stop().catch(() => undefined);
    await Promise.all([...phones.values()].map((b) => b.stop()));
    await ts?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

/** alice calls `user` (a baresip answering at once) with a PCMU offer for her RTP port, and sends RTP once answered. */
async function aliceCalls(lab: Lab, user: string): Promise<InviteSession> {
  const offer = createOffer({ address: '127.0.0.1', port: lab.rtp.port, codecs: [PCMU] });
  const call = await lab.alice.call(`sip:${user}@${DOMAIN}`, { sdp: offer });
  const answer = await within(call.answered, `the answer to alice's INVITE to ${user}`);
  assert.equal(answer.status, 200, `baresip ${user} answered: ${JSON.stringify(answer)}`);
  assert.equal(call.state, 'Confirmed');
  const stream = agreedStream(offer, call.remoteSdp ?? '');
  assert.ok(stream && stream.codec.encoding === 'PCMU', `PCMU agreed with baresip: ${call.remoteSdp}`);
  lab.rtp.start(stream, new Uint8Array(0), new SystemClock(), { law: 'pcmu', payloadType: stream.codec.payloadType });
  return call;
}

test('UserAgent ↔ baresip through sipway: hold and resume both ways with RTP flowing, BYE', { timeout: 60000, skip: skipWithout('baresip') }, () =>
  withLab('sipway-ua-baresip-hold-', ['bob'], async (lab) => {
    const bob = lab.phones.get('bob')!;
    const call = await aliceCalls(lab, 'bob');
    let changes = 0;
    call.onChange = () => changes++;
    assert.match(call.remoteSdp ?? '', /a=sendrecv/);

    // RTP both ways: our counters, and baresip's (it received ours, sent its own).
    assert.ok(await until(() => lab.rtp.counters.received >= FLOWING), `RTP from baresip: ${JSON.stringify(lab.rtp.counters)}`);
    await bob.waitForEvent('CALL_RTPESTAB', STEP_MS);
    let audio = await audioOf(bob);
    assert.ok(await until(async () => (audio = await audioOf(bob)).received >= FLOWING && audio.sent >= FLOWING), `baresip's RTP counters:\n${audio.text}`);
    assert.equal(audio.dir, 'sendrecv', audio.text);

    // alice holds: re-INVITE a=sendonly, baresip answers recvonly and stops sending; our RTP still reaches it.
    assert.deepEqual(await within(call.hold(), 'alice\'s hold re-INVITE'), { status: 200, reason: 'OK' });
    assert.match(call.localSdp ?? '', /a=sendonly/);
    assert.match(call.remoteSdp ?? '', /a=recvonly/, 'baresip answered the hold recvonly');
    assert.equal(call.held, false, 'holding the peer is not being held');
    assert.ok(await until(async () => (audio = await audioOf(bob)).dir === 'recvonly'), `baresip's stream is recvonly:\n${audio.text}`);
    await sleep(200);
    const heldFrom = { ours: lab.rtp.counters.received, theirs: (await audioOf(bob)).received };
    await sleep(800);
    const heldTo = { ours: lab.rtp.counters.received, theirs: (await audioOf(bob)).received };
    assert.ok(heldTo.ours - heldFrom.ours <= 3, `baresip stopped sending while held: ${JSON.stringify({ heldFrom, heldTo })}`);
    assert.ok(heldTo.theirs - heldFrom.theirs >= FLOWING, `baresip still received our RTP while we held: ${JSON.stringify({ heldFrom, heldTo })}`);

    // alice resumes: a=sendrecv both ways, baresip's RTP comes again.
    assert.deepEqual(await within(call.resume(), 'alice\'s resume re-INVITE'), { status: 200, reason: 'OK' });
    assert.match(call.localSdp ?? '', /a=sendrecv/);
    assert.match(call.remoteSdp ?? '', /a=sendrecv/, 'baresip answered the resume sendrecv');
    assert.ok(await until(() => lab.rtp.counters.received >= heldTo.ours + FLOWING), `RTP from baresip after the resume: ${JSON.stringify(lab.rtp.counters)}`);
    assert.equal((await audioOf(bob)).dir, 'sendrecv');
    assert.equal(changes, 0, 'our own re-INVITEs are no change by the peer');

    // baresip holds alice: its re-INVITE is a=sendonly, the UA answers recvonly and says held.
    const bobLog = bob.output().length;
    const holding = await bob.command('hold');
    assert.ok(holding.ok, `baresip: hold refused: ${holding.data}`);
    assert.ok(await until(() => call.held && changes >= 1), `the UA session is held (onChange ${changes}): ${call.remoteSdp}`);
    assert.equal(changes, 1, 'onChange called for baresip\'s hold');
    assert.match(call.remoteSdp ?? '', /a=sendonly/);
    assert.match(call.localSdp ?? '', /a=recvonly/, 'the UA answered the hold recvonly');
    assert.match(await listCalls(bob), /ESTABLISHED\s+\(on hold\)\s+sip:alice@sipway\.test/);
    assert.ok(await until(async () => (audio = await audioOf(bob)).dir === 'sendonly'), `baresip's stream is sendonly:\n${audio.text}`);
    await bob.waitForOutput(/\nINVITE sip:[^]*?a=sendonly[^]*?SIP\/2\.0 200 OK[^]*?CSeq: \d+ INVITE[^]*?a=recvonly/, STEP_MS, bobLog);

    // baresip resumes: held goes back to false, its RTP comes again.
    const beforeResume = lab.rtp.counters.received;
    const resuming = await bob.command('resume');
    assert.ok(resuming.ok, `baresip: resume refused: ${resuming.data}`);
    assert.ok(await until(() => !call.held && changes >= 2), `the UA session is taken off hold (onChange ${changes}): ${call.remoteSdp}`);
    assert.equal(changes, 2, 'onChange called for baresip\'s resume');
    assert.match(call.remoteSdp ?? '', /a=sendrecv/);
    assert.match(call.localSdp ?? '', /a=sendrecv/);
    assert.doesNotMatch(await listCalls(bob), /on hold/);
    assert.ok(await until(() => lab.rtp.counters.received >= beforeResume + FLOWING), `RTP from baresip after its resume: ${JSON.stringify(lab.rtp.counters)}`);

    // alice hangs up.
    assert.equal(await within(call.bye(), 'alice\'s BYE'), 200);
    assert.deepEqual(await within(call.ended, 'alice\'s session ending'), { by: 'local', reason: 'BYE sent' });
    const closed = await bob.waitForEvent('CALL_CLOSED', STEP_MS);
    assert.match(closed.param ?? '', /reset by peer/i, JSON.stringify(closed));
  }));

test('UserAgent ↔ baresip through sipway: blind transfer (REFER) of baresip bob to baresip carol', { timeout: 60000, skip: skipWithout('baresip') }, () =>
  withLab('sipway-ua-baresip-refer-', ['bob', 'carol'], async (lab) => {
    const bob = lab.phones.get('bob')!;
    const carol = lab.phones.get('carol')!;
    const call = await aliceCalls(lab, 'bob');
    await bob.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'incoming' && e.peeruri === `sip:alice@${DOMAIN}`);

    // alice refers bob to carol: 202, NOTIFY 100, bob calls carol (who answers), NOTIFY 200.
    const progress: number[] = [];
    const outcome = await within(call.refer(`sip:carol@${DOMAIN}`, { onProgress: (s) => progress.push(s) }), 'the outcome of alice\'s REFER', 10000);
    assert.equal(outcome.status, 200, `bob's call to carol, as bob reported it: ${JSON.stringify(outcome)} (progress ${progress.join(', ')})`);
    assert.equal(progress[0], 100, `the first NOTIFY says 100: ${progress.join(', ')}`);
    assert.equal(progress.at(-1), 200, `the last NOTIFY says 200: ${progress.join(', ')}`);
    assert.ok(progress.every((s, i) => i === 0 || s >= progress[i - 1]!), `progress in order: ${progress.join(', ')}`);
    const transfer = await bob.waitForEvent('TRANSFER', STEP_MS);
    assert.match(transfer.param ?? '', /sip:carol@sipway\.test/, JSON.stringify(transfer));
    await bob.waitForOutput(/REFER sip:[^]*?Refer-To: <sip:carol@sipway\.test>[^]*?Referred-By: <sip:alice@sipway\.test>/, STEP_MS, 0);
    await bob.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'outgoing' && e.peeruri === `sip:carol@${DOMAIN}`);
    await carol.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'incoming' && e.peeruri === `sip:bob@${DOMAIN}`);
    await carol.waitForEvent('CALL_RTPESTAB', STEP_MS);

    // alice is still in her call (a transferor hangs up herself): BYE, and bob's call with carol stays up.
    assert.equal(call.state, 'Confirmed', 'the transferor stays in the call until she hangs up');
    assert.equal(await within(call.bye(), 'alice\'s BYE'), 200);
    assert.deepEqual(await within(call.ended, 'alice\'s session ending'), { by: 'local', reason: 'BYE sent' });
    await bob.waitForEvent('CALL_CLOSED', STEP_MS, (e) => e.peeruri === `sip:alice@${DOMAIN}`);
    const bobCalls = await listCalls(bob);
    assert.match(bobCalls, /Active calls \(1\)[^]*ESTABLISHED\s+sip:carol@sipway\.test/, `bob's calls:\n${bobCalls}`);
    const carolCalls = await listCalls(carol);
    assert.match(carolCalls, /Active calls \(1\)[^]*ESTABLISHED\s+sip:bob@sipway\.test/, `carol's calls:\n${carolCalls}`);
    assert.equal(lab.alice.sessions.size + lab.alice.dialogs.size, 0, 'no session or dialog left on the UA');

    // Clean up: carol hangs up on bob.
    assert.ok((await carol.command('hangup')).ok, 'carol: hangup refused');
    await bob.waitForEvent('CALL_CLOSED', STEP_MS, (e) => e.peeruri === `sip:carol@${DOMAIN}`);
  }));
