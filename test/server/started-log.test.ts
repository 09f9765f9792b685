import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, requireTool } from '../helpers/process.js';
import { projectRoot } from '../helpers/paths.js';

/*
 * The default listeners bind the wildcard address 0.0.0.0:5060. So that the test binds it without reaching any
 * network or colliding with another server, the server runs in a network namespace of its own with only loopback.
 */
const NS = `sipway-log-${process.pid}`;
let dir: string;

before(() => {
  requireTool('ip', 'iproute2');
  dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-log-'));
  for (const args of [['netns', 'add', NS], ['-n', NS, 'link', 'set', 'lo', 'up']]) {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
  }
});

after(() => {
  spawnSync('ip', ['netns', 'del', NS]);
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `sipway serve ARGS` in the namespace until its "sipway started" line, which it returns parsed. */
async function startedLine(args: string[]): Promise<Record<string, unknown>> {
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, CLI, 'serve', ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 20000;
    for (;;) {
      const line = out.split('\n').find((l) => l.includes('"msg":"sipway started"'));
      if (line) return JSON.parse(line) as Record<string, unknown>;
      assert.equal(child.exitCode, null, `the server exited: ${out}`);
      assert.ok(Date.now() < deadline, `no start line: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

test('the start line of a single server names the bound wildcard and, apart, the advertised address', async () => {
  const entry = await startedLine(['--workers', '1', '--data', path.join(dir, 'one')]);
  assert.deepEqual(entry.listen, ['udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060']);
  // The namespace has no other interface: the address advertised for the wildcard is loopback's.
  assert.deepEqual(entry.advertised, ['udp:127.0.0.1:5060', 'tcp:127.0.0.1:5060']);
});

test("the cluster primary's start line does the same, with advertisedHost from the config file", async () => {
  const config = path.join(dir, 'sipway.json');
  writeFileSync(config, JSON.stringify({ advertisedHost: 'sip.example.test', listen: ['udp:0.0.0.0:5060', 'tcp:127.0.0.1:5070'] }));
  const entry = await startedLine(['--config', config, '--workers', '2', '--data', path.join(dir, 'two')]);
  assert.equal(entry.workers, 2);
  assert.deepEqual(entry.listen, ['udp:0.0.0.0:5060', 'tcp:127.0.0.1:5070']);
  // advertisedHost stands in for a wildcard bind only; a listener on a given address advertises that address.
  assert.deepEqual(entry.advertised, ['udp:sip.example.test:5060', 'tcp:127.0.0.1:5070']);
});
