/**
 * The long fuzz run (prints figures, asserts nothing; never part of `npm test`): `sipway serve` as a child process,
 * fed mutants of the RFC 4475/5118 corpora and of our call flows (test/fuzz/) over UDP and over TCP (pipelined, cut
 * at random offsets), with a valid OPTIONS probe after every window of mutants that must be answered.
 * Figures: messages sent, crashes, errors that escaped (stderr lines that are not log records: an uncaught exception
 * or unhandled rejection prints its stack there and ends the process), errors logged at level error or fatal (a
 * last-resort guard caught something), probes missed, peak RSS, and a final liveness check over UDP and TCP.
 *
 * A server fed foreign messages answers and forwards to the addresses inside them, so the run happens in a network
 * namespace of its own with only `lo` up (created and removed by the bench; needs root), the server listening on
 * 127.0.0.1 and its DNS resolver a dead loopback port. --no-netns runs on the machine's loopback instead;
 * --system-resolver leaves the server the machine's resolver (/etc/resolv.conf), which the namespace cannot reach.
 *
 * Run: npm run bench:fuzz -- [--messages 1000000] [--seconds 1800] [--seed 1] [--tcp-share 0.1] [--workers 1]
 *                            [--settle 40] [--no-netns] [--system-resolver]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CLI, freePort } from '../test/helpers/process.js';
import { FuzzPeer } from '../test/fuzz/driver.js';
import { Children, stopChild, treeCpuMs, treeMemory } from './e2e/procs.js';

interface Options {
  messages: number;
  seconds: number;
  seed: number;
  tcpShare: number;
  workers: number;
  settle: number;
  netns: boolean;
  /** Leave `dns` unset, so that the server reads /etc/resolv.conf (unreachable inside the namespace). */
  systemResolver: boolean;
}

const USAGE = 'usage: npm run bench:fuzz -- [--messages N] [--seconds S] [--seed N] [--tcp-share F] [--workers N] [--settle S] [--no-netns] [--system-resolver]';

function parseArgs(argv: string[]): Options {
  const o: Options = { messages: 1_000_000, seconds: 1800, seed: 1, tcpShare: 0.1, workers: 1, settle: 40, netns: true, systemResolver: false };
  const number = (flag: string, value: string | undefined, min: number, max: number, integer = true): number => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      console.error(`${flag}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${value ?? ''}'\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--no-netns') o.netns = false;
    else if (flag === '--system-resolver') o.systemResolver = true;
    else if (flag === '--messages') o.messages = number(flag, argv[++i], 1, 1e9);
    else if (flag === '--seconds') o.seconds = number(flag, argv[++i], 1, 86400);
    else if (flag === '--seed') o.seed = number(flag, argv[++i], 0, 2 ** 32 - 1);
    else if (flag === '--tcp-share') o.tcpShare = number(flag, argv[++i], 0, 1, false);
    else if (flag === '--workers') o.workers = number(flag, argv[++i], 1, 64);
    else if (flag === '--settle') o.settle = number(flag, argv[++i], 0, 3600);
    else {
      console.error(`unknown option '${flag}'\n${USAGE}`);
      process.exit(2);
    }
  }
  return o;
}

const NETNS_ENV = 'SIPWAY_FUZZ_NETNS';
const DOMAIN = 'sipway.test';
const PEER = '127.8.7.6';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number): string => (bytes / 1048576).toFixed(0);

/**
 * Datagrams the kernel dropped at one UDP socket because its receive buffer was full (the last column of
 * /proc/net/udp): tells a server that fell behind from a fuzzing peer that did.
 */
function udpDrops(address: string, port: number): number | undefined {
  const hex = address.split('.').reverse().map((b) => Number(b).toString(16).padStart(2, '0')).join('').toUpperCase() + ':' + port.toString(16).padStart(4, '0').toUpperCase();
  const line = readFileSync('/proc/net/udp', 'utf8').split('\n').find((l) => l.trim().split(/\s+/)[1] === hex);
  return line === undefined ? undefined : Number(line.trim().split(/\s+/).pop());
}

/** Creates the namespace, runs this same script inside it, and removes the namespace however the run ends. */
function runInNamespace(argv: string[]): void {
  if (process.getuid?.() !== 0) {
    console.error('bench:fuzz needs root to create a network namespace (ip netns); --no-netns runs on this machine\'s loopback');
    process.exit(2);
  }
  const ns = `sipway-fuzz-${process.pid}`;
  const ip = (...args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  };
  ip('netns', 'add', ns);
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    spawnSync('ip', ['netns', 'del', ns]);
  };
  process.on('exit', remove);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  const script = fileURLToPath(import.meta.url);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, script, ...argv], { stdio: 'inherit', env: { ...process.env, [NETNS_ENV]: ns } });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    remove();
    process.exit(code ?? (signal ? 1 : 0));
  });
}

/** What the server wrote: log records by level and message, and anything else (a crash's stack, a Node warning). */
class ServerOutput {
  readonly byMessage = new Map<string, { level: number; count: number; example: string }>();
  readonly foreign: string[] = [];
  foreignLines = 0;
  /** Node's own warnings (deprecations and the like) among the foreign lines: worth reading, but not errors. */
  warningLines = 0;
  errors = 0;

  read(stream: NodeJS.ReadableStream): void {
    readline.createInterface({ input: stream }).on('line', (line) => this.line(line));
  }

  private line(line: string): void {
    let record: { level?: number; msg?: string; err?: unknown; error?: unknown } | undefined;
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      record = undefined;
    }
    if (!record || typeof record.level !== 'number') {
      if (/^\(node:\d+\) \[?\w*\]? ?\w*Warning: |^\(Use `node --trace-/.test(line)) this.warningLines++;
      else this.foreignLines++;
      if (this.foreign.length < 60) this.foreign.push(line);
      return;
    }
    if (record.level >= 50) this.errors++;
    const key = `${record.level >= 60 ? 'fatal' : record.level >= 50 ? 'error' : record.level >= 40 ? 'warn' : 'info'} ${record.msg ?? ''}`;
    const entry = this.byMessage.get(key);
    if (entry) entry.count++;
    else this.byMessage.set(key, { level: record.level, count: 1, example: line.slice(0, 600) });
  }
}

async function fuzz(o: Options): Promise<void> {
  const children = new Children();
  process.on('exit', () => children.killAll());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-fuzz-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  const config = path.join(work, 'config.json');
  // A dead loopback resolver: lookups fail at once, and no query leaves the machine (nor the namespace).
  const dns = o.systemResolver ? {} : { dns: { servers: ['127.0.0.1:9'], timeoutMs: 200 } };
  writeFileSync(config, JSON.stringify({ ...dns, admin: false, proxy: { authenticateCallers: false } }));
  const port = await freePort();
  const args = ['serve', '--config', config, '--listen', `udp:127.0.0.1:${port}`, '--listen', `tcp:127.0.0.1:${port}`, '--domain', DOMAIN];
  args.push('--data', path.join(work, 'data'), '--no-auth', '--log-level', 'warn', '--workers', String(o.workers));
  // As for the other benches: SIPWAY_SERVER_NODE_ARGS='--cpu-prof ...' or '--trace-deprecation' reach the server.
  const nodeArgs = (process.env.SIPWAY_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const peer = new FuzzPeer({ seed: o.seed, domain: DOMAIN, host: '127.0.0.1', udpPort: port, tcpPort: port, peerHost: PEER });
  await peer.bind();
  const server: ChildProcess = children.add(spawn(process.execPath, [...nodeArgs, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const output = new ServerOutput();
  output.read(server.stdout!);
  output.read(server.stderr!);
  let exit: string | undefined;
  let sentAtExit = 0;
  server.on('exit', (code, signal) => {
    exit = signal ?? `code ${code}`;
    sentAtExit = peer.counters.udpSent + peer.counters.tcpSent;
  });

  for (let i = 0; ; i++) {
    if ((await peer.probe(500)) !== undefined) break;
    if (exit || i > 60) throw new Error(`sipway serve did not start (${exit ?? 'no answer in 30 s'}):\n${output.foreign.join('\n')}`);
  }
  // The probes that waited for the start are not part of the run.
  peer.counters.probesSent = peer.counters.probesAnswered = 0;
  const idle = treeMemory(server.pid!);
  let peakRss = idle.rssBytes;
  let peakPss = idle.pssBytes;
  const sampler = setInterval(() => {
    if (exit) return;
    const m = treeMemory(server.pid!);
    peakRss = Math.max(peakRss, m.rssBytes);
    peakPss = Math.max(peakPss, m.pssBytes);
  }, 250);

  console.log(`bench:fuzz: seed ${o.seed}, up to ${o.messages} messages or ${o.seconds} s, ${Math.round(o.tcpShare * 100)} % over TCP, ${o.workers} worker(s)` + (process.env[NETNS_ENV] ? `, in network namespace ${process.env[NETNS_ENV]}` : ', on this machine\'s loopback'));
  console.log(`server: sipway serve on 127.0.0.1:${port} (pid ${server.pid}), RSS ${mb(idle.rssBytes)} MB idle`);
  const started = performance.now();
  const cpuBefore = treeCpuMs(server.pid!);
  const deadline = started + o.seconds * 1000;
  const sent = (): number => peer.counters.udpSent + peer.counters.tcpSent;
  // One round: mostly UDP, then TCP connections carrying `tcpShare` of the round's messages, 4 on each.
  const ROUND = 10_000;
  const PER_CONNECTION = 4;
  let missed = 0;
  let lastReport = started;
  const keepGoing = (): boolean => !exit && performance.now() < deadline;
  while (sent() < o.messages && keepGoing()) {
    const round = Math.min(ROUND, o.messages - sent());
    const tcpMessages = Math.round(round * o.tcpShare);
    missed += await peer.fuzzUdp(round - tcpMessages, { burst: 32, window: 512, probeMs: 2000, keepGoing });
    await peer.fuzzTcp(Math.ceil(tcpMessages / PER_CONNECTION), PER_CONNECTION, 16, keepGoing);
    if (performance.now() - lastReport > 15000) {
      lastReport = performance.now();
      const s = (lastReport - started) / 1000;
      console.log(`  ${s.toFixed(0)} s: ${sent()} messages (${(sent() / s).toFixed(0)}/s), probes missed ${missed}, RSS peak ${mb(peakRss)} MB, errors logged ${output.errors}, stray output lines ${output.foreignLines}, warning lines ${output.warningLines}`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const serverCpuSeconds = exit ? undefined : (treeCpuMs(server.pid!) - cpuBefore) / 1000;
  const drops = { server: udpDrops('127.0.0.1', port), peer: udpDrops(PEER, peer.port) };
  clearInterval(sampler);
  const c = peer.counters;

  // Liveness right after the fuzz: a valid OPTIONS and REGISTER over UDP, an OPTIONS over TCP.
  const t0 = performance.now();
  const live = exit ? undefined : await peer.liveness(2000);
  const liveMs = performance.now() - t0;
  const afterRss = exit ? undefined : treeMemory(server.pid!).rssBytes;
  if (!exit && o.settle > 0) await sleep(o.settle * 1000);
  const settledRss = exit ? undefined : treeMemory(server.pid!).rssBytes;
  const crashedDuringRun = exit;
  peer.close();
  if (!exit) await stopChild(server, 'SIGTERM', 10000);
  await sleep(200); // the last log lines

  console.log('');
  console.log(`messages sent          ${sent()} in ${seconds.toFixed(0)} s (${(sent() / seconds).toFixed(0)}/s): ${c.udpSent} over UDP, ${c.tcpSent} over TCP on ${c.tcpConnections} connections`);
  if (serverCpuSeconds !== undefined) {
    console.log(`server CPU             ${serverCpuSeconds.toFixed(0)} s (${((serverCpuSeconds / seconds) * 100).toFixed(0)} % of one core; ${((serverCpuSeconds * 1e6) / sent()).toFixed(0)} µs per message)`);
  }
  console.log(`answers received       ${c.responses} responses; ${c.requestsFromServer} requests forwarded to the fuzzing peer (answered by it)`);
  console.log(`crashes                ${crashedDuringRun ? `1 (server exited: ${crashedDuringRun}, after about ${sentAtExit} messages of seed ${o.seed})` : 0}; workers restarted: ${output.byMessage.get('error worker died; restarting it')?.count ?? 0}`);
  console.log(`unhandled errors       ${output.foreignLines} stray output lines (an uncaught exception or unhandled rejection prints its stack); Node warnings: ${output.warningLines} lines`);
  console.log(`errors logged          ${output.errors} at level error or fatal (caught by a last-resort guard)`);
  console.log(`probes                 ${c.probesAnswered} of ${c.probesSent} answered, ${missed} missed during the fuzz, slowest ${c.probeMaxMs.toFixed(0)} ms`);
  console.log(`UDP receive drops      server socket ${drops.server ?? '?'}, fuzzing peer's socket ${drops.peer ?? '?'} (datagrams the kernel dropped on a full buffer)`);
  console.log(`memory (RSS)           idle ${mb(idle.rssBytes)} MB, peak ${mb(peakRss)} MB (PSS ${mb(peakPss)} MB), right after ${afterRss === undefined ? '-' : mb(afterRss)} MB, after ${o.settle} s ${settledRss === undefined ? '-' : mb(settledRss)} MB`);
  const optionsUdp = live?.optionsUdpMs === undefined ? 'no answer' : `answered in ${live.optionsUdpMs.toFixed(1)} ms`;
  console.log(`liveness after         OPTIONS/UDP ${optionsUdp}, REGISTER/UDP ${live?.registerUdp ?? 'no answer'}, OPTIONS/TCP ${live?.optionsTcp ?? 'no answer'} (${liveMs.toFixed(0)} ms in all)`);
  console.log(`server exit            ${exit ?? 'still running'}`);
  console.log('server log records by message:');
  for (const [key, e] of [...output.byMessage].sort((a, b) => b[1].count - a[1].count)) console.log(`  ${String(e.count).padStart(8)}  ${key}`);
  for (const [key, e] of output.byMessage) if (e.level >= 50) console.log(`example of '${key}': ${e.example}`);
  if (output.foreign.length > 0) console.log(`stray output (first ${output.foreign.length} lines):\n${output.foreign.join('\n')}`);
}

const argv = process.argv.slice(2);
const options = parseArgs(argv);
if (options.netns && !process.env[NETNS_ENV]) runInNamespace(argv);
else
  fuzz(options).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
