/**
 * Two headless baresip user agents (Debian 12: baresip 1.0.0) through `sipway serve`: both register with digest
 * authentication via sipway as outbound proxy, alice calls bob (answering the proxy's 407 herself), bob answers
 * automatically, the call is established on both sides, alice hangs up and both see the call closed. A first test
 * has the two call each other directly, so that a broken peer is told apart from a sipway failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, startCliServer, freePort, requireTool, skipWithout, type RunningServer } from '../helpers/process.js';
import { Baresip } from '../helpers/baresip.js';
import { waitForBindings } from '../helpers/location.js';

const STEP_MS = 10000;

function transcript(agents: Baresip[], server?: RunningServer): string {
  return [
    ...agents.map((a) => `--- baresip ${a.name} (events: ${a.events.map((e) => e.type).join(', ')}) ---\n${a.output().slice(-8000)}`),
    ...(server ? [`--- sipway (tail) ---\n${server.output().slice(-4000)}`] : []),
  ].join('\n');
}

/** Runs `body`, adding both agents' output (SIP traces) and sipway's log to any failure; always stops the agents. */
async function withAgents(agents: Baresip[], server: RunningServer | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${transcript(agents, server)}`, { cause: e });
  } finally {
    for (const a of agents) await a.stop();
  }
}

/** alice dials `target`, bob auto-answers, both establish; alice hangs up, both close. */
async function callAndHangUp(alice: Baresip, bob: Baresip, target: string): Promise<void> {
  const dial = await alice.command('dial', target);
  assert.ok(dial.ok, `alice: dial ${target} refused: ${dial.data}`);
  await alice.waitForEvent('CALL_ESTABLISHED', STEP_MS);
  await bob.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => e.direction === 'incoming');
  await alice.waitForOutput(/Call established/, STEP_MS);
  await bob.waitForOutput(/Call established/, STEP_MS);
  await new Promise((r) => setTimeout(r, 500));
  const hangup = await alice.command('hangup');
  assert.ok(hangup.ok, `alice: hangup refused: ${hangup.data}`);
  await alice.waitForEvent('CALL_CLOSED', STEP_MS);
  const closed = await bob.waitForEvent('CALL_CLOSED', STEP_MS);
  assert.match(closed.param ?? '', /reset by peer/i, `bob's call was closed by alice's BYE: ${JSON.stringify(closed)}`);
}

test('baresip alone: two instances call each other directly on loopback (peer check)', { timeout: 60000, skip: skipWithout('baresip') }, async () => {
  requireTool('baresip');
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-baresip-direct-'));
  try {
    const bob = await Baresip.start('bob', path.join(work, 'bob'), { user: 'bob', domain: '127.0.0.1', autoAnswer: true, regint: 0 });
    const alice = await Baresip.start('alice', path.join(work, 'alice'), { user: 'alice', domain: '127.0.0.1', regint: 0 }).catch(async (e: unknown) => {
      await bob.stop();
      throw e;
    });
    await withAgents([alice, bob], undefined, () => callAndHangUp(alice, bob, `sip:bob@127.0.0.1:${bob.sipPort}`));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('baresip: alice and bob register at sipway, alice calls bob through the proxy (407 answered), both hang up cleanly', { timeout: 90000, skip: skipWithout('baresip') }, async () => {
  requireTool('baresip');
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-baresip-'));
  const data = path.join(work, 'data');
  try {
    for (const user of ['alice', 'bob']) {
      const r = runCli(['user', 'add', `${user}@localhost`, '--password', `${user}-pw`, '--data', data]);
      assert.equal(r.status, 0, r.stderr);
    }
    // sipway's default auth settings: libre 1.1 (baresip 1.0) must register with them (docs/auth.md).
    const port = await freePort();
    const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', 'localhost', '--data', data, '--log-level', 'info']);
    try {
      // baresip adds ";lr" to the outbound proxy's Route itself.
      const outboundProxy = `sip:127.0.0.1:${port}`;
      const bob = await Baresip.start('bob', path.join(work, 'bob'), { user: 'bob', domain: 'localhost', password: 'bob-pw', outboundProxy, autoAnswer: true, regint: 600 });
      const alice = await Baresip.start('alice', path.join(work, 'alice'), { user: 'alice', domain: 'localhost', password: 'alice-pw', outboundProxy, regint: 600 }).catch(async (e: unknown) => {
        await bob.stop();
        throw e;
      });
      await withAgents([alice, bob], server, async () => {
        // Both register at start-up, possibly before the ctrl_tcp connection that would report REGISTER_OK.
        await waitForBindings(data, [alice, bob].map((a) => ({ aor: `sip:${a.name}@localhost`, port: a.sipPort })));
        await callAndHangUp(alice, bob, 'sip:bob@localhost');
      });
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
