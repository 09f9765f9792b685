/**
 * The SQLite store's disk fills up under a running server (a small tmpfs in a mount namespace of the test's own): a
 * REGISTER that cannot be stored is answered 500 with a reason naming the fault, never 200; calls to users already
 * registered go on (reads still work); once there is room again REGISTERs are stored; and no binding that was
 * acknowledged is lost, across a kill -9 and a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, freePort, requireTool, startCliServer, type RunningServer } from '../helpers/process.js';
import { invite, register, TestUa } from '../proxy/ua.js';
import { assertAnswers, registerOnce } from './faults.js';

/** A mount namespace kept alive by a sleeping process, with a tmpfs of `size` mounted on `dir` inside it. */
class PrivateDisk {
  private constructor(
    private readonly holder: ChildProcess,
    readonly dir: string,
  ) {}

  static async create(dir: string, size: string): Promise<PrivateDisk> {
    requireTool('unshare', 'util-linux');
    const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '300'], { stdio: 'ignore' });
    const disk = new PrivateDisk(holder, dir);
    // Until unshare has exec'd sleep, nsenter would enter the machine's own mount namespace.
    for (let i = 0; i < 50 && !readlink(`/proc/${holder.pid}/exe`).endsWith('/sleep'); i++) await new Promise((r) => setTimeout(r, 20));
    disk.run(['mount', '-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
    return disk;
  }

  /** `nsenter ...`: what runs under it sees the tmpfs. */
  get enter(): string[] {
    return ['nsenter', '-t', String(this.holder.pid), '-m', '--'];
  }

  run(argv: string[]): string {
    const r = spawnSync(this.enter[0]!, [...this.enter.slice(1), ...argv], { encoding: 'utf8', timeout: 20000 });
    if (r.status !== 0 && !argv.includes('dd')) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** Writes zeros until the file system is full. */
  fill(): void {
    this.run(['dd', 'if=/dev/zero', `of=${this.dir}/fill`, 'bs=64k']);
  }

  free(): void {
    this.run(['rm', '-f', `${this.dir}/fill`]);
  }

  close(): void {
    this.holder.kill('SIGKILL');
  }
}

function readlink(p: string): string {
  return spawnSync('readlink', [p], { encoding: 'utf8' }).stdout.trim();
}

async function callReaches(caller: TestUa, port: number, user: string): Promise<number> {
  const inv = invite(caller, { to: `sip:${user}@sipway.test` });
  caller.send(inv, port);
  return (await caller.response(inv.callId, undefined, 5000)).status;
}

test('SQLite disk full: REGISTER 500 naming the fault, calls go on, nothing acknowledged is lost', { timeout: 90000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-full-'));
  const data = path.join(dir, 'data');
  spawnSync('mkdir', ['-p', data]);
  const config = path.join(dir, 'sipway.json');
  writeFileSync(config, JSON.stringify({ proxy: { authenticateCallers: false } }));
  const disk = await PrivateDisk.create(data, '4m');
  const port = await freePort();
  const serve = (): Promise<RunningServer> =>
    startCliServer(['--config', config, '--listen', `udp:127.0.0.1:${port}`, '--domain', 'sipway.test', '--data', data, '--no-auth', '--workers', '1'], 15000, { wrap: disk.enter });
  let server = await serve();
  const uas: TestUa[] = [];
  try {
    const ua = async (name: string): Promise<TestUa> => {
      const u = (await TestUa.udp(name)).serve();
      uas.push(u);
      return u;
    };
    const alice = await ua('alice');
    const acknowledged: TestUa[] = [];
    for (const name of ['bob', 'carol']) {
      const u = await ua(name);
      await register(u, port, name);
      acknowledged.push(u);
    }
    disk.fill();
    const dave = await ua('dave');
    const refused = await registerOnce(dave, port, 'dave');
    assert.match(refused, /^500 Server Internal Error - store failed: (disk full|I\/O error)$/);
    assert.equal(await callReaches(alice, port, 'bob'), 200, 'a registered user is still reached while the disk is full');
    await assertAnswers(port, 'while the disk is full');
    disk.free();
    assert.equal(await registerOnce(dave, port, 'dave'), '200 OK', 'stored again once there is room');
    acknowledged.push(dave);
    // kill -9 and a restart: every acknowledged binding is there.
    server.child.kill('SIGKILL');
    await server.stop();
    server = await serve();
    for (const u of acknowledged) assert.equal(await callReaches(alice, port, u.name), 200, `${u.name} is reached after the restart`);
  } finally {
    for (const u of uas) u.close();
    await server.stop();
    disk.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SQLite on a read-only data directory: the server refuses to start, naming --data and why', { timeout: 30000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-ro-'));
  const disk = await PrivateDisk.create(dir, '4m');
  try {
    // A database with a user in it, then the file system goes read-only (as ext4 does after an I/O error).
    disk.run([process.execPath, CLI, 'user', 'add', 'bob@sipway.test', '--password', 'secret', '--data', dir]);
    disk.run(['mount', '-o', 'remount,ro', dir]);
    const r = spawnSync(disk.enter[0]!, [...disk.enter.slice(1), process.execPath, CLI, 'serve', '--listen', `udp:127.0.0.1:${await freePort()}`, '--data', dir, '--workers', '1', '--admin', 'off'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^sipway: --data: cannot open .*sipway\.db: .*\(the directory is read-only: sipway writes the database and its WAL there\)$/m);
  } finally {
    disk.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
