/**
 * bench:idle-slowloris: thousands of idle TCP connections and hundreds of slowloris connections against
 * `sipway serve`, while others keep asking over UDP and TCP (prints figures, asserts nothing; never part of
 * `npm test`).
 *
 *  idle:      BENCH_IDLE_CONNECTIONS (5,000) connections from 200 loopback addresses (127.0.2.0 ...; 25 each, under
 *             the per-source cap of 32), each sending one OPTIONS (answered: an established connection, as a phone's
 *             after its first request) and then nothing. They are opened before the attack and kept for its length;
 *             at the end the bench counts those the server closed and sends an OPTIONS over every one still open.
 *  slowloris: BENCH_SLOWLORIS_CONNECTIONS (500) connections from 20 addresses (127.0.3.0 ...), each sending a request
 *             line and a header that never ends, one byte every BENCH_SLOWLORIS_INTERVAL_MS (3,000); a connection
 *             the server closes is opened again at once. For BENCH_SECONDS (60).
 *  others:    from 127.0.0.1, every second: OPTIONS and REGISTER over UDP; OPTIONS over a fresh TCP connection and
 *             REGISTER over a kept one (each answer awaited 2 s; UDP retransmitted as a UA does).
 *
 * The server: `sipway serve --workers BENCH_WORKERS (1)` on UDP and TCP, registration without authentication (what
 * is measured is the connection handling), `flood.trusted: []` (loopback is trusted by default). Printed: the
 * others' answered shares and response times, the idle connections that survived, the server's memory (RSS of its
 * process tree: before any connection, with the idle ones open, peak, after) and the transport's counters.
 * Run through `npm run bench:idle-slowloris`, which raises the open-file limit (ulimit -n) to its hard limit.
 * The idle connections stay well under the server's idle timeout (transport.idleTimeoutMs, 120 s) by design.
 */
import net from 'node:net';
import path from 'node:path';
import { Children, treeMemory } from './e2e/procs.js';
import { DOMAIN, startServer } from './e2e/servers.js';
import { envNumber } from './env.js';
import { every, loadAverage, machine, MemorySampler, mib, sipwayStats, Tally, total, workDir } from './security/measure.js';
import { addresses, answered, Attack, LegitClient, request, sleep } from './security/tcp-peers.js';
import { UdpSipClient } from './security/udp-client.js';

const IDLE = envNumber('BENCH_IDLE_CONNECTIONS', 5000);
const IDLE_ADDRESSES = 200;
const SLOWLORIS = envNumber('BENCH_SLOWLORIS_CONNECTIONS', 500);
const SLOWLORIS_ADDRESSES = 20;
const SLOWLORIS_INTERVAL_MS = envNumber('BENCH_SLOWLORIS_INTERVAL_MS', 3000);
const SECONDS = envNumber('BENCH_SECONDS', 60);
const WORKERS = envNumber('BENCH_WORKERS', 1);

/** Connections that sent one request, got its answer, and then stay silent. */
class IdleConnections {
  established = 0;
  failed = 0;
  closedByServer = 0;
  private readonly sockets: net.Socket[] = [];
  private stopping = false;

  constructor(private readonly port: number) {}

  async open(from: string[], perAddress: number): Promise<void> {
    const all = from.flatMap((a) => Array.from({ length: perAddress }, () => a));
    for (let i = 0; i < all.length; i += 200) await Promise.all(all.slice(i, i + 200).map((a) => this.openOne(a)));
  }

  /** An OPTIONS over every connection still open; how many were answered within 5 s. */
  async probe(): Promise<{ open: number; answered: number }> {
    const open = this.sockets.filter((s) => !s.destroyed && s.readyState === 'open');
    let ok = 0;
    for (let i = 0; i < open.length; i += 500) {
      const results = await Promise.all(
        open.slice(i, i + 500).map((s) => {
          const r = request('OPTIONS', this.port, s.localPort!);
          s.write(r.bytes);
          return answered(s, r.callId, 5000);
        }),
      );
      ok += results.filter(Boolean).length;
    }
    return { open: open.length, answered: ok };
  }

  stop(): void {
    this.stopping = true;
    for (const s of this.sockets) s.destroy();
  }

  private async openOne(localAddress: string): Promise<void> {
    const socket = net.connect({ port: this.port, host: '127.0.0.1', localAddress });
    socket.on('error', () => undefined);
    const connected = await new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true)).once('close', () => resolve(false)));
    if (!connected) {
      this.failed++;
      return;
    }
    const r = request('OPTIONS', this.port, socket.localPort!);
    socket.write(r.bytes);
    if (!(await answered(socket, r.callId, 10_000))) {
      this.failed++;
      socket.destroy();
      return;
    }
    this.established++;
    this.sockets.push(socket);
    socket.once('close', () => {
      if (!this.stopping) this.closedByServer++;
    });
  }
}

async function main(): Promise<void> {
  const children = new Children();
  const work = workDir('sipway-bench-idle-', children);
  console.log(`bench:idle-slowloris: ${machine()}; sipway --workers ${WORKERS}; ${IDLE} idle + ${SLOWLORIS} slowloris connections (1 byte per ${SLOWLORIS_INTERVAL_MS} ms) for ${SECONDS} s; ${loadAverage()}`);
  const server = await startServer(
    'sipway',
    { kind: 'secured', sipwayData: path.join(work, 'data'), kamailioDb: '', settings: { auth: { register: false }, flood: { trusted: [] } }, kamailioConfig: '', kamailioDefines: [], tcp: true },
    { workers: WORKERS, kamailioShmMb: 0, dir: work, children, sipwayDefaults: false, workerPorts: false },
  );
  const udp = await UdpSipClient.open('127.0.0.1', { host: '127.0.0.1', port: server.port });
  const idle = new IdleConnections(server.port);
  const slowloris = new Attack(server.port, addresses([3, 0], SLOWLORIS_ADDRESSES), Math.ceil(SLOWLORIS / SLOWLORIS_ADDRESSES));
  try {
    const empty = treeMemory(server.pid).rssBytes;
    const t0 = Date.now();
    await idle.open(addresses([2, 0], IDLE_ADDRESSES), Math.ceil(IDLE / IDLE_ADDRESSES));
    console.log(`idle: ${idle.established} established in ${((Date.now() - t0) / 1000).toFixed(1)} s (${idle.failed} failed); ${loadAverage()}`);
    await sleep(2000);
    const withIdle = treeMemory(server.pid).rssBytes;
    const sampler = new MemorySampler(server.pid);
    const before = await sipwayStats(server.adminPort!);
    const load = loadAverage();

    const udpOptions = new Tally();
    const udpRegister = new Tally();
    const tcp = new LegitClient(server.port);
    const loops = [
      every(1000, async () => {
        const r = await udp.options(DOMAIN, 2000);
        udpOptions.add(r.status, r.ms);
      }),
      every(1000, async () => {
        const r = await udp.register('legit', DOMAIN, 'unused', 2000);
        udpRegister.add(r.status, r.ms);
      }),
    ];
    const started = Date.now();
    await slowloris.start();
    const writer = setInterval(() => slowloris.writeEach(), SLOWLORIS_INTERVAL_MS);
    while (Date.now() - started < SECONDS * 1000) await sleep(250);
    clearInterval(writer);
    const seconds = (Date.now() - started) / 1000;
    const endLoad = loadAverage();
    await Promise.all(loops.map((l) => l.stop()));
    await tcp.stop();
    const survivors = await idle.probe();
    const after = await sipwayStats(server.adminPort!);
    slowloris.stop();
    const d = (pick: Parameters<typeof total>[1]): number => total(after, pick) - total(before, pick);
    await sleep(10_000);
    sampler.stop();
    const settled = treeMemory(server.pid).rssBytes;

    console.log(`attack: ${load} at the start, ${endLoad} at the end`);
    console.log(`  slowloris           ${slowloris.opened} connections opened, ${slowloris.closedByServer} closed by the server, ${slowloris.bytes} bytes in ${seconds.toFixed(0)} s`);
    console.log(`  UDP, others         OPTIONS ${udpOptions}; REGISTER ${udpRegister}`);
    console.log(`  TCP, others         fresh connections with OPTIONS ${tcp.fresh.ok}/${tcp.fresh.sent}; kept connection with REGISTER ${tcp.kept.ok}/${tcp.kept.sent} (${tcp.kept.reconnects} reconnects)`);
    console.log(`  idle connections    ${idle.established} established; ${idle.closedByServer} closed by the server; ${survivors.open} open at the end, ${survivors.answered} answered an OPTIONS`);
    console.log(
      `  transport           timed out (no complete message in time) ${d((p) => p.transport.connectionsTimedOut)}, rejected ${d((p) => p.transport.connectionsRejected)}, evicted ${d((p) => p.transport.connectionsEvicted)}; open at the end ${total(after, (p) => p.transport.connectionsOpen)}`,
    );
    console.log(`  server RSS          no connections ${mib(empty)}, ${idle.established} idle ${mib(withIdle)}, peak ${mib(sampler.peakRss)} (+${mib(sampler.peakRss - withIdle)} over the idle), 10 s after the attack ${mib(settled)}`);
  } finally {
    idle.stop();
    slowloris.stop();
    udp.close();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
