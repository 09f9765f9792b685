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
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/helpers/process.js';
import { projectRoot } from '../test/helpers/paths.js';
import { Children, stopChild, treeMemory } from './e2e/procs.js';
import { envNumber } from './env.js';

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
const MB = 1024 * 1024;

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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let sequence = 0;
function request(method: 'OPTIONS' | 'REGISTER', port: number, localPort: number): { bytes: string; callId: string } {
  const callId = `legit-${++sequence}@bench`;
  const lines = [
    `${method} sip:bench.test SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:${localPort};branch=z9hG4bK-legit${sequence};rport`,
    'Max-Forwards: 70',
    'From: <sip:legit@bench.test>;tag=l1',
    'To: <sip:legit@bench.test>',
    `Call-ID: ${callId}`,
    `CSeq: ${sequence} ${method}`,
    ...(method === 'REGISTER' ? [`Contact: <sip:legit@127.0.0.1:${localPort};transport=tcp>`, 'Expires: 600'] : []),
    'Content-Length: 0',
    '',
    '',
  ];
  return { bytes: lines.join('\r\n'), callId };
}

/** Whether the answer to a request with `callId` arrives on `socket` within `ms`. */
function answered(socket: net.Socket, callId: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onData = (d: Buffer): void => {
      seen += d.toString('latin1');
      if (seen.includes(callId) && /^SIP\/2\.0 2\d\d /m.test(seen)) done(true);
    };
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

async function optionsOverFreshConnection(port: number, ms: number): Promise<boolean> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  try {
    const connected = await Promise.race([
      new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true)).once('close', () => resolve(false))),
      sleep(ms).then(() => false),
    ]);
    if (!connected) return false;
    const r = request('OPTIONS', port, socket.localPort!);
    socket.write(r.bytes);
    return await answered(socket, r.callId, ms);
  } finally {
    socket.destroy();
  }
}

/** The legitimate client: a fresh connection with an OPTIONS every second, and a REGISTER every second on one kept open. */
class LegitClient {
  fresh = { sent: 0, ok: 0 };
  kept = { sent: 0, ok: 0, reconnects: 0 };
  private running = true;
  private keptSocket: net.Socket | undefined;
  private readonly loops: Array<Promise<void>> = [];

  constructor(private readonly port: number) {
    this.loops.push(this.freshLoop(), this.keptLoop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.keptSocket?.destroy();
  }

  private async freshLoop(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      this.fresh.sent++;
      if (await optionsOverFreshConnection(this.port, 2000)) this.fresh.ok++;
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
  }

  private async keptLoop(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      this.kept.sent++;
      if (await this.registerOnKeptConnection()) this.kept.ok++;
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
  }

  private async registerOnKeptConnection(): Promise<boolean> {
    if (!this.keptSocket || this.keptSocket.destroyed) {
      if (this.keptSocket) this.kept.reconnects++;
      const socket = net.connect({ port: this.port, host: '127.0.0.1' });
      socket.on('error', () => undefined);
      this.keptSocket = socket;
      const ok = await Promise.race([new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true)).once('close', () => resolve(false))), sleep(2000).then(() => false)]);
      if (!ok) return false;
    }
    const r = request('REGISTER', this.port, this.keptSocket.localPort!);
    this.keptSocket.write(r.bytes);
    return answered(this.keptSocket, r.callId, 2000);
  }
}

/** Attackers: connections that never finish a message, reopened as soon as the server closes them. */
class Attack {
  opened = 0;
  closedByServer = 0;
  bytes = 0;
  private running = true;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly port: number,
    private readonly addresses: string[],
    private readonly perAddress: number,
  ) {}

  async start(): Promise<void> {
    // In batches, so that the listen backlog is not what refuses them.
    const all = this.addresses.flatMap((a) => Array.from({ length: this.perAddress }, () => a));
    for (let i = 0; i < all.length && this.running; i += 200) {
      await Promise.all(all.slice(i, i + 200).map((a) => this.open(a)));
    }
  }

  /** One byte to every open connection. */
  writeEach(): void {
    for (const socket of this.sockets) {
      if (socket.writableLength > 0) continue;
      socket.write('a');
      this.bytes++;
    }
  }

  stop(): void {
    this.running = false;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private open(localAddress: string): Promise<void> {
    return new Promise((resolve) => {
      const socket = net.connect({ port: this.port, host: '127.0.0.1', localAddress });
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      socket.once('connect', () => {
        this.opened++;
        this.sockets.add(socket);
        // A request line and a header that never ends.
        socket.write('OPTIONS sip:bench.test SIP/2.0\r\nX-Slow: ');
        resolve();
      });
      socket.once('close', () => {
        resolve();
        if (!this.sockets.delete(socket) || !this.running) return;
        this.closedByServer++;
        setTimeout(() => void this.open(localAddress), 10);
      });
    });
  }
}

function addresses(first: [number, number], count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const n = first[0] * 256 + first[1] + i;
    return `127.0.${Math.floor(n / 256)}.${n % 256}`;
  });
}

async function run(name: string, server: Server, attack: Attack, everyMs: number): Promise<void> {
  const idle = treeMemory(server.child.pid!).rssBytes;
  const legit = new LegitClient(server.tcpPort);
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, treeMemory(server.child.pid!).rssBytes)), 500);
  const started = Date.now();
  await attack.start();
  const writer = setInterval(() => attack.writeEach(), everyMs);
  while (Date.now() - started < SECONDS * 1000) await sleep(250);
  clearInterval(writer);
  const seconds = (Date.now() - started) / 1000;
  attack.stop();
  await legit.stop();
  await sleep(SETTLE_SECONDS * 1000);
  clearInterval(sampler);
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
