/**
 * SIPp through the default policy's PSTN routing. While reloads swap the dialplan: a SIPp UAC calls a number, a
 * SIPp UAS plays the gateway (reached under two gateway URIs, one per group), and the route in the store flips
 * between the groups with a reload every few milliseconds. No call may fail, and both routes carry calls.
 * Failover: two SIPp UAS gateways, the first answering 503 (test/sipp/uas-503.xml), the second completing the call.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openGatewayStore } from '../../src/store/index.js';
import { freePort, requireTool, skipWithout } from '../helpers/process.js';
import { runSippAsync } from '../helpers/sipp.js';
import { startProxy } from '../proxy/harness.js';

const CALLS = 200;

test('SIPp: 200 calls to a number while reloadPolicy() swaps the dialplan every few ms, none failed', { timeout: 90000, skip: skipWithout('sipp') }, async () => {
  requireTool('sipp');
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-iptel-sipp-'));
  const gwPort = await freePort();
  const h = await startProxy({}, {
    gateways: {
      gateways: [
        { id: 'a', uri: `sip:127.0.0.1:${gwPort}`, group: 'a' },
        { id: 'b', uri: `sip:127.0.0.1:${gwPort};transport=udp`, group: 'b' },
      ],
    },
  });
  const store = await openGatewayStore({ dataDir: h.ts.dataDir });
  let flips = 0;
  let reloading = true;
  try {
    await store.putRoute({ prefix: '0', group: 'a', cost: 1 });
    assert.deepEqual(await h.ts.server.reloadPolicy(), { ok: true });
    const reloads = (async () => {
      while (reloading) {
        const [from, to] = flips % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
        await store.putRoute({ prefix: '0', group: to, cost: 1 });
        await store.removeRoute('0', from);
        const r = await h.ts.server.reloadPolicy();
        assert.deepEqual(r, { ok: true });
        flips++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const uasDir = path.join(work, 'uas');
    const uacDir = path.join(work, 'uac');
    mkdirSync(uasDir);
    mkdirSync(uacDir);
    const gateway = runSippAsync('uas-call.xml', h.port, uasDir, ['-p', String(gwPort), '-m', String(CALLS), '-timeout', '60s', '-trace_msg'], 70000);
    const callerPort = await freePort();
    const caller = runSippAsync(
      'uac-call.xml',
      h.port,
      uacDir,
      ['-s', '0301234', '-key', 'callee_domain', 'sipway.test', '-key', 'caller', 'alice', '-key', 'caller_domain', 'sipway.test', '-p', String(callerPort), '-m', String(CALLS), '-r', '100', '-l', '200', '-timeout', '60s'],
      70000,
    );
    const [c, g] = await Promise.all([caller, gateway]);
    reloading = false;
    await reloads;
    assert.ok(c.successful === CALLS && c.failed === 0, `caller: ${c.successful} successful, ${c.failed} failed\n${c.stderr.slice(-1000)}`);
    assert.ok(g.successful === CALLS && g.failed === 0, `gateway: ${g.successful} successful, ${g.failed} failed\n${g.stderr.slice(-1000)}`);
    assert.ok(flips > 10, `the dialplan was swapped during the run (${flips} times)`);
    const trace = readdirSync(uasDir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(path.join(uasDir, f), 'utf8')).join('');
    const viaA = trace.split(`INVITE sip:0301234@127.0.0.1:${gwPort};user=phone SIP/2.0`).length - 1;
    const viaB = trace.split(`INVITE sip:0301234@127.0.0.1:${gwPort};transport=udp;user=phone SIP/2.0`).length - 1;
    assert.ok(viaA > 0 && viaB > 0 && viaA + viaB === CALLS, `calls by gateway a: ${viaA}, b: ${viaB}`);
    rmSync(work, { recursive: true, force: true });
  } finally {
    reloading = false;
    await store.close();
    await h.stop();
  }
});

test('SIPp: gateway failover with two SIPp UAS gateways: the first answers 503, every call completes at the second', { timeout: 90000, skip: skipWithout('sipp') }, async () => {
  requireTool('sipp');
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-failover-sipp-'));
  const [downPort, upPort] = [await freePort(), await freePort()];
  const h = await startProxy({}, {
    gateways: {
      gateways: [
        { id: 'a-down', uri: `sip:127.0.0.1:${downPort}`, group: 'de' },
        { id: 'b-up', uri: `sip:127.0.0.1:${upPort}`, group: 'de' },
      ],
      routes: [{ prefix: '0', group: 'de', cost: 1 }],
    },
  });
  try {
    for (const dir of ['down', 'up', 'uac']) mkdirSync(path.join(work, dir));
    const calls = 50;
    const down = runSippAsync('uas-503.xml', h.port, path.join(work, 'down'), ['-p', String(downPort), '-m', String(calls), '-timeout', '60s'], 70000);
    const up = runSippAsync('uas-call.xml', h.port, path.join(work, 'up'), ['-p', String(upPort), '-m', String(calls), '-timeout', '60s'], 70000);
    const caller = runSippAsync(
      'uac-call.xml',
      h.port,
      path.join(work, 'uac'),
      ['-s', '0301234', '-key', 'callee_domain', 'sipway.test', '-key', 'caller', 'alice', '-key', 'caller_domain', 'sipway.test', '-p', String(await freePort()), '-m', String(calls), '-r', '25', '-timeout', '60s'],
      70000,
    );
    const [c, d, u] = await Promise.all([caller, down, up]);
    assert.ok(c.successful === calls && c.failed === 0, `caller: ${c.successful} successful, ${c.failed} failed\n${c.stderr.slice(-1000)}`);
    assert.ok(d.successful === calls && d.failed === 0, `gateway a (503): ${d.successful} successful, ${d.failed} failed\n${d.stderr.slice(-1000)}`);
    assert.ok(u.successful === calls && u.failed === 0, `gateway b: ${u.successful} successful, ${u.failed} failed\n${u.stderr.slice(-1000)}`);
    rmSync(work, { recursive: true, force: true });
  } finally {
    await h.stop();
  }
});
