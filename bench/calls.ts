/**
 * Calls per second through the stateful proxy (prints figures, asserts nothing; never part of `npm test`): SIPp
 * UAC -> `sipway serve` -> SIPp UAS, without authentication (`--no-auth`, and a caller from a foreign domain), the
 * callee registered from the UAS's port. A few fixed offered rates, each for a fixed duration; per rate: calls
 * successful / failed, the rate SIPp sustained, and the server's CPU time per call (utime + stime from /proc).
 * A call is INVITE/100/180/200/ACK, 200 ms, BYE/200: four transactions through the proxy. A short unreported
 * warm-up run first, so that the first rate does not pay for V8's compilation.
 * Run: npm run bench:calls   (BENCH_RATES=200,500,1000 and BENCH_SECONDS=10 override)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCliServer, freePort, requireTool } from '../test/helpers/process.js';
import { runSipp, runSippAsync } from '../test/helpers/sipp.js';
import { projectRoot } from '../test/helpers/paths.js';
import { processStat } from './e2e/procs.js';

const RATES = (process.env.BENCH_RATES ?? '200,500,1000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const DOMAIN = 'bench.test';

/** SIPp's last "Aborting call ..." line, without its timestamp. */
function lastError(stderr: string): string {
  const line = stderr.split('\n').filter((l) => l.includes('Aborting')).pop() ?? stderr.trim().split('\n').pop() ?? '';
  return line.replace(/^.*?: (Aborting)/, '$1').slice(0, 160);
}

requireTool('sipp');
const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-bench-calls-'));
console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}); ${SECONDS} s per rate`);
const port = await freePort();
// One process: the CPU figure below is read from its pid alone (bench:e2e sums a whole worker tree).
const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', path.join(work, 'data'), '--no-auth', '--log-level', 'warn', '--workers', '1']);
try {
  const bobPort = await freePort();
  const injection = path.join(work, 'bob.csv');
  writeFileSync(injection, `SEQUENTIAL\nbob;${DOMAIN};\n`);
  const reg = runSipp('register-noauth-uac.xml', port, work, ['-inf', injection, '-m', '1', '-p', String(bobPort), '-timeout', '10s'], 20000);
  if (reg.successful !== 1) throw new Error(`bob did not register: ${reg.stderr}`);

  // One UAS for every rate; SIGUSR1 asks SIPp to finish its calls and quit.
  const uasDir = path.join(work, 'uas');
  mkdirSync(uasDir);
  const uas = spawn('sipp', ['-sf', path.join(projectRoot, 'test', 'sipp', 'uas-call.xml'), '-i', '127.0.0.1', '-p', String(bobPort), '-s', 'bob', '-nostdin', '-max_socket', '1000'], { cwd: uasDir, stdio: 'ignore' });
  const uasExited = new Promise<void>((resolve) => uas.on('exit', () => resolve()));
  try {
    await new Promise((r) => setTimeout(r, 500));
    const pid = server.child.pid!;
    // The caller is from a foreign domain: the proxy challenges only callers of its own domains.
    const calls = async (name: string, rate: number, count: number) => {
      const dir = path.join(work, name);
      mkdirSync(dir);
      const args = ['-s', 'bob', '-key', 'callee_domain', DOMAIN, '-key', 'caller', 'caller', '-key', 'caller_domain', 'elsewhere.test', '-p', String(await freePort())];
      return runSippAsync('uac-call.xml', port, dir, [...args, '-m', String(count), '-r', String(rate), '-l', String(rate * 2), '-timeout', `${SECONDS + 60}s`, '-max_socket', '1000'], (SECONDS + 90) * 1000);
    };
    await calls('warm-up', 200, 1000);
    for (const [i, rate] of RATES.entries()) {
      const before = processStat(pid).cpuMs;
      const r = await calls(`uac-${i}-${rate}`, rate, rate * SECONDS);
      const used = processStat(pid).cpuMs - before;
      const perCall = r.successful > 0 ? ((used * 1000) / r.successful).toFixed(0) : 'n/a';
      console.log(`${rate} cps offered, ${rate * SECONDS} calls: ${r.successful} successful, ${r.failed} failed, ${r.rate.toFixed(0)} cps (successful calls / SIPp's elapsed time); server CPU ${perCall} µs per call${r.status !== 0 ? ` (SIPp exit ${r.status}; last error: ${lastError(r.stderr)})` : ''}`);
      await new Promise((res) => setTimeout(res, 2000));
    }
  } finally {
    uas.kill('SIGUSR1');
    const timer = setTimeout(() => uas.kill('SIGKILL'), 10000);
    await uasExited;
    clearTimeout(timer);
  }
} finally {
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
