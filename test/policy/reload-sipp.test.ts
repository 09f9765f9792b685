/**
 * Hot reload under load: SIPp places calls through a policy file that is rewritten and reloaded every few
 * milliseconds. Each version marks the calls it routes; no call may fail, and both versions must have routed calls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, requireTool, skipWithout } from '../helpers/process.js';
import { runSippAsync } from '../helpers/sipp.js';
import { startWithPolicy } from './policy-harness.js';

const CALLS = 200;

/** A policy that relays every new call to the UAS, marking the INVITE with its version; in-dialog requests go on. */
const version = (name: string, uasPort: number): string => `export default P.definePolicy({
  async onRequest(ctx) {
    if (!P.sanity(ctx)) return;
    if (await P.inDialog(ctx)) return;
    ctx.headers.set('X-Policy-Version', '${name}');
    await ctx.relay(['sip:uas@127.0.0.1:${uasPort}']);
  },
});`;

test('SIPp: 200 calls while the policy file is rewritten and reloaded every few ms, none failed', { timeout: 90000, skip: skipWithout('sipp') }, async () => {
  requireTool('sipp');
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-reload-sipp-'));
  const uasPort = await freePort();
  const h = await startWithPolicy(version('a', uasPort));
  let reloads = 0;
  let reloading = true;
  try {
    const swapping = (async () => {
      while (reloading) {
        h.rewrite(version(reloads % 2 === 0 ? 'b' : 'a', uasPort));
        assert.deepEqual(await h.ts.server.reloadPolicy(), { ok: true });
        reloads++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const uasDir = path.join(work, 'uas');
    const uacDir = path.join(work, 'uac');
    mkdirSync(uasDir);
    mkdirSync(uacDir);
    const uas = runSippAsync('uas-call.xml', h.port, uasDir, ['-p', String(uasPort), '-m', String(CALLS), '-timeout', '60s', '-trace_msg'], 70000);
    const uac = runSippAsync(
      'uac-call.xml',
      h.port,
      uacDir,
      ['-s', 'bob', '-key', 'callee_domain', 'sipway.test', '-key', 'caller', 'alice', '-key', 'caller_domain', 'sipway.test', '-p', String(await freePort()), '-m', String(CALLS), '-r', '100', '-l', '200', '-timeout', '60s'],
      70000,
    );
    const [c, s] = await Promise.all([uac, uas]);
    reloading = false;
    await swapping;
    assert.ok(c.successful === CALLS && c.failed === 0, `caller: ${c.successful} successful, ${c.failed} failed\n${c.stderr.slice(-1000)}`);
    assert.ok(s.successful === CALLS && s.failed === 0, `callee: ${s.successful} successful, ${s.failed} failed\n${s.stderr.slice(-1000)}`);
    assert.ok(reloads > 10, `the policy was swapped during the run (${reloads} times)`);
    const trace = readdirSync(uasDir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(path.join(uasDir, f), 'utf8')).join('');
    const byA = trace.split('X-Policy-Version: a\r\n').length - 1;
    const byB = trace.split('X-Policy-Version: b\r\n').length - 1;
    assert.ok(byA > 0 && byB > 0 && byA + byB === CALLS, `calls routed by version a: ${byA}, b: ${byB}`);
    rmSync(work, { recursive: true, force: true });
  } finally {
    reloading = false;
    await h.stop();
  }
});
