/**
 * The two servers of bench:e2e on loopback UDP, each in a role: `sipway serve --workers N` and Kamailio with a config
 * of bench/kamailio/ and the same number of UDP workers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitForOptions } from '../../test/helpers/kamailio.js';
import { freePort, startCliServer } from '../../test/helpers/process.js';
import { projectRoot } from '../../test/helpers/paths.js';
import { Children, stopChild } from './procs.js';

export type ServerName = 'sipway' | 'kamailio';

export type Role =
  | { kind: 'static'; nextHop: string; stateless: boolean }
  | { kind: 'registrar' }
  | { kind: 'registrar-auth'; sipwayData: string; kamailioDb: string }
  /**
   * The security benches: users in both stores, sipway with `settings` on top of the bench's (its default
   * authentication on), Kamailio with `kamailioConfig` of bench/kamailio/ and `-A` defines; `tcp`: sipway listens
   * on TCP too, on the same port.
   */
  | { kind: 'secured'; sipwayData: string; kamailioDb: string; settings: Record<string, unknown>; kamailioConfig: string; kamailioDefines: string[]; tcp?: boolean };

export interface BenchServer {
  name: ServerName;
  port: number;
  /** The root of the server's process tree. */
  pid: number;
  /** sipway's admin endpoint (GET /stats). */
  adminPort?: number;
  stop(): Promise<void>;
}

export const DOMAIN = 'bench.test';

export interface ServerOptions {
  workers: number;
  /** Kamailio shared memory in MB (usrloc and tm live there). */
  kamailioShmMb: number;
  dir: string;
  children: Children;
  /** sipway with its default features (accounting and CPL on), which Kamailio's configs do not have. */
  sipwayDefaults: boolean;
  /** sipway's workers send requests from ports of their own (transport.workerPorts; off by default). */
  workerPorts: boolean;
  /** Kamailio with the TLSF allocator (-x tlsf), as ../shared/bench runs it. */
  kamailioTlsf?: boolean;
}

export async function startServer(name: ServerName, role: Role, o: ServerOptions): Promise<BenchServer> {
  return name === 'sipway' ? startSipway(role, o) : startKamailio(role, o);
}

async function startSipway(role: Role, o: ServerOptions): Promise<BenchServer> {
  const port = await freePort();
  const adminPort = await freePort();
  const authenticated = role.kind === 'registrar-auth' || role.kind === 'secured';
  const data = authenticated ? role.sipwayData : path.join(o.dir, 'sipway-data');
  const args = ['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', data, '--log-level', 'warn', '--admin', `127.0.0.1:${adminPort}`];
  if (role.kind === 'secured' && role.tcp) args.push('--listen', `tcp:127.0.0.1:${port}`);
  if (!authenticated) args.push('--no-auth');
  if (role.kind === 'static') {
    args.push('--policy', path.join(projectRoot, 'dist', 'bench', 'e2e', 'static-policy.js'));
    // The policy reads its next hop from the environment the server inherits.
    process.env.SIPWAY_BENCH_NEXT_HOP = role.nextHop;
    process.env.SIPWAY_BENCH_STATELESS = role.stateless ? '1' : '0';
  }
  // Kamailio's configs load neither acc nor cpl-c: sipway's call records and CPL scripts (on by default) are
  // switched off so that both servers do the same work; BENCH_ACCOUNTING=1 keeps them on.
  const settings: Record<string, unknown> = o.sipwayDefaults ? {} : { accounting: { enabled: false }, cpl: { enabled: false } };
  if (role.kind === 'secured') Object.assign(settings, role.settings);
  // The workers' own ports follow the first one; a free port with free neighbours, almost always on loopback.
  if (o.workerPorts && o.workers > 1) settings.transport = { workerPorts: await freePort() };
  if (Object.keys(settings).length > 0) {
    const config = path.join(o.dir, 'sipway-bench.json');
    writeFileSync(config, JSON.stringify(settings));
    args.push('--config', config);
  }
  args.push('--workers', String(o.workers));
  const server = await startCliServer(args, 30000);
  o.children.add(server.child);
  return {
    name: 'sipway',
    port,
    pid: server.child.pid!,
    adminPort,
    stop: async () => {
      await server.stop();
    },
  };
}

async function startKamailio(role: Role, o: ServerOptions): Promise<BenchServer> {
  const port = await freePort();
  const runDir = path.join(o.dir, `kamailio-${port}`);
  mkdirSync(runDir, { recursive: true });
  const cfgDir = path.join(projectRoot, 'bench', 'kamailio');
  const args = ['-DD', '-E', '-n', String(o.workers), '-m', String(o.kamailioShmMb), '-M', '16', '-Y', runDir, '-w', runDir, '-P', path.join(runDir, 'kamailio.pid'), '-l', `udp:127.0.0.1:${port}`];
  if (o.kamailioTlsf) args.push('-x', 'tlsf');
  if (role.kind === 'secured') {
    args.push('-f', path.join(cfgDir, role.kamailioConfig), '-A', `DBURL="sqlite:///${role.kamailioDb}"`);
    for (const d of role.kamailioDefines) args.push('-A', d);
  } else if (role.kind === 'static') {
    args.push('-f', path.join(cfgDir, 'proxy-static.cfg'), '-A', `NEXT_HOP="${role.nextHop}"`);
    if (role.stateless) args.push('-A', 'STATELESS');
  } else {
    args.push('-f', path.join(cfgDir, 'registrar.cfg'));
    if (role.kind === 'registrar-auth') args.push('-A', 'WITH_AUTH', '-A', `DBURL="sqlite:///${role.kamailioDb}"`);
  }
  return { name: 'kamailio', ...(await runKamailio(args, runDir, port, o.children)) };
}

/**
 * Kamailio with `args` (its config, listeners and defines), run in `runDir`, answering OPTIONS on `port` within 15 s.
 * Its own process group: kamailio forks workers and timer processes, and the SIGKILL fallback must reach them.
 * `onOutput` sees its log as it comes (the first 64 KB are kept for a failed start).
 */
export async function runKamailio(
  args: string[],
  runDir: string,
  port: number,
  children: Children,
  onOutput?: (chunk: string) => void,
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const child = children.add(spawn('kamailio', args, { cwd: runDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true }), true);
  let log = '';
  const append = (c: Buffer): void => {
    const text = c.toString();
    if (log.length < 65536) log += text;
    onOutput?.(text);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const stop = async (): Promise<void> => {
    await stopChild(child, 'SIGTERM', 5000, true);
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is gone
    }
  };
  try {
    await waitForOptions(port, child, () => log, 15000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, pid: child.pid!, stop };
}

/**
 * Kamailio 5.6 with its SQLite module, and SIPp: present, installed with apt-get when running as root, or a clear
 * message what to install.
 */
export function ensureTools(): void {
  const missing = ['kamailio', 'sipp'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (spawnSync('sh', ['-c', 'ls /usr/lib/*/kamailio/modules/db_sqlite.so']).status !== 0) missing.push('kamailio db_sqlite module');
  if (missing.length === 0) return;
  const packages = ['kamailio', 'kamailio-sqlite-modules', 'sip-tester'];
  if (process.getuid?.() !== 0) throw new Error(`missing: ${missing.join(', ')}; install with: sudo apt-get install -y ${packages.join(' ')}`);
  console.log(`installing ${packages.join(' ')} (apt-get) ...`);
  const opts = { stdio: 'inherit' as const, timeout: 300000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  spawnSync('apt-get', ['update'], opts);
  const r = spawnSync('apt-get', ['install', '-y', ...packages], opts);
  if (r.status !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed`);
}
