/**
 * SIPp for bench:e2e: a load of N calls at R calls/s split over as many SIPp UAC processes as one SIPp can drive
 * (about 1,000 calls/s each on modest hardware), each with its own statistics, and a background UAS. Response
 * times come from SIPp's short message trace (microsecond timestamps): SIPp's own rtd figures (-trace_rtt, the stat
 * file) count whole milliseconds, and a call through a proxy on loopback takes less than one.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../../test/helpers/process.js';
import { Children, stopChild } from './procs.js';

export interface LoadSpec {
  /** Scenario file (absolute path). */
  scenario: string;
  /** Server address on 127.0.0.1. */
  port: number;
  rate: number;
  calls: number;
  /** Extra SIPp arguments for every process (keys, -s, ...). */
  args: string[];
  /** Per-process injection file rows (header line excluded): process i of k gets its own distinct slice. */
  injection?: (process: number, processes: number, count: number) => string[];
  /** Calls per second one SIPp process is given at most. */
  perProcess: number;
  /** Where the processes' files go (a fresh directory per load). */
  dir: string;
  /** Trace every message to measure response times (costs SIPp a line per message; off for the ramp). */
  timed: boolean;
  /** The address SIPp sends from (default 127.0.0.1). */
  localIp?: string;
}

export interface LoadResult {
  successful: number;
  failed: number;
  /** Calls that neither succeeded nor failed in SIPp's counts (killed at the time bound). */
  missing: number;
  wallMs: number;
  /** Per-call response times (ms, first request sent to the 200 for it), unsorted; empty unless timed. */
  rtts: number[];
  errors: string[];
}

/** The share of `total` for part i of k (the first parts take the remainder). */
function share(total: number, i: number, k: number): number {
  return Math.floor(total / k) + (i < total % k ? 1 : 0);
}

function readStat(file: string): { successful: number; failed: number } {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const header = lines[0]!.split(';');
    const last = lines[lines.length - 1]!.split(';');
    const field = (name: string): number => Number(last[header.indexOf(name)] ?? 0) || 0;
    return { successful: field('SuccessfulCall(C)'), failed: field('FailedCall(C)') };
  } catch {
    return { successful: 0, failed: 0 };
  }
}

/**
 * -trace_shortmsg rows: date, time, epoch seconds (µs), S|R, Call-ID, "CSeq:N METHOD", first line. A call's response
 * time runs from its first request sent (retransmissions come later) to the first 200 for that method received
 * (for the REGISTER with digest: the 200 after the 401, so both transactions).
 */
function readResponseTimes(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('_shortmessages.log')) continue;
    const open = new Map<string, { t: number; method: string }>();
    for (const line of readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      const [, , epoch, dir, callId, cseq, first] = line.split('\t');
      if (!callId || !cseq || !first) continue;
      const t = Number(epoch) * 1000;
      const method = cseq.slice(cseq.lastIndexOf(' ') + 1);
      if (dir === 'S') {
        if (!open.has(callId)) open.set(callId, { t, method });
      } else if (dir === 'R' && first.startsWith('SIP/2.0 200')) {
        const o = open.get(callId);
        if (o && o.method === method && o.t >= 0) {
          out.push(t - o.t);
          o.t = -1;
        }
      }
    }
  }
  return out;
}

/**
 * Runs the load to completion: every process ends after its share of calls, or is killed after the time the calls
 * should take plus `graceSeconds`.
 */
export async function runLoad(spec: LoadSpec, children: Children, graceSeconds = 20): Promise<LoadResult> {
  const k = Math.max(1, Math.ceil(spec.rate / spec.perProcess));
  mkdirSync(spec.dir, { recursive: true });
  const bound = Math.ceil(spec.calls / spec.rate) + graceSeconds;
  const runs: Promise<{ dir: string; stderr: string; status: number | null }>[] = [];
  const start = Date.now();
  for (let i = 0; i < k; i++) {
    const dir = path.join(spec.dir, `uac${i}`);
    mkdirSync(dir);
    const calls = share(spec.calls, i, k);
    const rate = spec.rate / k;
    const args = ['-sf', spec.scenario, '-i', spec.localIp ?? '127.0.0.1', '-p', String(await freePort()), '-nostdin', '-trace_stat', '-stf', path.join(dir, 'stat.csv')];
    if (spec.timed) args.push('-trace_shortmsg');
    if (spec.injection) {
      const file = path.join(dir, 'users.csv');
      writeFileSync(file, ['SEQUENTIAL', ...spec.injection(i, k, calls)].join('\n') + '\n');
      args.push('-inf', file);
    }
    args.push(...spec.args, '-m', String(calls), '-r', rate.toFixed(3), '-rp', '1000', '-l', String(Math.ceil(rate * 4) + 50), '-max_socket', '1000', '-timeout', `${bound}s`, '-timeout_error', `127.0.0.1:${spec.port}`);
    const child = children.add(spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => {
      if (stderr.length < 65536) stderr += c.toString();
    });
    runs.push(
      new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), (bound + 10) * 1000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve({ dir, stderr, status: code });
        });
      }),
    );
  }
  const done = await Promise.all(runs);
  const wallMs = Date.now() - start;
  let successful = 0;
  let failed = 0;
  const rtts: number[] = [];
  const errors: string[] = [];
  for (const r of done) {
    const s = readStat(path.join(r.dir, 'stat.csv'));
    successful += s.successful;
    failed += s.failed;
    if (spec.timed) rtts.push(...readResponseTimes(r.dir));
    if (r.status !== 0) {
      const line = r.stderr.split('\n').filter((l) => l.trim().length > 0).pop() ?? `exit ${r.status}`;
      errors.push(line.replace(/^[\d\-: .]+\t/, '').slice(0, 200));
    }
  }
  const missing = Math.max(0, spec.calls - successful - failed);
  return { successful, failed, missing, wallMs, rtts, errors };
}

/** A SIPp UAS on a fixed port, answering every call with the scenario, until stopped. */
export function startUas(scenario: string, port: number, service: string, dir: string, children: Children): { stop(): Promise<void> } {
  mkdirSync(dir, { recursive: true });
  const child = children.add(
    spawn('sipp', ['-sf', scenario, '-i', '127.0.0.1', '-p', String(port), '-s', service, '-nostdin', '-max_socket', '1000'], { cwd: dir, stdio: 'ignore' }),
  );
  // SIGUSR1: SIPp finishes its calls and exits; SIGKILL if it has not after 5 s.
  return { stop: () => stopChild(child, 'SIGUSR1', 5000) };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
