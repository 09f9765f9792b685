/**
 * A routing policy that throws, rejects, or never decides: the request is answered 500 with a reason (the last
 * at proxy.policyTimeoutMs, where nothing bounded it before), a verb the policy calls after its deadline does
 * nothing on the wire, and the server keeps answering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy } from '../proxy/harness.js';
import { invite, outOfDialog, register } from '../proxy/ua.js';
import { policySource } from '../policy/policy-harness.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertAnswers, heapAfterGc, since } from './faults.js';

const POLICY = `
export default P.definePolicy({
  async onRequest(ctx) {
    switch (ctx.to.user) {
      case 'throws': throw new Error('policy bug');
      case 'rejects': await Promise.reject(new Error('async policy bug')); return;
      case 'never': await new Promise(() => {}); return;
      // Decides, but only after its deadline: too late, and nothing may reach bob.
      case 'late': await new Promise((r) => setTimeout(r, 600)); await ctx.relay(['sip:bob@127.0.0.1:' + ctx.headers.get('x-bob-port')]); return;
      default: return ctx.relay();
    }
  },
});`;

test('a policy that throws, rejects or never decides: 500 with a reason, in bounded time, and the server goes on', { timeout: 30000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-policy-fault-'));
  const file = path.join(dir, 'routing.mjs');
  writeFileSync(file, policySource(POLICY));
  const h = await startProxy({ policyTimeoutMs: 300 }, { policy: file });
  try {
    const alice = await h.ua('alice');
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const ask = async (method: string, user: string): Promise<{ answer: string; ms: number }> => {
      const to = `sip:${user}@sipway.test`;
      const req = method === 'INVITE' ? invite(alice, { to, extra: [`X-Bob-Port: ${bob.port}`] }) : outOfDialog(alice, method, to, [`X-Bob-Port: ${bob.port}`]);
      const start = performance.now();
      alice.send(req, h.port);
      const res = await alice.response(req.callId, undefined, 5000);
      return { answer: `${res.status} ${res.reason}`, ms: since(start) };
    };
    for (const method of ['INVITE', 'MESSAGE']) {
      assert.equal((await ask(method, 'throws')).answer, '500 Server Internal Error - policy failed');
      assert.equal((await ask(method, 'rejects')).answer, '500 Server Internal Error - policy failed');
      const never = await ask(method, 'never');
      assert.equal(never.answer, '500 Server Internal Error - policy did not decide in time');
      assert.ok(never.ms >= 290 && never.ms < 2500, `answered at the deadline (${never.ms} ms)`);
      assert.equal((await ask(method, 'late')).answer, '500 Server Internal Error - policy did not decide in time');
    }
    assert.ok(await bob.nothing((m) => m.isRequest && (m.method === 'INVITE' || m.method === 'MESSAGE'), 800), 'a relay after the deadline sends nothing');
    assert.equal((await ask('INVITE', 'bob')).answer, '200 OK', 'a policy that decides in time still routes');
    // Requests whose policy never settles cost what the policy holds, and no more.
    const before = heapAfterGc();
    await Promise.all(Array.from({ length: 50 }, () => ask('MESSAGE', 'never')));
    const grown = heapAfterGc() - before;
    assert.ok(grown < 8, `heap grew ${grown.toFixed(1)} MB over 50 undecided requests`);
    await assertAnswers(h.port);
  } finally {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
