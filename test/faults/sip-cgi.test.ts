/**
 * SIP-CGI faults on a running server (the runner's own tests, test/policy/sip-cgi.test.ts, drive each limit on a fake
 * clock): a script that hangs and one that floods its stdout answer their request 500 with the kind of failure, their
 * processes are gone afterwards, and the server keeps answering, also while scripts hang.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProxy } from '../proxy/harness.js';
import { outOfDialog } from '../proxy/ua.js';
import { assertAnswers, since } from './faults.js';

/** Hangs for To user "hang" (with a child of its own), floods stdout for "flood"; leaves other requests alone. */
const SCRIPT = `#!/bin/sh
case "$SIP_TO" in
  *sip:hang@*) sleep 30 & echo "$$ $!" >> "$PIDS"; wait ;;
  *sip:flood@*) echo "$$" >> "$PIDS"; exec yes 'SIP/2.0 200 OK' ;;
esac
exit 0
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('SIP-CGI: a hanging script and a flooding one answer 500 naming the fault; their processes are gone; the server goes on', { timeout: 30000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cgi-fault-'));
  const script = path.join(dir, 'fault.sh');
  const pids = path.join(dir, 'pids');
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
  const h = await startProxy({}, { sipCgi: { script, interpreter: ['/bin/sh'], timeoutMs: 400, methods: ['MESSAGE'], env: { PIDS: pids } } });
  try {
    const alice = await h.ua('alice');
    const ask = async (user: string): Promise<{ answer: string; ms: number }> => {
      const req = outOfDialog(alice, 'MESSAGE', `sip:${user}@sipway.test`);
      const start = performance.now();
      alice.send(req, h.port);
      const res = await alice.response(req.callId, undefined, 5000);
      return { answer: `${res.status} ${res.reason}`, ms: since(start) };
    };
    const [hang, flood] = await Promise.all([ask('hang'), ask('flood'), assertAnswers(h.port, 'while a script hangs')]);
    assert.equal(hang.answer, '500 Server Internal Error - SIP-CGI script timed out');
    assert.ok(hang.ms >= 390 && hang.ms < 2000, `at the timeout (${hang.ms} ms)`);
    assert.equal(flood.answer, '500 Server Internal Error - SIP-CGI script output too large');
    assert.ok(flood.ms < 2000, `at once (${flood.ms} ms)`);
    // Ten hanging at once (within maxConcurrent, 16): each is answered at its timeout.
    const many = await Promise.all(Array.from({ length: 10 }, () => ask('hang')));
    for (const r of many) assert.equal(r.answer, '500 Server Internal Error - SIP-CGI script timed out');
    const started = existsSync(pids) ? readFileSync(pids, 'utf8').split(/\s+/).filter((p) => p !== '').map(Number) : [];
    assert.ok(started.length >= 12, `the scripts ran (${started.length} pids)`);
    const deadline = Date.now() + 3000;
    while (started.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(started.filter(alive), [], 'every script process and its children are gone');
    await assertAnswers(h.port);
  } finally {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
