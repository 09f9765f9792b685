/**
 * End-to-end registrar benchmark (prints figures, asserts nothing; never part of `npm test`):
 *  1. REGISTER with digest authentication per second through SIPp (401 + authenticated REGISTER + 200 per call),
 *     with the server's CPU time per registration read from /proc.
 *  2. Server memory per binding: RSS and V8 heap of `sipway serve` before and after 100,000 bindings.
 * Run: npm run bench:register   (BENCH_USERS / BENCH_BINDINGS / BENCH_RATE override the sizes; needs --expose-gc)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, startCliServer, freePort, requireTool } from '../test/helpers/process.js';
import { runSipp, runSippAsync, writeUsers } from '../test/helpers/sipp.js';
import { SipwayServer } from '../src/server/server.js';
import { applyConfigObject, defaultConfig, finishConfig } from '../src/server/config.js';
import { silentLogger } from '../src/util/logger.js';
import { processStat } from './e2e/procs.js';

const USERS = Number(process.env.BENCH_USERS ?? 20000);
const BINDINGS = Number(process.env.BENCH_BINDINGS ?? 100000);
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const DOMAIN = 'bench.test';

async function authenticatedRegistrations(work: string): Promise<void> {
  const data = path.join(work, 'auth-data');
  const { injection, importFile } = writeUsers(work, DOMAIN, USERS);
  const imp = runCli(['user', 'import', importFile, '--data', data], { timeoutMs: 300000 });
  if (imp.status !== 0) throw new Error(imp.stderr);
  const port = await freePort();
  // One process: the CPU figure is read from its pid alone (bench:e2e sums a whole worker tree).
  const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', data, '--log-level', 'warn', '--workers', '1']);
  try {
    const pid = server.child.pid!;
    const before = processStat(pid);
    const r = runSipp('register-auth-uac.xml', port, work, ['-inf', injection, '-auth_uri', DOMAIN, '-m', String(USERS), '-r', String(RATE), '-l', String(RATE * 2), '-timeout', '300s', '-max_socket', '1000'], 600000);
    const after = processStat(pid);
    const cpuPerReg = ((after.cpuMs - before.cpuMs) * 1000) / Math.max(1, r.successful);
    console.log(`REGISTER with digest auth (SIPp ${RATE}/s offered, ${USERS} distinct users):`);
    console.log(`  ${r.successful} registered, ${r.failed} failed, ${r.rate.toFixed(0)} registrations/s sustained`);
    console.log(`  server CPU ${cpuPerReg.toFixed(0)} µs per registration (two REGISTER transactions each)`);
  } finally {
    await server.stop();
  }
}

/**
 * Memory is measured in-process (run with --expose-gc): V8 heap after a full GC, before and after the bindings, once
 * every transaction has ended, so that the figure is the bindings' and not the flood's garbage. RSS is printed too.
 */
async function memoryPerBinding(work: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench:register does)');
  const data = path.join(work, 'mem-data');
  const config = finishConfig(
    applyConfigObject(defaultConfig(), { listen: ['udp:127.0.0.1:0'], domains: [DOMAIN], data, auth: { register: false }, log: { level: 'warn' }, admin: false }),
  );
  const server = new SipwayServer(config, { logger: silentLogger() });
  await server.start();
  const port = server.listeners()[0]!.port;
  try {
    const { injection } = writeUsers(work, DOMAIN, BINDINGS);
    gc();
    const before = process.memoryUsage();
    const sipp = runSippAsync('register-noauth-uac.xml', port, work, ['-inf', injection, '-m', String(BINDINGS), '-r', String(RATE * 2), '-l', String(RATE * 4), '-timeout', '300s', '-max_socket', '1000']);
    const r = await sipp;
    // Transactions linger for Timer J (64*T1 = 32 s over UDP); wait them out so that only bindings remain.
    const deadline = Date.now() + 60000;
    while (server.transactions.stats().serverTransactions > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 1000));
    gc();
    const after = process.memoryUsage();
    const bindings = await server.location.count();
    const heapPer = (after.heapUsed - before.heapUsed) / Math.max(1, bindings);
    const rssPer = (after.rss - before.rss) / Math.max(1, bindings);
    console.log(`Memory with ${bindings} bindings (${r.successful} registered, ${r.failed} failed; live transactions ${server.transactions.stats().serverTransactions}):`);
    console.log(`  V8 heap after GC: ${heapPer.toFixed(0)} bytes per binding; RSS ${(before.rss / 1048576).toFixed(0)} -> ${(after.rss / 1048576).toFixed(0)} MiB (${rssPer.toFixed(0)} bytes per binding, includes heap headroom left by the flood)`);
  } finally {
    await server.stop();
  }
}

requireTool('sipp');
const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-bench-'));
console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'})`);
try {
  await authenticatedRegistrations(work);
  await memoryPerBinding(work);
} finally {
  rmSync(work, { recursive: true, force: true });
}
