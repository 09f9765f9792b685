/**
 * bench:flood: an unauthenticated INVITE flood from one source address while another places authenticated calls and
 * sends OPTIONS, against `sipway serve` and against Kamailio 5.6 + pike in the same role, in one run (prints
 * figures, asserts nothing; never part of `npm test`).
 *
 *  flood:      BENCH_FLOOD_RATE (5,000) INVITEs/s from 127.0.0.2 (bench/security/udp-flood.ts: From a user of the
 *              served domain, no credentials, to a number: both servers challenge it) for BENCH_FLOOD_SECONDS (30).
 *  legitimate: from 127.0.0.3, SIPp calls alice -> bob with proxy digest authentication (test/sipp/uac-call-auth.xml)
 *              at BENCH_CALL_RATE (50) calls/s to bob, a SIPp UAS registered with digest (test/sipp/uas-call.xml),
 *              and SIPp OPTIONS to the server at BENCH_OPTIONS_RATE (50)/s.
 *
 * Per server and worker count (BENCH_WORKERS, default "1,2": sipway --workers N, Kamailio -n N): a warm-up, the
 * idle memory, BENCH_BASE_SECONDS (10) of legitimate traffic alone, the flood with the legitimate traffic running
 * for the same time, the legitimate traffic again right after, BENCH_RECOVERY_SECONDS (120) of memory readings,
 * and the legitimate traffic once more. Figures: share of legitimate calls and OPTIONS completed, their response
 * times (INVITE to its 200, the 407 round included; OPTIONS to its 200) from SIPp's message trace, the server's
 * memory (PSS and RSS of its process tree: idle, peak, after), its CPU during the flood, the load average.
 *
 * Set-up for both servers: sipway's flood guard trusts loopback by default, so the bench sets `flood.trusted: []`;
 * one address placing 50 digest-authenticated calls/s sends 100 INVITEs/s (each challenged once) and 150 ACKs and
 * BYEs/s, over sipway's default per-source budgets (INVITE 50/s, other 100/s) and over pike's default density, so the
 * legitimate source is given the budgets of a busy PBX: sipway INVITE 200/s, other 400/s, OPTIONS 100/s per source
 * (BENCH_DEFAULT_BUDGETS=1 keeps sipway's defaults), Kamailio pike 1,000 requests per 2 s (BENCH_PIKE_DENSITY).
 * Accounting and CPL are off in sipway (Kamailio's config has neither). Kamailio runs with -x tlsf.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCli, freePort } from '../test/helpers/process.js';
import { projectRoot } from '../test/helpers/paths.js';
import { Children, treeCpuMs, treeMemory } from './e2e/procs.js';
import { percentile, runLoad, startUas, type LoadResult } from './e2e/sipp.js';
import { DOMAIN, ensureTools, startServer, type BenchServer, type Role, type ServerName } from './e2e/servers.js';
import { writeKamailioSubscribers } from './e2e/subscribers.js';
import { envNumber } from './env.js';
import { flood, loadAverage, machine, MB, MemorySampler, mib, sipwayStats, sleep, total, workDir } from './security/measure.js';

const FLOOD_RATE = envNumber('BENCH_FLOOD_RATE', 5000);
const FLOOD_SECONDS = envNumber('BENCH_FLOOD_SECONDS', 30);
const CALL_RATE = envNumber('BENCH_CALL_RATE', 50);
const OPTIONS_RATE = envNumber('BENCH_OPTIONS_RATE', 50);
const BASE_SECONDS = envNumber('BENCH_BASE_SECONDS', 10);
const RECOVERY_SECONDS = envNumber('BENCH_RECOVERY_SECONDS', 120);
const PIKE_DENSITY = envNumber('BENCH_PIKE_DENSITY', 1000);
const WORKERS = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number).filter((n) => n > 0);
const SERVERS = (process.env.BENCH_SERVERS ?? 'sipway,kamailio').split(',') as ServerName[];
const DEFAULT_BUDGETS = process.env.BENCH_DEFAULT_BUDGETS === '1';

const FLOODER = '127.0.0.2';
const LEGIT = '127.0.0.3';
const USERS = { alice: 'alice-secret', bob: 'bob-secret' } as const;
const SIPP = path.join(projectRoot, 'test', 'sipp');
const CALLER = ['-s', 'bob', '-key', 'callee_domain', DOMAIN, '-key', 'caller', 'alice', '-key', 'caller_domain', DOMAIN, '-au', 'alice', '-ap', USERS.alice, '-auth_uri', `bob@${DOMAIN}`];

/** sipway's flood settings for the bench (see the header). */
function floodSettings(): Record<string, unknown> {
  if (DEFAULT_BUDGETS) return { flood: { trusted: [] } };
  return { flood: { trusted: [], budgets: { invite: { rate: 200, burst: 1000 }, other: { rate: 400, burst: 2000 }, options: { rate: 100, burst: 500 } } } };
}

interface Window {
  calls: LoadResult;
  options: LoadResult;
  seconds: number;
}

interface Run {
  server: ServerName;
  workers: number;
  before: Window;
  during: Window;
  after: Window;
  recovered: Window;
  idlePss: number;
  idleRss: number;
  peakPss: number;
  peakRss: number;
  /** The legitimate traffic alone (the window before the flood). */
  basePeakPss: number;
  baseCpuShare: number;
  rightAfterPss: number;
  endPss: number;
  endRss: number;
  /** Seconds after the flood until PSS was within 50 MB of idle, if it was. */
  backAfter?: number;
  series: string[];
  cpuShare: number;
  flooded: { sent: number; seconds: number; answers: Record<string, number> };
  counters?: string;
  load: string;
}

let dirSeq = 0;

class FloodBench {
  constructor(
    readonly work: string,
    readonly children: Children,
  ) {}

  dir(label: string): string {
    const d = path.join(this.work, `${String(++dirSeq).padStart(3, '0')}-${label}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Legitimate calls and OPTIONS from LEGIT for `seconds`, side by side. */
  async legit(server: BenchServer, seconds: number, label: string): Promise<Window> {
    const base = { port: server.port, perProcess: 1000, timed: true, localIp: LEGIT };
    const [calls, options] = await Promise.all([
      runLoad({ ...base, scenario: path.join(SIPP, 'uac-call-auth.xml'), rate: CALL_RATE, calls: CALL_RATE * seconds, args: CALLER, dir: this.dir(`${server.name}-${label}-calls`) }, this.children, 15),
      runLoad({ ...base, scenario: path.join(SIPP, 'options-uac.xml'), rate: OPTIONS_RATE, calls: OPTIONS_RATE * seconds, args: [], dir: this.dir(`${server.name}-${label}-options`) }, this.children, 15),
    ]);
    return { calls, options, seconds };
  }

  async run(name: ServerName, workers: number, users: { sipwayData: string; kamailioDb: string }): Promise<Run> {
    const role: Role = { kind: 'secured', sipwayData: users.sipwayData, kamailioDb: users.kamailioDb, settings: floodSettings(), kamailioConfig: 'flood.cfg', kamailioDefines: [`PIKE_DENSITY=${PIKE_DENSITY}`] };
    const server = await startServer(name, role, { workers, kamailioShmMb: 1024, dir: this.dir(`${name}-w${workers}`), children: this.children, sipwayDefaults: false, workerPorts: false, kamailioTlsf: true });
    try {
      const uasPort = await freePort();
      // bob registers (401 + digest) from the port the UAS then listens on, as a phone would.
      const reg = await runLoad(
        { scenario: path.join(SIPP, 'register-auth-uac.xml'), port: server.port, rate: 1, calls: 1, perProcess: 1000, timed: false, args: ['-auth_uri', DOMAIN, '-p', String(uasPort)], injection: () => [`bob;${DOMAIN};[authentication username=bob password=${USERS.bob}]`], dir: this.dir(`${name}-register-bob`) },
        this.children,
        10,
      );
      if (reg.successful !== 1) throw new Error(`${name}: bob did not register ${reg.errors.join('; ')}`);
      const uas = startUas(path.join(SIPP, 'uas-call.xml'), uasPort, 'bob', this.dir(`${name}-uas`), this.children);
      try {
        await sleep(300);
        await this.legit(server, 5, 'warm-up');
        await sleep(3000);
        const idle = treeMemory(server.pid);
        // The legitimate traffic alone, for comparison with the flood: its CPU and how far it grows the memory.
        const quiet = new MemorySampler(server.pid);
        const quietCpu = treeCpuMs(server.pid);
        const before = await this.legit(server, BASE_SECONDS, 'before');
        const baseCpuShare = (treeCpuMs(server.pid) - quietCpu) / (before.seconds * 1000);
        quiet.stop();
        log(`${name} w${workers} before: ${describe(before)}; CPU ${(100 * baseCpuShare).toFixed(0)} %, PSS peak ${mib(quiet.peakPss)}`);

        const sampler = new MemorySampler(server.pid);
        const statsBefore = server.adminPort !== undefined ? await sipwayStats(server.adminPort) : undefined;
        const cpuBefore = treeCpuMs(server.pid);
        const load = loadAverage();
        const flooding = flood({ kind: 'invite', host: '127.0.0.1', port: server.port, sources: [FLOODER], rate: FLOOD_RATE, seconds: FLOOD_SECONDS, domain: DOMAIN }, this.children);
        const during = await this.legit(server, FLOOD_SECONDS, 'during');
        const flooded = await flooding;
        const cpuShare = (treeCpuMs(server.pid) - cpuBefore) / (FLOOD_SECONDS * 1000);
        const counters = server.adminPort !== undefined && statsBefore ? describeCounters(statsBefore, await sipwayStats(server.adminPort)) : undefined;
        log(`${name} w${workers} during the flood (${load} at its start, ${loadAverage()} at its end): ${describe(during)}; flood ${flooded.sent} sent in ${flooded.seconds.toFixed(1)} s, answers ${JSON.stringify(flooded.answers)}`);
        if (counters) log(`${name} w${workers} counters during the flood: ${counters}`);
        const floodEnded = Date.now();
        const rightAfterPss = sampler.sample().pss;
        const after = await this.legit(server, BASE_SECONDS, 'after');
        log(`${name} w${workers} right after: ${describe(after)}`);

        const series: string[] = [];
        let backAfter: number | undefined;
        for (;;) {
          const t = (Date.now() - floodEnded) / 1000;
          const m = sampler.sample();
          series.push(`${t.toFixed(0)} s ${(m.pss / MB).toFixed(0)}`);
          if (backAfter === undefined && m.pss <= idle.pssBytes + 50 * MB) backAfter = t;
          if (t >= RECOVERY_SECONDS) break;
          await sleep(Math.min(10_000, (RECOVERY_SECONDS - t) * 1000));
        }
        sampler.stop();
        const recovered = await this.legit(server, BASE_SECONDS, 'recovered');
        const end = treeMemory(server.pid);
        log(`${name} w${workers} ${RECOVERY_SECONDS} s after: ${describe(recovered)}; PSS (MB) after the flood: ${series.join(', ')}`);
        return {
          server: name,
          workers,
          before,
          during,
          after,
          recovered,
          idlePss: idle.pssBytes,
          idleRss: idle.rssBytes,
          peakPss: sampler.peakPss,
          basePeakPss: quiet.peakPss,
          baseCpuShare,
          peakRss: sampler.peakRss,
          rightAfterPss,
          endPss: end.pssBytes,
          endRss: end.rssBytes,
          backAfter,
          series,
          cpuShare,
          flooded,
          counters,
          load,
        };
      } finally {
        await uas.stop();
      }
    } finally {
      await server.stop();
    }
  }
}

function log(line: string): void {
  console.log(`  ${line}`);
}

function share(r: LoadResult, expected: number): string {
  return `${r.successful}/${expected} (${((100 * r.successful) / expected).toFixed(1)} %)`;
}

function times(r: LoadResult): string {
  const s = [...r.rtts].sort((a, b) => a - b);
  return s.length > 0 ? `p50 ${percentile(s, 50).toFixed(1)} ms, p99 ${percentile(s, 99).toFixed(1)} ms` : 'n/a';
}

function describe(w: Window): string {
  const errs = [...w.calls.errors, ...w.options.errors].slice(0, 1);
  return (
    `calls ${share(w.calls, CALL_RATE * w.seconds)} ${times(w.calls)}; OPTIONS ${share(w.options, OPTIONS_RATE * w.seconds)} ${times(w.options)}` +
    (errs.length > 0 ? ` [SIPp: ${errs[0]}]` : '')
  );
}

function describeCounters(a: Awaited<ReturnType<typeof sipwayStats>>, b: Awaited<ReturnType<typeof sipwayStats>>): string {
  const d = (pick: Parameters<typeof total>[1]): number => total(b, pick) - total(a, pick);
  return [
    `flood guard refused INVITE ${d((p) => p.flood.refused.invite)}, other ${d((p) => p.flood.refused.other)}, OPTIONS ${d((p) => p.flood.refused.options)}`,
    `bans started ${d((p) => p.flood.bansStarted)}, dropped while banned ${d((p) => p.flood.droppedWhileBanned)}`,
    `received (parsed) ${d((p) => p.transport.received)}, 503 for maxTransactions ${d((p) => p.transactions.rejected)}`,
  ].join('; ');
}

function prepareUsers(work: string): { sipwayData: string; kamailioDb: string } {
  const sipwayData = path.join(work, 'sipway-data');
  for (const [user, password] of Object.entries(USERS)) {
    const r = runCli(['user', 'add', `${user}@${DOMAIN}`, '--password', password, '--data', sipwayData]);
    if (r.status !== 0) throw new Error(`sipway user add ${user}: ${r.stderr}`);
  }
  const kamailioDb = path.join(work, 'kamailio.sqlite');
  writeKamailioSubscribers(kamailioDb, Object.entries(USERS).map(([user, password]) => ({ user, domain: DOMAIN, password })));
  return { sipwayData, kamailioDb };
}

function table(runs: Run[]): string {
  const pct = (r: LoadResult, w: Window, rate: number): string => `${((100 * r.successful) / (rate * w.seconds)).toFixed(1)} %`;
  const rows = runs.map((r) => [
    `${r.server} (${r.server === 'sipway' ? '--workers' : '-n'} ${r.workers})`,
    `${pct(r.during.calls, r.during, CALL_RATE)} / ${pct(r.during.options, r.during, OPTIONS_RATE)}`,
    `${times(r.before.calls)} -> ${times(r.during.calls)}`,
    `${times(r.after.calls)}; ${times(r.recovered.calls)}`,
    `${mib(r.idlePss)} -> ${mib(r.basePeakPss)} -> ${mib(r.peakPss)} (+${((r.peakPss - r.idlePss) / MB).toFixed(0)} MB)`,
    `${mib(r.idleRss)} -> ${mib(r.peakRss)}`,
    `${mib(r.endPss)}${r.backAfter !== undefined ? `; within 50 MB of idle at ${r.backAfter.toFixed(0)} s` : `; not within 50 MB of idle in ${RECOVERY_SECONDS} s`}`,
    `${(100 * r.baseCpuShare).toFixed(0)} % -> ${(100 * r.cpuShare).toFixed(0)} %`,
    `${(r.flooded.sent / r.flooded.seconds).toFixed(0)}/s`,
    r.load,
  ]);
  const header = [
    'server',
    'legit calls / OPTIONS completed during the flood',
    'call setup before -> during',
    `call setup right after; ${RECOVERY_SECONDS} s after`,
    'PSS idle -> peak without flood -> peak with it',
    'RSS idle -> peak',
    `PSS ${RECOVERY_SECONDS} s after`,
    'server CPU without -> with the flood (one core = 100 %)',
    'flood achieved',
    'load average at the flood',
  ];
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

async function main(): Promise<void> {
  ensureTools();
  const children = new Children();
  const work = workDir('sipway-bench-flood-', children);
  const kamailioVersion = spawnSync('kamailio', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '';
  console.log(`bench:flood: ${machine()}, ${kamailioVersion}; ${loadAverage()}`);
  console.log(`flood ${FLOOD_RATE} INVITE/s from ${FLOODER} for ${FLOOD_SECONDS} s; legitimate from ${LEGIT}: ${CALL_RATE} calls/s with digest + ${OPTIONS_RATE} OPTIONS/s`);
  console.log(`sipway flood settings ${JSON.stringify(floodSettings())}; Kamailio pike ${PIKE_DENSITY} requests per 2 s per source, -x tlsf`);
  const bench = new FloodBench(work, children);
  const users = prepareUsers(work);
  const runs: Run[] = [];
  const started = Date.now();
  for (const workers of WORKERS) {
    for (const name of SERVERS) {
      console.log(`${name}, ${workers} worker(s):`);
      runs.push(await bench.run(name, workers, users));
    }
  }
  console.log(`\n${table(runs)}\n`);
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s; ${loadAverage()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
