import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './paths.js';
import { requireTool } from './process.js';

export interface SippResult {
  status: number | null;
  successful: number;
  failed: number;
  stderr: string;
  /** Calls per second over the run, from SIPp's own statistics. */
  rate: number;
}

function sippArgs(scenario: string, port: number, stat: string, args: string[]): string[] {
  return ['-sf', path.join(projectRoot, 'test', 'sipp', scenario), '-i', '127.0.0.1', '-p', '0', '-nostdin', '-timeout_error', '-trace_stat', '-stf', stat, ...args, `127.0.0.1:${port}`];
}

/** Runs a scenario from test/sipp/ against 127.0.0.1:port, bounded in calls and time; reads SIPp's stat file. */
export function runSipp(scenario: string, port: number, workDir: string, args: string[], timeoutMs: number): SippResult {
  const stat = path.join(workDir, `${path.basename(scenario, '.xml')}-stat.csv`);
  const r = spawnSync(requireTool('sipp'), sippArgs(scenario, port, stat, args), { cwd: workDir, encoding: 'utf8', timeout: timeoutMs });
  return readResult(stat, r.status, (r.stderr ?? '') + (r.error ? String(r.error) : ''));
}

/** The same without blocking the event loop: for a server running in this process. */
export function runSippAsync(scenario: string, port: number, workDir: string, args: string[], timeoutMs = 600000): Promise<SippResult> {
  const stat = path.join(workDir, `${path.basename(scenario, '.xml')}-stat.csv`);
  return new Promise((resolve) => {
    const child = spawn(requireTool('sipp'), sippArgs(scenario, port, stat, args), { cwd: workDir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(readResult(stat, code, stderr));
    });
  });
}

function readResult(stat: string, status: number | null, stderr: string): SippResult {
  let successful = 0;
  let failed = 0;
  let rate = 0;
  try {
    const lines = readFileSync(stat, 'utf8').trim().split('\n');
    const header = lines[0]!.split(';');
    const last = lines[lines.length - 1]!.split(';');
    const field = (name: string): number => Number(last[header.indexOf(name)]);
    successful = field('SuccessfulCall(C)');
    failed = field('FailedCall(C)');
    const elapsed = last[header.indexOf('ElapsedTime(C)')] ?? '';
    const [h = '0', m = '0', s = '0'] = elapsed.split(':');
    const seconds = Number(h) * 3600 + Number(m) * 60 + Number(s);
    rate = seconds > 0 ? successful / seconds : 0;
  } catch {
    // No stat file: SIPp did not get going; the caller reports stderr.
  }
  return { status, successful, failed, stderr, rate };
}

/** A SIPp injection file with `user;domain;[authentication username=user password=pw]` rows, and our import file. */
export function writeUsers(workDir: string, domain: string, count: number): { injection: string; importFile: string } {
  const injection = path.join(workDir, 'users.csv');
  const importFile = path.join(workDir, 'users.txt');
  const rows = ['SEQUENTIAL'];
  const imports: string[] = [];
  for (let i = 0; i < count; i++) {
    const user = `u${String(i).padStart(6, '0')}`;
    const pw = `pw-${i}-x`;
    rows.push(`${user};${domain};[authentication username=${user} password=${pw}]`);
    imports.push(`${user}@${domain} ${pw}`);
  }
  writeFileSync(injection, rows.join('\n') + '\n');
  writeFileSync(importFile, imports.join('\n') + '\n');
  return { injection, importFile };
}
