/**
 * Real peers against `sipway serve` with authentication on: SIPp registering 1,000 distinct users created with the
 * CLI, sipsak's usrloc mode with a password, and sipvicious' svwar failing to enumerate extensions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, startCliServer, freePort, requireTool, skipWithout } from '../helpers/process.js';
import { runSipp, writeUsers } from '../helpers/sipp.js';

test('SIPp: 1,000 distinct users created with the CLI register with digest authentication', { timeout: 120000, skip: skipWithout('sipp') }, async () => {
  requireTool('sipp');
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-sipp-reg-'));
  const data = path.join(work, 'data');
  try {
    const { injection, importFile } = writeUsers(work, 'sipway.test', 1000);
    const imported = runCli(['user', 'import', importFile, '--data', data], { timeoutMs: 60000 });
    assert.equal(imported.status, 0, imported.stderr);
    assert.match(imported.stdout, /imported 1000 users/);
    const port = await freePort();
    const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', 'sipway.test', '--data', data, '--log-level', 'info']);
    try {
      const r = runSipp('register-auth-uac.xml', port, work, ['-inf', injection, '-auth_uri', 'sipway.test', '-m', '1000', '-r', '200', '-l', '200', '-timeout', '60s'], 90000);
      assert.equal(r.successful, 1000, `SIPp: ${r.successful} ok, ${r.failed} failed, exit ${r.status}\n${r.stderr.slice(-400)}`);
      assert.equal(r.failed, 0);
    } finally {
      await server.stop();
    }
    const loc = runCli(['location', '--data', data, '--json']);
    assert.equal(loc.status, 0, loc.stderr);
    const rows = JSON.parse(loc.stdout) as Array<{ aor: string }>;
    assert.equal(new Set(rows.map((x) => x.aor)).size, 1000, 'every user has a binding, and it survived the shutdown');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('sipsak -U with a password registers (and unregisters) successfully', { timeout: 60000, skip: skipWithout('sipsak') }, async () => {
  requireTool('sipsak');
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-sipsak-'));
  try {
    assert.equal(runCli(['user', 'add', 'alice@localhost', '--password', 'secret', '--data', data]).status, 0);
    const port = await freePort(true); // sipsak cuts URI ports to four digits
    const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', 'localhost', '--data', data]);
    try {
      const r = spawnSync('sipsak', ['-U', '-s', `sip:alice@localhost:${port}`, '-u', 'alice', '-a', 'secret', '-x', '3600', '-i', '-vv'], { encoding: 'utf8', timeout: 30000 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /usrloc tests completed successful/);
      const wrong = spawnSync('sipsak', ['-U', '-s', `sip:alice@localhost:${port}`, '-u', 'alice', '-a', 'wrong', '-x', '3600', '-i'], { encoding: 'utf8', timeout: 30000 });
      assert.notEqual(wrong.status, 0, 'a wrong password does not register');
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('svwar (sipvicious) finds no extension on a server with real users', { timeout: 120000, skip: skipWithout('svwar') }, async () => {
  requireTool('svwar');
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-svwar-'));
  try {
    // svwar addresses users at the target's IP, so the server serves that "domain" and has users 1000..1004 there.
    for (let i = 1000; i < 1005; i++) assert.equal(runCli(['user', 'add', `${i}@127.0.0.1`, '--password', `pw${i}`, '--data', data]).status, 0);
    const port = await freePort();
    const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', '127.0.0.1', '--data', data]);
    try {
      for (const method of ['REGISTER', 'INVITE', 'OPTIONS']) {
        for (const force of [false, true]) {
          const args = ['-p', String(port), '-e', '990-1010', '-m', method, '127.0.0.1', ...(force ? ['--force'] : [])];
          const r = spawnSync('svwar', args, { encoding: 'utf8', timeout: 50000 });
          const out = r.stdout + r.stderr;
          assert.doesNotMatch(out, /\| *100\d *\|/, `svwar -m ${method}${force ? ' --force' : ''} listed an extension:\n${out}`);
          assert.match(out, /found nothing/, `svwar -m ${method}${force ? ' --force' : ''}:\n${out}`);
        }
      }
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
