/**
 * sipway vs Kamailio 5.6, side by side on loopback (prints figures, asserts nothing; never part of `npm test`).
 * Each scenario runs against sipway, then against Kamailio with a config of bench/kamailio/ for the same role:
 *   1. stateful proxy to a static destination, Record-Route (SIPp UAC -> server -> SIPp UAS, INVITE..BYE);
 *   2. registrar + lookup: the callee registered (plus other users), the INVITE looked up and relayed;
 *   3. REGISTER with digest authentication over 10,000 distinct users;
 *   4. stateless forwarding of the call of scenario 1;
 * and the memory of 100,000 bindings, with scenario 2's CPU per call measured again at that size.
 * Figures: server CPU per call (/proc, the whole process tree) at a fixed rate, run BENCH_RUNS times (min / median /
 * max); the highest rate of a short ramp with < 0.1 % failed calls; p50/p99 of SIPp's response time; memory per binding.
 * Run: npm run bench:e2e   (knobs: see bench/README.md)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCli, freePort } from '../test/helpers/process.js';
import { writeUsers } from '../test/helpers/sipp.js';
import { projectRoot } from '../test/helpers/paths.js';
import { Children, treeCpuMs, treeMemory } from './e2e/procs.js';
import { writeKamailioSubscribers } from './e2e/subscribers.js';
import { percentile, runLoad, startUas, type LoadResult } from './e2e/sipp.js';
import { DOMAIN, ensureTools, startServer, type BenchServer, type Role, type ServerName, type ServerOptions } from './e2e/servers.js';
import { envNumber } from './env.js';

const env = envNumber;
const list = (name: string, fallback: string): number[] => (process.env[name] ?? fallback).split(',').map(Number).filter((n) => n > 0);

const SECONDS = env('BENCH_SECONDS', 3);
const RUNS = env('BENCH_RUNS', 3);
/**
 * Calls (registrations) of the unreported warm-up, at 1,000/s or the fixed rate if higher. With two workers each
 * sees half of them, and V8 needs a few thousand passes over the hot path to optimise it: with 450 warm-up calls
 * the first fixed-rate run of sipway came out 30-40 % above the others.
 */
const WARMUP = env('BENCH_WARMUP', 3000);
/**
 * What operators run, and where Kamailio's figure is its own: at a few hundred calls/s its idle timer processes
 * dominate its per-call CPU, which flattered the ratio (1.57x at 300/s against 5.1x at 1,000/s, issue 15).
 */
const CALL_RATE = env('BENCH_RATE', 1000);
const REG_RATE = env('BENCH_REG_RATE', 500);
const CALL_RAMP = list('BENCH_RAMP', '500,1000,1500,2000,3000');
const REG_RAMP = list('BENCH_REG_RAMP', '1000,2000,3000,4000');
const RAMP_SECONDS = env('BENCH_RAMP_SECONDS', 3);
const USERS = env('BENCH_USERS', 10000);
const BINDINGS = env('BENCH_BINDINGS', 100000);
const FLOOD_RATE = env('BENCH_FLOOD_RATE', 3000);
const PER_SIPP = env('BENCH_SIPP_CPS', 1000);
/**
 * When sipway's memory is read after the flood: its REGISTER transactions live for Timer J (64*T1 = 32 s), and V8
 * gives the heap they grew back in steps over the following minute (on the development VM: 351 MiB at 35 s, 246 at
 * 45 s, 161 at 105 s). The steady state is what 100,000 registered users cost.
 */
const SETTLE_SECONDS = env('BENCH_SETTLE_SECONDS', 120);
/** Timer J (64 x T1 = 32 s) and a little: sipway's REGISTER transactions of the flood have just ended. */
const TRANSACTIONS_OVER_SECONDS = 35;
const SCENARIOS = new Set((process.env.BENCH_SCENARIOS ?? '1,2,3,4,mem').split(','));
const SERVERS: ServerName[] = ['sipway', 'kamailio'];

const SIPP_DIR = path.join(projectRoot, 'test', 'sipp');
const UAC_CALL = path.join(SIPP_DIR, 'uac-call.xml');
const UAS_CALL = path.join(SIPP_DIR, 'uas-call.xml');
const REGISTER_NOAUTH = path.join(SIPP_DIR, 'register-noauth-uac.xml');
const REGISTER_AUTH = path.join(projectRoot, 'bench', 'sipp', 'register-auth-rtd.xml');
/** The caller is from a foreign domain: sipway challenges callers of its own domains only (Kamailio never does here). */
const CALL_ARGS = ['-s', 'bob', '-key', 'callee_domain', DOMAIN, '-key', 'caller', 'caller', '-key', 'caller_domain', 'elsewhere.test'];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;

/** How one scenario loads a server: the SIPp scenario and its arguments, the calls' distinct users if any. */
interface Workload {
  scenario: string;
  args: string[];
  rate: number;
  ramp: number[];
  injection?: (process: number, processes: number, count: number) => string[];
}

interface Measured {
  cpuUs: number[];
  p50: number[];
  p99: number[];
  failed: number;
  maxRate?: number;
}

class Bench {
  private seq = 0;
  readonly results = new Map<string, Partial<Record<ServerName, Measured>>>();
  readonly memory: Partial<
    Record<ServerName, { perBinding: number; beforeMiB: number; afterMiB: number; rssPerBinding: number; transactionsOverPerBinding: number }>
  > = {};

  constructor(
    readonly work: string,
    readonly children: Children,
    readonly serverOptions: ServerOptions,
  ) {}

  dirFor(label: string): string {
    return path.join(this.work, `${String(++this.seq).padStart(3, '0')}-${label}`);
  }

  /** `graceSeconds`: how long past its schedule a load may run before its SIPp processes are killed. */
  load(server: BenchServer, w: Workload, rate: number, calls: number, label: string, timed = false, graceSeconds = 20): Promise<LoadResult> {
    return runLoad({ scenario: w.scenario, port: server.port, rate, calls, args: w.args, injection: w.injection, perProcess: PER_SIPP, dir: this.dirFor(`${server.name}-${label}`), timed }, this.children, graceSeconds);
  }

  /** Warm-up (unreported: V8 compiles the hot path), RUNS fixed-rate runs with CPU read around each, then the ramp. */
  async measure(key: string, server: BenchServer, w: Workload, withRamp: boolean): Promise<Measured> {
    await this.load(server, w, Math.max(w.rate, 1000), WARMUP, 'warm-up');
    await sleep(500);
    const m: Measured = { cpuUs: [], p50: [], p99: [], failed: 0 };
    for (let i = 0; i < RUNS; i++) {
      const before = treeCpuMs(server.pid);
      const r = await this.load(server, w, w.rate, Math.round(w.rate * SECONDS), `fixed${i}`, true);
      const used = treeCpuMs(server.pid) - before;
      const cpu = r.successful > 0 ? (used * 1000) / r.successful : NaN;
      const sorted = [...r.rtts].sort((a, b) => a - b);
      m.cpuUs.push(cpu);
      m.p50.push(percentile(sorted, 50));
      m.p99.push(percentile(sorted, 99));
      m.failed += r.failed + r.missing;
      console.log(`  ${key} ${server.name} run ${i + 1}: ${r.successful} ok, ${r.failed + r.missing} failed at ${w.rate}/s; CPU ${cpu.toFixed(0)} µs/call; rtt p50 ${fmtMs(m.p50.at(-1)!)} p99 ${fmtMs(m.p99.at(-1)!)}${errs(r)}`);
      await sleep(500);
    }
    if (withRamp) m.maxRate = await this.ramp(key, server, w);
    return m;
  }

  /** Increasing rates until the first that loses >= 0.1 % of its calls or falls behind its schedule. */
  private async ramp(key: string, server: BenchServer, w: Workload): Promise<number> {
    let best = 0;
    for (const rate of w.ramp) {
      const calls = Math.round(rate * RAMP_SECONDS);
      // A step that overloads the server ends a few seconds past its schedule: its stragglers count as failed.
      const r = await this.load(server, w, rate, calls, `ramp${rate}`, false, 5);
      const lost = r.failed + r.missing;
      // The last calls end a call's length (plus SIPp's start) after the schedule: allow 1.5 s and 20 %.
      const onTime = r.wallMs <= RAMP_SECONDS * 1000 * 1.2 + 1500;
      const ok = lost < calls * 0.001 && onTime;
      console.log(`  ${key} ${server.name} ramp ${rate}/s: ${r.successful}/${calls} ok, ${lost} failed, ${(r.wallMs / 1000).toFixed(1)} s${ok ? '' : ' -> not sustained'}${errs(r)}`);
      await sleep(700);
      if (!ok) break;
      best = rate;
    }
    return best;
  }

  record(key: string, name: ServerName, m: Measured): void {
    const row = this.results.get(key) ?? {};
    row[name] = m;
    this.results.set(key, row);
  }
}

function errs(r: LoadResult): string {
  return r.errors.length > 0 ? ` [SIPp: ${r.errors[0]}]` : '';
}

function fmtMs(v: number): string {
  return Number.isFinite(v) ? `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms` : 'n/a';
}

/** Registers bob at the UAS's port (when given), then `others` users from other ports (bindings never called). */
async function registerUsers(bench: Bench, server: BenchServer, bobPort: number | undefined, others: number, rate: number, firstUser: number): Promise<number> {
  if (bobPort !== undefined) {
    const bob = await bench.load(server, { scenario: REGISTER_NOAUTH, args: ['-p', String(bobPort)], rate: 1, ramp: [], injection: () => [`bob;${DOMAIN};`] }, 10, 1, 'register-bob');
    if (bob.successful !== 1) throw new Error(`${server.name}: bob did not register ${errs(bob)}`);
  }
  const w: Workload = {
    scenario: REGISTER_NOAUTH,
    args: [],
    rate,
    ramp: [],
    injection: (i, k, count) => {
      const start = firstUser + Math.floor(others / k) * i + Math.min(i, others % k);
      return Array.from({ length: count }, (_, j) => `u${String(start + j).padStart(6, '0')};${DOMAIN};`);
    },
  };
  const r = await bench.load(server, w, rate, others, `register-${others}`);
  if (r.failed + r.missing > 0) console.log(`  ${server.name}: ${r.failed + r.missing} of ${others} registrations failed${errs(r)}`);
  return r.successful;
}

async function callScenario(bench: Bench, key: string, name: ServerName, role: (uasPort: number) => Role, registered: boolean): Promise<void> {
  const uasPort = await freePort();
  const server = await startServer(name, role(uasPort), bench.serverOptions);
  try {
    // Scenario 2: 100 users online, bob among them; the UAS binds bob's port only after his REGISTER went out.
    if (registered) await registerUsers(bench, server, uasPort, 99, 500, 0);
    const uas = startUas(UAS_CALL, uasPort, 'bob', bench.dirFor(`uas-${name}-${key}`), bench.children);
    try {
      await sleep(300);
      bench.record(key, name, await bench.measure(key, server, { scenario: UAC_CALL, args: CALL_ARGS, rate: CALL_RATE, ramp: CALL_RAMP }, true));
    } finally {
      await uas.stop();
    }
  } finally {
    await server.stop();
  }
}

/** Scenario 2 with BINDINGS users online: memory per binding, then the CPU per call at that size. */
async function memoryScenario(bench: Bench, name: ServerName): Promise<void> {
  const uasPort = await freePort();
  const server = await startServer(name, { kind: 'registrar' }, bench.serverOptions);
  try {
    await registerUsers(bench, server, uasPort, 99, 500, 0);
    const uas = startUas(UAS_CALL, uasPort, 'bob', bench.dirFor(`uas-${name}-mem`), bench.children);
    try {
      await sleep(2000);
      const before = treeMemory(server.pid);
      const added = await registerUsers(bench, server, undefined, BINDINGS - 100, FLOOD_RATE, 99);
      // Kamailio answers REGISTER statelessly; sipway keeps each REGISTER's transaction for Timer J after the 200.
      const settle = name === 'sipway' ? SETTLE_SECONDS : 2;
      console.log(`  mem ${name}: ${added} more bindings; reading memory in ${settle} s`);
      // How the memory settles (transactions ending, the heap given back) is worth seeing, not just its end point.
      const series: string[] = [];
      let transactionsOver: number | undefined;
      for (let waited = 0; waited < settle; waited += 5) {
        await sleep(Math.min(5, settle - waited) * 1000);
        const at = Math.min(waited + 5, settle);
        const pss = treeMemory(server.pid).pssBytes;
        if (transactionsOver === undefined && at >= TRANSACTIONS_OVER_SECONDS) transactionsOver = pss;
        series.push(`${at} s ${(pss / 1048576).toFixed(0)}`);
      }
      if (series.length > 1) console.log(`  mem ${name}: PSS (MiB) after the flood: ${series.join(', ')}`);
      const after = treeMemory(server.pid);
      bench.memory[name] = {
        perBinding: (after.pssBytes - before.pssBytes) / Math.max(1, added),
        transactionsOverPerBinding: ((transactionsOver ?? after.pssBytes) - before.pssBytes) / Math.max(1, added),
        rssPerBinding: (after.rssBytes - before.rssBytes) / Math.max(1, added),
        beforeMiB: before.pssBytes / 1048576,
        afterMiB: after.pssBytes / 1048576,
      };
      console.log(`  mem ${name}: PSS ${(before.pssBytes / 1048576).toFixed(1)} -> ${(after.pssBytes / 1048576).toFixed(1)} MiB over ${after.processes} processes; RSS ${(before.rssBytes / 1048576).toFixed(1)} -> ${(after.rssBytes / 1048576).toFixed(1)} MiB`);
      bench.record('2@100k', name, await bench.measure('2@100k', server, { scenario: UAC_CALL, args: CALL_ARGS, rate: CALL_RATE, ramp: [] }, false));
    } finally {
      await uas.stop();
    }
  } finally {
    await server.stop();
  }
}

async function registerScenario(bench: Bench, name: ServerName, sipwayData: string, kamailioDb: string, rows: string[]): Promise<void> {
  const server = await startServer(name, { kind: 'registrar-auth', sipwayData, kamailioDb }, bench.serverOptions);
  // Consecutive loads take consecutive users, so that runs register distinct users as long as there are enough.
  let next = 0;
  const injection = (_process: number, _processes: number, count: number): string[] => {
    const out = Array.from({ length: count }, (_, j) => rows[(next + j) % rows.length]!);
    next += count;
    return out;
  };
  try {
    bench.record('3', name, await bench.measure('3', server, { scenario: REGISTER_AUTH, args: ['-auth_uri', DOMAIN], rate: REG_RATE, ramp: REG_RAMP, injection }, true));
  } finally {
    await server.stop();
  }
}

/**
 * The users of scenario 3 for both servers: `sipway user import` into its embedded SQLite store, and Kamailio's
 * `subscriber` table in an SQLite file (bench/e2e/subscribers.ts).
 */
function prepareUsers(work: string): { sipwayData: string; kamailioDb: string; rows: string[] } {
  const { injection, importFile } = writeUsers(work, DOMAIN, USERS);
  const sipwayData = path.join(work, 'sipway-users');
  const t0 = Date.now();
  const imp = runCli(['user', 'import', importFile, '--data', sipwayData], { timeoutMs: 300000 });
  if (imp.status !== 0) throw new Error(`sipway user import failed: ${imp.stderr}`);
  console.log(`  ${USERS} users imported into sipway (sipway user import) in ${((Date.now() - t0) / 1000).toFixed(1)} s; the same in Kamailio's SQLite subscriber table`);
  const kamailioDb = path.join(work, 'kamailio.sqlite');
  writeKamailioSubscribers(
    kamailioDb,
    readFileSync(importFile, 'utf8').trim().split('\n').map((line) => {
      const [aor = '', password = ''] = line.split(' ');
      const [user = '', domain = ''] = aor.split('@');
      return { user, domain, password };
    }),
  );
  const rows = readFileSync(injection, 'utf8').trim().split('\n').slice(1);
  return { sipwayData, kamailioDb, rows };
}

function fmtTriple(xs: number[]): string {
  if (xs.length === 0) return 'n/a';
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0]!.toFixed(0)} / ${median(s).toFixed(0)} / ${s[s.length - 1]!.toFixed(0)}`;
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : 'n/a';
}

function printTable(bench: Bench): string {
  const rows: string[][] = [];
  const titles: Record<string, string> = {
    '1': '1 stateful proxy, static destination',
    '2': '2 registrar + lookup (100 users)',
    '2@100k': '2 registrar + lookup (100,000 users)',
    '3': `3 REGISTER + digest (${USERS} users)`,
    '4': '4 stateless forwarding',
  };
  for (const key of ['1', '2', '2@100k', '3', '4']) {
    const r = bench.results.get(key);
    if (!r) continue;
    const s = r.sipway;
    const k = r.kamailio;
    const unit = key === '3' ? 'registration' : 'call';
    const rate = key === '3' ? REG_RATE : CALL_RATE;
    rows.push([titles[key]!, `CPU µs/${unit} at ${rate}/s (min / med / max)`, s ? fmtTriple(s.cpuUs) : 'n/a', k ? fmtTriple(k.cpuUs) : 'n/a', ratio(s && median(s.cpuUs), k && median(k.cpuUs))]);
    if (s?.maxRate !== undefined || k?.maxRate !== undefined) {
      rows.push(['', `max ${unit}s/s, < 0.1 % failed`, String(s?.maxRate ?? 'n/a'), String(k?.maxRate ?? 'n/a'), ratio(s?.maxRate, k?.maxRate)]);
    }
    rows.push(['', 'response time p50 / p99 ms (median of runs)', s ? `${fmtMs(median(s.p50))} / ${fmtMs(median(s.p99))}` : 'n/a', k ? `${fmtMs(median(k.p50))} / ${fmtMs(median(k.p99))}` : 'n/a', ratio(s && median(s.p50), k && median(k.p50))]);
    if ((s?.failed ?? 0) + (k?.failed ?? 0) > 0) rows.push(['', 'failed in the fixed-rate runs', String(s?.failed ?? 'n/a'), String(k?.failed ?? 'n/a'), '']);
  }
  const ms = bench.memory.sipway;
  const mk = bench.memory.kamailio;
  if (ms || mk) {
    const settled = `${SETTLE_SECONDS} s after the flood`;
    rows.push([`memory, ${BINDINGS.toLocaleString('en')} bindings`, `bytes per binding (PSS, all processes; sipway ${settled})`, ms ? ms.perBinding.toFixed(0) : 'n/a', mk ? mk.perBinding.toFixed(0) : 'n/a', ratio(ms?.perBinding, mk?.perBinding)]);
    if (SETTLE_SECONDS > TRANSACTIONS_OVER_SECONDS) {
      const t = ms?.transactionsOverPerBinding;
      rows.push(['', `the same ${TRANSACTIONS_OVER_SECONDS} s after the flood (sipway's REGISTER transactions just over)`, t !== undefined ? t.toFixed(0) : 'n/a', mk ? mk.perBinding.toFixed(0) : 'n/a', ratio(t, mk?.perBinding)]);
    }
    rows.push(['', 'bytes per binding (RSS summed)', ms ? ms.rssPerBinding.toFixed(0) : 'n/a', mk ? mk.rssPerBinding.toFixed(0) : 'n/a', ratio(ms?.rssPerBinding, mk?.rssPerBinding)]);
    rows.push(['', 'PSS before -> after, MiB', ms ? `${ms.beforeMiB.toFixed(0)} -> ${ms.afterMiB.toFixed(0)}` : 'n/a', mk ? `${mk.beforeMiB.toFixed(0)} -> ${mk.afterMiB.toFixed(0)}` : 'n/a', '']);
  }
  const header = ['scenario', 'figure', 'sipway', 'Kamailio', 'sipway/Kamailio'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  lines.push('', 'ratio = sipway / Kamailio (CPU, response time, memory: < 1 favours sipway; max rate: > 1 favours sipway)');
  return lines.join('\n');
}

async function main(): Promise<void> {
  ensureTools();
  const workers = env('BENCH_WORKERS', os.cpus().length);
  const kamailioVersion = spawnSync('kamailio', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '';
  const sippVersion = (spawnSync('sipp', ['-v'], { encoding: 'utf8' }).stdout.match(/SIPp v[\w.\-]+/) ?? [''])[0];
  const children = new Children();
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-bench-e2e-'));
  const cleanUp = (): void => {
    children.killAll();
    rmSync(work, { recursive: true, force: true });
  };
  process.on('exit', cleanUp);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      cleanUp();
      process.exit(130);
    });
  }
  const started = Date.now();
  console.log(`${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ${kamailioVersion}, ${sippVersion}`);
  console.log(
    `workers: ${workers} (sipway --workers ${workers}; Kamailio -n ${workers} UDP workers); ` +
      `fixed rate ${CALL_RATE} calls/s and ${REG_RATE} REGISTER/s, ${SECONDS} s x ${RUNS} runs; ramp ${RAMP_SECONDS} s per step; ${PER_SIPP}/s per SIPp process`,
  );
  const sipwayDefaults = process.env.BENCH_ACCOUNTING === '1';
  console.log(
    sipwayDefaults
      ? 'sipway with accounting (CDRs in SQLite) and CPL on, its defaults; Kamailio without acc or cpl-c'
      : 'accounting and CPL off in sipway, as in Kamailio (no acc, no cpl-c); BENCH_ACCOUNTING=1 keeps them on',
  );
  const workerPorts = process.env.BENCH_WORKER_PORTS !== '0';
  if (workers > 1) {
    console.log(
      workerPorts
        ? 'sipway workers forward requests from ports of their own (transport.workerPorts; BENCH_WORKER_PORTS=0: off, the default)'
        : 'sipway workers send every request from the shared port (transport.workerPorts false, the default)',
    );
  }
  // Kamailio with TLSF, as ../shared/bench runs it: Debian's default allocator costs it about 3x the CPU per call here.
  const kamailioTlsf = process.env.BENCH_KAMAILIO_TLSF !== '0';
  const bench = new Bench(work, children, { workers, kamailioShmMb: 1024, dir: work, children, sipwayDefaults, workerPorts, kamailioTlsf });
  try {
    const users = SCENARIOS.has('3') ? prepareUsers(work) : undefined;
    for (const name of SERVERS) {
      if (SCENARIOS.has('1')) await callScenario(bench, '1', name, (p) => ({ kind: 'static', nextHop: `sip:bob@127.0.0.1:${p}`, stateless: false }), false);
    }
    for (const name of SERVERS) if (SCENARIOS.has('2')) await callScenario(bench, '2', name, () => ({ kind: 'registrar' }), true);
    for (const name of SERVERS) if (users) await registerScenario(bench, name, users.sipwayData, users.kamailioDb, users.rows);
    for (const name of SERVERS) {
      if (SCENARIOS.has('4')) await callScenario(bench, '4', name, (p) => ({ kind: 'static', nextHop: `sip:bob@127.0.0.1:${p}`, stateless: true }), false);
    }
    for (const name of SERVERS) if (SCENARIOS.has('mem')) await memoryScenario(bench, name);
    console.log(`\n${printTable(bench)}\n`);
    console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    cleanUp();
  }
}

await main();
