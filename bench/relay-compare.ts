/**
 * bench:relay-compare: N concurrent G.711 calls relayed by three set-ups, side by side in one run (prints figures,
 * asserts nothing; never part of `npm test`):
 *
 *  (a) `sipway serve` with the SBC and its embedded relay (src/media/udp-relay.ts) in the server process;
 *  (b) `sipway serve` with the SBC and `media.engine: rtpengine` (rtpengine-daemon, userspace, --table=-1);
 *  (c) Kamailio 5.6 with its rtpengine module (bench/kamailio/rtpengine.cfg) and an rtpengine daemon of its own.
 *
 * A generator (a child process) holds two user agents of sipway's own library (src/ua): the caller sets up N calls
 * with SIP through the server under test (INVITE with SDP, 200, ACK), the callee answers them; each call's SDP
 * answer and offer name the relay's ports. Then both phones of every call send RTP: 20 ms frames, a real 12-byte RTP
 * header (version 2, PT 0, sequence, timestamp +160, an SSRC per stream) and a 160-byte payload that carries the
 * generator's send time (performance.now), 50 packets/s each way, the calls spread evenly over the 20 ms. At each
 * step the same load is sent phone to phone directly first (no relay): the baseline of latency and jitter.
 *
 * Per step (BENCH_RC_CALLS, default 50,100,200,400,600) and set-up, over BENCH_RC_SECONDS (8) after
 * BENCH_RC_WARMUP_SECONDS (2):
 *  - CPU of each relaying process (/proc: utime + stime of its process tree, threads included), % of one core and
 *    per stream (one direction of a call, 50 packets/s): sipway in (a); rtpengine and sipway in (b); rtpengine and
 *    Kamailio in (c) (the signalling process idles while media flows: its figure is its timers);
 *  - latency p50/p99 (one way, send to receive) and jitter p99 (RFC 3550's transit difference |D(i-1,i)| between
 *    consecutive packets of a stream), and what each adds to the direct baseline;
 *  - loss: packets sent in the window that did not arrive within 300 ms after it.
 * A set-up leaves the ramp at its first step with loss > 0.1 %; the ramp ends when the generator saturates (its
 * own CPU above 90 % of a core, or the direct baseline losing > 0.1 %). Sends more than a frame (20 ms) late at p99
 * are flagged (`late`): on a shared machine that is other jobs taking the cores, and the row's latency says so.
 * Everything runs on 127.0.0.1; the generator shares the machine's cores with the relays.
 *
 * Run: npm run bench:relay-compare   Quick: BENCH_RC_CALLS=20,50 BENCH_RC_SECONDS=3 npm run bench:relay-compare
 * Knobs: BENCH_RC_SETUPS (a,b,c), BENCH_RC_SETUP_CONCURRENCY (20 calls set up at once).
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UserAgent, type InviteSession } from '../src/ua/index.js';
import { freePort, startCliServer } from '../test/helpers/process.js';
import { projectRoot } from '../test/helpers/paths.js';
import { runKamailio } from './e2e/servers.js';
import { Children, stopChild, treeCpuMs } from './e2e/procs.js';
import { envNumber } from './env.js';

const LOOPBACK = '127.0.0.1';
const CALLS = (process.env.BENCH_RC_CALLS ?? '50,100,200,400,600').split(',').map(Number).filter((n) => n > 0);
const SECONDS = envNumber('BENCH_RC_SECONDS', 8);
const WARMUP_SECONDS = envNumber('BENCH_RC_WARMUP_SECONDS', 2);
const SETUP_CONCURRENCY = envNumber('BENCH_RC_SETUP_CONCURRENCY', 20);
const SETUPS = new Set((process.env.BENCH_RC_SETUPS ?? 'a,b,c').split(','));
const FRAME_MS = 20;
const PAYLOAD = 160;
const LOSS_LIMIT = 0.001;
const GEN_CPU_LIMIT = 90;
/** A frame: sends later than this at p99 mean the machine (not only the generator) ran out of CPU. */
const GEN_LATE_LIMIT_MS = FRAME_MS;

// --- The generator (child process) ---------------------------------------------------------------------------------

interface Targets {
  /** Where phone A sends (the relay's port facing A, or B's own port for the baseline) and where B sends. */
  a: number;
  b: number;
}

type ToGenerator =
  | { kind: 'open' }
  | { kind: 'setup'; serverPort: number; calls: number }
  | { kind: 'run'; targets: Targets[] | 'direct'; calls: number; warmupMs: number; measureMs: number }
  | { kind: 'teardown' }
  | { kind: 'exit' };

interface RunResult {
  kind: 'result';
  sent: number;
  received: number;
  latP50: number;
  latP99: number;
  jitP99: number;
  /** The generator's own CPU, % of one core, and how late its sends were (p99, ms). */
  genCpu: number;
  lateP99: number;
}

type FromGenerator =
  | { kind: 'opened'; a: number; b: number; callee: number }
  | { kind: 'set-up'; targets: Targets[]; failed: number; errors: string[]; ms: number }
  | RunResult
  | { kind: 'torn-down'; failed: number };

async function bindLoopback(): Promise<dgram.Socket> {
  const lookup = (host: string, _o: unknown, cb: (err: Error | null, address: string, family: number) => void): void => cb(null, host, 4);
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20, lookup });
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  return socket;
}

function phoneSdp(port: number, user: string): string {
  return ['v=0', `o=${user} 1 1 IN IP4 ${LOOPBACK}`, 's=-', `c=IN IP4 ${LOOPBACK}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=ptime:20', 'a=sendrecv', ''].join('\r\n');
}

function portOf(sdp: string | undefined): number {
  const m = sdp === undefined ? null : /^m=audio (\d+)/m.exec(sdp);
  if (!m) throw new Error('no m=audio in the SDP');
  return Number(m[1]);
}

function quantile(xs: Float64Array, q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function generator(): Promise<void> {
  const a = await bindLoopback();
  const b = await bindLoopback();
  const calleePort = await freePort();
  /** Per call index: the relay's port facing B (from the offer B got). */
  const offeredToB = new Map<number, number>();
  const callee = await UserAgent.start({
    aor: 'sip:bob@bench.test',
    listen: { transport: 'udp', host: LOOPBACK, port: calleePort },
    sessionTimer: false,
    onInvite: (s) => {
      const m = /^sips?:bob-(\d+)@/.exec(s.invite.uri.toString());
      if (!m) return s.reject(404);
      offeredToB.set(Number(m[1]), portOf(s.remoteSdp));
      s.accept(phoneSdp(b.address().port, 'bob'));
    },
  });
  const callers = new Map<number, UserAgent>();
  let sessions: InviteSession[] = [];
  const send = (msg: FromGenerator): void => void process.send!(msg);

  async function setup(serverPort: number, n: number): Promise<FromGenerator> {
    let caller = callers.get(serverPort);
    if (!caller) {
      caller = await UserAgent.start({ aor: 'sip:alice@elsewhere.test', proxy: { transport: 'udp', address: LOOPBACK, port: serverPort }, listen: { transport: 'udp', host: LOOPBACK, port: 0 }, sessionTimer: false });
      callers.set(serverPort, caller);
    }
    const t0 = performance.now();
    offeredToB.clear();
    const targets: Targets[] = new Array(n);
    const errors: string[] = [];
    let failed = 0;
    let next = 0;
    sessions = [];
    const one = async (i: number): Promise<void> => {
      try {
        const s = await caller.call(`sip:bob-${i}@${LOOPBACK}:${calleePort}`, { sdp: phoneSdp(a.address().port, 'alice') });
        sessions.push(s);
        const answer = await withTimeout(s.answered, 10_000, `call ${i}`);
        if (answer.status !== 200) throw new Error(`call ${i}: ${answer.status} ${answer.reason}`);
        const toB = offeredToB.get(i);
        if (toB === undefined) throw new Error(`call ${i}: answered, but the callee saw no offer`);
        targets[i] = { a: portOf(s.remoteSdp), b: toB };
      } catch (err) {
        failed++;
        if (errors.length < 3) errors.push(err instanceof Error ? err.message : String(err));
        targets[i] = { a: 9, b: 9 }; // discard port: counted as loss
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(SETUP_CONCURRENCY, n) }, async () => {
        while (next < n) await one(next++);
      }),
    );
    return { kind: 'set-up', targets, failed, errors, ms: performance.now() - t0 };
  }

  async function teardown(): Promise<FromGenerator> {
    let failed = 0;
    const list = sessions;
    sessions = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: SETUP_CONCURRENCY }, async () => {
        while (next < list.length) {
          const s = list[next++]!;
          if (s.state !== 'Confirmed') continue;
          const status = await withTimeout(s.bye(), 10_000, 'BYE').catch(() => 0);
          if (status !== 200) failed++;
        }
      }),
    );
    return { kind: 'torn-down', failed };
  }

  async function run(req: Extract<ToGenerator, { kind: 'run' }>): Promise<RunResult> {
    const n = req.calls;
    const targets: Targets[] = req.targets === 'direct' ? Array.from({ length: n }, () => ({ a: b.address().port, b: a.address().port })) : req.targets;
    const packet = Buffer.alloc(12 + PAYLOAD, 0xff);
    packet[0] = 0x80;
    packet[1] = 0;
    const seq = new Uint16Array(n * 2);
    const lastSent = new Float64Array(n * 2).fill(NaN);
    const lastRecv = new Float64Array(n * 2);
    const cap = Math.ceil((req.measureMs / FRAME_MS + 20) * n * 2);
    const latencies = new Float64Array(cap);
    const jitters = new Float64Array(cap);
    const lateness = new Float64Array(Math.ceil((req.measureMs / FRAME_MS + 20) * n));
    let nLat = 0;
    let nJit = 0;
    let nLate = 0;
    let measuring = false;
    let sent = 0;
    let received = 0;
    const onMessage = (dirOffset: number) => (msg: Buffer) => {
      if (msg.length < 12 + 13 || msg[12] !== 1) return;
      const now = performance.now();
      const stream = msg.readUInt32BE(13) * 2 + dirOffset;
      const sentAt = msg.readDoubleBE(17);
      received++;
      if (nLat < cap) latencies[nLat++] = now - sentAt;
      const ls = lastSent[stream]!;
      if (!Number.isNaN(ls) && nJit < cap) jitters[nJit++] = Math.abs(now - lastRecv[stream]! - (sentAt - ls));
      lastSent[stream] = sentAt;
      lastRecv[stream] = now;
    };
    const atB = onMessage(0); // A -> B
    const atA = onMessage(1); // B -> A
    b.on('message', atB);
    a.on('message', atA);
    const sendFrame = (socket: dgram.Socket, stream: number, to: number, flag: number, call: number): void => {
      const s = (seq[stream] = (seq[stream]! + 1) & 0xffff);
      packet.writeUInt16BE(s, 2);
      packet.writeUInt32BE((s * 160) >>> 0, 4);
      packet.writeUInt32BE(0x5157_0000 + stream, 8);
      packet[12] = flag;
      packet.writeUInt32BE(call, 13);
      packet.writeDoubleBE(performance.now(), 17);
      socket.send(Buffer.from(packet), to, LOOPBACK);
    };
    const start = performance.now();
    const measureFrom = start + req.warmupMs;
    const stopAt = measureFrom + req.measureMs;
    let cpuAtStart: NodeJS.CpuUsage | undefined;
    let frames = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        if (now >= stopAt) return resolve();
        if (!measuring && now >= measureFrom) {
          measuring = true;
          cpuAtStart = process.cpuUsage();
        }
        const due = Math.floor(((now - start) * n) / FRAME_MS) + 1;
        // Bounded catch-up: a generator that fell behind sends at most one frame period's worth at once.
        if (due - frames > n) frames = due - n;
        for (; frames < due; frames++) {
          const i = frames % n;
          const t = targets[i]!;
          const flag = measuring ? 1 : 0;
          if (measuring && nLate < lateness.length) lateness[nLate++] = performance.now() - (start + (frames * FRAME_MS) / n);
          sendFrame(a, i * 2, t.a, flag, i);
          sendFrame(b, i * 2 + 1, t.b, flag, i);
          if (measuring) sent += 2;
        }
        setTimeout(tick, 1);
      };
      tick();
    });
    const cpu = process.cpuUsage(cpuAtStart);
    await new Promise((resolve) => setTimeout(resolve, 300));
    b.removeListener('message', atB);
    a.removeListener('message', atA);
    return {
      kind: 'result',
      sent,
      received,
      latP50: quantile(latencies.subarray(0, nLat), 0.5),
      latP99: quantile(latencies.subarray(0, nLat), 0.99),
      jitP99: quantile(jitters.subarray(0, nJit), 0.99),
      genCpu: ((cpu.user + cpu.system) / 1000 / req.measureMs) * 100,
      lateP99: quantile(lateness.subarray(0, nLate), 0.99),
    };
  }

  process.on('message', (msg: ToGenerator) => {
    if (msg.kind === 'open') send({ kind: 'opened', a: a.address().port, b: b.address().port, callee: calleePort });
    else if (msg.kind === 'setup') void setup(msg.serverPort, msg.calls).then(send);
    else if (msg.kind === 'run') void run(msg).then(send);
    else if (msg.kind === 'teardown') void teardown().then(send);
    else {
      void (async () => {
        await Promise.all([callee, ...callers.values()].map((u) => u.stop().catch(() => undefined)));
        a.close();
        b.close();
        process.disconnect();
        process.exit(0);
      })();
    }
  });
}

// --- The servers and the report (parent) ---------------------------------------------------------------------------

class Generator {
  readonly child: ChildProcess;
  private pending: ((msg: FromGenerator) => void) | undefined;

  constructor(children: Children) {
    this.child = children.add(fork(fileURLToPath(import.meta.url), ['generator'], { stdio: 'inherit' }));
    this.child.on('message', (msg: FromGenerator) => {
      const p = this.pending;
      this.pending = undefined;
      p?.(msg);
    });
  }

  ask<K extends FromGenerator['kind']>(msg: ToGenerator, timeoutMs = 120_000): Promise<Extract<FromGenerator, { kind: K }>> {
    return withTimeout(
      new Promise((resolve) => {
        this.pending = resolve as (msg: FromGenerator) => void;
        this.child.send(msg);
      }),
      timeoutMs,
      `generator ${msg.kind}`,
    );
  }
}

interface Proc {
  label: string;
  pid: number;
}

interface Setup {
  key: 'a' | 'b' | 'c';
  name: string;
  port: number;
  /** The relaying process first, then the signalling process when it is another one. */
  procs: Proc[];
  stop(): Promise<void>;
}

async function waitForPong(port: number, timeoutMs: number, exited: () => boolean): Promise<void> {
  const probe = dgram.createSocket('udp4');
  probe.on('error', () => {});
  let answered = false;
  probe.on('message', (m: Buffer) => {
    if (m.includes('4:pong')) answered = true;
  });
  await new Promise<void>((resolve) => probe.bind(0, LOOPBACK, resolve));
  try {
    const deadline = Date.now() + timeoutMs;
    while (!answered) {
      if (exited()) throw new Error('rtpengine exited before answering ping');
      if (Date.now() > deadline) throw new Error(`rtpengine did not answer ping within ${timeoutMs} ms`);
      probe.send('ready d7:command4:pinge', port, LOOPBACK);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    probe.close();
  }
}

async function startRtpEngine(children: Children, portMin: number, portMax: number): Promise<{ ngPort: number; pid: number; stop(): Promise<void> }> {
  const ngPort = await freePort();
  // As test/helpers/rtpengine.ts: userspace forwarding, no config file, ng on loopback; a wider port range (4 per call).
  const args = ['--config-file=none', '--foreground', '--log-stderr', '--log-level=4', '--table=-1', `--interface=${LOOPBACK}`, `--listen-ng=${LOOPBACK}:${ngPort}`, `--port-min=${portMin}`, `--port-max=${portMax}`, '--num-threads=2', '--delete-delay=0'];
  const child = children.add(spawn('rtpengine', args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  child.stderr!.on('data', () => {});
  await waitForPong(ngPort, 10_000, () => child.exitCode !== null);
  return { ngPort, pid: child.pid!, stop: () => stopChild(child, 'SIGTERM', 5000) };
}

async function startSipway(work: string, children: Children, media: Record<string, unknown>, label: string): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = path.join(work, label);
  mkdirSync(dir, { recursive: true });
  // Every initial INVITE to the SBC; its second leg (ctx.fromSbc) and everything else routed by the Request-URI.
  const policyFile = path.join(dir, 'policy.mjs');
  const policyModule = pathToFileURL(path.join(projectRoot, 'dist', 'src', 'policy', 'index.js')).href;
  writeFileSync(
    policyFile,
    [
      `import { definePolicy, inDialog, sanity } from '${policyModule}';`,
      'export default definePolicy({',
      '  async onRequest(ctx) {',
      '    if (!sanity(ctx)) return;',
      '    if (ctx.sbc()) return;',
      '    if (await inDialog(ctx)) return;',
      '    await ctx.relay(undefined, { recordRoute: true });',
      '  },',
      '});',
      '',
    ].join('\n'),
  );
  const config = path.join(dir, 'sipway.json');
  writeFileSync(
    config,
    JSON.stringify({
      accounting: { enabled: false },
      cpl: { enabled: false },
      sbc: { enabled: true, calls: 'all', maxCallSeconds: 0, media: { address: LOOPBACK, advertise: LOOPBACK, inactivityMs: 600_000, ...media } },
    }),
  );
  const args = ['--listen', `udp:${LOOPBACK}:${port}`, '--domain', 'bench.test', '--data', path.join(dir, 'data'), '--log-level', 'warn', '--no-auth', '--policy', policyFile, '--config', config, '--workers', '1'];
  const server = await startCliServer(args, 30_000);
  children.add(server.child);
  return { port, pid: server.child.pid!, stop: async () => void (await server.stop()) };
}

async function startKamailio(work: string, children: Children, ngPort: number): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const runDir = path.join(work, 'kamailio');
  mkdirSync(runDir, { recursive: true });
  const cfg = path.join(projectRoot, 'bench', 'kamailio', 'rtpengine.cfg');
  const args = ['-f', cfg, '-DD', '-E', '-n', '1', '-m', '256', '-M', '16', '-x', 'tlsf', '-Y', runDir, '-w', runDir, '-P', path.join(runDir, 'kamailio.pid'), '-l', `udp:${LOOPBACK}:${port}`, '-A', `RTPENGINE_SOCK="udp:${LOOPBACK}:${ngPort}"`];
  return runKamailio(args, runDir, port, children);
}

interface Row {
  calls: number;
  setup: string;
  key: string;
  cpu: number[];
  labels: string[];
  latP50: number;
  latP99: number;
  jitP99: number;
  addP50: number;
  addP99: number;
  addJit: number;
  loss: number;
  genCpu: number;
  failed: number;
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '-');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const children = new Children();
  process.on('exit', () => children.killAll());
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(130));
  for (const tool of ['rtpengine', 'kamailio']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (apt-get install rtpengine-daemon kamailio)`);
  }
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-relay-compare-'));
  const load = os.loadavg();
  console.log(`bench:relay-compare — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${load.map((l) => l.toFixed(2)).join(' ')} at start`);
  console.log(`G.711 20 ms, 172-byte datagrams, 50 pps per stream (a stream = one direction of a call); ${SECONDS} s measured after ${WARMUP_SECONDS} s; calls ${CALLS.join(', ')}`);
  const setups: Setup[] = [];
  const gen = new Generator(children);
  const rows: Row[] = [];
  const maxOk = new Map<string, Row | undefined>();
  try {
    if (SETUPS.has('a')) {
      const s = await startSipway(work, children, { engine: 'embedded', portMin: 20000, portMax: 29999 }, 'sipway-embedded');
      setups.push({ key: 'a', name: 'sipway embedded', port: s.port, procs: [{ label: 'sipway', pid: s.pid }], stop: s.stop });
    }
    if (SETUPS.has('b')) {
      const r = await startRtpEngine(children, 10000, 14999);
      const s = await startSipway(work, children, { engine: 'rtpengine', rtpengine: { host: LOOPBACK, port: r.ngPort } }, 'sipway-rtpengine');
      setups.push({ key: 'b', name: 'sipway + rtpengine', port: s.port, procs: [{ label: 'rtpengine', pid: r.pid }, { label: 'sipway', pid: s.pid }], stop: async () => void (await Promise.all([s.stop(), r.stop()])) });
    }
    if (SETUPS.has('c')) {
      const r = await startRtpEngine(children, 15000, 19999);
      const k = await startKamailio(work, children, r.ngPort);
      setups.push({ key: 'c', name: 'Kamailio + rtpengine', port: k.port, procs: [{ label: 'rtpengine', pid: r.pid }, { label: 'kamailio', pid: k.pid }], stop: async () => void (await Promise.all([k.stop(), r.stop()])) });
    }
    await gen.ask<'opened'>({ kind: 'open' });
    console.log('');
    console.log('calls setup                 relay cpu%  %/stream  sig cpu%  lat p50  lat p99  jit p99  +lat50  +lat99  +jit99    loss  gen cpu%');
    const active = new Set(setups.map((s) => s.key));
    for (const calls of CALLS) {
      if (active.size === 0) break;
      const base = await gen.ask<'result'>({ kind: 'run', targets: 'direct', calls, warmupMs: 1000, measureMs: SECONDS * 1000 });
      const baseLoss = (base.sent - base.received) / Math.max(1, base.sent);
      console.log(`${String(calls).padStart(5)} direct (baseline)              -         -         -  ${f3(base.latP50).padStart(7)}  ${f3(base.latP99).padStart(7)}  ${f3(base.jitP99).padStart(7)}       -       -       -  ${(100 * baseLoss).toFixed(3).padStart(5)}%  ${f1(base.genCpu).padStart(6)}  (gen late p99 ${f2(base.lateP99)} ms)${base.lateP99 > GEN_LATE_LIMIT_MS ? ' late' : ''}`);
      let genSaturated = base.genCpu > GEN_CPU_LIMIT || baseLoss > LOSS_LIMIT;
      for (const s of setups) {
        if (!active.has(s.key)) continue;
        const up = await gen.ask<'set-up'>({ kind: 'setup', serverPort: s.port, calls }, 300_000);
        if (up.failed > 0) console.log(`      ${s.name}: ${up.failed} of ${calls} calls failed to set up: ${up.errors.join('; ')}`);
        await sleep(300);
        const running = gen.ask<'result'>({ kind: 'run', targets: up.targets, calls, warmupMs: WARMUP_SECONDS * 1000, measureMs: SECONDS * 1000 });
        await sleep(WARMUP_SECONDS * 1000);
        const before = s.procs.map((p) => treeCpuMs(p.pid));
        const t0 = performance.now();
        await sleep(SECONDS * 1000);
        const after = s.procs.map((p) => treeCpuMs(p.pid));
        const elapsed = performance.now() - t0;
        const r = await running;
        const down = await gen.ask<'torn-down'>({ kind: 'teardown' }, 300_000);
        if (down.failed > 0) console.log(`      ${s.name}: ${down.failed} BYEs failed`);
        const cpu = after.map((v, i) => (100 * (v - before[i]!)) / elapsed);
        const loss = (r.sent - r.received) / Math.max(1, r.sent);
        const row: Row = {
          calls,
          setup: s.name,
          key: s.key,
          cpu,
          labels: s.procs.map((p) => p.label),
          latP50: r.latP50,
          latP99: r.latP99,
          jitP99: r.jitP99,
          addP50: r.latP50 - base.latP50,
          addP99: r.latP99 - base.latP99,
          addJit: r.jitP99 - base.jitP99,
          loss,
          genCpu: r.genCpu,
          failed: up.failed,
        };
        rows.push(row);
        const relayCpu = cpu[0]!;
        const sig = cpu.length > 1 ? f1(cpu[1]!) : '(same)';
        console.log(
          `${String(calls).padStart(5)} ${`(${s.key}) ${s.name}`.padEnd(26)} ${f1(relayCpu).padStart(6)}  ${f3(relayCpu / (calls * 2)).padStart(8)}  ${sig.padStart(8)}  ${f3(r.latP50).padStart(7)}  ${f3(r.latP99).padStart(7)}  ${f3(r.jitP99).padStart(7)}  ${f3(row.addP50).padStart(6)}  ${f3(row.addP99).padStart(6)}  ${f3(row.addJit).padStart(6)}  ${(100 * loss).toFixed(3).padStart(5)}%  ${f1(r.genCpu).padStart(6)}  (gen late p99 ${f2(r.lateP99)} ms)${r.lateP99 > GEN_LATE_LIMIT_MS ? ' late' : ''}`,
        );
        if (loss > LOSS_LIMIT || up.failed > 0) {
          console.log(`      (${s.key}) leaves the ramp: loss ${(100 * loss).toFixed(3)} % > 0.1 %${up.failed > 0 ? ' or calls failed' : ''}`);
          active.delete(s.key);
        } else maxOk.set(s.key, row);
        if (r.genCpu > GEN_CPU_LIMIT) genSaturated = true;
        await sleep(500);
      }
      if (genSaturated) {
        console.log(`      the generator saturated at ${calls} calls (its CPU > ${GEN_CPU_LIMIT} % of a core, or the direct baseline lost > 0.1 %): the ramp ends here`);
        break;
      }
    }
  } finally {
    await gen.ask<'opened'>({ kind: 'exit' }, 10_000).catch(() => undefined);
    await Promise.all(setups.map((s) => s.stop().catch(() => undefined)));
    rmSync(work, { recursive: true, force: true });
  }
  summary(rows, maxOk);
}

/** The summary: at the largest step every set-up passed, per set-up and the ratio sipway / Kamailio+rtpengine. */
function summary(rows: Row[], maxOk: Map<string, Row | undefined>): void {
  const steps = [...new Set(rows.map((r) => r.calls))];
  const common = steps.filter((n) => ['a', 'b', 'c'].every((k) => !rows.some((r) => r.key === k) || rows.some((r) => r.key === k && r.calls === n && r.loss <= LOSS_LIMIT))).pop();
  if (common === undefined) return;
  const at = (k: string): Row | undefined => rows.find((r) => r.key === k && r.calls === common);
  const c = at('c');
  console.log('');
  console.log(`Summary at ${common} calls (${common * 2} streams), the largest step every set-up passed; ratio = set-up / (c)`);
  console.log('| set-up | relay CPU %/stream | signalling CPU % | total CPU %/stream | +latency p50 / p99 ms | +jitter p99 ms | loss | max calls passed (streams) | streams/core (relay, projected) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const k of ['a', 'b', 'c']) {
    const r = at(k);
    if (!r) continue;
    const relay = r.cpu[0]! / (r.calls * 2);
    const total = r.cpu.reduce((x, y) => x + y, 0) / (r.calls * 2);
    const m = maxOk.get(k);
    const ratio = (x: number, y: number | undefined): string => (c && k !== 'c' && y !== undefined && y > 0 ? ` (${(x / y).toFixed(2)}×)` : '');
    const cRelay = c ? c.cpu[0]! / (c.calls * 2) : undefined;
    const cTotal = c ? c.cpu.reduce((x, y) => x + y, 0) / (c.calls * 2) : undefined;
    console.log(
      `| (${k}) ${r.setup} | ${f3(relay)}${ratio(relay, cRelay)} | ${r.cpu.length > 1 ? `${r.labels[1]} ${f1(r.cpu[1]!)}` : '(in the relay)'} | ${f3(total)}${ratio(total, cTotal)} | ${f3(r.addP50)} / ${f3(r.addP99)} | ${f3(r.addJit)} | ${(100 * r.loss).toFixed(3)} % | ${m ? `${m.calls} (${m.calls * 2})` : 'none'} | ${Math.round(100 / relay)} |`,
    );
  }
}

if (process.argv[2] === 'generator') void generator();
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
