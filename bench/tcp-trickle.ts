/**
 * bench:trickle: slow TCP peers against `sipway serve` (a child process), while a legitimate TCP client keeps asking.
 *
 *  trickle: BENCH_TRICKLE_CONNECTIONS (640) connections from BENCH_TRICKLE_ADDRESSES (20) loopback addresses
 *           (127.0.0.2 ...) each write a header section that never ends, one byte per millisecond per connection
 *           (as fast as this process manages: the achieved rate is printed), for BENCH_SECONDS (60).
 *  slow:    BENCH_SLOW_CONNECTIONS (10,000) connections from 32 per address (127.0.1.1 ...), each writing one byte
 *           every BENCH_SLOW_INTERVAL_MS (1,000), for BENCH_SECONDS.
 *
 * Attackers whose connection the server closes open a new one at once, as a real attack would. Meanwhile a client on
 * 127.0.0.1 opens a fresh TCP connection every second with an OPTIONS, and keeps one connection on which it sends a
 * REGISTER every second; both must be answered within 2 s. BENCH_MODE picks `trickle`, `slow` or `both` (default).
 * Printed: the server's RSS (its process tree, primary and one worker) idle, at its peak during the run and
 * BENCH_SETTLE_SECONDS (30) after the attackers have gone; the legitimate client's answered share. BENCH_CLI runs
 * another build of the CLI (dist/src/cli/main.js of another checkout) for a before/after comparison.
 *
 * Run through `npm run bench:trickle`, which raises the open-file limit (ulimit -n) to its hard limit for the bench and the server
 * (10,000 connections need a little over 10,000 descriptors on each side).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/helpers/process.js';
import { projectRoot } from '../test/helpers/paths.js';
import { Children, stopChild, treeMemory } from './e2e/procs.js';
import { envNumber } from './env.js';
import { MB, MemorySampler } from './security/measure.js';
import { addresses, Attack, LegitClient, optionsOverFreshConnection, sleep } from './security/tcp-peers.js';

const env = envNumber;
const MODE = process.env.BENCH_MODE ?? 'both';
const SECONDS = env('BENCH_SECONDS', 60);
const SETTLE_SECONDS = env('BENCH_SETTLE_SECONDS', 30);
const TRICKLE_CONNECTIONS = env('BENCH_TRICKLE_CONNECTIONS', 640);
const TRICKLE_ADDRESSES = env('BENCH_TRICKLE_ADDRESSES', 20);
const SLOW_CONNECTIONS = env('BENCH_SLOW_CONNECTIONS', 10_000);
const SLOW_PER_ADDRESS = 32;
const SLOW_INTERVAL_MS = env('BENCH_SLOW_INTERVAL_MS', 1000);
const CLI = process.env.BENCH_CLI ?? path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');

const children = new Children();
process.on('exit', () => children.killAll());
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

interface Server {
  child: ChildProcess;
  tcpPort: number;
  dir: string;
}

async function startServer(): Promise<Server> {
  const [udpPort, tcpPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-trickle-'));
  const args = [CLI, 'serve', '--listen', `udp:127.0.0.1:${udpPort}`, '--listen', `tcp:127.0.0.1:${tcpPort}`, '--domain', 'bench.test'];
  args.push('--data', path.join(dir, 'data'), '--no-auth', '--log-level', 'error', '--workers', '1', '--admin', `127.0.0.1:${await freePort()}`);
  const child = children.add(spawn(process.execPath, args, { cwd: projectRoot, stdio: ['ignore', 'ignore', 'inherit'] }));
  // Ready when it answers OPTIONS over TCP.
  const deadline = Date.now() + 30_000;
  while (!(await optionsOverFreshConnection(tcpPort, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the server did not start');
    await sleep(200);
  }
  return { child, tcpPort, dir };
}

async function run(name: string, server: Server, attack: Attack, everyMs: number): Promise<void> {
  const idle = treeMemory(server.child.pid!).rssBytes;
  const legit = new LegitClient(server.tcpPort);
  const sampler = new MemorySampler(server.child.pid!);
  const started = Date.now();
  await attack.start();
  const writer = setInterval(() => attack.writeEach(), everyMs);
  while (Date.now() - started < SECONDS * 1000) await sleep(250);
  clearInterval(writer);
  const seconds = (Date.now() - started) / 1000;
  attack.stop();
  await legit.stop();
  await sleep(SETTLE_SECONDS * 1000);
  sampler.stop();
  const peak = Math.max(idle, sampler.peakRss);
  const after = treeMemory(server.child.pid!).rssBytes;
  console.log(`${name}:`);
  console.log(`  attack: ${attack.opened} connections opened, ${attack.closedByServer} closed by the server, ${(attack.bytes / seconds).toFixed(0)} bytes/s written in ${seconds.toFixed(0)} s`);
  console.log(
    `  server RSS: idle ${(idle / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB (+${((peak - idle) / MB).toFixed(0)} MB), ${SETTLE_SECONDS} s after ${(after / MB).toFixed(0)} MB`,
  );
  console.log(`  legitimate TCP client: fresh connections ${legit.fresh.ok}/${legit.fresh.sent} answered; kept connection ${legit.kept.ok}/${legit.kept.sent} answered (${legit.kept.reconnects} reconnects)`);
}

async function main(): Promise<void> {
  console.log(`bench:trickle, ${MODE}, ${SECONDS} s per run, ${CLI}`);
  for (const mode of MODE === 'both' ? ['trickle', 'slow'] : [MODE]) {
    const server = await startServer();
    try {
      if (mode === 'trickle') {
        const attack = new Attack(server.tcpPort, addresses([0, 2], TRICKLE_ADDRESSES), Math.ceil(TRICKLE_CONNECTIONS / TRICKLE_ADDRESSES));
        await run(`trickle: ${TRICKLE_CONNECTIONS} connections from ${TRICKLE_ADDRESSES} addresses, one byte each per ms`, server, attack, 1);
      } else {
        const count = Math.ceil(SLOW_CONNECTIONS / SLOW_PER_ADDRESS);
        const attack = new Attack(server.tcpPort, addresses([1, 1], count), SLOW_PER_ADDRESS);
        await run(`slow: ${SLOW_CONNECTIONS} connections from ${count} addresses, one byte each per ${SLOW_INTERVAL_MS} ms`, server, attack, SLOW_INTERVAL_MS);
      }
    } finally {
      await stopChild(server.child, 'SIGTERM', 5000);
      rmSync(server.dir, { recursive: true, force: true });
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
