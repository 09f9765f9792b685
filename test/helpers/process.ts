import assert from 'node:assert/strict';
import { UNCAUGHT_MESSAGE } from '../../src/util/last-resort.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import dgram from 'node:dgram';
import path from 'node:path';
import { projectRoot } from './paths.js';
import type { NetHost } from './netns.js';

export const CLI = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');

/** Runs the sipway CLI to completion (bounded by `timeoutMs`). */
export function runCli(args: string[], options: { input?: string; timeoutMs?: number; cwd?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { input: options.input, timeout: options.timeoutMs ?? 20000, encoding: 'utf8', cwd: options.cwd ?? projectRoot });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The real peers the tests drive, each with the Debian package that brings it (.ci/run installs them all; README
 * lists them).
 */
export const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  sipp: 'sip-tester',
  sipsak: 'sipsak',
  'redis-server': 'redis-server',
  svwar: 'sipvicious',
  kamailio: 'kamailio',
  baresip: 'baresip',
  linphonec: 'linphone-cli',
  'twinkle-console': 'twinkle-console',
  openssl: 'openssl',
  ip: 'iproute2',
  iptables: 'iptables',
  tshark: 'tshark',
  tcpdump: 'tcpdump',
  chromium: 'chromium',
  certutil: 'libnss3-tools',
  python3: 'python3',
  'systemd-analyze': 'systemd',
  rtpengine: 'rtpengine-daemon',
};

/** CI=true (as CI systems and the developers' guide's clone check set it): a missing peer is a failure there. */
export function inCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

function toolPath(name: string): string | undefined {
  const r = spawnSync('/bin/sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function notInstalled(name: string, pkg = DEBIAN_PACKAGES[name] ?? name): string {
  return `${name} is not installed (Debian package ${pkg}; .ci/run installs it)`;
}

/**
 * The path of a real peer a test drives; throws naming it and its Debian package (from DEBIAN_PACKAGES unless
 * given) when it is missing.
 */
export function requireTool(name: string, pkg?: string): string {
  const found = toolPath(name);
  if (found === undefined) throw new Error(notInstalled(name, pkg));
  return found;
}

/**
 * For `test(name, { skip: skipWithout('sipp', 'kamailio') }, ...)` (or describe): the reason to skip when a peer
 * is missing, naming it and its Debian package; undefined when all are installed. In CI a missing peer never
 * skips: the test runs and fails at requireTool (which every test and helper that starts a peer calls).
 */
export function skipWithout(...names: string[]): string | undefined {
  if (inCi()) return undefined;
  const missing = names.filter((n) => toolPath(n) === undefined);
  return missing.length === 0 ? undefined : missing.map((n) => notInstalled(n)).join('; ');
}

/** A sipway CLI command running beside the test: its output so far, its exit, and a wait for a line of it. */
export interface SpawnedCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves once stdout holds `text`, or after `timeoutMs` (the caller asserts on stdout()). */
  waitForStdout(text: string, timeoutMs?: number): Promise<void>;
}

/** Starts a sipway CLI command without blocking this process (servers the test runs in-process keep serving). */
export function spawnCli(args: string[]): SpawnedCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForStdout: async (text, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs;
      while (!stdout.includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    },
  };
}

/**
 * Runs the sipway CLI to completion without blocking this process, for commands that talk to servers the test runs
 * in this process (runCli would freeze them while it waits).
 */
export async function runCliAsync(args: string[], timeoutMs = 30000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const run = spawnCli(args);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  const status = await run.exited;
  clearTimeout(timer);
  return { status, stdout: run.stdout(), stderr: run.stderr() };
}

/**
 * A loopback port free for both UDP and TCP right now (the OS picks it for UDP; TCP is then checked). `lowRange`
 * picks from 5100-9999 instead: sipsak cuts a Request-URI port to four digits.
 */
/** A loopback UDP port nobody listens on: a datagram to it draws an ICMP port unreachable. */
export async function closedUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function freePort(lowRange = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const udp = dgram.createSocket('udp4');
    const wanted = lowRange ? 5100 + Math.floor(Math.random() * 4900) : 0;
    const port = await new Promise<number>((resolve) => {
      udp.once('error', () => resolve(-1));
      udp.bind(wanted, '127.0.0.1', () => resolve(udp.address().port));
    });
    if (port < 0) {
      udp.close();
      continue;
    }
    const tcpFree = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcpFree) return port;
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}

export interface RunningServer {
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `sipway serve ...` as a child process and waits until it is ready: its "sipway started" log line, or (when
 * the log level hides it) an answer to OPTIONS on its first UDP listener. With `host` it runs in that lab host's
 * network namespace, where only the log line tells (the test process cannot reach the lab's addresses); `env` is
 * added to the environment; `wrap` is a command line the server runs under.
 */
export async function startCliServer(args: string[], timeoutMs = 15000, where: { host?: NetHost; env?: NodeJS.ProcessEnv; wrap?: string[] } = {}): Promise<RunningServer> {
  const { host } = where;
  // Benchmarks profile the server with e.g. SIPWAY_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'.
  const nodeArgs = (process.env.SIPWAY_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  // Two workers unless a test says otherwise: every CLI test then crosses the worker bus, whatever the machine's
  // core count (the default, one worker per core, would make that differ between machines).
  const workers = args.includes('--workers') ? [] : ['--workers', process.env.SIPWAY_TEST_WORKERS ?? '2'];
  // Servers of tests running side by side would all want the default admin port, and a taken one stops the start.
  const admin = args.includes('--admin') ? [] : ['--admin', 'off'];
  const argv = [...nodeArgs, CLI, 'serve', ...args, ...workers, ...admin];
  const options = { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...where.env } };
  // `wrap`: a command the server runs under, e.g. nsenter into a mount namespace holding its data directory.
  const [command, ...prefix] = [...(where.wrap ?? []), process.execPath];
  const child = host ? host.spawn(process.execPath, argv, options) : spawn(command!, [...prefix, ...argv], options);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const udpSpec = host ? undefined : args.map((a, i) => (args[i - 1] === '--listen' ? /^udp:([\d.]+):(\d+)$/.exec(a) : null)).find((m) => m);
  const probe = dgram.createSocket('udp4');
  probe.on('error', () => {});
  let answered = false;
  probe.on('message', () => (answered = true));
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (out.includes('sipway started') || answered) break;
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before starting:\n${out}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`server did not start in ${timeoutMs} ms:\n${out}`);
      }
      if (udpSpec) {
        const [, host, port] = udpSpec;
        const ping = `OPTIONS sip:${host}:${port} SIP/2.0\r\nVia: SIP/2.0/UDP ${host}:9;branch=z9hG4bKready${Date.now()};rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@${host}>;tag=1\r\nTo: <sip:${host}>\r\nCall-ID: ready${Date.now()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
        probe.send(ping, Number(port), host!);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    probe.close();
  }
  return {
    child,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      // Every test that runs the server checks that no error reached its event loop (src/util/last-resort.ts).
      const uncaught = out.split('\n').filter((l) => l.includes(`"msg":"${UNCAUGHT_MESSAGE}"`));
      assert.equal(uncaught.length, 0, `the server logged uncaught errors:\n${uncaught.join('\n')}`);
      return child.exitCode;
    },
  };
}
