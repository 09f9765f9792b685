/**
 * Process bookkeeping for bench:e2e: CPU time and memory of a server and every process it forked (Kamailio runs a
 * main process, UDP workers and timer processes), and a register of the children we started so that each of them
 * dies with the bench, on error and on ctrl-C too.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/PID/stat (100 on Linux for every architecture we run on). */
const CLK_TCK = 100;
const PAGE_BYTES = 4096;

interface ProcEntry {
  ppid: number;
  ticks: number;
  rssPages: number;
}

/**
 * utime + stime (fields 14, 15), ppid (field 4) and rss (field 24, pages) from stat(5); the comm field may hold
 * spaces, so split after ") ".
 */
function readStat(pid: number): ProcEntry | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), rssPages: Number(fields[21]) };
  } catch {
    return undefined; // exited meanwhile
  }
}

/** CPU time (user + system, all threads) in milliseconds and RSS of one process, for benches that run one. */
export function processStat(pid: number): { cpuMs: number; rssBytes: number } {
  const st = readStat(pid);
  if (!st) throw new Error(`process ${pid} has exited`);
  return { cpuMs: (st.ticks * 1000) / CLK_TCK, rssBytes: st.rssPages * PAGE_BYTES };
}

/** The root and every live process whose parent chain leads to it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = readStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(pid);
    else children.set(st.ppid, [pid]);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0 && tree.length < 10000) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** CPU time (user + system, all threads) of the tree in milliseconds. */
export function treeCpuMs(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return (ticks * 1000) / CLK_TCK;
}

export interface TreeMemory {
  /** Proportional set size summed over the tree: shared pages (Kamailio's shm) counted once in total, not per process. */
  pssBytes: number;
  /** Plain RSS summed: counts shared pages once per process that touched them. */
  rssBytes: number;
  processes: number;
}

export function treeMemory(root: number): TreeMemory {
  let pss = 0;
  let rss = 0;
  const pids = processTree(root);
  for (const pid of pids) {
    try {
      const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      pss += Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
      rss += Number(/^Rss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
    } catch {
      // exited meanwhile
    }
  }
  return { pssBytes: pss, rssBytes: rss, processes: pids.length };
}

/**
 * Every child the bench starts, killed when the bench ends however it ends. A child started in its own process group
 * (kamailio, which forks) is killed as a group.
 */
export class Children {
  private readonly live = new Map<ChildProcess, boolean>();

  add(child: ChildProcess, ownGroup = false): ChildProcess {
    this.live.set(child, ownGroup);
    child.once('exit', () => this.live.delete(child));
    return child;
  }

  /** SIGKILL to everything still running; synchronous, so that it works from an 'exit' handler. */
  killAll(): void {
    for (const [child, group] of this.live) {
      try {
        if (group && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    this.live.clear();
  }
}

/** Resolves when the child has exited; SIGKILL (to its group when `group`) after `graceMs` if it has not. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number, group = false): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => {
    try {
      if (group && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
}
