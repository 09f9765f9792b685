/**
 * Kamailio (Debian 12: 5.6) as a child process for interop tests: one of our configs from test/interop/kamailio/,
 * UDP on a loopback port, in the foreground (-DD) with its log on stderr (-E) and its own runtime directory (-Y).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './paths.js';
import { freePort, requireTool } from './process.js';

export interface RunningKamailio {
  port: number;
  /** Kamailio's log (its xlog lines name every request and reply it handled). */
  output(): string;
  stop(): Promise<void>;
}

const MAX_LOG = 4 << 20;

/**
 * Starts `kamailio -f test/interop/kamailio/CONFIG` relaying to `nextHop` (a SIP URI, the config's NEXT_HOP) and
 * waits until it answers OPTIONS (bounded by `timeoutMs`).
 */
export async function startKamailio(config: string, runDir: string, nextHop: string, timeoutMs = 10000): Promise<RunningKamailio> {
  const binary = requireTool('kamailio');
  const port = await freePort();
  mkdirSync(runDir, { recursive: true });
  const cfg = path.join(projectRoot, 'test', 'interop', 'kamailio', config);
  const args = ['-f', cfg, '-DD', '-E', '-m', '32', '-M', '4', '-Y', runDir, '-w', runDir, '-P', path.join(runDir, 'kamailio.pid'), '-l', `udp:127.0.0.1:${port}`, '-A', `NEXT_HOP="${nextHop}"`];
  // Its own process group: kamailio forks workers, and a SIGKILL fallback must reach them too.
  const child = spawn(binary, args, { cwd: runDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  const append = (c: Buffer): void => {
    if (log.length < MAX_LOG) log += c.toString();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const running: RunningKamailio = { port, output: () => log, stop: () => stopGroup(child, exited) };
  try {
    await waitForOptions(port, child, () => log, timeoutMs);
  } catch (e) {
    await running.stop();
    throw e;
  }
  return running;
}

/** Until Kamailio answers OPTIONS for itself with 200 on 127.0.0.1:port (bounded by `timeoutMs`). */
export async function waitForOptions(port: number, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const probe = dgram.createSocket('udp4');
  probe.on('error', () => {});
  let answered = false;
  probe.on('message', (m: Buffer) => {
    if (m.toString().startsWith('SIP/2.0 200')) answered = true;
  });
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const local = probe.address().port;
  try {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; !answered; i++) {
      if (child.exitCode !== null) throw new Error(`kamailio exited with ${child.exitCode} before answering OPTIONS:\n${log()}`);
      if (Date.now() > deadline) throw new Error(`kamailio did not answer OPTIONS on 127.0.0.1:${port} within ${timeoutMs} ms:\n${log()}`);
      const ping = [
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bKkamready${i};rport`,
        'Max-Forwards: 70',
        `From: <sip:probe@127.0.0.1>;tag=probe${i}`,
        `To: <sip:127.0.0.1:${port}>`,
        `Call-ID: kamailio-ready-${local}-${i}`,
        `CSeq: ${i + 1} OPTIONS`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      probe.send(ping, port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    probe.close();
  }
}

/** SIGTERM to kamailio's main process (it stops its workers), then SIGKILL to the whole group after 5 s. */
async function stopGroup(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const pid = child.pid;
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}
