/**
 * bench:sbc: calls/s through sipway's SBC (the B2BUA of src/sbc) against the same calls through sipway as a plain
 * record-routing proxy, through sipway's proxy with its stateless topology hiding (ctx.hideTopology(), the topoh
 * mode), and through Kamailio 5.6 as the same proxy (bench/kamailio/proxy-static.cfg) and with its topoh module
 * (bench/kamailio/topoh.cfg); one run, same machine (prints figures, asserts nothing; never part of `npm test`).
 *
 * SIPp's test/sipp/uac-call.xml -> server -> test/sipp/uas-call.xml: INVITE (with SDP), 100/180/200, ACK, 200 ms,
 * BYE, 200. Through the SBC the caller's call is answered by the B2BUA and a second call placed through the
 * server's own proxy to the UAS; the SDP crosses its embedded media relay (ports taken and given back per call, no
 * RTP flows): the SBC has no media-off switch, so this is the cost of a B2BUA call with media anchoring set up.
 *
 * For each set-up (BENCH_SBC_SETUPS, default proxy,topoh,sbc,kamailio,kamailio-topoh) an unreported warm-up
 * (BENCH_SBC_WARMUP calls, 2,000, at the first rate), then for each rate of BENCH_SBC_RATES (200,500 calls/s) a run
 * of BENCH_SBC_SECONDS (20): server CPU per call (/proc: utime + stime of the server's process tree, read around the
 * run, divided by the successful calls), failed calls, SIPp's INVITE -> 200 response time p50/p99. One worker
 * (sipway --workers 1, Kamailio -n 1 with TLSF, as ../shared/bench runs it). SIPp runs on the same cores.
 *
 * Run: npm run bench:sbc   Quick: BENCH_SBC_RATES=100 BENCH_SBC_SECONDS=3 BENCH_SBC_WARMUP=300 npm run bench:sbc
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, startCliServer } from '../test/helpers/process.js';
import { projectRoot } from '../test/helpers/paths.js';
import { runKamailio } from './e2e/servers.js';
import { Children, treeCpuMs } from './e2e/procs.js';
import { percentile, runLoad, startUas } from './e2e/sipp.js';
import { envNumber } from './env.js';

const RATES = (process.env.BENCH_SBC_RATES ?? '200,500').split(',').map(Number).filter((n) => n > 0);
const SECONDS = envNumber('BENCH_SBC_SECONDS', 20);
const WARMUP = envNumber('BENCH_SBC_WARMUP', 2000);
const SETUPS = (process.env.BENCH_SBC_SETUPS ?? 'proxy,topoh,sbc,kamailio,kamailio-topoh').split(',') as SetupName[];
const LOOPBACK = '127.0.0.1';
const SIPP_DIR = path.join(projectRoot, 'test', 'sipp');
const UAC_CALL = path.join(SIPP_DIR, 'uac-call.xml');
const UAS_CALL = path.join(SIPP_DIR, 'uas-call.xml');
const CALL_ARGS = ['-s', 'bob', '-key', 'callee_domain', 'bench.test', '-key', 'caller', 'caller', '-key', 'caller_domain', 'elsewhere.test'];

type SetupName = 'proxy' | 'topoh' | 'sbc' | 'kamailio' | 'kamailio-topoh';
const TITLES: Record<SetupName, string> = {
  proxy: 'sipway proxy (record-route)',
  topoh: 'sipway proxy + topology hiding',
  sbc: 'sipway SBC (B2BUA + relay)',
  kamailio: 'Kamailio proxy (record-route)',
  'kamailio-topoh': 'Kamailio + topoh',
};

interface Server {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startSipway(mode: 'proxy' | 'topoh' | 'sbc', nextHop: string, dir: string, children: Children): Promise<Server> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const policyModule = pathToFileURL(path.join(projectRoot, 'dist', 'src', 'policy', 'index.js')).href;
  const policyFile = path.join(dir, 'policy.mjs');
  // As bench/e2e/static-policy.ts (everything to one next hop with Record-Route), plus the mode under test.
  writeFileSync(
    policyFile,
    [
      `import { definePolicy, inDialog, sanity } from '${policyModule}';`,
      `const NEXT_HOP = ${JSON.stringify(nextHop)};`,
      `const MODE = ${JSON.stringify(mode)};`,
      'export default definePolicy({',
      '  async onRequest(ctx) {',
      '    if (!sanity(ctx)) return;',
      "    if (MODE === 'sbc' && ctx.sbc()) return;",
      '    if (await inDialog(ctx)) return;',
      "    if (MODE === 'topoh') ctx.hideTopology();",
      '    await ctx.relay([NEXT_HOP], { recordRoute: true });',
      '  },',
      '});',
      '',
    ].join('\n'),
  );
  const settings: Record<string, unknown> = { accounting: { enabled: false }, cpl: { enabled: false } };
  if (mode === 'topoh') settings.topologyHiding = { enabled: true, secret: 'sipway-bench-topoh-key-0123456789' };
  if (mode === 'sbc') settings.sbc = { enabled: true, calls: 'all', maxCallSeconds: 0, media: { engine: 'embedded', address: LOOPBACK, advertise: LOOPBACK, portMin: 20000, portMax: 29999, inactivityMs: 600_000 } };
  const config = path.join(dir, 'sipway.json');
  writeFileSync(config, JSON.stringify(settings));
  const args = ['--listen', `udp:${LOOPBACK}:${port}`, '--domain', 'bench.test', '--data', path.join(dir, 'data'), '--log-level', 'warn', '--no-auth', '--policy', policyFile, '--config', config, '--workers', '1'];
  const server = await startCliServer(args, 30_000);
  children.add(server.child);
  return { port, pid: server.child.pid!, stop: async () => void (await server.stop()) };
}

async function startKamailio(cfgName: string, nextHop: string, dir: string, children: Children): Promise<Server> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const cfg = path.join(projectRoot, 'bench', 'kamailio', cfgName);
  const args = ['-f', cfg, '-DD', '-E', '-n', '1', '-m', '256', '-M', '16', '-x', 'tlsf', '-Y', dir, '-w', dir, '-P', path.join(dir, 'kamailio.pid'), '-l', `udp:${LOOPBACK}:${port}`, '-A', `NEXT_HOP="${nextHop}"`];
  return runKamailio(args, dir, port, children);
}

interface Result {
  setup: SetupName;
  rate: number;
  ok: number;
  failed: number;
  cpuUs: number;
  cpuPct: number;
  p50: number;
  p99: number;
  wallS: number;
  errors: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ms = (v: number): string => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : '-');

async function main(): Promise<void> {
  for (const tool of ['sipp', 'kamailio']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (apt-get install sip-tester kamailio)`);
  }
  const children = new Children();
  process.on('exit', () => children.killAll());
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(130));
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-bench-sbc-'));
  console.log(`bench:sbc — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start`);
  console.log(`SIPp uac-call -> server -> uas-call, ${RATES.join(' and ')} calls/s for ${SECONDS} s each after ${WARMUP} warm-up calls; one server process (worker)`);
  const results: Result[] = [];
  let seq = 0;
  try {
    for (const setup of SETUPS) {
      const uasPort = await freePort();
      const nextHop = `sip:bob@${LOOPBACK}:${uasPort}`;
      const dir = path.join(work, setup);
      const server =
        setup === 'kamailio' ? await startKamailio('proxy-static.cfg', nextHop, dir, children) : setup === 'kamailio-topoh' ? await startKamailio('topoh.cfg', nextHop, dir, children) : await startSipway(setup, nextHop, dir, children);
      const uas = startUas(UAS_CALL, uasPort, 'bob', path.join(dir, 'uas'), children);
      try {
        await sleep(300);
        const load = (rate: number, calls: number, label: string, timed: boolean) =>
          runLoad({ scenario: UAC_CALL, port: server.port, rate, calls, args: CALL_ARGS, perProcess: 1000, dir: path.join(work, `${String(++seq).padStart(2, '0')}-${setup}-${label}`), timed }, children, 20);
        const w = await load(RATES[0]!, WARMUP, 'warm-up', false);
        console.log(`  ${setup}: warm-up ${w.successful}/${WARMUP} ok${w.errors.length > 0 ? ` [SIPp: ${w.errors[0]}]` : ''}`);
        await sleep(1000);
        for (const rate of RATES) {
          const calls = Math.round(rate * SECONDS);
          const before = treeCpuMs(server.pid);
          const t0 = Date.now();
          const r = await load(rate, calls, `r${rate}`, true);
          const used = treeCpuMs(server.pid) - before;
          const wallS = (Date.now() - t0) / 1000;
          const sorted = [...r.rtts].sort((x, y) => x - y);
          const res: Result = { setup, rate, ok: r.successful, failed: r.failed + r.missing, cpuUs: (used * 1000) / Math.max(1, r.successful), cpuPct: (100 * used) / (wallS * 1000), p50: percentile(sorted, 50), p99: percentile(sorted, 99), wallS, errors: r.errors };
          results.push(res);
          console.log(`  ${setup} ${rate}/s: ${r.successful}/${calls} ok, ${res.failed} failed, ${wallS.toFixed(1)} s; server CPU ${res.cpuUs.toFixed(0)} µs/call (${res.cpuPct.toFixed(1)} % of a core); INVITE->200 p50 ${ms(res.p50)} ms p99 ${ms(res.p99)} ms${r.errors.length > 0 ? ` [SIPp: ${r.errors[0]}]` : ''}`);
          await sleep(1000);
        }
      } finally {
        await uas.stop();
        await server.stop();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log('');
  for (const rate of RATES) {
    const at = (s: SetupName): Result | undefined => results.find((r) => r.setup === s && r.rate === rate);
    const proxy = at('proxy');
    const kt = at('kamailio-topoh');
    console.log(`${rate} calls/s for ${SECONDS} s`);
    console.log('| set-up | ok / failed | server CPU µs/call | % of a core | ÷ sipway proxy | ÷ Kamailio topoh | INVITE→200 p50 / p99 ms |');
    console.log('|---|---|---|---|---|---|---|');
    for (const s of SETUPS) {
      const r = at(s);
      if (!r) continue;
      const ratio = (b: Result | undefined): string => (b && b.cpuUs > 0 ? `${(r.cpuUs / b.cpuUs).toFixed(2)}×` : '-');
      console.log(`| ${TITLES[s]} | ${r.ok} / ${r.failed} | ${r.cpuUs.toFixed(0)} | ${r.cpuPct.toFixed(1)} | ${ratio(proxy)} | ${ratio(kt)} | ${ms(r.p50)} / ${ms(r.p99)} |`);
    }
    console.log('');
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
