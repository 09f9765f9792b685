/**
 * Two different softphones against `sipway serve` at its default authentication settings (nothing under `auth` in
 * any config): a headless baresip (Debian 12: 1.0.0, libre 1.1) and a headless linphonec (Debian 12: linphone-cli
 * 5.1) register with digest authentication and call each other through the proxy, each answering its 407.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, startCliServer, freePort, skipWithout, type RunningServer } from '../helpers/process.js';
import { Baresip } from '../helpers/baresip.js';
import { Linphonec } from '../helpers/linphonec.js';
import { waitForBindings } from '../helpers/location.js';

const STEP_MS = 10000;

function transcript(alice: Baresip | undefined, bob: Linphonec | undefined, server: RunningServer): string {
  return [
    alice ? `--- baresip alice (events: ${alice.events.map((e) => e.type).join(', ')}) ---\n${alice.output().slice(-6000)}` : '',
    bob ? `--- linphonec bob ---\n${bob.output().slice(-3000)}\n--- liblinphone log (tail) ---\n${bob.log(6000)}` : '',
    `--- sipway (tail) ---\n${server.output().slice(-4000)}`,
  ].join('\n');
}

test('baresip and linphonec register at sipway with its default auth settings and call each other through it', { timeout: 120000, skip: skipWithout('baresip', 'linphonec') }, async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-phones-'));
  const data = path.join(work, 'data');
  let alice: Baresip | undefined;
  let bob: Linphonec | undefined;
  let server: RunningServer | undefined;
  try {
    for (const user of ['alice', 'bob']) {
      const r = runCli(['user', 'add', `${user}@localhost`, '--password', `${user}-pw`, '--data', data]);
      assert.equal(r.status, 0, r.stderr);
    }
    const port = await freePort();
    server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', 'localhost', '--data', data, '--log-level', 'info']);
    const proxy = `sip:127.0.0.1:${port}`;
    try {
      alice = await Baresip.start('alice', path.join(work, 'alice'), { user: 'alice', domain: 'localhost', password: 'alice-pw', outboundProxy: proxy, autoAnswer: true, regint: 600 });
      bob = await Linphonec.start('bob', path.join(work, 'bob'), { user: 'bob', domain: 'localhost', password: 'bob-pw', proxy, autoAnswer: true });
      await waitForBindings(data, [
        { aor: 'sip:alice@localhost', port: alice.sipPort },
        { aor: 'sip:bob@localhost', port: bob.sipPort },
      ]);
      await bob.waitRegistered(STEP_MS);

      // baresip calls linphonec; baresip hangs up.
      let since = bob.mark();
      const dial = await alice.command('dial', 'sip:bob@localhost');
      assert.ok(dial.ok, `alice: dial refused: ${dial.data}`);
      await alice.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'outgoing');
      await bob.waitForOutput(/Call \d+ with sip:alice@localhost connected/, STEP_MS, since);
      assert.ok((await alice.command('hangup')).ok, 'alice: hangup refused');
      await alice.waitForEvent('CALL_CLOSED', STEP_MS);
      await bob.waitForOutput(/Call \d+ with sip:alice@localhost ended/, STEP_MS, since);

      // linphonec calls baresip; linphonec hangs up.
      since = bob.mark();
      const closedBefore = alice.events.filter((e) => e.type === 'CALL_CLOSED').length;
      bob.send('call sip:alice@localhost');
      await bob.waitForOutput(/Call \d+ with sip:alice@localhost connected/, STEP_MS, since);
      await alice.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'incoming');
      bob.send('terminate');
      await bob.waitForOutput(/Call \d+ with sip:alice@localhost ended/, STEP_MS, since);
      const deadline = Date.now() + STEP_MS;
      while (alice.events.filter((e) => e.type === 'CALL_CLOSED').length === closedBefore) {
        assert.ok(Date.now() < deadline, 'alice saw the second call closed');
        await new Promise((r) => setTimeout(r, 50));
      }

      // Both calls went through the proxy: two answered calls in its CDRs, one each way (written just after the BYE).
      const deadlineCdr = Date.now() + STEP_MS;
      let calls: string[] = [];
      while (calls.length < 2 && Date.now() < deadlineCdr) {
        const cdr = runCli(['cdr', '--type', 'call', '--data', data, '--json']);
        assert.equal(cdr.status, 0, cdr.stderr);
        calls = (JSON.parse(cdr.stdout) as Array<{ caller: string; callee: string }>).map((c) => `${c.caller} -> ${c.callee}`).sort();
        if (calls.length < 2) await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(calls, ['sip:alice@localhost -> sip:bob@localhost', 'sip:bob@localhost -> sip:alice@localhost']);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${transcript(alice, bob, server)}`, { cause: e });
    } finally {
      await alice?.stop();
      await bob?.stop();
      await server.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
