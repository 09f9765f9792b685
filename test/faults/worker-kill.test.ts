/**
 * A worker killed (kill -9) under call load, `--workers 2`: the calls the other worker owns are not disturbed, and
 * the killed worker's calls recover by the callers' retransmissions (handled by the survivor until the primary has
 * restarted the worker) or fail with a final answer; none is left unanswered. The figures go to the test's
 * diagnostics for the closing note.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseMessage, SipResponse } from '../../src/message/index.js';
import { ownerWorker } from '../../src/message/steering.js';
import { freePort, startCliServer } from '../helpers/process.js';
import { register, TestUa } from '../proxy/ua.js';
import { assertAnswers } from './faults.js';

const CALLS_PER_SECOND = 100;
const LOAD_MS = 3000;
const KILL_AT_MS = 1500;
/** Timer A's schedule (T1 = 500 ms, doubling), given up after Timer B would have (8 s here, to bound the test). */
const RETRANSMIT_MS = [500, 1000, 2000, 4000];
const GIVE_UP_MS = 8000;

interface Call {
  bytes: Buffer;
  owner: number;
  sentAt: number;
  retransmissions: number;
  final?: number;
  finalAfterMs?: number;
}

/** INVITEs at a steady rate from one socket, each retransmitted as a UAC's INVITE client transaction would. */
class CallLoad {
  readonly calls = new Map<string, Call>();
  private readonly socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly port: number) {}

  async run(durationMs: number, onTick: (elapsedMs: number) => void): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    this.socket.on('message', (b) => {
      const m = parseMessage(b).message;
      if (!(m instanceof SipResponse) || m.status < 200) return;
      const call = this.calls.get(m.callId);
      if (call && call.final === undefined) {
        call.final = m.status;
        call.finalAfterMs = Math.round(performance.now() - call.sentAt);
      }
    });
    const start = performance.now();
    let n = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const elapsed = performance.now() - start;
        onTick(elapsed);
        if (elapsed >= durationMs) {
          clearInterval(tick);
          return resolve();
        }
        while (n < (elapsed / 1000) * CALLS_PER_SECOND) this.call(n++);
      }, 10);
    });
    await new Promise((r) => setTimeout(r, GIVE_UP_MS + 500));
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.socket.close();
  }

  private call(n: number): void {
    const me = this.socket.address();
    const callId = `kill-${n}-${process.pid}@test`;
    const lines = [
      'INVITE sip:bob@sipway.test SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${me.port};branch=z9hG4bKkill${n}x${process.pid};rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@sipway.test>;tag=k${n}`,
      'To: <sip:bob@sipway.test>',
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:alice@127.0.0.1:${me.port}>`,
      'Content-Length: 0',
    ];
    const bytes = Buffer.from(lines.join('\r\n') + '\r\n\r\n');
    const call: Call = { bytes, owner: ownerWorker(bytes, 2)!, sentAt: performance.now(), retransmissions: 0 };
    this.calls.set(callId, call);
    this.socket.send(bytes, this.port, '127.0.0.1');
    for (const at of RETRANSMIT_MS) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (call.final !== undefined) return;
        call.retransmissions++;
        this.socket.send(bytes, this.port, '127.0.0.1');
      }, at);
      this.timers.add(timer);
    }
  }
}

/** The worker processes of the primary, by their index. */
function workers(primary: number): Map<number, number> {
  const out = new Map<number, number>();
  const pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(primary)], { encoding: 'utf8' }).split('\n').map((l) => Number(l.trim())).filter((p) => p > 0);
  for (const pid of pids) {
    const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
    const index = env.find((e) => e.startsWith('SIPWAY_WORKER_INDEX='));
    if (index) out.set(Number(index.split('=')[1]), pid);
  }
  return out;
}

test('a worker killed under 100 calls/s: the other worker\'s calls complete, the killed one\'s recover or fail cleanly', { timeout: 60000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-worker-kill-'));
  const config = path.join(dir, 'sipway.json');
  writeFileSync(config, JSON.stringify({ proxy: { authenticateCallers: false } }));
  const port = await freePort();
  const server = await startCliServer(['--config', config, '--listen', `udp:127.0.0.1:${port}`, '--domain', 'sipway.test', '--data', dir, '--no-auth', '--workers', '2']);
  const bob = (await TestUa.udp('bob')).serve({ ring: false });
  const load = new CallLoad(port);
  try {
    await register(bob, port, 'bob');
    const victim = 1;
    const before = workers(server.child.pid!);
    assert.equal(before.size, 2, 'two workers');
    let killed = false;
    await load.run(LOAD_MS, (elapsed) => {
      if (!killed && elapsed >= KILL_AT_MS) {
        killed = true;
        process.kill(before.get(victim)!, 'SIGKILL');
      }
    });
    const calls = [...load.calls.values()];
    const share = (owner: number) => calls.filter((c) => c.owner === owner);
    const summary = (list: Call[]) => ({
      calls: list.length,
      completed: list.filter((c) => c.final === 200).length,
      failed: list.filter((c) => c.final !== undefined && c.final !== 200).length,
      unanswered: list.filter((c) => c.final === undefined).length,
      retransmitted: list.filter((c) => c.retransmissions > 0).length,
      slowestMs: Math.max(0, ...list.map((c) => c.finalAfterMs ?? 0)),
    });
    const survivor = summary(share(1 - victim));
    const victimCalls = summary(share(victim));
    t.diagnostic(`surviving worker's calls: ${JSON.stringify(survivor)}`);
    t.diagnostic(`killed worker's calls: ${JSON.stringify(victimCalls)}`);
    assert.ok(survivor.calls > 50 && victimCalls.calls > 50, 'both workers owned calls');
    assert.equal(survivor.completed, survivor.calls, 'every call of the other worker completes');
    assert.equal(victimCalls.unanswered, 0, 'every call of the killed worker gets a final answer');
    assert.ok(victimCalls.completed >= victimCalls.calls * 0.9, 'the killed worker\'s calls recover by retransmission');
    const after = workers(server.child.pid!);
    assert.equal(after.size, 2, 'the primary restarted the worker');
    assert.notEqual(after.get(victim), before.get(victim));
    await assertAnswers(port, 'after the worker was replaced');
  } finally {
    load.close();
    bob.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
