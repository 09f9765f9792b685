/**
 * `sipway serve --workers N`: several processes share the listeners, each message is handled by the worker owning
 * its Call-ID, the location store is shared, writes to a connection go through the worker holding it, reloads reach
 * every worker, and a worker that dies is replaced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SipRequest } from '../../src/message/index.js';
import { freePort, runCli, startCliServer, type RunningServer } from '../helpers/process.js';
import { Dialog, invite, outOfDialog, register, TestUa } from '../proxy/ua.js';
import { policySource } from '../policy/policy-harness.js';

const DOMAIN = 'sipway.test';
const CALLS = 24;

async function startWorkers(dir: string, extra: string[] = [], settings: object = {}, listenPort?: number): Promise<{ server: RunningServer; port: number }> {
  const port = listenPort ?? (await freePort());
  // Callers are not challenged: the test is about where messages go, not about credentials.
  const config = path.join(dir, 'sipway.json');
  writeFileSync(config, JSON.stringify({ proxy: { authenticateCallers: false }, ...settings }));
  const server = await startCliServer([
    '--config', config,
    '--listen', `udp:127.0.0.1:${port}`,
    '--listen', `tcp:127.0.0.1:${port}`,
    '--domain', DOMAIN,
    '--data', path.join(dir, 'data'),
    '--no-auth',
    '--workers', '2',
    '--admin', `127.0.0.1:${await freePort()}`,
    ...extra,
  ]);
  return { server, port };
}

/** Which workers wrote a request log line for `method`. */
function workersThatHandled(output: string, method: string): Set<number> {
  const seen = new Set<number>();
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"request"') || !line.includes(`"method":"${method}"`)) continue;
    const m = /"worker":(\d+)/.exec(line);
    if (m) seen.add(Number(m[1]));
  }
  return seen;
}

/** Calls `to` from a UDP caller with a fresh Call-ID each time; every call must be answered 200 and hung up. */
async function callAndHangUp(caller: TestUa, port: number, to: string, calls: number): Promise<void> {
  for (let i = 0; i < calls; i++) {
    const inv: SipRequest = invite(caller, { to });
    caller.send(inv, port);
    const ok = await caller.response(inv.callId, 200, 5000);
    const dialog = Dialog.caller(inv, ok);
    caller.send(dialog.request(caller, 'ACK'), port);
    const bye = dialog.request(caller, 'BYE');
    caller.send(bye, port);
    assert.equal((await caller.response(bye.callId, undefined, 5000)).status, 200, `BYE of call ${i} to ${to}`);
  }
}

const callBob = (caller: TestUa, port: number, calls: number): Promise<void> => callAndHangUp(caller, port, `sip:bob@${DOMAIN}`, calls);
/** carol is reached at her address, not through a registration (a flow). */
const callCarol = (caller: TestUa, carol: TestUa, port: number, calls: number): Promise<void> =>
  callAndHangUp(caller, port, `sip:carol@127.0.0.1:${carol.port}`, calls);

test('calls reach a user registered through another worker, over UDP and over a TCP connection another worker holds', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-workers-'));
  const { server, port } = await startWorkers(dir);
  const caller = await TestUa.udp('alice');
  let bob = (await TestUa.udp('bob')).serve();
  try {
    await register(bob, port, 'bob', { domain: DOMAIN });
    await callBob(caller, port, CALLS);
    assert.deepEqual(workersThatHandled(server.output(), 'INVITE'), new Set([0, 1]), 'both workers owned calls');

    // Over TCP: the connection is accepted by one worker; calls owned by the other are written through it.
    bob.close();
    bob = (await TestUa.tcp(port, 'bob')).serve();
    await register(bob, port, 'bob', { domain: DOMAIN, extra: [] });
    await callBob(caller, port, CALLS);
    assert.ok(bob.received.filter((r) => r.message.isRequest && r.message.method === 'INVITE').length >= CALLS);
  } finally {
    caller.close();
    bob.close();
    assert.equal(await server.stop(), 0, 'the primary stops its workers and exits 0');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with transport.workerPorts each worker forwards requests from a UDP port of its own, named in Via; by default from the shared port', async () => {
  for (const workerPorts of [await freePort(), undefined]) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-workers-'));
    const { server, port } = await startWorkers(dir, [], workerPorts === undefined ? {} : { transport: { workerPorts } });
    const caller = await TestUa.udp('alice');
    // Carol is reached at an address, not through a registration (a flow), and answers to the source port.
    const carol = (await TestUa.udp('carol')).serve();
    try {
      await callCarol(caller, carol, port, CALLS);
      const forwarded = carol.received.filter((r) => r.message.isRequest && (r.message.method === 'INVITE' || r.message.method === 'BYE'));
      assert.ok(forwarded.length >= 2 * CALLS);
      for (const r of forwarded) assert.equal(r.message.via.port, r.from.port, `${(r.message as SipRequest).method}: Via names the port it left from`);
      const ports = new Set(forwarded.map((r) => r.from.port));
      if (workerPorts === undefined) assert.deepEqual(ports, new Set([port]));
      else assert.deepEqual(ports, new Set([workerPorts, workerPorts + 1]), 'worker k sends from workerPorts + k');
      // The caller still hears every response from the shared port it sent to.
      assert.ok(caller.received.every((r) => r.from.port === port));

      // A registered phone is called from the port it registered with, with worker ports too: some phones accept
      // requests from their registrar's address and port only.
      const bob = (await TestUa.udp('bob')).serve();
      try {
        await register(bob, port, 'bob', { domain: DOMAIN });
        await callBob(caller, port, 4);
        // (In-dialog requests go to the Contact like to any other address: docs/workers.md.)
        const invites = bob.received.filter((r) => r.message.isRequest && r.message.method === 'INVITE');
        assert.ok(invites.length >= 4);
        assert.ok(invites.every((r) => r.from.port === port && r.message.via.port === port), 'INVITEs from the shared port');
      } finally {
        bob.close();
      }
    } finally {
      caller.close();
      carol.close();
      assert.equal(await server.stop(), 0);
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('worker ports: stateless forwarding and loop detection know every worker\'s port as ours', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-workers-'));
  const caller = await TestUa.udp('alice');
  const carol = (await TestUa.udp('carol')).serve();
  // Stateless (§16.11) to carol; anything for 'loop' goes back to the server itself, on its shared port.
  const policy = path.join(dir, 'routing.mjs');
  const workerPorts = await freePort();
  const port = await freePort();
  writeFileSync(
    policy,
    policySource(`export default P.definePolicy({
      async onRequest(ctx) {
        if (!P.sanity(ctx)) return;
        if (await P.inDialog(ctx, { stateless: true })) return;
        if (ctx.ruri.startsWith('sip:loop@')) return ctx.relay(['sip:loop@127.0.0.1:${port}']);
        await ctx.relay(['sip:carol@127.0.0.1:${carol.port}'], { recordRoute: true, stateless: true });
      },
    });`),
  );
  const { server } = await startWorkers(dir, ['--policy', policy], { transport: { workerPorts } }, port);
  try {
    await callCarol(caller, carol, port, CALLS);
    assert.ok(carol.received.every((r) => r.from.port === workerPorts || r.from.port === workerPorts + 1), 'sent from the worker ports');
    // A request relayed to ourselves comes back with a Via naming a worker port: 482, not a run down to 483.
    for (let i = 0; i < 4; i++) {
      const m = outOfDialog(caller, 'MESSAGE', `sip:loop@${DOMAIN}`);
      caller.send(m, port);
      assert.equal((await caller.response(m.callId, undefined, 5000)).status, 482, 'loop detected');
    }
  } finally {
    caller.close();
    carol.close();
    assert.equal(await server.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reload reaches every worker, a broken policy is refused by all, and a dead worker is replaced', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-workers-'));
  const file = path.join(dir, 'routing.mjs');
  const replying = (status: number): string => policySource(`export default P.definePolicy({ onRequest(ctx) { ctx.reply(${status}); } });`);
  writeFileSync(file, replying(486));
  const adminPort = await freePort();
  const { server, port } = await startWorkers(dir, ['--policy', file, '--admin', `127.0.0.1:${adminPort}`]);
  const ua = await TestUa.udp('alice');
  const statuses = async (n: number): Promise<Set<number>> => {
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const m = outOfDialog(ua, 'MESSAGE', `sip:bob@${DOMAIN}`);
      ua.send(m, port);
      seen.add((await ua.response(m.callId, undefined, 5000)).status);
    }
    return seen;
  };
  try {
    assert.deepEqual(await statuses(CALLS), new Set([486]));
    writeFileSync(file, replying(480));
    const ok = runCli(['reload', '--admin', `127.0.0.1:${adminPort}`]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(await statuses(CALLS), new Set([480]), 'no worker kept the old policy');

    writeFileSync(file, 'export default {');
    const broken = runCli(['reload', '--admin', `127.0.0.1:${adminPort}`]);
    assert.equal(broken.status, 1);
    assert.match(broken.stderr, /routing\.mjs: SyntaxError/);
    assert.deepEqual(await statuses(CALLS), new Set([480]));

    // Kill one worker: the primary starts another in its place and every call is answered again. The new worker
    // loads the policy file as it is now, so it is put back to what the others run.
    writeFileSync(file, replying(480));
    const workers = execFileSync('pgrep', ['-P', String(server.child.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
    assert.equal(workers.length, 2, 'two worker processes');
    process.kill(workers[0]!, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (!server.output().includes('worker restarted') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(server.output(), /worker died; restarting it/);
    assert.match(server.output(), /worker restarted/);
    assert.deepEqual(await statuses(CALLS), new Set([480]), 'the new worker runs the current policy');
  } finally {
    ua.close();
    assert.equal(await server.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a listener the workers cannot bind stops the start with the field named, and no worker is left behind', async () => {
  const port = await freePort();
  const taken = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => taken.bind(port, '127.0.0.1', resolve));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-workers-'));
  try {
    const r = runCli(['serve', '--listen', `udp:127.0.0.1:${port}`, '--data', dir, '--workers', '2', '--admin', `127.0.0.1:${await freePort()}`], { timeoutMs: 20000 });
    assert.equal(r.status, 1, 'the primary exits (spawnSync returns only once it has)');
    assert.equal(r.stderr.trim(), `sipway: --listen: udp:127.0.0.1:${port} is in use (another sipway?)`);
  } finally {
    taken.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad worker count is refused with the field named', () => {
  const flag = runCli(['serve', '--workers', 'many']);
  assert.equal(flag.status, 2);
  assert.match(flag.stderr, /--workers: 'many' is not a number or 'auto'/);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-workers-'));
  try {
    const config = path.join(dir, 'sipway.json');
    writeFileSync(config, JSON.stringify({ workers: 0 }));
    const zero = runCli(['serve', '--config', config]);
    assert.equal(zero.status, 2, 'a bad config value is a usage error');
    assert.match(zero.stderr, /workers: must be 'auto' or a whole number between 1 and 64|workers: must be a number between 1 and 64/);
    assert.ok(readFileSync(config, 'utf8').length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
