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

test('sipway answer and sipway call talk through sipway: the tone played by the caller is what the callee records', { timeout: 60_000 }, async () => {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true } });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-call-'));
  for (const [user, pw] of [['alice', 'pa'], ['bob', 'pb']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const proxy = `udp:127.0.0.1:${ts.port}`;
  writeFileSync(path.join(dir, 'tone.wav'), writeWav(tone(1)));
  const answer = spawnCli(['answer', `sip:bob@${DOMAIN}`, '--proxy', proxy, '--password', 'pb', '--record', path.join(dir, 'bob.wav'), '--duration', '10']);
  try {
    await answer.waitForStdout('waiting for');
    assert.match(answer.stdout(), /^registered <sip:bob@127\.0\.0\.1:\d+> for sip:bob@sipway\.test; waiting for 1 call\(s\)/, answer.stderr());

    const call = await runCliAsync(['call', `sip:bob@${DOMAIN}`, '--from', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'pa', '--play', path.join(dir, 'tone.wav'), '--duration', '1.6']);
    assert.equal(call.status, 0, call.stderr);
    const counters = /^sip:bob@sipway\.test: 200 OK; hung up by us; RTP sent (\d+), received (\d+)/.exec(call.stdout);
    assert.ok(counters, call.stdout);
    assert.ok(Number(counters[1]) >= 60 && Number(counters[2]) >= 60, `RTP both ways: ${call.stdout}`);

    assert.equal(await answer.exited, 0, answer.stderr());
    assert.match(answer.stdout(), /sip:alice@sipway\.test: answered; hung up by the peer; RTP sent \d+, received \d+/);
    // The callee's recording starts with the caller's tone: its level and its 880 zero crossings a second.
    const recorded = readWav(readFileSync(path.join(dir, 'bob.wav')));
    assert.ok(recorded.length >= 8000, `a second or more recorded (${recorded.length} samples)`);
    const first = recorded.subarray(400, 7600); // 0.9 s inside the tone, away from its edges
    assert.ok(rms(first) > 5000, `the tone's level arrived (rms ${Math.round(rms(first))})`);
    const perSecond = zeroCrossings(first) / 0.9;
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
