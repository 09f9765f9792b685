import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWithPolicy } from './policy-harness.js';
import { invite, outOfDialog, register } from '../proxy/ua.js';
import { openCdrStore } from '../../src/store/index.js';

test('reply: status, reason and header fields of the policy; log and account do not decide', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  onRequest(ctx) {
    ctx.log('screening', { user: ctx.to.user });
    ctx.account(false);
    if (ctx.to.user === 'blocked') return ctx.reply(403, 'Forbidden - screened', { 'X-Why': 'list' });
    ctx.reply(488, undefined, { 'X-Method': ctx.method, 'X-From': ctx.from.user ?? '', 'X-Src': ctx.source.transport });
  },
});`);
  try {
    const alice = await h.ua('alice');
    const blocked = outOfDialog(alice, 'MESSAGE', 'sip:blocked@sipway.test');
    alice.send(blocked, h.port);
    const r1 = await alice.response(blocked.callId);
    assert.equal(r1.status, 403);
    assert.equal(r1.reason, 'Forbidden - screened');
    assert.equal(r1.headers.get('x-why'), 'list');
    const other = outOfDialog(alice, 'OPTIONS', 'sip:carol@sipway.test');
    alice.send(other, h.port);
    const r2 = await alice.response(other.callId);
    assert.equal(r2.status, 488);
    assert.deepEqual([r2.headers.get('x-method'), r2.headers.get('x-from'), r2.headers.get('x-src')], ['OPTIONS', 'alice', 'udp']);
  } finally {
    await h.stop();
  }
});

test('relay to explicit targets, with rewriteUri and header set/add/remove on the forwarded request', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  async onRequest(ctx) {
    ctx.headers.set('X-Policy', 'yes');
    ctx.headers.add('X-Policy-Trace', ctx.headers.get('subject') ?? 'none');
    ctx.headers.remove('Subject');
    if (ctx.to.user === 'rewrite') {
      ctx.rewriteUri(String(ctx.headers.get('x-target')));
      return ctx.relay(undefined, { recordRoute: false });
    }
    await ctx.relay([String(ctx.headers.get('x-target'))]);
  },
});`);
  try {
    const bob = (await h.ua('bob')).serve();
    const alice = await h.ua('alice');
    const msg = outOfDialog(alice, 'MESSAGE', 'sip:nobody@sipway.test', [`X-Target: ${bob.contact('bob')}`, 'Subject: hi']);
    alice.send(msg, h.port);
    const at = (await bob.request('MESSAGE')).message;
    assert.equal(at.uri.toString(), bob.contact('bob'));
    assert.equal(at.headers.get('x-policy'), 'yes');
    assert.equal(at.headers.get('x-policy-trace'), 'hi');
    assert.equal(at.headers.has('subject'), false);
    assert.equal(at.headers.has('record-route'), true, 'record-routed by default');
    assert.equal((await alice.response(msg.callId)).status, 200);

    const rw = outOfDialog(alice, 'MESSAGE', 'sip:rewrite@sipway.test', [`X-Target: ${bob.contact('rewritten')}`]);
    alice.send(rw, h.port);
    const at2 = (await bob.request('MESSAGE')).message;
    assert.equal(at2.uri.toString(), bob.contact('rewritten'));
    assert.equal(at2.headers.has('record-route'), false, 'recordRoute: false');
    assert.equal((await alice.response(rw.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('lookup: the targets of the location service, or the status that says why there are none; redirect', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  async onRequest(ctx) {
    const found = await ctx.lookup();
    if (!found.found) return ctx.reply(found.status, 'Not Here - ' + found.status);
    if (ctx.method === 'OPTIONS') return ctx.redirect(found.targets);
    await ctx.relay(found.targets);
  },
});`);
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const msg = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test');
    alice.send(msg, h.port);
    assert.equal((await bob.request('MESSAGE')).message.uri.toString(), bob.contact('bob'));
    assert.equal((await alice.response(msg.callId)).status, 200);

    const nobody = outOfDialog(alice, 'MESSAGE', 'sip:nobody@sipway.test');
    alice.send(nobody, h.port);
    const r = await alice.response(nobody.callId);
    assert.equal(r.status, 404);
    assert.equal(r.reason, 'Not Here - 404');

    const opt = outOfDialog(alice, 'OPTIONS', 'sip:bob@sipway.test');
    alice.send(opt, h.port);
    const moved = await alice.response(opt.callId);
    assert.equal(moved.status, 302);
    assert.match(moved.headers.get('contact') ?? '', new RegExp(`<${bob.contact('bob')}>;expires=\\d+`));
  } finally {
    await h.stop();
  }
});

test('authenticate and challenge: 407 for callers of our domain; the hook stops there', async () => {
  const h = await startWithPolicy(
    `
export default P.definePolicy({
  async onRequest(ctx) {
    const ok = ctx.to.user === 'strict' ? await ctx.challenge() : await P.authenticate(ctx);
    if (!ok) return;
    ctx.reply(200);
  },
});`,
    { proxy: { authenticateCallers: true } },
  );
  try {
    const alice = await h.ua('alice');
    const m1 = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test');
    alice.send(m1, h.port);
    const r1 = await alice.response(m1.callId);
    assert.equal(r1.status, 407);
    assert.match(r1.headers.get('proxy-authenticate') ?? '', /^Digest realm="sipway.test"/);
    // A caller from another domain is not ours to verify.
    const m2 = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test', [], 'sip:eve@elsewhere.test');
    alice.send(m2, h.port);
    assert.equal((await alice.response(m2.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('onBranch edits each branch, onResponse sees 180 and 200 before they go upstream', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  async onRequest(ctx) {
    ctx.vars.set('seen', []);
    await P.relay(ctx, { fork: 'parallel' });
  },
  onBranch(ctx) {
    ctx.headers.set('X-Branch', ctx.target);
  },
  onResponse(ctx) {
    ctx.vars.get('seen').push(ctx.status);
    ctx.headers.set('X-Seen', ctx.vars.get('seen').join(','));
  },
});`);
  try {
    const bob1 = (await h.ua('bob1')).serve({ status: null });
    const bob2 = (await h.ua('bob2')).serve({ delayMs: 100 });
    await register(bob1, h.port, 'bob');
    await register(bob2, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const at1 = (await bob1.request('INVITE')).message;
    const at2 = (await bob2.request('INVITE')).message;
    assert.equal(at1.headers.get('x-branch'), bob1.contact('bob'));
    assert.equal(at2.headers.get('x-branch'), bob2.contact('bob'));
    const ringing = await alice.response(inv.callId, 180);
    assert.match(ringing.headers.get('x-seen') ?? '', /^180/);
    const ok = await alice.response(inv.callId, 200);
    assert.match(ok.headers.get('x-seen') ?? '', /180,180,200$/);
  } finally {
    await h.stop();
  }
});

test('onFailure: after a 486 the request goes to a second target (serial failover), whose 200 the caller gets', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  async onRequest(ctx) {
    await ctx.relay([String(ctx.headers.get('x-first'))], { fork: 'serial', timeout: 5000 });
  },
  async onFailure(ctx) {
    ctx.log('failover', { status: ctx.status });
    const second = ctx.request.headers.get('x-second');
    if (ctx.status === 486 && second && !ctx.vars.has('failed-over')) {
      ctx.vars.set('failed-over', true);
      await new Promise((r) => setTimeout(r, 20));
      ctx.relay([second]);
    } else ctx.reply(480, 'Nobody - after ' + ctx.status);
  },
});`);
  try {
    const busy = (await h.ua('busy')).serve({ status: 486 });
    const free = (await h.ua('free')).serve();
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test', extra: [`X-First: ${busy.contact('bob')}`, `X-Second: ${free.contact('bob')}`] });
    alice.send(inv, h.port);
    await busy.request('INVITE');
    await free.request('INVITE');
    assert.equal((await alice.response(inv.callId)).status, 200);
    assert.ok(await alice.nothing((m) => !m.isRequest && m.status === 486), 'the 486 did not go upstream');

    const again = invite(alice, { to: 'sip:bob@sipway.test', extra: [`X-First: ${busy.contact('bob')}`] });
    alice.send(again, h.port);
    const r = await alice.response(again.callId);
    assert.equal(r.status, 480);
    assert.equal(r.reason, 'Nobody - after 486');
  } finally {
    await h.stop();
  }
});

test('an async hook holds up only its own request', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  async onRequest(ctx) {
    if (ctx.to.user === 'slow') await new Promise((r) => setTimeout(r, 400));
    ctx.reply(ctx.to.user === 'slow' ? 486 : 480);
  },
});`);
  try {
    const alice = await h.ua('alice');
    const slow = outOfDialog(alice, 'MESSAGE', 'sip:slow@sipway.test');
    const fast = outOfDialog(alice, 'MESSAGE', 'sip:fast@sipway.test');
    alice.send(slow, h.port);
    alice.send(fast, h.port);
    const rf = await alice.response(fast.callId);
    assert.equal(rf.status, 480);
    const rs = await alice.response(slow.callId);
    assert.equal(rs.status, 486);
    const at = (id: string) => alice.received.find((r) => !r.message.isRequest && r.message.callId === id)!.at;
    assert.ok(at(fast.callId) < at(slow.callId), 'the fast one was answered first');
  } finally {
    await h.stop();
  }
});

test('a hook that throws is a 500 for that request only; no decision is a 500 too; the server keeps serving', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  async onRequest(ctx) {
    if (ctx.to.user === 'boom') throw new Error('policy bug');
    if (ctx.to.user === 'reject') await Promise.reject(new TypeError('async policy bug'));
    if (ctx.to.user === 'twice') { ctx.reply(486); ctx.reply(480); }
    if (ctx.to.user === 'forgot') void ctx.relay(['mailto:bob@sipway.test']);
    if (ctx.to.user === 'ok') ctx.reply(202);
  },
});`);
  try {
    const alice = await h.ua('alice');
    const ask = async (user: string) => {
      const m = outOfDialog(alice, 'MESSAGE', `sip:${user}@sipway.test`);
      alice.send(m, h.port);
      return alice.response(m.callId);
    };
    const boom = await ask('boom');
    assert.equal(boom.status, 500);
    assert.equal(boom.reason, 'Server Internal Error - policy failed');
    assert.equal((await ask('reject')).status, 500);
    assert.equal((await ask('forgot')).status, 500, 'a verb that failed without being awaited');
    assert.equal((await ask('twice')).status, 486, 'the first decision stands; the second throws');
    const none = await ask('idle');
    assert.equal(none.status, 500);
    assert.equal(none.reason, 'Server Internal Error - policy made no decision');
    assert.equal((await ask('ok')).status, 202);
  } finally {
    await h.stop();
  }
});

test('account(false) keeps a request out of the call records; INVITEs are recorded by default', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  onRequest(ctx) {
    if (ctx.to.user === 'private') ctx.account(false);
    ctx.reply(486);
  },
});`);
  const cdr = openCdrStore(h.ts.dataDir);
  try {
    const alice = await h.ua('alice');
    for (const user of ['private', 'public']) {
      const inv = invite(alice, { to: `sip:${user}@sipway.test` });
      alice.send(inv, h.port);
      assert.equal((await alice.response(inv.callId)).status, 486);
    }
    let records: Awaited<ReturnType<typeof cdr.cdrs.query>> = [];
    for (let i = 0; i < 50 && records.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      records = await cdr.cdrs.query({ limit: 10 });
    }
    // Written in order: a record of the first INVITE would be there by now.
    assert.deepEqual(records.map((r) => [r.type, r.status, r.callee]), [['attempt', 486, 'sip:public@sipway.test']]);
  } finally {
    cdr.close();
    await h.stop();
  }
});
