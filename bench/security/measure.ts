/**
 * What the security benches share: the machine's load (other work runs beside them), memory sampling of a server's
 * process tree, tallies of a legitimate client's outcomes, a paced loop, the flood generator as a child process and
 * sipway's counters from its admin endpoint.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../test/helpers/paths.js';
import type { ProcessStats, StatsAnswer } from '../../src/server/admin.js';
import { Children, treeMemory } from '../e2e/procs.js';
import { percentile } from '../e2e/sipp.js';
import type { FloodResult, FloodSpec } from './udp-flood.js';

export const MB = 1024 * 1024;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** "load 2.31 1.90 1.75" (1, 5, 15 min): another helper's tests share the machine; every figure names it. */
export function loadAverage(): string {
  return `load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

export function mib(bytes: number): string {
  return `${(bytes / MB).toFixed(0)} MB`;
}

/** Samples the tree's memory every `everyMs` (RSS summed, and PSS: Kamailio's shared memory counted once). */
export class MemorySampler {
  peakRss = 0;
  peakPss = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 500,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): { rss: number; pss: number } {
    const m = treeMemory(this.pid);
    this.peakRss = Math.max(this.peakRss, m.rssBytes);
    this.peakPss = Math.max(this.peakPss, m.pssBytes);
    return { rss: m.rssBytes, pss: m.pssBytes };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Outcomes of one kind of legitimate request: how many were sent, answered as wished, and how fast. */
export class Tally {
  sent = 0;
  ok = 0;
  readonly statuses = new Map<string, number>();
  private readonly ms: number[] = [];

  add(status: number | undefined, ms: number, wanted = 200): void {
    this.sent++;
    const key = status === undefined ? 'none' : String(status);
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
    if (status === wanted) {
      this.ok++;
      this.ms.push(ms);
    }
  }

  /** "59/60 (98.3 %), p50 1.2 ms p99 8.0 ms; other: 503 x1" */
  toString(): string {
    const sorted = [...this.ms].sort((a, b) => a - b);
    const share = this.sent > 0 ? ((100 * this.ok) / this.sent).toFixed(1) : 'n/a';
    const others = [...this.statuses].filter(([k]) => k !== '200').map(([k, n]) => `${k} x${n}`);
    const times = sorted.length > 0 ? `, p50 ${percentile(sorted, 50).toFixed(1)} ms p99 ${percentile(sorted, 99).toFixed(1)} ms` : '';
    return `${this.ok}/${this.sent} (${share} %)${times}${others.length > 0 ? `; other: ${others.join(', ')}` : ''}`;
  }
}

/** Runs `action` every `everyMs` (not overlapping itself) until stopped; stop() waits for the last run. */
export function every(everyMs: number, action: () => Promise<void>): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      await action();
      await sleep(Math.max(0, everyMs - (Date.now() - started)));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** The flood generator (bench/security/udp-flood.ts) as a child process; resolves with what it sent and received. */
export function flood(spec: FloodSpec, children: Children): Promise<FloodResult> {
  const script = path.join(projectRoot, 'dist', 'bench', 'security', 'udp-flood.js');
  const child = children.add(spawn(process.execPath, [script, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out) as FloodResult);
      } catch {
        reject(new Error(`the flood generator exited with ${code} and no result`));
      }
    });
  });
}

/** sipway's counters, every process's summed (GET /stats on the admin endpoint). */
export async function sipwayStats(adminPort: number): Promise<StatsAnswer> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/stats`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as StatsAnswer;
}

/** The sum over the processes of one counter. */
export function total(stats: StatsAnswer, pick: (p: ProcessStats) => number | undefined): number {
  return stats.workers.reduce((n, p) => n + (pick(p) ?? 0), 0);
}

export function machine(): string {
  return `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, node ${process.version}`;
}

/** A fresh work directory, removed (and every child killed) when the bench ends, however it ends. */
export function workDir(prefix: string, children: Children): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => {
    children.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
  return dir;
}
