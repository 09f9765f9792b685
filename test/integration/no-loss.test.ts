/**
 * Nothing acknowledged is lost (issue 14): a 200 OK to a REGISTER is sent only for a binding that survives kill -9 of
 * the server, the cluster primary or a worker (SQLite), and of Redis when Redis keeps an append-only file with
 * `appendfsync always`. Without persistence a Redis restart loses the bindings, as docs/storage.md says, and sipway
 * answers 500 while Redis is away and serves again once it is back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseMessage, SipResponse } from '../../src/message/index.js';
import { freePort, runCli, skipWithout, startCliServer, type RunningServer } from '../helpers/process.js';
import { startRedisServer } from '../store/redis-server.js';

const RATE_PER_10MS = 8;

/** Sends REGISTERs for new users at ~800/s from one socket; remembers the final status of each. */
class RegisterLoad {
  readonly finals = new Map<string, number>();
  private readonly socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  private next = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly port: number) {}

  private bound = false;

  async start(): Promise<void> {
    if (!this.bound) {
      this.bound = true;
      await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
      this.socket.on('message', (b) => {
        const m = parseMessage(b).message;
        if (m instanceof SipResponse && m.status >= 200 && !this.finals.has(m.callId)) this.finals.set(m.callId, m.status);
      });
    }
    this.timer = setInterval(() => {
      for (let i = 0; i < RATE_PER_10MS; i++) this.send(this.next++);
    }, 10);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  close(): void {
    this.stop();
    this.socket.close();
  }

  /** The users whose REGISTER got a 200. */
  acknowledged(): string[] {
    return [...this.finals].filter(([, s]) => s === 200).map(([callId]) => callId.replace(/^noloss-/, ''));
  }

  private send(n: number): void {
    const me = this.socket.address();
    const user = `u${n}`;
    const bytes = Buffer.from(
      `REGISTER sip:sipway.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${me.port};branch=z9hG4bK-nl${n};rport\r\nMax-Forwards: 70\r\n` +
        `From: <sip:${user}@sipway.test>;tag=${n}\r\nTo: <sip:${user}@sipway.test>\r\nCall-ID: noloss-${user}\r\nCSeq: 1 REGISTER\r\n` +
        `Contact: <sip:${user}@127.0.0.1:${5000 + (n % 1000)}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n`,
    );
    this.socket.send(bytes, this.port, '127.0.0.1');
  }
}

function storedUsers(args: string[]): Set<string> {
  const r = runCli(['location', '--json', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return new Set((JSON.parse(r.stdout) as Array<{ aor: string }>).map((b) => /sip:(u\d+)@/.exec(b.aor)![1]!));
}

function missing(acknowledged: string[], stored: Set<string>): string[] {
  return acknowledged.filter((u) => !stored.has(u));
}

async function serve(port: number, store: string[], workers: number): Promise<RunningServer> {
  return startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', 'sipway.test', '--no-auth', '--admin', '127.0.0.1:0', '--workers', String(workers), ...store]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const [name, workers, victim] of [
  ['the server (one process)', 1, 'server'],
  ['the cluster primary', 2, 'server'],
  ['a worker', 2, 'worker'],
] as const) {
  test(`SQLite: kill -9 of ${name} under ~800 REGISTER/s loses no acknowledged binding`, { timeout: 60000 }, async () => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-noloss-'));
    const port = await freePort();
    let server = await serve(port, ['--data', data], workers);
    const load = new RegisterLoad(port);
    try {
      await load.start();
      await sleep(1200);
      const pid = victim === 'server' ? server.child.pid! : childPids(server.child.pid!)[0]!;
      process.kill(pid, 'SIGKILL');
      await sleep(victim === 'worker' ? 1500 : 300);
      load.stop();
      await sleep(300);
      if (victim === 'server') {
        await server.stop();
        server = await serve(port, ['--data', data], workers);
      }
      const acknowledged = load.acknowledged();
      assert.ok(acknowledged.length > 500, `load was acknowledged before the kill (${acknowledged.length})`);
      assert.deepEqual(missing(acknowledged, storedUsers(['--data', data])), []);
    } finally {
      load.close();
      await server.stop();
      rmSync(data, { recursive: true, force: true });
    }
  });
}

test('Redis with appendfsync always: killed and restarted under load, 500 while away, no acknowledged binding lost', { timeout: 60000, skip: skipWithout('redis-server') }, async () => {
  const redis = await startRedisServer({ appendfsync: 'always' });
  const port = await freePort();
  const server = await serve(port, ['--store', redis.url], 1);
  const load = new RegisterLoad(port);
  try {
    await load.start();
    await sleep(800);
    await redis.kill();
    const during = load.finals.size;
    await sleep(800);
    const whileAway = [...load.finals.values()].slice(during);
    await redis.restart();
    await sleep(1500);
    load.stop();
    await sleep(300);
    assert.ok(whileAway.includes(500), `500 while Redis was away (got ${[...new Set(whileAway)].join(', ')})`);
    const acknowledged = load.acknowledged();
    assert.ok(acknowledged.length > 500);
    assert.deepEqual(missing(acknowledged, storedUsers(['--store', redis.url])), []);
  } finally {
    load.close();
    await server.stop();
    await redis.stop();
  }
});

test('Redis without persistence: a restart loses the bindings (as documented), and sipway serves again at once', { timeout: 60000, skip: skipWithout('redis-server') }, async () => {
  const redis = await startRedisServer();
  const port = await freePort();
  const server = await serve(port, ['--store', redis.url], 1);
  const load = new RegisterLoad(port);
  try {
    await load.start();
    await sleep(500);
    load.stop();
    await sleep(300);
    const before = load.acknowledged();
    assert.ok(before.length > 100);
    await redis.restart();
    assert.equal(missing(before, storedUsers(['--store', redis.url])).length, before.length, 'nothing survives a restart without persistence');
    await load.start();
    await sleep(500);
    load.stop();
    await sleep(300);
    assert.ok(load.acknowledged().length > before.length, 'registrations are acknowledged again after the restart');
  } finally {
    load.close();
    await server.stop();
    await redis.stop();
  }
});

function childPids(pid: number): number[] {
  return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
}
