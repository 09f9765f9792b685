/**
 * sipway's own user agent (`sipway call`, `sipway answer`) against baresip (Debian 12: 1.0.0), both registered with
 * digest at `sipway serve`: a call each way through the proxy, G.711 RTP both ways, each side hanging up once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeWav } from '../../src/media/index.js';
import { freePort, runCli, runCliAsync, skipWithout, spawnCli, startCliServer, type RunningServer } from '../helpers/process.js';
import { Baresip } from '../helpers/baresip.js';
import { waitForBindings } from '../helpers/location.js';

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
