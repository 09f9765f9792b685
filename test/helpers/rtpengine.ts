/**
 * rtpengine (Debian 12: rtpengine-daemon 10.5) as a child process for the media relay tests: userspace forwarding
 * only (--table=-1: no kernel module needed), in the foreground with its log on stderr, its ng control port on a
 * free loopback port and its media ports in a range of its own on 127.0.0.1. `--config-file=none` keeps the
 * package's /etc/rtpengine/rtpengine.conf (ng on 2223, CLI, HTTP, ports 30000-40000) out of it, so a system
 * rtpengine the package may have started does not collide with it either: its ports are not ours.
 */
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { freePort, inCi, requireTool } from './process.js';

export const RTPENGINE_PACKAGE = 'rtpengine-daemon';

export interface RunningRtpEngine {
  /** The ng control port on 127.0.0.1. */
  ngPort: number;
  /** The media ports it allocates from (inclusive). */
  portMin: number;
  portMax: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * The reason to skip a test that needs rtpengine, naming its Debian package; undefined when it is installed. In CI
 * it never skips (the test then fails at requireTool, as for every other peer).
 */
export function rtpengineMissing(): string | undefined {
  if (inCi()) return undefined;
  const r = spawnSync('/bin/sh', ['-c', 'command -v rtpengine'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `rtpengine is not installed (Debian package ${RTPENGINE_PACKAGE}; .ci/run installs it)`;
}

const MAX_LOG = 1 << 20;
/** Media ports in 20000-29999: below Linux's ephemeral range (32768-60999), so no socket the OS hands out takes them, and
 * below the 30000-40000 of the package's own config, so a system rtpengine does not either. */
const MEDIA_BASE = 20_000;
const MEDIA_SPAN = 10_000;
const MEDIA_PORTS = 200;

/** Starts rtpengine and waits until it answers ping (bounded by `timeoutMs`). */
export async function startRtpEngine(options: { timeoutMs?: number; extraArgs?: string[] } = {}): Promise<RunningRtpEngine> {
  const binary = requireTool('rtpengine', RTPENGINE_PACKAGE);
  const ngPort = await freePort();
  // An even start: rtpengine allocates RTP/RTCP pairs.
  const portMin = MEDIA_BASE + 2 * Math.floor((Math.random() * (MEDIA_SPAN - MEDIA_PORTS)) / 2);
  const portMax = portMin + MEDIA_PORTS - 1;
  const args = [
    '--config-file=none',
    '--foreground',
    '--log-stderr',
    '--log-level=6',
    '--table=-1',
    '--interface=127.0.0.1',
    `--listen-ng=127.0.0.1:${ngPort}`,
    `--port-min=${portMin}`,
    `--port-max=${portMax}`,
    '--num-threads=2',
    '--delete-delay=0',
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const append = (c: Buffer): void => {
    if (log.length < MAX_LOG) log += c.toString();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForPong(ngPort, () => child.exitCode, () => log, options.timeoutMs ?? 10_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { ngPort, portMin, portMax, output: () => log, stop };
}

/** Until rtpengine answers `ping` with `pong` on 127.0.0.1:port. */
async function waitForPong(port: number, exitCode: () => number | null, log: () => string, timeoutMs: number): Promise<void> {
  const probe = dgram.createSocket('udp4');
  probe.on('error', () => {});
  let answered = false;
  probe.on('message', (m: Buffer) => {
    if (m.toString('latin1').startsWith('ready ') && m.includes('4:pong')) answered = true;
  });
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  try {
    const deadline = Date.now() + timeoutMs;
    while (!answered) {
      if (exitCode() !== null) throw new Error(`rtpengine exited with ${exitCode()} before answering ping:\n${log()}`);
      if (Date.now() > deadline) throw new Error(`rtpengine did not answer ping on 127.0.0.1:${port} within ${timeoutMs} ms:\n${log()}`);
      probe.send('ready d7:command4:pinge', port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    probe.close();
  }
}
