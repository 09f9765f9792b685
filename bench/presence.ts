/**
 * bench:presence: a presence server under a population of watchers and a storm of changes, sipway against Kamailio
 * 5.6 (presence + presence_xml) in one run on loopback UDP (prints figures, asserts nothing; never part of `npm test`).
 *
 * PRESENTITIES (10,000) users, each watched by WATCHERS (10) of the others (user i watches users i+1 .. i+W): 100,000
 * subscriptions. A load generator in this process (raw UDP, hand-built SIP, BENCH_SOCKETS sockets spreading the
 * watchers) does, against each server in turn:
 *   1. subscribe: every watcher sends SUBSCRIBE (Event: presence, Expires 3600), at most BENCH_SUB_WINDOW (200)
 *      without a final answer: the first BENCH_SUB_BURST (20,000) as fast as that lets (the setup rate), the rest at
 *      BENCH_SUB_RATE (2,000) per second; every NOTIFY gets a 200 at once (retransmissions too). Unanswered requests
 *      are retransmitted (1 s, doubling, 6 times), as a phone would.
 *   2. settle and read memory: at BENCH_SETTLE_SECONDS (35: sipway's SUBSCRIBE server transactions live Timer J,
 *      32 s) and, for sipway, again at BENCH_SIPWAY_SETTLE_SECONDS (120: V8 gives back the heap the transactions grew
 *      in steps, 40-100 s later; Kamailio's shared memory never shrinks, its real use is read with kamcmd);
 *   3. BENCH_ROUNDS (2) change storms: a PUBLISH for every presentity (round 1 an initial publication, later rounds a
 *      modification with SIP-If-Match and a new document), at most BENCH_PUB_WINDOW (100) PUBLISHes without an
 *      answer and BENCH_NOTIFY_WINDOW (2,000) NOTIFYs expected but not yet received. Each document carries its round
 *      in a <note>, so that a NOTIFY is counted for the round whose state it carries.
 * Figures per server: subscriptions set up and their rate, server CPU per subscription, server memory (PSS, RSS of
 * its process tree, /proc/PID/smaps_rollup) per subscription, per round NOTIFYs received of expected, NOTIFY/s from
 * the first PUBLISH to the last NOTIFY of the round, server CPU per NOTIFY (/proc/PID/stat utime+stime of the tree,
 * the PUBLISH's share included), change-to-NOTIFY latency (PUBLISH sent to NOTIFY received) p50/p99; subscriptions
 * whose last NOTIFY carries the last round's state; NOTIFY retransmissions received; datagrams the kernel dropped at
 * the server's socket and at the generator's (/proc/net/udp).
 *
 * Set-up: sipway `serve --workers BENCH_WORKERS` (1: one process) with its embedded store, `--no-auth`, the default
 * policy with `proxy.authenticateCallers: false` (no 407 to SUBSCRIBE and PUBLISH from users of its domain),
 * accounting and CPL off, `presence.notifyIntervalMs` = PRESENCE_NOTIFY_INTERVAL_MS (0: no pacing, as Kamailio sends
 * a NOTIFY per change; with pacing the bench waits that long between rounds); Kamailio -n BENCH_WORKERS -x tlsf
 * -m BENCH_KAMAILIO_SHM_MB (2,048: with 1,024 the burst's transactions ran it out of shared memory) with
 * bench/kamailio/presence.cfg (subscriptions and publications in shared memory, force_active; BENCH_KAMAILIO_DB=1
 * writes both through to SQLite instead). Kamailio's shared memory in use is read with kamcmd (core.shmmem). Every
 * loop is bounded by a count and a time (BENCH_PHASE_SECONDS per phase, BENCH_STALL_SECONDS without progress ends a
 * phase). Every child is killed when the bench ends, on error and on ctrl-C too.
 *
 * Run: npm run build && npm run bench:presence   (small: PRESENTITIES=1000 WATCHERS=5 npm run bench:presence)
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { projectRoot } from '../test/helpers/paths.js';
import { freePort, startCliServer } from '../test/helpers/process.js';
import { runKamailio } from './e2e/servers.js';
import { Children, treeCpuMs, treeMemory, type TreeMemory } from './e2e/procs.js';
import { percentile } from './e2e/sipp.js';
import { envNumber } from './env.js';
import { loadAverage, machine, sipwayStats, sleep, total, workDir } from './security/measure.js';

/** A non-negative number from the environment (0 allowed), else the default. */
function envCount(name: string, fallback: number): number {
  const raw = process.env[name];
  const v = Number(raw);
  return raw !== undefined && raw !== '' && Number.isFinite(v) && v >= 0 ? v : fallback;
}

const PRESENTITIES = envNumber('PRESENTITIES', 10000);
const WATCHERS = envNumber('WATCHERS', 10);
const SOCKETS = envNumber('BENCH_SOCKETS', 16);
const SUB_WINDOW = envNumber('BENCH_SUB_WINDOW', 200);
/** SUBSCRIBEs sent as fast as the window lets first (the setup rate); the rest at BENCH_SUB_RATE per second. */
const BURST = envNumber('BENCH_SUB_BURST', 20000);
const SUB_RATE = envNumber('BENCH_SUB_RATE', 2000);
const PUB_WINDOW = envNumber('BENCH_PUB_WINDOW', 100);
const NOTIFY_WINDOW = envNumber('BENCH_NOTIFY_WINDOW', 2000);
const ROUNDS = envNumber('BENCH_ROUNDS', 2);
const NOTIFY_INTERVAL_MS = envCount('PRESENCE_NOTIFY_INTERVAL_MS', 0);
const SETTLE_SECONDS = envCount('BENCH_SETTLE_SECONDS', 35);
const SIPWAY_SETTLE_SECONDS = Math.max(SETTLE_SECONDS, envCount('BENCH_SIPWAY_SETTLE_SECONDS', 120));
const PHASE_SECONDS = envNumber('BENCH_PHASE_SECONDS', 150);
const STALL_SECONDS = envNumber('BENCH_STALL_SECONDS', 8);
const WORKERS = envNumber('BENCH_WORKERS', 1);
const SERVERS = (process.env.BENCH_SERVERS ?? 'sipway,kamailio').split(',').filter((s) => s === 'sipway' || s === 'kamailio') as ServerName[];
const KAMAILIO_SHM_MB = envNumber('BENCH_KAMAILIO_SHM_MB', 2048);
/** Kamailio writes subscriptions and publications through to its SQLite database (as sipway's store does) instead of memory only. */
const KAMAILIO_DB = process.env.BENCH_KAMAILIO_DB === '1';

const DOMAIN = 'bench.test';
const SUBSCRIPTIONS = PRESENTITIES * WATCHERS;
/** Retransmission of our own SUBSCRIBE and PUBLISH: first after 1 s, doubling, given up after 6 (a phone's Timer F is 32 s). */
const RTO_MS = 1000;
const MAX_ATTEMPTS = 7;

type ServerName = 'sipway' | 'kamailio';

interface Server {
  name: ServerName;
  port: number;
  pid: number;
  adminPort?: number;
  /** Lines the server logged at warn or above (sipway) / error (Kamailio), counted by message. */
  problems(): Map<string, number>;
  /** Kamailio: shared memory in use and its peak (kamcmd core.shmmem), bytes. */
  shm?(): { used: number; maxUsed: number } | undefined;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Servers

async function startSipway(dir: string, children: Children): Promise<Server> {
  const port = await freePort();
  const adminPort = await freePort();
  const config = path.join(dir, 'sipway-presence.json');
  writeFileSync(
    config,
    JSON.stringify({
      proxy: { authenticateCallers: false },
      accounting: { enabled: false },
      cpl: { enabled: false },
      presence: { notifyIntervalMs: NOTIFY_INTERVAL_MS },
    }),
  );
  const args = ['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', path.join(dir, 'sipway-data'), '--no-auth', '--log-level', 'warn'];
  args.push('--admin', `127.0.0.1:${adminPort}`, '--config', config, '--workers', String(WORKERS));
  const server = await startCliServer(args, 30000);
  children.add(server.child);
  return {
    name: 'sipway',
    port,
    pid: server.child.pid!,
    adminPort,
    problems: () => {
      const counts = new Map<string, number>();
      for (const line of server.output().split('\n')) {
        if (line.trim() === '') continue;
        let key = line.slice(0, 160);
        try {
          const rec = JSON.parse(line) as { level?: number; msg?: string };
          if ((rec.level ?? 0) < 40) continue;
          key = `${rec.level === 40 ? 'warn' : rec.level === 50 ? 'error' : `level ${rec.level}`} ${rec.msg ?? ''}`;
        } catch {
          // not a log record: stray output, counted as it is
        }
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return counts;
    },
    stop: async () => {
      await server.stop().catch((e: unknown) => console.log(`  sipway stop: ${(e as Error).message.split('\n')[0]}`));
    },
  };
}

/** Kamailio's presence tables from the schema it ships (db_sqlite), in an SQLite file. */
function kamailioDb(file: string): void {
  const schema = ['/usr/share/kamailio/db_sqlite', '/usr/share/kamailio/sqlite'].find((d) => existsSync(path.join(d, 'presence-create.sql')));
  if (!schema) throw new Error('Kamailio\'s SQLite schema (presence-create.sql) not found under /usr/share/kamailio (package kamailio-sqlite-modules)');
  const db = new Database(file);
  try {
    db.exec(readFileSync(path.join(schema, 'standard-create.sql'), 'utf8'));
    db.exec(readFileSync(path.join(schema, 'presence-create.sql'), 'utf8'));
  } finally {
    db.close();
  }
}

async function startKamailio(dir: string, children: Children): Promise<Server> {
  const port = await freePort();
  const runDir = path.join(dir, `kamailio-${port}`);
  mkdirSync(runDir, { recursive: true });
  const dbFile = path.join(runDir, 'presence.sqlite');
  kamailioDb(dbFile);
  const cfg = path.join(projectRoot, 'bench', 'kamailio', 'presence.cfg');
  const args = ['-f', cfg, '-DD', '-E', '-n', String(WORKERS), '-m', String(KAMAILIO_SHM_MB), '-M', '16', '-x', 'tlsf'];
  args.push('-Y', runDir, '-w', runDir, '-P', path.join(runDir, 'kamailio.pid'), '-l', `udp:127.0.0.1:${port}`);
  const ctl = `unix:${path.join(runDir, 'ctl')}`;
  args.push('-A', `DBURL="sqlite:///${dbFile}"`, '-A', `SERVER_ADDRESS="sip:127.0.0.1:${port}"`, '-A', `CTL_SOCKET="${ctl}"`);
  if (KAMAILIO_DB) args.push('-A', 'WITH_DB');
  const counts = new Map<string, number>();
  let partial = '';
  const count = (chunk: string): void => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      // " 0(123) ERROR: presence [notify.c:1234]: send_notify_request(): ..." -> "ERROR: presence [notify.c]: send_notify_request(): ..."
      const m = /(ERROR|CRITICAL|WARNING|ALERT|BUG):\s*(.*)$/.exec(line);
      if (!m) continue;
      const key = `${m[1]} ${m[2]!.replace(/:\d+\]/, ']').replace(/\d+/g, 'N').slice(0, 140)}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  };
  const { pid, stop } = await runKamailio(args, runDir, port, children, count);
  const shm = (): { used: number; maxUsed: number } | undefined => {
    const r = spawnSync('kamcmd', ['-s', ctl, 'core.shmmem'], { encoding: 'utf8', timeout: 5000 });
    const field = (name: string): number => Number(new RegExp(`\\b${name}:\\s*(\\d+)`).exec(r.stdout ?? '')?.[1] ?? NaN);
    const used = field('real_used');
    return Number.isFinite(used) ? { used, maxUsed: field('max_used') } : undefined;
  };
  return { name: 'kamailio', port, pid, problems: () => counts, shm, stop };
}

/** Kamailio with its presence and SQLite modules: installed with apt-get when running as root, else what to install. */
function ensureKamailio(): void {
  const modules = spawnSync('sh', ['-c', 'ls /usr/lib/*/kamailio/modules/presence_xml.so /usr/lib/*/kamailio/modules/db_sqlite.so']).status === 0;
  const binary = spawnSync('sh', ['-c', 'command -v kamailio']).status === 0;
  if (modules && binary) return;
  const packages = ['kamailio', 'kamailio-presence-modules', 'kamailio-sqlite-modules'];
  if (process.getuid?.() !== 0) throw new Error(`Kamailio with its presence and SQLite modules is missing; install with: sudo apt-get install -y ${packages.join(' ')}`);
  console.log(`installing ${packages.join(' ')} (apt-get) ...`);
  const opts = { stdio: 'inherit' as const, timeout: 300000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  const r = spawnSync('apt-get', ['install', '-y', ...packages], opts);
  if (r.status !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed`);
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel counters

/** Datagrams the kernel dropped at 127.0.0.1:`port` because its receive buffer was full (/proc/net/udp, last column). */
function udpDrops(port: number): number {
  const hex = `0100007F:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  let n = 0;
  for (const l of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f[1] === hex) n += Number(f[f.length - 1]) || 0;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// The load generator

interface SubscribeResult {
  sent: number;
  ok: number;
  failed: Map<string, number>;
  /** The first `burst` SUBSCRIBEs go as fast as the window lets; `burstOk` of them got a 2xx, the last after `burstMs`. */
  burst: number;
  burstOk: number;
  burstMs: number;
  /** First SUBSCRIBE sent to the last 2xx received, ms. */
  setupMs: number;
  /** First SUBSCRIBE sent to the last initial NOTIFY received, ms. */
  allNotifiedMs: number;
  initialNotifies: number;
  retransmitted: number;
  cpuMs: number;
  generatorCpuMs: number;
  timedOut: boolean;
}

interface RoundResult {
  round: number;
  published: number;
  publishFailed: Map<string, number>;
  expected: number;
  /** NOTIFYs carrying this round's state (first copies; retransmissions apart). */
  received: number;
  /** NOTIFYs of this round's time carrying an older state (a paced or late NOTIFY). */
  stale: number;
  /** First PUBLISH sent to the last NOTIFY of the round, ms. */
  spanMs: number;
  cpuMs: number;
  generatorCpuMs: number;
  latencies: Float64Array;
  latencyCount: number;
  timedOut: boolean;
}

const CRLF = '\r\n';

/** The header lines of a message (start line excluded), its body. */
function split(text: string): { lines: string[]; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  return { lines: head.split(CRLF), body: end < 0 ? '' : text.slice(end + 4) };
}

/** The value of the first header named `long` (or its compact form `short`). */
function header(lines: string[], long: string, short?: string): string | undefined {
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === long || (short !== undefined && name === short)) return line.slice(colon + 1).trim();
  }
  return undefined;
}

class Generator {
  private readonly sockets: dgram.Socket[] = [];
  private readonly ports: number[] = [];
  private readonly run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  private server!: Server;

  // Per subscription k (presentity floor(k / W), watcher (p + 1 + k % W) mod P): state, timing, NOTIFYs seen.
  private readonly subState = new Uint8Array(SUBSCRIPTIONS); // 0 new, 1 sent, 2 ok, 3 failed
  private readonly subSentAt = new Float64Array(SUBSCRIPTIONS);
  private readonly subAttempts = new Uint8Array(SUBSCRIPTIONS);
  private readonly subLastCseq = new Int32Array(SUBSCRIPTIONS);
  private readonly subNotifies = new Int32Array(SUBSCRIPTIONS);
  /** The round whose state the last NOTIFY carried (0: none yet, the initial state). */
  private readonly subRound = new Int16Array(SUBSCRIPTIONS);
  private readonly subTerminated = new Uint8Array(SUBSCRIPTIONS);
  private readonly subPending = new Set<number>();
  /** Live watchers per presentity (2xx to their SUBSCRIBE, not terminated). */
  private readonly liveWatchers = new Int32Array(PRESENTITIES);

  // Per presentity: its entity tag, the PUBLISH in flight.
  private readonly etags: Array<string | undefined> = new Array(PRESENTITIES);
  private readonly pubSentAt = new Float64Array(PRESENTITIES);
  private readonly pubAttempts = new Uint8Array(PRESENTITIES);
  private readonly pubState = new Uint8Array(PRESENTITIES); // per round: 0 new, 1 sent, 2 ok, 3 failed
  private readonly pubPending = new Set<number>();
  private pubRound = 0;

  private okSubs = 0;
  private failedSubs = new Map<string, number>();
  private failedPubs = new Map<string, number>();
  private initialNotifies = 0;
  private lastOkAt = 0;
  private lastInitialNotifyAt = 0;
  private lastNotifyAt = 0;
  private lastProgressAt = 0;
  private retransmitted = 0;
  private roundReceived = 0;
  private roundStale = 0;
  private roundLatencies = new Float64Array(0);
  private roundLatencyCount = 0;
  notifiesTotal = 0;
  notifyDuplicates = 0;
  terminated = new Map<string, number>();
  otherRequests = 0;
  strays = 0;

  async open(): Promise<void> {
    for (let i = 0; i < SOCKETS; i++) {
      const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024, sendBufferSize: 4 * 1024 * 1024 });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(0, '127.0.0.1', () => {
          s.off('error', reject);
          resolve();
        });
      });
      s.on('error', () => {});
      const index = i;
      s.on('message', (m, rinfo) => this.receive(index, m, rinfo));
      this.sockets.push(s);
      this.ports.push(s.address().port);
    }
  }

  close(): void {
    for (const s of this.sockets) s.close();
  }

  /** Datagrams the kernel dropped at the generator's sockets. */
  drops(): number {
    return this.ports.reduce((n, p) => n + udpDrops(p), 0);
  }

  target(server: Server): void {
    this.server = server;
  }

  private send(socket: number, text: string): void {
    this.sockets[socket]!.send(text, this.server.port, '127.0.0.1');
  }

  private presentityOf(k: number): number {
    return Math.floor(k / WATCHERS);
  }

  private watcherOf(k: number): number {
    return (this.presentityOf(k) + 1 + (k % WATCHERS)) % PRESENTITIES;
  }

  private user(i: number): string {
    return `u${String(i).padStart(6, '0')}`;
  }

  private subscribeText(k: number): string {
    const sock = k % SOCKETS;
    const port = this.ports[sock]!;
    const p = this.user(this.presentityOf(k));
    const w = this.user(this.watcherOf(k));
    return [
      `SUBSCRIBE sip:${p}@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${this.run}s${k};rport`,
      'Max-Forwards: 70',
      `From: <sip:${w}@${DOMAIN}>;tag=f${k}`,
      `To: <sip:${p}@${DOMAIN}>`,
      `Call-ID: ${this.run}s${k}`,
      'CSeq: 1 SUBSCRIBE',
      `Contact: <sip:${w}@127.0.0.1:${port}>`,
      'Event: presence',
      'Accept: application/pidf+xml',
      'Expires: 3600',
      'Content-Length: 0',
      '',
      '',
    ].join(CRLF);
  }

  private publishText(p: number, round: number): string {
    const sock = p % SOCKETS;
    const port = this.ports[sock]!;
    const u = this.user(p);
    const body = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${u}@${DOMAIN}">`,
      `<tuple id="t${p}"><status><basic>${round % 2 === 1 ? 'open' : 'closed'}</basic></status><note>bench-r${round}</note></tuple>`,
      '</presence>',
      '',
    ].join(CRLF);
    const etag = this.etags[p];
    return [
      `PUBLISH sip:${u}@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${this.run}p${p}r${round};rport`,
      'Max-Forwards: 70',
      `From: <sip:${u}@${DOMAIN}>;tag=p${p}r${round}`,
      `To: <sip:${u}@${DOMAIN}>`,
      `Call-ID: ${this.run}p${p}r${round}`,
      'CSeq: 1 PUBLISH',
      'Event: presence',
      'Expires: 3600',
      ...(etag !== undefined && round > 1 ? [`SIP-If-Match: ${etag}`] : []),
      'Content-Type: application/pidf+xml',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join(CRLF);
  }

  /** Which subscription (s) or publication (p, round) a Call-ID of ours names. */
  private parseCallId(callId: string | undefined): { kind: 's'; k: number } | { kind: 'p'; p: number; round: number } | undefined {
    if (callId === undefined || !callId.startsWith(this.run)) return undefined;
    const rest = callId.slice(this.run.length);
    if (rest[0] === 's') {
      const k = Number(rest.slice(1));
      return Number.isInteger(k) && k >= 0 && k < SUBSCRIPTIONS ? { kind: 's', k } : undefined;
    }
    const m = /^p(\d+)r(\d+)$/.exec(rest);
    return m ? { kind: 'p', p: Number(m[1]), round: Number(m[2]) } : undefined;
  }

  private receive(socket: number, m: Buffer, rinfo: dgram.RemoteInfo): void {
    const text = m.toString('latin1');
    const { lines, body } = split(text);
    if (text.startsWith('SIP/2.0 ')) {
      this.response(Number(text.slice(8, 11)), lines);
      return;
    }
    // A request: answered 200 at once, statelessly (its Via, From, To, Call-ID and CSeq copied), retransmissions too.
    const keep: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name === 'via' || name === 'v' || name === 'from' || name === 'f' || name === 'to' || name === 't' || name === 'call-id' || name === 'i' || name === 'cseq') keep.push(line);
    }
    this.sockets[socket]!.send(`SIP/2.0 200 OK${CRLF}${keep.join(CRLF)}${CRLF}Content-Length: 0${CRLF}${CRLF}`, rinfo.port, rinfo.address);
    if (!text.startsWith('NOTIFY ')) {
      this.otherRequests++;
      return;
    }
    const id = this.parseCallId(header(lines, 'call-id', 'i'));
    if (id?.kind !== 's') {
      this.strays++;
      return;
    }
    const k = id.k;
    const cseq = parseInt(header(lines, 'cseq') ?? '', 10);
    const now = performance.now();
    if (!(cseq > this.subLastCseq[k]!)) {
      this.notifyDuplicates++;
      return;
    }
    this.subLastCseq[k] = cseq;
    this.notifiesTotal++;
    this.lastNotifyAt = now;
    this.lastProgressAt = now;
    const first = this.subNotifies[k] === 0;
    this.subNotifies[k]!++;
    if (first) {
      this.initialNotifies++;
      this.lastInitialNotifyAt = now;
    }
    const marker = body.indexOf('bench-r');
    const round = marker < 0 ? 0 : parseInt(body.slice(marker + 7, marker + 12), 10) || 0;
    // During a storm a NOTIFY counts for the round whose state it carries, even a subscription's first (its initial
    // NOTIFY was lost); an older state in a later NOTIFY is stale.
    if (this.pubRound > 0 && (round === this.pubRound || !first)) {
      if (round === this.pubRound) {
        this.roundReceived++;
        const p = this.presentityOf(k);
        if (this.roundLatencyCount < this.roundLatencies.length) this.roundLatencies[this.roundLatencyCount++] = now - this.pubSentAt[p]!;
      } else this.roundStale++;
    }
    if (round > this.subRound[k]!) this.subRound[k] = round;
    const state = header(lines, 'subscription-state') ?? '';
    if (/^\s*terminated/i.test(state)) {
      const reason = /reason=([\w-]+)/i.exec(state)?.[1] ?? 'none';
      this.terminated.set(reason, (this.terminated.get(reason) ?? 0) + 1);
      if (this.subTerminated[k] === 0 && this.subState[k] === 2) this.liveWatchers[this.presentityOf(k)]!--;
      this.subTerminated[k] = 1;
    }
  }

  private response(status: number, lines: string[]): void {
    if (status < 200) return;
    const id = this.parseCallId(header(lines, 'call-id', 'i'));
    if (id === undefined) {
      this.strays++;
      return;
    }
    const now = performance.now();
    if (id.kind === 's') {
      const k = id.k;
      if (this.subState[k] !== 1) return; // a retransmitted final response
      this.subPending.delete(k);
      this.lastProgressAt = now;
      if (status < 300) {
        this.subState[k] = 2;
        this.okSubs++;
        this.lastOkAt = now;
        this.liveWatchers[this.presentityOf(k)]!++;
      } else {
        this.subState[k] = 3;
        this.failedSubs.set(String(status), (this.failedSubs.get(String(status)) ?? 0) + 1);
      }
      return;
    }
    const p = id.p;
    if (id.round !== this.pubRound || this.pubState[p] !== 1) return;
    this.pubPending.delete(p);
    this.lastProgressAt = now;
    if (status < 300) {
      this.pubState[p] = 2;
      const etag = header(lines, 'sip-etag');
      if (etag !== undefined) this.etags[p] = etag;
    } else {
      this.pubState[p] = 3;
      this.failedPubs.set(String(status), (this.failedPubs.get(String(status)) ?? 0) + 1);
    }
  }

  private sendSubscribe(k: number): void {
    this.subState[k] = 1;
    this.subSentAt[k] = performance.now();
    this.subAttempts[k] = 1;
    this.subPending.add(k);
    this.send(k % SOCKETS, this.subscribeText(k));
  }

  private sendPublish(p: number): void {
    this.pubState[p] = 1;
    this.pubSentAt[p] = performance.now();
    this.pubAttempts[p] = 1;
    this.pubPending.add(p);
    this.send(p % SOCKETS, this.publishText(p, this.pubRound));
  }

  /** Our own retransmissions (Timer E/F of a phone, simplified): 1 s, doubling; given up after MAX_ATTEMPTS sends. */
  private retransmit(): void {
    const now = performance.now();
    for (const k of this.subPending) {
      const a = this.subAttempts[k]!;
      if (now - this.subSentAt[k]! < RTO_MS * 2 ** (a - 1)) continue;
      if (a >= MAX_ATTEMPTS) {
        this.subPending.delete(k);
        this.subState[k] = 3;
        this.failedSubs.set('no answer', (this.failedSubs.get('no answer') ?? 0) + 1);
        continue;
      }
      this.subAttempts[k] = a + 1;
      this.subSentAt[k] = now;
      this.retransmitted++;
      this.send(k % SOCKETS, this.subscribeText(k));
    }
    for (const p of this.pubPending) {
      const a = this.pubAttempts[p]!;
      if (now - this.pubSentAt[p]! < RTO_MS * 2 ** (a - 1)) continue;
      if (a >= MAX_ATTEMPTS) {
        this.pubPending.delete(p);
        this.pubState[p] = 3;
        this.failedPubs.set('no answer', (this.failedPubs.get('no answer') ?? 0) + 1);
        continue;
      }
      this.pubAttempts[p] = a + 1;
      this.retransmitted++;
      // The same bytes (same branch): a retransmission, not a new PUBLISH. The latency keeps the first send.
      this.send(p % SOCKETS, this.publishText(p, this.pubRound));
    }
  }

  /** Every watcher subscribes (windowed and paced); until every 2xx has its first NOTIFY, or a stall or the time limit. */
  async subscribeAll(): Promise<SubscribeResult> {
    const cpu0 = treeCpuMs(this.server.pid);
    const gen0 = process.cpuUsage();
    const t0 = performance.now();
    this.lastProgressAt = t0;
    const burst = Math.min(SUBSCRIPTIONS, BURST);
    let next = 0;
    let lastRetransmit = t0;
    let timedOut = false;
    // The burst: as fast as the window lets (the setup rate), answered in full before the paced rest begins.
    let burstMs: number | undefined;
    let burstOk = 0;
    let pacedFrom = 0;
    const perTick = Math.max(1, Math.round(SUB_RATE / 500));
    for (;;) {
      const now = performance.now();
      if (burstMs === undefined) {
        while (next < burst && this.subPending.size < SUB_WINDOW) this.sendSubscribe(next++);
        if (next === burst && this.subPending.size === 0) {
          burstMs = this.lastOkAt - t0;
          burstOk = this.okSubs;
          pacedFrom = now;
        }
      } else {
        // The rest paced: SUB_RATE per second, at most SUB_WINDOW unanswered.
        const allowed = Math.min(SUBSCRIPTIONS, burst + Math.floor(((now - pacedFrom) / 1000) * SUB_RATE) + perTick);
        while (next < allowed && this.subPending.size < SUB_WINDOW) this.sendSubscribe(next++);
      }
      if (now - lastRetransmit >= 200) {
        this.retransmit();
        lastRetransmit = now;
      }
      const answered = next === SUBSCRIPTIONS && this.subPending.size === 0;
      if (answered && this.initialNotifies >= this.okSubs) break;
      if (now - t0 > PHASE_SECONDS * 1000 || now - this.lastProgressAt > STALL_SECONDS * 1000) {
        timedOut = true;
        break;
      }
      await sleep(2);
    }
    const gen = process.cpuUsage(gen0);
    return {
      sent: next,
      ok: this.okSubs,
      failed: this.failedSubs,
      burst,
      burstOk,
      burstMs: burstMs ?? this.lastOkAt - t0,
      setupMs: this.lastOkAt - t0,
      allNotifiedMs: this.lastInitialNotifyAt - t0,
      initialNotifies: this.initialNotifies,
      retransmitted: this.retransmitted,
      cpuMs: treeCpuMs(this.server.pid) - cpu0,
      generatorCpuMs: (gen.user + gen.system) / 1000,
      timedOut,
    };
  }

  /** One change storm: a PUBLISH per presentity (windowed), until every live watcher has this round's state. */
  async storm(round: number): Promise<RoundResult> {
    this.pubRound = round;
    this.pubState.fill(0);
    this.pubPending.clear();
    this.failedPubs = new Map();
    let expected = 0;
    for (let p = 0; p < PRESENTITIES; p++) expected += this.liveWatchers[p]!;
    this.roundReceived = 0;
    this.roundStale = 0;
    this.roundLatencies = new Float64Array(expected);
    this.roundLatencyCount = 0;
    const cpu0 = treeCpuMs(this.server.pid);
    const gen0 = process.cpuUsage();
    const t0 = performance.now();
    this.lastProgressAt = t0;
    let next = 0;
    let promised = 0;
    let lastRetransmit = t0;
    let timedOut = false;
    for (;;) {
      const now = performance.now();
      // Flow control: PUBLISHes in flight, and NOTIFYs promised by the PUBLISHes sent but not yet received.
      while (next < PRESENTITIES && this.pubPending.size < PUB_WINDOW && promised - this.roundReceived < NOTIFY_WINDOW) {
        promised += this.liveWatchers[next]!;
        this.sendPublish(next++);
      }
      if (now - lastRetransmit >= 200) {
        this.retransmit();
        lastRetransmit = now;
      }
      if (next === PRESENTITIES && this.pubPending.size === 0 && this.roundReceived >= expected) break;
      if (now - t0 > PHASE_SECONDS * 1000 || now - this.lastProgressAt > STALL_SECONDS * 1000) {
        timedOut = true;
        break;
      }
      await sleep(1);
    }
    const gen = process.cpuUsage(gen0);
    let published = 0;
    for (let p = 0; p < PRESENTITIES; p++) if (this.pubState[p] === 2) published++;
    return {
      round,
      published,
      publishFailed: this.failedPubs,
      expected,
      received: this.roundReceived,
      stale: this.roundStale,
      spanMs: this.lastNotifyAt - t0,
      cpuMs: treeCpuMs(this.server.pid) - cpu0,
      generatorCpuMs: (gen.user + gen.system) / 1000,
      latencies: this.roundLatencies,
      latencyCount: this.roundLatencyCount,
      timedOut,
    };
  }

  /** Live subscriptions whose last NOTIFY carried the state of `round`. */
  upToDate(round: number): { current: number; live: number } {
    let current = 0;
    let live = 0;
    for (let k = 0; k < SUBSCRIPTIONS; k++) {
      if (this.subState[k] !== 2 || this.subTerminated[k] === 1) continue;
      live++;
      if (this.subRound[k] === round) current++;
    }
    return { current, live };
  }

  get retransmissions(): number {
    return this.retransmitted;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One server's run

interface ServerRun {
  name: ServerName;
  subscribe?: SubscribeResult;
  memBefore?: TreeMemory;
  memAfterSubscribe?: TreeMemory;
  /** SETTLE_SECONDS after the last SUBSCRIBE. */
  memSettled?: TreeMemory;
  /** The end of the settling (sipway: SIPWAY_SETTLE_SECONDS; Kamailio: SETTLE_SECONDS). */
  memSettledLong?: TreeMemory;
  settleSeconds: number;
  memAfterStorm?: TreeMemory;
  /** BENCH_SETTLE_SECONDS after the last storm: what stays of it (transactions over, heap given back or not). */
  memAfterStormSettled?: TreeMemory;
  /** Kamailio's shared memory in use (kamcmd core.shmmem real_used) before and after subscribing (settled), bytes. */
  shmBefore?: number;
  shmSettled?: number;
  shmAfterStormSettled?: number;
  shmPeak?: number;
  rounds: RoundResult[];
  upToDate?: { current: number; live: number };
  notifyDuplicates: number;
  terminated: Map<string, number>;
  serverDrops: number;
  generatorDrops: number;
  retransmissions: number;
  notes: string[];
  error?: string;
}

const mib = (b: number): string => (b / 1048576).toFixed(1);
const fmtCounts = (m: Map<string, number>): string => ([...m].length === 0 ? 'none' : [...m].map(([k, n]) => `${k} x${n}`).join(', '));

async function runServer(name: ServerName, dir: string, children: Children): Promise<ServerRun> {
  const settle = name === 'sipway' ? SIPWAY_SETTLE_SECONDS : SETTLE_SECONDS;
  const out: ServerRun = { name, settleSeconds: settle, rounds: [], notifyDuplicates: 0, terminated: new Map(), serverDrops: 0, generatorDrops: 0, retransmissions: 0, notes: [] };
  const server = name === 'sipway' ? await startSipway(dir, children) : await startKamailio(dir, children);
  const gen = new Generator();
  await gen.open();
  gen.target(server);
  const serverDrops0 = udpDrops(server.port);
  const generatorDrops0 = gen.drops();
  try {
    await sleep(1000);
    out.memBefore = treeMemory(server.pid);
    out.shmBefore = server.shm?.()?.used;
    console.log(`  ${name}: pid ${server.pid} on 127.0.0.1:${server.port}, ${out.memBefore.processes} process(es), PSS ${mib(out.memBefore.pssBytes)} MiB; ${loadAverage()}`);
    const s = await gen.subscribeAll();
    out.subscribe = s;
    out.memAfterSubscribe = treeMemory(server.pid);
    console.log(
      `  ${name} subscribe: burst of ${s.burst}: ${s.burstOk} 2xx in ${(s.burstMs / 1000).toFixed(1)} s (${((s.burstOk * 1000) / Math.max(1, s.burstMs)).toFixed(0)}/s); ` +
        `all: ${s.ok}/${SUBSCRIPTIONS} 2xx in ${(s.setupMs / 1000).toFixed(1)} s, ` +
        `initial NOTIFYs ${s.initialNotifies} by ${(s.allNotifiedMs / 1000).toFixed(1)} s; refused/failed: ${fmtCounts(s.failed)}; our retransmissions ${s.retransmitted}; ` +
        `server CPU ${(s.cpuMs / 1000).toFixed(1)} s (${((s.cpuMs * 1000) / Math.max(1, s.ok)).toFixed(0)} µs/subscription), generator CPU ${(s.generatorCpuMs / 1000).toFixed(1)} s${s.timedOut ? ' [phase ended by the stall/time limit]' : ''}`,
    );
    console.log(`  ${name} memory right after: PSS ${mib(out.memAfterSubscribe.pssBytes)} MiB, RSS ${mib(out.memAfterSubscribe.rssBytes)} MiB`);
    const series: string[] = [];
    for (let waited = 0; waited < settle; waited += 5) {
      await sleep(Math.min(5, settle - waited) * 1000);
      const at = Math.min(waited + 5, settle);
      const m = treeMemory(server.pid);
      if (at >= SETTLE_SECONDS && out.memSettled === undefined) out.memSettled = m;
      series.push(`${at} s ${mib(m.pssBytes)}`);
    }
    if (series.length > 0) console.log(`  ${name} PSS (MiB) while settling: ${series.join(', ')}`);
    out.memSettledLong = treeMemory(server.pid);
    out.memSettled ??= out.memSettledLong;
    out.shmSettled = server.shm?.()?.used;
    if (out.shmSettled !== undefined) console.log(`  ${name} shared memory in use (kamcmd core.shmmem real_used): ${mib(out.shmBefore ?? NaN)} -> ${mib(out.shmSettled)} MiB`);
    for (let round = 1; round <= ROUNDS; round++) {
      if (round > 1) await sleep(Math.max(1000, NOTIFY_INTERVAL_MS + 500));
      const r = await gen.storm(round);
      out.rounds.push(r);
      const sorted = Array.from(r.latencies.subarray(0, r.latencyCount)).sort((a, b) => a - b);
      console.log(
        `  ${name} round ${round} (${round === 1 ? 'initial PUBLISH' : 'PUBLISH with SIP-If-Match, new document'}): ${r.published}/${PRESENTITIES} PUBLISH 2xx` +
          `${r.publishFailed.size > 0 ? ` (failed: ${fmtCounts(r.publishFailed)})` : ''}; NOTIFYs with this state ${r.received}/${r.expected}, older state ${r.stale}; ` +
          `${(r.spanMs / 1000).toFixed(2)} s -> ${((r.received * 1000) / Math.max(1, r.spanMs)).toFixed(0)} NOTIFY/s; server CPU ${(r.cpuMs / 1000).toFixed(2)} s ` +
          `(${((r.cpuMs * 1000) / Math.max(1, r.received)).toFixed(1)} µs/NOTIFY), generator CPU ${(r.generatorCpuMs / 1000).toFixed(2)} s; ` +
          `PUBLISH->NOTIFY p50 ${percentile(sorted, 50).toFixed(1)} ms p99 ${percentile(sorted, 99).toFixed(1)} ms${r.timedOut ? ' [round ended by the stall/time limit]' : ''}`,
      );
    }
    out.memAfterStorm = treeMemory(server.pid);
    // Late NOTIFYs and retransmissions of the last round; then what stays of the storms.
    await sleep(2000);
    out.upToDate = gen.upToDate(ROUNDS);
    out.notifyDuplicates = gen.notifyDuplicates;
    out.terminated = gen.terminated;
    out.retransmissions = gen.retransmissions;
    out.serverDrops = udpDrops(server.port) - serverDrops0;
    out.generatorDrops = gen.drops() - generatorDrops0;
    console.log(
      `  ${name} end: ${out.upToDate.current}/${out.upToDate.live} live subscriptions hold the last state; NOTIFY retransmissions received ${out.notifyDuplicates}; ` +
        `terminated: ${fmtCounts(out.terminated)}; UDP drops: server socket ${out.serverDrops}, generator sockets ${out.generatorDrops}; other requests ${gen.otherRequests}, strays ${gen.strays}; ` +
        `memory after the storm PSS ${mib(out.memAfterStorm.pssBytes)} MiB`,
    );
    if (settle > 0) {
      await sleep(Math.max(0, settle - 2) * 1000);
      out.memAfterStormSettled = treeMemory(server.pid);
      const shm = server.shm?.();
      out.shmAfterStormSettled = shm?.used;
      out.shmPeak = shm?.maxUsed;
      console.log(
        `  ${name} ${settle} s after the storms: PSS ${mib(out.memAfterStormSettled.pssBytes)} MiB, RSS ${mib(out.memAfterStormSettled.rssBytes)} MiB` +
          `${shm ? `; shared memory in use ${mib(shm.used)} MiB, peak ${mib(shm.maxUsed)} MiB` : ''}`,
      );
    }
    if (server.adminPort !== undefined) {
      try {
        const st = await sipwayStats(server.adminPort);
        const note =
          `sipway /stats: transactions client ${total(st, (p) => p.transactions.clientTransactions)} server ${total(st, (p) => p.transactions.serverTransactions)}, ` +
          `rejected (maxTransactions) ${total(st, (p) => p.transactions.rejected)}, retransmissions ${total(st, (p) => p.transactions.retransmissions)}, timeouts ${total(st, (p) => p.transactions.timeouts)}; ` +
          `transport received ${total(st, (p) => p.transport.received)} sent ${total(st, (p) => p.transport.sent)} dropped ${total(st, (p) => p.transport.dropped)} flood-dropped ${total(st, (p) => p.transport.floodDropped)}`;
        out.notes.push(note);
        console.log(`  ${note}`);
      } catch (e) {
        console.log(`  sipway /stats: ${(e as Error).message}`);
      }
    }
    const problems = server.problems();
    const top = [...problems].sort((a, b) => b[1] - a[1]).slice(0, 8);
    console.log(`  ${name} log lines at warn/error: ${top.length === 0 ? 'none' : top.map(([k, n]) => `${n} x ${k}`).join('; ')}`);
  } catch (e) {
    out.error = (e as Error).message;
    console.log(`  ${name}: ${out.error}`);
  } finally {
    gen.close();
    await server.stop();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The table

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? (a / b).toFixed(2) : 'n/a';
}

function table(runs: ServerRun[]): string {
  const by = (n: ServerName): ServerRun | undefined => runs.find((r) => r.name === n);
  const s = by('sipway');
  const k = by('kamailio');
  const rows: string[][] = [];
  const add = (figure: string, f: (r: ServerRun) => number | undefined, fmt: (v: number) => string, extra?: (r: ServerRun) => string): void => {
    const vs = s && f(s);
    const vk = k && f(k);
    const cell = (r: ServerRun | undefined, v: number | undefined): string => (r === undefined || v === undefined || !Number.isFinite(v) ? 'n/a' : `${fmt(v)}${extra ? extra(r) : ''}`);
    rows.push([figure, cell(s, vs), cell(k, vk), ratio(vs, vk)]);
  };
  const subs = (r: ServerRun): SubscribeResult | undefined => r.subscribe;
  const perSub = (r: ServerRun, m: TreeMemory | undefined, pick: (t: TreeMemory) => number): number | undefined =>
    r.memBefore && m && r.subscribe && r.subscribe.ok > 0 ? (pick(m) - pick(r.memBefore)) / r.subscribe.ok : undefined;
  add(`subscriptions set up (2xx) of ${SUBSCRIPTIONS.toLocaleString('en')}`, (r) => subs(r)?.ok, (v) => v.toFixed(0));
  add(
    `SUBSCRIBE setup rate, 2xx/s (a burst of ${Math.min(BURST, SUBSCRIPTIONS).toLocaleString('en')}, ${SUB_WINDOW} unanswered at most)`,
    (r) => (subs(r) ? (subs(r)!.burstOk * 1000) / Math.max(1, subs(r)!.burstMs) : undefined),
    (v) => v.toFixed(0),
  );
  add('initial NOTIFYs received', (r) => subs(r)?.initialNotifies, (v) => v.toFixed(0));
  add('server CPU µs per subscription (SUBSCRIBE, 200, first NOTIFY; burst and paced)', (r) => (subs(r) ? (subs(r)!.cpuMs * 1000) / Math.max(1, subs(r)!.ok) : undefined), (v) => v.toFixed(0));
  add(
    `PSS bytes per subscription, settled (sipway ${SIPWAY_SETTLE_SECONDS} s, Kamailio ${SETTLE_SECONDS} s after the last SUBSCRIBE)`,
    (r) => perSub(r, r.memSettledLong, (t) => t.pssBytes),
    (v) => v.toFixed(0),
  );
  add(`PSS bytes per subscription (${SETTLE_SECONDS} s after the last)`, (r) => perSub(r, r.memSettled, (t) => t.pssBytes), (v) => v.toFixed(0));
  add('PSS bytes per subscription (right after the last)', (r) => perSub(r, r.memAfterSubscribe, (t) => t.pssBytes), (v) => v.toFixed(0));
  add('RSS bytes per subscription, settled (summed over processes)', (r) => perSub(r, r.memSettledLong, (t) => t.rssBytes), (v) => v.toFixed(0));
  add('Kamailio shared memory in use per subscription (kamcmd real_used, settled)', (r) => (r.shmSettled !== undefined && r.shmBefore !== undefined && r.subscribe ? (r.shmSettled - r.shmBefore) / Math.max(1, r.subscribe.ok) : undefined), (v) => v.toFixed(0));
  add(
    'PSS MiB: before / subscribed, settled / right after the storms / settled after them (as long)',
    (r) => r.memAfterStormSettled && r.memAfterStormSettled.pssBytes / 1048576,
    (v) => v.toFixed(0),
    (r) => ` (${mib(r.memBefore?.pssBytes ?? NaN)} / ${mib(r.memSettledLong?.pssBytes ?? NaN)} / ${mib(r.memAfterStorm?.pssBytes ?? NaN)} / ${mib(r.memAfterStormSettled?.pssBytes ?? NaN)})`,
  );
  for (let i = 0; i < ROUNDS; i++) {
    const rd = (r: ServerRun): RoundResult | undefined => r.rounds[i];
    const label = `round ${i + 1}${i === 0 ? ' (initial PUBLISH)' : ' (PUBLISH modify)'}`;
    add(`${label}: NOTIFY/s sustained (first PUBLISH to last NOTIFY)`, (r) => (rd(r) ? (rd(r)!.received * 1000) / Math.max(1, rd(r)!.spanMs) : undefined), (v) => v.toFixed(0));
    add(`${label}: NOTIFYs with the new state / expected`, (r) => rd(r)?.received, (v) => v.toFixed(0), (r) => ` / ${rd(r)?.expected ?? 'n/a'}`);
    add(`${label}: server CPU µs per NOTIFY`, (r) => (rd(r) ? (rd(r)!.cpuMs * 1000) / Math.max(1, rd(r)!.received) : undefined), (v) => v.toFixed(1));
    add(`${label}: PUBLISH -> NOTIFY p50 ms`, (r) => (rd(r) ? percentile(Array.from(rd(r)!.latencies.subarray(0, rd(r)!.latencyCount)).sort((a, b) => a - b), 50) : undefined), (v) => v.toFixed(1));
    add(`${label}: PUBLISH -> NOTIFY p99 ms`, (r) => (rd(r) ? percentile(Array.from(rd(r)!.latencies.subarray(0, rd(r)!.latencyCount)).sort((a, b) => a - b), 99) : undefined), (v) => v.toFixed(1));
  }
  add('live subscriptions holding the last state at the end', (r) => r.upToDate?.current, (v) => v.toFixed(0), (r) => ` / ${r.upToDate?.live ?? 'n/a'}`);
  add('NOTIFY retransmissions received (our 200 late or lost)', (r) => r.notifyDuplicates, (v) => v.toFixed(0));
  add('UDP datagrams dropped: server socket / generator sockets', (r) => r.serverDrops, (v) => v.toFixed(0), (r) => ` / ${r.generatorDrops}`);
  const header = ['figure', 'sipway', 'Kamailio', 'sipway/Kamailio'];
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (SERVERS.includes('kamailio')) ensureKamailio();
  const children = new Children();
  const dir = workDir('sipway-bench-presence-', children);
  const started = Date.now();
  const kamailioVersion = SERVERS.includes('kamailio') ? (spawnSync('kamailio', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '') : '';
  console.log(`bench:presence: ${machine()}; ${kamailioVersion}`);
  console.log(
    `${PRESENTITIES} presentities x ${WATCHERS} watchers = ${SUBSCRIPTIONS} subscriptions over ${SOCKETS} sockets; SUBSCRIBE window ${SUB_WINDOW}: a burst of ${Math.min(BURST, SUBSCRIPTIONS)}, then ${SUB_RATE}/s; ` +
      `${ROUNDS} PUBLISH round(s), PUBLISH window ${PUB_WINDOW}, NOTIFY window ${NOTIFY_WINDOW}; notifyIntervalMs ${NOTIFY_INTERVAL_MS}; workers ${WORKERS} ` +
      `(sipway --workers ${WORKERS}, Kamailio -n ${WORKERS} -m ${KAMAILIO_SHM_MB}${KAMAILIO_DB ? ', subscriptions and publications written to SQLite' : ', memory only'}); settle ${SETTLE_SECONDS} s (sipway ${SIPWAY_SETTLE_SECONDS} s); ${loadAverage()}`,
  );
  const runs: ServerRun[] = [];
  for (const name of SERVERS) {
    const sub = path.join(dir, name);
    mkdirSync(sub, { recursive: true });
    runs.push(await runServer(name, sub, children));
  }
  console.log(`\n${table(runs)}\n`);
  console.log('ratio = sipway / Kamailio (CPU, memory, latency: < 1 favours sipway; rates: > 1 favours sipway)');
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s; ${loadAverage()}`);
}

await main();
