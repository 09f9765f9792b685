/**
 * bench:relay: the embedded media relay (src/media/udp-relay.ts) forwarding G.711 calls on loopback (prints figures,
 * asserts nothing; never part of `npm test`).
 *
 * For each call count of BENCH_RELAY_CALLS (default 50,200,400): N calls are set up through a UdpMediaRelay in this
 * process (offer and answer, rtcp pairs, latching on), then a generator in a child process plays both phones of every
 * call: 20 ms G.711 frames (12-byte RTP header + 160 bytes) at 50 packets/s in each direction, the calls' packets
 * spread evenly over the 20 ms. After BENCH_RELAY_WARMUP_SECONDS (2) it measures for BENCH_RELAY_SECONDS (10):
 *
 *  - packets/s the relay forwarded (its own counters) and loss (what the generator sent and did not get back);
 *  - the relay process's CPU (process.cpuUsage: user + system) in % of one core, per stream (one direction of a
 *    call, 50 packets/s) and per packet;
 *  - how late the relay's event loop ran (p99, ms, beyond its 5 ms sampling timer); a row is marked overloaded when
 *    the relay forwarded less than 97 % of what was offered or its loop ran more than a frame (20 ms) late;
 *  - latency: every packet carries the generator's send time (performance.now), read when it arrives at the other
 *    phone: p50/p99/max through the relay, and the same load sent phone to phone directly (no relay) for
 *    BENCH_RELAY_BASELINE_SECONDS (5; 0 skips it): the relay's added latency is the difference.
 *
 * The generator shares the machine and costs about as much CPU per packet as the relay: on a 2-core machine the two
 * run out of CPU together (about 500 calls), and beyond that the figures are the machine's, not the relay's.
 */
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import os from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { UdpMediaRelay } from '../src/media/index.js';
import { envNumber } from './env.js';

const LOOPBACK = '127.0.0.1';
const CALLS = (process.env.BENCH_RELAY_CALLS ?? '50,200,400').split(',').map(Number).filter((n) => n > 0);
const SECONDS = envNumber('BENCH_RELAY_SECONDS', 10);
const WARMUP_SECONDS = envNumber('BENCH_RELAY_WARMUP_SECONDS', 2);
const BASELINE_SECONDS = process.env.BENCH_RELAY_BASELINE_SECONDS === '0' ? 0 : envNumber('BENCH_RELAY_BASELINE_SECONDS', 5);
const PORT_MIN = envNumber('BENCH_RELAY_PORT_MIN', 20000);
const FRAME_MS = 20;
const PAYLOAD = 160;
const LOOP_RESOLUTION_MS = 5;

// --- The generator (child process) ---------------------------------------------------------------------------------

interface RunRequest {
  kind: 'run';
  /** Per call: where phone A sends (the relay's port facing A, or B's own port for the baseline) and where B sends. */
  targets: { a: number; b: number }[];
  warmupMs: number;
  measureMs: number;
}

interface DirectionResult {
  sent: number;
  received: number;
}

interface RunResult {
  kind: 'result';
  aToB: DirectionResult;
  bToA: DirectionResult;
  /** One-way latencies in ms of the packets sent in the measured window. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  cpuMs: number;
}

type ToGenerator = { kind: 'open' } | RunRequest | { kind: 'exit' };
type FromGenerator = { kind: 'opened'; a: number; b: number } | RunResult;

async function bindLoopback(): Promise<dgram.Socket> {
  // Literal addresses only: a lookup that answers at once spares each datagram a dns.lookup and a tick.
  const lookup = (host: string, _o: unknown, cb: (err: Error | null, address: string, family: number) => void): void => cb(null, host, 4);
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20, lookup });
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  return socket;
}

async function generator(): Promise<void> {
  // One socket per phone role: the relay tells the calls apart by its own ports, the generator by the call index in
  // the payload.
  const a = await bindLoopback();
  const b = await bindLoopback();
  const send = (msg: ToGenerator | FromGenerator): void => void process.send!(msg);
  process.on('message', (msg: ToGenerator) => {
    if (msg.kind === 'open') send({ kind: 'opened', a: a.address().port, b: b.address().port });
    else if (msg.kind === 'run') void run(msg).then(send);
    else {
      a.close();
      b.close();
      process.disconnect();
    }
  });

  async function run(req: RunRequest): Promise<RunResult> {
    const n = req.targets.length;
    const packetA = Buffer.alloc(12 + PAYLOAD, 0xff);
    const packetB = Buffer.alloc(12 + PAYLOAD, 0xff);
    for (const p of [packetA, packetB]) {
      p[0] = 0x80;
      p[1] = 0;
    }
    const seq = new Uint16Array(n * 2);
    const latencies = new Float64Array(Math.ceil((req.measureMs / FRAME_MS + 10) * n * 2));
    let samples = 0;
    let measuring = false;
    const aToB: DirectionResult = { sent: 0, received: 0 };
    const bToA: DirectionResult = { sent: 0, received: 0 };
    const onMessage = (dir: DirectionResult) => (msg: Buffer) => {
      if (msg.length < 12 + 13) return;
      // payload: [0] measured flag, [1..4] call index, [5..12] send time
      if (msg[12] !== 1) return;
      dir.received++;
      if (samples < latencies.length) latencies[samples++] = performance.now() - msg.readDoubleBE(17);
    };
    const atB = onMessage(aToB);
    const atA = onMessage(bToA);
    b.on('message', atB);
    a.on('message', atA);

    const sendFrame = (packet: Buffer, stream: number, socket: dgram.Socket, to: number, flag: number, call: number, sentAt: number): void => {
      const s = (seq[stream] = (seq[stream]! + 1) & 0xffff);
      packet.writeUInt16BE(s, 2);
      packet.writeUInt32BE((s * 160) >>> 0, 4);
      packet.writeUInt32BE(stream, 8);
      packet[12] = flag;
      packet.writeUInt32BE(call, 13);
      packet.writeDoubleBE(sentAt, 17);
      // dgram keeps a reference, not a copy, until the datagram is out: each send gets its own bytes.
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
        if (now >= stopAt) {
          resolve();
          return;
        }
        if (!measuring && now >= measureFrom) {
          measuring = true;
          cpuAtStart = process.cpuUsage();
        }
        // Every call's frame once per 20 ms, the calls evenly spread over it.
        const due = Math.floor(((now - start) * n) / FRAME_MS) + 1;
        for (; frames < due; frames++) {
          const i = frames % n;
          const t = req.targets[i]!;
          const flag = measuring ? 1 : 0;
          const sentAt = performance.now();
          sendFrame(packetA, i * 2, a, t.a, flag, i, sentAt);
          sendFrame(packetB, i * 2 + 1, b, t.b, flag, i, sentAt);
          if (measuring) {
            aToB.sent++;
            bToA.sent++;
          }
        }
        setTimeout(tick, 1);
      };
      tick();
    });
    const cpu = process.cpuUsage(cpuAtStart);
    // What is still in flight lands (or is lost).
    await new Promise((resolve) => setTimeout(resolve, 300));
    b.removeListener('message', atB);
    a.removeListener('message', atA);
    const sorted = latencies.subarray(0, samples).sort();
    const at = (q: number): number => sorted[Math.min(samples - 1, Math.floor(q * samples))] ?? NaN;
    return { kind: 'result', aToB, bToA, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[samples - 1] ?? NaN, cpuMs: (cpu.user + cpu.system) / 1000 };
  }
}

// --- The relay and the report (parent) -----------------------------------------------------------------------------

class Generator {
  private readonly child: ChildProcess;
  private pending: ((msg: FromGenerator) => void) | undefined;

  constructor() {
    this.child = fork(fileURLToPath(import.meta.url), ['generator'], { stdio: 'inherit' });
    this.child.on('message', (msg: FromGenerator) => {
      const p = this.pending;
      this.pending = undefined;
      p?.(msg);
    });
  }

  ask<T extends FromGenerator>(msg: ToGenerator): Promise<T> {
    return new Promise((resolve) => {
      this.pending = resolve as (msg: FromGenerator) => void;
      this.child.send(msg);
    });
  }

  stop(): void {
    this.child.send({ kind: 'exit' });
  }
}

function phoneSdp(port: number): string {
  return ['v=0', `o=bench 1 1 IN IP4 ${LOOPBACK}`, 's=-', `c=IN IP4 ${LOOPBACK}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=ptime:20', ''].join('\r\n');
}

const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
const f3 = (x: number): string => x.toFixed(3);
const int = (x: number): string => Math.round(x).toLocaleString('en-US');

async function measure(gen: Generator, ports: { a: number; b: number }, calls: number): Promise<void> {
  const relay = new UdpMediaRelay({ address: LOOPBACK, portMin: PORT_MIN, portMax: PORT_MIN + calls * 4 + 100 });
  try {
    const targets: { a: number; b: number }[] = [];
    for (let i = 0; i < calls; i++) {
      const callId = `bench-${i}`;
      const offer = await relay.offer({ callId, fromTag: 'a' }, phoneSdp(ports.a));
      const answer = await relay.answer({ callId, fromTag: 'b', toTag: 'a' }, phoneSdp(ports.b));
      targets.push({ a: portOf(answer), b: portOf(offer) });
    }
    const total = async (): Promise<{ packets: number; dropped: number }> => {
      let packets = 0;
      let dropped = 0;
      for (const c of await relay.calls()) {
        for (const s of c.streams) {
          for (const side of s.sides) {
            packets += side.rtp.packets;
            dropped += side.rtp.dropped;
          }
        }
      }
      return { packets, dropped };
    };
    const running = gen.ask<RunResult>({ kind: 'run', targets, warmupMs: WARMUP_SECONDS * 1000, measureMs: SECONDS * 1000 });
    await sleep(WARMUP_SECONDS * 1000);
    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    loop.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const before = await total();
    await sleep(SECONDS * 1000);
    const cpu = process.cpuUsage(cpu0);
    const elapsed = (performance.now() - t0) / 1000;
    const after = await total();
    loop.disable();
    const result = await running;
    const forwarded = after.packets - before.packets;
    // The histogram holds the intervals of a timer of LOOP_RESOLUTION_MS: beyond that, the loop was late.
    const late = Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const streams = calls * 2;
    const sent = result.aToB.sent + result.bToA.sent;
    const received = result.aToB.received + result.bToA.received;
    let baseline: RunResult | undefined;
    if (BASELINE_SECONDS > 0) {
      baseline = await gen.ask<RunResult>({
        kind: 'run',
        targets: targets.map(() => ({ a: ports.b, b: ports.a })),
        warmupMs: 1000,
        measureMs: BASELINE_SECONDS * 1000,
      });
    }
    const row = [
      String(calls).padStart(5),
      int(forwarded / elapsed).padStart(9),
      f1((100 * cpuMs) / (elapsed * 1000)).padStart(6),
      f3((cpuMs / (elapsed * 1000) / streams) * 100).padStart(8),
      f2((cpuMs * 1000) / Math.max(1, forwarded)).padStart(7),
      f3(result.p50).padStart(7),
      f3(result.p99).padStart(7),
      f2(result.max).padStart(7),
      (baseline ? f3(baseline.p50) : '-').padStart(7),
      (baseline ? f3(baseline.p99) : '-').padStart(7),
      (baseline ? f3(result.p50 - baseline.p50) : '-').padStart(7),
      (baseline ? f3(result.p99 - baseline.p99) : '-').padStart(7),
      `${f3((100 * (sent - received)) / Math.max(1, sent))}%`.padStart(8),
      int(after.dropped).padStart(6),
      f1((100 * result.cpuMs) / (SECONDS * 1000)).padStart(6),
      f1(late).padStart(7),
    ];
    // Offered: 50 packets/s per stream. Less forwarded, or a relay event loop late by more than a frame, means the
    // machine (relay, generator and whatever else runs) was out of CPU: the row's latency and loss say so, not the relay.
    const overloaded = forwarded / elapsed < 0.97 * streams * (1000 / FRAME_MS) || late > FRAME_MS;
    console.log(row.join(' ') + (overloaded ? '  (overloaded)' : ''));
  } finally {
    await relay.close();
  }
}

function portOf(sdp: string): number {
  const m = /^m=audio (\d+)/m.exec(sdp);
  if (!m) throw new Error('no m=audio in the relay’s SDP');
  return Number(m[1]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  console.log(`bench:relay — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${SECONDS} s per run after ${WARMUP_SECONDS} s warm-up`);
  console.log('G.711 20 ms (172-byte datagrams), 50 pps per stream, a stream = one direction of a call; latency one-way in ms');
  console.log('calls  fwd pkt/s  cpu%  cpu%/str  µs/pkt  lat p50 lat p99 lat max  dir p50 dir p99 add p50 add p99     loss dropd gen cpu% late p99');
  const gen = new Generator();
  try {
    const ports = await gen.ask<{ kind: 'opened'; a: number; b: number }>({ kind: 'open' });
    for (const calls of CALLS) await measure(gen, ports, calls);
  } finally {
    gen.stop();
  }
}

if (process.argv[2] === 'generator') void generator();
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
