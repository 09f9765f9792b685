import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { startWithPolicy } from './policy-harness.js';
import { outOfDialog, type TestUa } from '../proxy/ua.js';

const replying = (status: number, delayMs = 0) => `
export default P.definePolicy({
  async onRequest(ctx) {
    ${delayMs > 0 ? `await new Promise((r) => setTimeout(r, ${delayMs}));` : ''}
    ctx.reply(${status});
  },
});`;

async function ask(ua: TestUa, port: number, user = 'bob'): Promise<number> {
  const m = outOfDialog(ua, 'MESSAGE', `sip:${user}@sipway.test`);
  ua.send(m, port);
  return (await ua.response(m.callId)).status;
}

test('reloadPolicy swaps a rewritten .mjs policy; a request in progress finishes under the old one', async () => {
  const h = await startWithPolicy(replying(486, 300));
  try {
    const alice = await h.ua('alice');
    const inFlight = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test');
    alice.send(inFlight, h.port);
    await new Promise((r) => setTimeout(r, 50));
    h.rewrite(replying(480));
    assert.deepEqual(await h.ts.server.reloadPolicy(), { ok: true });
    assert.equal(await ask(alice, h.port), 480, 'new requests: the new policy');
    assert.equal((await alice.response(inFlight.callId)).status, 486, 'the request in progress: the old one');
  } finally {
    await h.stop();
  }
});

test('a .mjs policy that does not load is refused and the old one keeps answering', async () => {
  const h = await startWithPolicy(replying(486));
  try {
    const alice = await h.ua('alice');
    writeFileSync(h.file, 'export default { onRequest(ctx) { ctx.reply(480) ');
    const broken = await h.ts.server.reloadPolicy();
    assert.equal(broken.ok, false);
    assert.match(!broken.ok ? broken.error : '', /routing\.mjs: SyntaxError/);
    h.rewrite('export default { onResponse() {} };');
    const hookless = await h.ts.server.reloadPolicy();
    assert.match(!hookless.ok ? hookless.error : '', /exports no onRequest hook/);
    assert.equal(await ask(alice, h.port), 486);
  } finally {
    await h.stop();
  }
});

test('a .ts policy is type-checked: a wrong verb or argument is refused with file:line:col, a good one loads', async () => {
  const typed = (status: string) => `
export default P.definePolicy({
  async onRequest(ctx: P.RequestContext) {
    const found = await ctx.lookup();
    ctx.reply(found.found ? 200 : ${status});
  },
});`;
  const h = await startWithPolicy(typed('486'), { ext: '.ts' });
  try {
    const alice = await h.ua('alice');
    assert.equal(await ask(alice, h.port), 486, 'the .ts policy loaded at start');

    h.rewrite(typed("'480'"));
    const wrongArgument = await h.ts.server.reloadPolicy();
    assert.equal(wrongArgument.ok, false);
    assert.match(!wrongArgument.ok ? wrongArgument.error : '', /routing\.ts:6:\d+ - error TS2345: Argument of type 'string \| number' is not assignable/);

    h.rewrite(typed('486').replace('ctx.reply(', 'ctx.answer('));
    const wrongVerb = await h.ts.server.reloadPolicy();
    assert.match(!wrongVerb.ok ? wrongVerb.error : '', /routing\.ts:6:\d+ - error TS2339: Property 'answer' does not exist/);
    assert.equal(await ask(alice, h.port), 486, 'the old policy still answers');

    h.rewrite(typed('480'));
    assert.deepEqual(await h.ts.server.reloadPolicy(), { ok: true });
    assert.equal(await ask(alice, h.port), 480);
  } finally {
    await h.stop();
  }
});
