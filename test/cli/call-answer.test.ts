import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeHa1 } from '../../src/auth/index.js';
import { readWav, writeWav } from '../../src/media/index.js';
import { startTestServer } from '../../src/testing/index.js';
import { runCliAsync, spawnCli } from '../helpers/process.js';

const DOMAIN = 'sipway.test';

/** A second of a 440 Hz tone at a third of full scale. */
function tone(seconds: number): Int16Array {
  const out = new Int16Array(8000 * seconds);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(11000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
  return out;
}

function zeroCrossings(samples: Int16Array): number {
  let n = 0;
  for (let i = 1; i < samples.length; i++) if ((samples[i - 1]! < 0) !== (samples[i]! < 0)) n++;
  return n;
}

function rms(samples: Int16Array): number {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / Math.max(1, samples.length));
}

/** A sipway server on loopback with digest on and users alice, bob and carol (passwords pa, pb, pc). */
async function serverWithUsers() {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true } });
  for (const [user, pw] of [['alice', 'pa'], ['bob', 'pb'], ['carol', 'pc']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  return ts;
}

test('sipway answer and sipway call talk through sipway: the tone played by the caller is what the callee records', { timeout: 60_000 }, async () => {
  const ts = await serverWithUsers();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-call-'));
  const proxy = `udp:127.0.0.1:${ts.port}`;
  writeFileSync(path.join(dir, 'tone.wav'), writeWav(tone(1)));
  const answer = spawnCli(['answer', `sip:bob@${DOMAIN}`, '--proxy', proxy, '--password', 'pb', '--record', path.join(dir, 'bob.wav'), '--duration', '10']);
  try {
    await answer.waitForStdout('waiting for');
    assert.match(answer.stdout(), /^registered <sip:bob@127\.0\.0\.1:\d+> for sip:bob@sipway\.test; waiting for 1 call\(s\)/, answer.stderr());

    const call = await runCliAsync(['call', `sip:bob@${DOMAIN}`, '--from', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'pa', '--play', path.join(dir, 'tone.wav'), '--duration', '1.6', '--dtmf', '12#']);
    assert.equal(call.status, 0, call.stderr);
    const counters = /^sip:bob@sipway\.test: 200 OK; PCMU; hung up by us; RTP sent (\d+), received (\d+)/.exec(call.stdout);
    assert.ok(counters, call.stdout);
    assert.ok(Number(counters[1]) >= 60 && Number(counters[2]) >= 60, `RTP both ways: ${call.stdout}`);

    assert.equal(await answer.exited, 0, answer.stderr());
    assert.match(answer.stdout(), /sip:alice@sipway\.test: answered; PCMU; hung up by the peer; RTP sent \d+, received \d+; DTMF 12#/, 'the digits came as RFC 4733 events');
    // The callee's recording starts with the caller's tone: its level and its 880 zero crossings a second.
    const recorded = readWav(readFileSync(path.join(dir, 'bob.wav')));
    assert.ok(recorded.length >= 8000, `a second or more recorded (${recorded.length} samples)`);
    // 0.4 s inside the tone, away from its start and from the DTMF events sent at 0.5 s (they replace audio frames).
    const first = recorded.subarray(400, 3600);
    assert.ok(rms(first) > 5000, `the tone's level arrived (rms ${Math.round(rms(first))})`);
    const perSecond = zeroCrossings(first) / 0.4;
    assert.ok(Math.abs(perSecond - 880) < 40, `a 440 Hz tone: ${Math.round(perSecond)} zero crossings a second`);
  } finally {
    answer.child.kill();
    rmSync(dir, { recursive: true, force: true });
    await ts.stop();
  }
});

test('call and answer name a bad media argument and exit 2', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-call-'));
  try {
    writeFileSync(path.join(dir, 'stereo.wav'), Buffer.from('RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0\x44\xac\0\0\0\0\0\0\x04\0\x10\0data\0\0\0\0', 'latin1'));
    const cases: Array<[string[], RegExp]> = [
      [['call', 'sip:bob@example.com', '--from', 'sip:alice@example.com', '--proxy', 'udp:127.0.0.1:5060', '--play', path.join(dir, 'missing.wav')], /^sipway: --play: cannot read .*missing\.wav: ENOENT/],
      [['call', 'sip:bob@example.com', '--from', 'sip:alice@example.com', '--proxy', 'udp:127.0.0.1:5060', '--play', path.join(dir, 'stereo.wav')], /^sipway: --play: .*stereo\.wav: 2 channel\(s\), 44100 Hz, 16-bit \(format 1\): need 16-bit PCM, mono, 8000 Hz/],
      [['call', 'sip:bob@example.com', '--from', 'sip:alice@example.com', '--proxy', 'udp:127.0.0.1:5060', '--duration', 'long'], /^sipway: --duration: 'long' is not a number of seconds/],
      [['answer', 'sip:bob@example.com', '--proxy', 'udp:127.0.0.1:5060', '--calls', '0'], /^sipway: --calls: '0' is not a positive number/],
      [['answer', 'sip:bob@example.com', '--proxy', 'udp:127.0.0.1:5060', '--codecs', 'pcmu,g729'], /^sipway: --codecs: 'g729' is not a codec we have \(pcmu, pcma\)/],
      [['call', 'sip:bob@example.com', '--from', 'sip:alice@example.com', '--proxy', 'udp:127.0.0.1:5060', '--dtmf', '12x'], /^sipway: --dtmf: '12x' has a character that is not a DTMF digit/],
    ];
    for (const [args, expected] of cases) {
      const r = await runCliAsync(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, expected);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the caller\'s law is chosen when both have it (PCMA here); a callee without a common law refuses 488 and the caller exits 1', { timeout: 60_000 }, async () => {
  const ts = await serverWithUsers();
  const proxy = `udp:127.0.0.1:${ts.port}`;
  const answer = spawnCli(['answer', `sip:bob@${DOMAIN}`, '--proxy', proxy, '--password', 'pb', '--calls', '2', '--codecs', 'pcma', '--duration', '10']);
  try {
    await answer.waitForStdout('waiting for');
    const alaw = await runCliAsync(['call', `sip:bob@${DOMAIN}`, '--from', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'pa', '--codecs', 'pcma,pcmu', '--duration', '0.5']);
    assert.equal(alaw.status, 0, alaw.stderr);
    assert.match(alaw.stdout, /: 200 OK; PCMA; hung up by us; RTP sent \d+, received \d+/);
    const none = await runCliAsync(['call', `sip:bob@${DOMAIN}`, '--from', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'pa', '--codecs', 'pcmu', '--duration', '0.5']);
    assert.equal(none.status, 1, none.stdout);
    assert.match(none.stderr, /^sipway: call: sip:bob@sipway\.test: 488 Not Acceptable Here - no common audio codec \(offered: PCMU\/8000/);
    assert.equal(await answer.exited, 0, answer.stderr());
    assert.match(answer.stdout(), /refused 488 Not Acceptable Here/);
  } finally {
    answer.child.kill();
    await ts.stop();
  }
});

test('sipway transfer: blind and attended, the transferee (sipway answer) follows the REFER to the target (sipway answer)', { timeout: 90_000 }, async () => {
  const ts = await serverWithUsers();
  const proxy = `udp:127.0.0.1:${ts.port}`;
  const bob = spawnCli(['answer', `sip:bob@${DOMAIN}`, '--proxy', proxy, '--password', 'pb', '--calls', '2', '--duration', '4']);
  const carol = spawnCli(['answer', `sip:carol@${DOMAIN}`, '--proxy', proxy, '--password', 'pc', '--calls', '3', '--duration', '4']);
  try {
    await bob.waitForStdout('waiting for');
    await carol.waitForStdout('waiting for');
    const alice = ['--from', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'pa'];
    const options = await runCliAsync(['options', `sip:carol@${DOMAIN}`, ...alice]);
    assert.equal(options.status, 0, options.stderr);
    assert.match(options.stdout, /^sip:carol@sipway\.test: 200 OK; Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, PRACK, UPDATE, INFO, REFER, NOTIFY; Supported: 100rel, timer, replaces; Accept: /);

    const blind = await runCliAsync(['transfer', `sip:bob@${DOMAIN}`, `sip:carol@${DOMAIN}`, ...alice]);
    assert.equal(blind.status, 0, blind.stderr);
    assert.match(blind.stdout, /^transferred sip:bob@sipway\.test to sip:carol@sipway\.test \(blind\): 200 OK; reported 100, (180, )?200/);

    const attended = await runCliAsync(['transfer', `sip:bob@${DOMAIN}`, `sip:carol@${DOMAIN}`, '--attended', ...alice]);
    assert.equal(attended.status, 0, attended.stderr);
    assert.match(attended.stdout, /\(attended\): 200 OK/);

    assert.equal(await bob.exited, 0, bob.stderr());
    assert.equal(await carol.exited, 0, carol.stderr());
    const bobOut = bob.stdout();
    assert.equal((bobOut.match(/: called for a transfer/g) ?? []).length, 2, bobOut);
    assert.match(bobOut, /sip:carol@sipway\.test: called for a transfer \(attended\): 200 OK; PCMU; hung up by (us|the peer); RTP sent \d+, received [1-9]\d*/);
    const carolOut = carol.stdout();
    assert.match(carolOut, /sip:bob@sipway\.test: answered \(replacing a call\); PCMU/, carolOut);
    assert.match(carolOut, /sip:alice@sipway\.test: answered; PCMU; hung up by the peer/, 'the consultation call, ended by the replacing one');
  } finally {
    bob.child.kill();
    carol.child.kill();
    await ts.stop();
  }
});
