/**
 * bench:guessing: a REGISTER wrong-password flood against `sipway serve` while the real user keeps registering
 * (prints figures, asserts nothing; never part of `npm test`).
 *
 *  guessing:  BENCH_GUESS_RATE (2,000) REGISTERs/s for alice, each with digest credentials over a wrong password
 *             (bench/security/udp-flood.ts: one nonce per source address, fetched first), for BENCH_SECONDS (30),
 *             from one address (127.0.0.2) or spread over 20 (127.0.1.1-20, 100/s each).
 *  real user: alice registers (REGISTER, 401, REGISTER with the right password) every second from 127.0.0.1, an
 *             address she registered from before the attack; and, from the attack's start, a new device of hers at
 *             127.0.0.4 that never registered before. Each registration is given 10 s (UDP retransmissions as a UA).
 *
 * Figures per run: the real user's registrations that succeeded and how long they took; the guesses that reached
 * the verifier (the `auth.failed` counter of GET /stats: each a store lookup and a hash), in all and per second, and
 * what held the rest back (flood guard refusals and bans, requests refused by the throttle before any check); the
 * server's memory and CPU; the load average (other work shares this machine).
 *
 * Runs: BENCH_SOURCES ("1,20") x BENCH_GUARD ("on,off"): the flood guard on (with `flood.trusted: []`, since it
 * trusts loopback by default) or off (`flood.enabled: false`: the authentication throttle alone). BENCH_WORKERS (1).
 */
import path from 'node:path';
import { runCli } from '../test/helpers/process.js';
import { Children, treeCpuMs, treeMemory } from './e2e/procs.js';
import { DOMAIN, startServer } from './e2e/servers.js';
import { envNumber } from './env.js';
import { every, flood, loadAverage, machine, MemorySampler, mib, sipwayStats, sleep, Tally, total, workDir } from './security/measure.js';
import { UdpSipClient } from './security/udp-client.js';

const RATE = envNumber('BENCH_GUESS_RATE', 2000);
const SECONDS = envNumber('BENCH_SECONDS', 30);
const WORKERS = envNumber('BENCH_WORKERS', 1);
const SOURCES = (process.env.BENCH_SOURCES ?? '1,20').split(',').map(Number).filter((n) => n > 0);
const GUARD = (process.env.BENCH_GUARD ?? 'on,off').split(',');
const PASSWORD = 'alice-real-secret';
const TIMEOUT_MS = 10_000;

function sources(count: number): string[] {
  return count === 1 ? ['127.0.0.2'] : Array.from({ length: count }, (_, i) => `127.0.1.${i + 1}`);
}

async function run(work: string, children: Children, count: number, guard: string): Promise<string[]> {
  const data = path.join(work, `data-${count}-${guard}`);
  const add = runCli(['user', 'add', `alice@${DOMAIN}`, '--password', PASSWORD, '--data', data]);
  if (add.status !== 0) throw new Error(`sipway user add: ${add.stderr}`);
  const settings = guard === 'on' ? { flood: { trusted: [] } } : { flood: { enabled: false } };
  const server = await startServer(
    'sipway',
    { kind: 'secured', sipwayData: data, kamailioDb: '', settings, kamailioConfig: '', kamailioDefines: [] },
    { workers: WORKERS, kamailioShmMb: 0, dir: work, children, sipwayDefaults: false, workerPorts: false },
  );
  const target = { host: '127.0.0.1', port: server.port };
  const known = await UdpSipClient.open('127.0.0.1', target);
  const fresh = await UdpSipClient.open('127.0.0.4', target);
  try {
    // alice registers from her usual address before the attack: that address has succeeded for her.
    const warm = new Tally();
    for (let i = 0; i < 5; i++) {
      const r = await known.register('alice', DOMAIN, PASSWORD, TIMEOUT_MS);
      warm.add(r.status, r.ms);
      await sleep(200);
    }
    await sleep(1000);
    const idle = treeMemory(server.pid);
    const sampler = new MemorySampler(server.pid);
    const before = await sipwayStats(server.adminPort!);
    const cpuBefore = treeCpuMs(server.pid);
    const load = loadAverage();
    const knownTally = new Tally();
    const freshTally = new Tally();
    const attack = flood({ kind: 'register', host: '127.0.0.1', port: server.port, sources: sources(count), rate: RATE, seconds: SECONDS, domain: DOMAIN, user: 'alice' }, children);
    const loops = [
      every(1000, async () => {
        const r = await known.register('alice', DOMAIN, PASSWORD, TIMEOUT_MS);
        knownTally.add(r.status, r.ms);
      }),
      every(1000, async () => {
        const r = await fresh.register('alice', DOMAIN, PASSWORD, TIMEOUT_MS);
        freshTally.add(r.status, r.ms);
      }),
    ];
    const guesses = await attack;
    await Promise.all(loops.map((l) => l.stop()));
    const cpu = (treeCpuMs(server.pid) - cpuBefore) / (guesses.seconds * 1000);
    const after = await sipwayStats(server.adminPort!);
    const d = (pick: Parameters<typeof total>[1]): number => total(after, pick) - total(before, pick);
    const endLoad = loadAverage();
    await sleep(5000);
    sampler.stop();
    const settled = treeMemory(server.pid);
    const label = `${count === 1 ? 'one address' : `${count} addresses`}, flood guard ${guard === 'on' ? 'on (trusted: [])' : 'off'}`;
    const failed = d((p) => p.auth?.failed);
    return [
      `${label}: ${load} at the start, ${endLoad} at the end`,
      `  guesses sent        ${guesses.sent} in ${guesses.seconds.toFixed(1)} s (${(guesses.sent / guesses.seconds).toFixed(0)}/s); answers ${JSON.stringify(guesses.answers)}`,
      `  reached the verifier ${failed} (${(failed / guesses.seconds).toFixed(2)}/s; auth.failed)`,
      `  held back           throttle refused unchecked ${d((p) => p.auth?.refused)}, blocks started ${d((p) => p.auth?.blocks)}; flood guard refused REGISTER ${d((p) => p.flood.refused.register)}, bans ${d((p) => p.flood.bansStarted)}, dropped while banned ${d((p) => p.flood.droppedWhileBanned)}`,
      `  alice, known address ${knownTally} (before the attack ${warm})`,
      `  alice, new device    ${freshTally}`,
      `  server              CPU ${(100 * cpu).toFixed(0)} % of one core; RSS idle ${mib(idle.rssBytes)}, peak ${mib(sampler.peakRss)}, 5 s after ${mib(settled.rssBytes)}`,
    ];
  } finally {
    known.close();
    fresh.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const children = new Children();
  const work = workDir('sipway-bench-guessing-', children);
  console.log(`bench:guessing: ${machine()}; sipway --workers ${WORKERS}; ${RATE} wrong-password REGISTERs/s for ${SECONDS} s`);
  for (const count of SOURCES) {
    for (const guard of GUARD) {
      for (const line of await run(work, children, count, guard)) console.log(line);
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
