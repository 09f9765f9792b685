/** SIPp (Debian sip-tester) sends 10,000 OPTIONS at 1,000/s to `sipway serve`; every one must be answered 200. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCliServer, freePort, requireTool, skipWithout } from '../helpers/process.js';
import { projectRoot } from '../helpers/paths.js';

test('SIPp: 10,000 OPTIONS at 1,000/s, 10,000 answered', { timeout: 90000, skip: skipWithout('sipp') }, async () => {
  requireTool('sipp');
  const port = await freePort();
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-sipp-'));
  const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--data', work]);
  try {
    const scenario = path.join(projectRoot, 'test', 'sipp', 'options-uac.xml');
    const r = spawnSync(
      'sipp',
      ['-sf', scenario, '-m', '10000', '-r', '1000', '-l', '2000', '-i', '127.0.0.1', '-p', '0', '-timeout', '60s', '-timeout_error', '-nostdin', '-trace_stat', '-stf', path.join(work, 'stat.csv'), `127.0.0.1:${port}`],
      { cwd: work, encoding: 'utf8', timeout: 80000 },
    );
    const stat = readFileSync(path.join(work, 'stat.csv'), 'utf8').trim().split('\n');
    const header = stat[0]!.split(';');
    const last = stat[stat.length - 1]!.split(';');
    const field = (name: string): number => Number(last[header.indexOf(name)]);
    assert.equal(field('SuccessfulCall(C)'), 10000, `sipp exit ${r.status}; ${r.stderr.slice(-500)}`);
    assert.equal(field('FailedCall(C)'), 0);
    assert.equal(r.status, 0);
    void readdirSync(work);
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
