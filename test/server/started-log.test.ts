import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI } from '../helpers/process.js';
import { Netns } from '../helpers/loopback-ns.js';

// The default listeners bind the wildcard 0.0.0.0:5060: the server runs in a namespace with only loopback.
let ns: Netns;
let dir: string;

before(() => {
  ns = Netns.create('log');
  dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-log-'));
});

after(() => {
  ns.delete();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `sipway serve ARGS` in the namespace until its "sipway started" line, which it returns parsed. */
async function startedLine(args: string[]): Promise<Record<string, unknown>> {
  const server = await ns.start([process.execPath, CLI, 'serve', ...args], (l) => l.includes('"msg":"sipway started"'));
  try {
    return JSON.parse(await server.waitFor((l) => l.includes('"msg":"sipway started"'))) as Record<string, unknown>;
  } finally {
    assert.equal(await server.stop(), 0);
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
