import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse } from '../../src/message/index.js';
import { parseBranch } from '../../src/proxy/index.js';
import { startProxy } from './harness.js';
import { cancelOf, Dialog, invite, register, tokened, untokened } from './ua.js';

test('basic call: INVITE/100/180/200/ACK/BYE through the proxy, record-routed, BYE along the route set', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);

    assert.equal((await alice.response(inv.callId, 100)).status, 100);
    const atBob = (await bob.request('INVITE')).message;
    // §16.5/§16.6: the Request-URI is the registered contact; our Via and Record-Route are on top.
    assert.equal(atBob.uri.toString(), bob.contact('bob'));
    assert.equal(atBob.maxForwards, 69);
    assert.equal(atBob.vias.length, 2);
    assert.ok(parseBranch(atBob.via.branch), `our branch: ${atBob.via.branch}`);
    assert.equal(atBob.via.sentBy, `127.0.0.1:${h.port}`);
    // Both parties are phones on flows of their own: a value each, each with a flow token (RFC 5626 §5.3).
    assert.deepEqual(untokened(atBob.headers.list('record-route')), [`<sip:127.0.0.1:${h.port};lr>`, `<sip:127.0.0.1:${h.port};lr>`]);
    assert.equal(tokened(atBob.headers.list('record-route')), 2);

    const ringing = await alice.response(inv.callId, 180);
    assert.equal(ringing.vias.length, 1, 'our Via is removed from forwarded responses');
    const ok = await alice.response(inv.callId, 200);
    assert.equal(ok.vias.length, 1);
    assert.deepEqual(ok.headers.list('record-route'), atBob.headers.list('record-route'));

    // §12.1.2: the caller's route set is the Record-Route reversed; ACK and BYE go through the proxy.
    const caller = Dialog.caller(inv, ok);
    alice.send(caller.request(alice, 'ACK'), h.port);
    const ack = (await bob.request('ACK')).message;
    assert.equal(ack.headers.has('route'), false, 'the proxy removed its own Route');
    assert.equal(ack.uri.toString(), bob.contact('bob'));
    assert.equal(ack.vias.length, 2, 'ACK forwarded with our Via');

    const bye = caller.request(alice, 'BYE');
    alice.send(bye, h.port);
    const byeAtBob = (await bob.request('BYE')).message;
    assert.equal(byeAtBob.headers.has('route'), false);
    assert.equal((await alice.response(bye.callId)).status, 200);

    const stats = h.proxy().stats();
    assert.ok(stats.forwarded >= 3, `INVITE, ACK and BYE forwarded (${stats.forwarded})`);
    assert.ok(stats.responses['2xx'] >= 2);
  } finally {
    await h.stop();
  }
});

test('BYE from the callee follows the Record-Route in order back to the caller', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = (await h.ua('alice')).serve();
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const atBob = (await bob.request('INVITE')).message;
    const ok = await alice.response(inv.callId, 200);
    alice.send(Dialog.caller(inv, ok).request(alice, 'ACK'), h.port);
    await bob.request('ACK');

    const callee = Dialog.callee(atBob, ok);
    assert.deepEqual(untokened(callee.routeSet), [`<sip:127.0.0.1:${h.port};lr>`, `<sip:127.0.0.1:${h.port};lr>`]);
    const bye = callee.request(bob, 'BYE');
    bob.send(bye, h.port);
    const atAlice = (await alice.request('BYE')).message;
    assert.equal(atAlice.uri.toString(), alice.contact('caller'));
    assert.equal((await bob.response(bye.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('parallel forking: both contacts ring, one answers, the other is cancelled (487), the caller sees one 200', async () => {
  const h = await startProxy();
  try {
    const desk = (await h.ua('desk')).serve({ status: 200, delayMs: 150 });
    const mobile = (await h.ua('mobile')).serve({ status: null });
    await register(desk, h.port, 'bob', { contact: desk.contact('bob') });
    await register(mobile, h.port, 'bob', { contact: mobile.contact('bob') });
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);

    await desk.request('INVITE');
    await mobile.request('INVITE');
    const ok = await alice.response(inv.callId, 200);
    assert.match(ok.headers.get('contact') ?? '', new RegExp(`127\\.0\\.0\\.1:${desk.port}`));
    // §16.7 step 10: the branch still ringing is cancelled; its 487 is ACKed by the proxy, not forwarded.
    await mobile.request('CANCEL');
    await mobile.request('ACK');
    assert.ok(await alice.nothing((m) => !m.isRequest && m.status >= 200 && m.status !== 200, 400), 'no other final response upstream');
    assert.equal(alice.received.filter((r) => !r.message.isRequest && r.message.status === 200).length, 1);
    assert.equal(h.proxy().stats().branches, 2);
  } finally {
    await h.stop();
  }
});

test('serial forking by q: the first contact answers 486, the next one is tried and answers', async () => {
  const h = await startProxy({ forking: 'serial' });
  try {
    const busy = (await h.ua('busy')).serve({ status: 486 });
    const free = (await h.ua('free')).serve({ status: 200 });
    await register(free, h.port, 'bob', { contact: free.contact('bob'), contactParams: ';q=0.5' });
    await register(busy, h.port, 'bob', { contact: busy.contact('bob'), contactParams: ';q=0.9' });
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);

    const first = await busy.request('INVITE');
    await busy.request('ACK');
    const second = await free.request('INVITE');
    assert.ok(first.at < second.at, 'the q=0.9 contact was tried first');
    const ok = await alice.response(inv.callId);
    assert.equal(ok.status, 200, 'the 486 was not forwarded: a later branch answered');
  } finally {
    await h.stop();
  }
});

test('serial forking moves on after serialBranchTimeoutMs, cancelling the branch that only rings', async () => {
  const h = await startProxy({ forking: 'serial', serialBranchTimeoutMs: 200 });
  try {
    const slow = (await h.ua('slow')).serve({ status: null });
    const next = (await h.ua('next')).serve({ status: 200 });
    await register(next, h.port, 'bob', { contact: next.contact('bob'), contactParams: ';q=0.1' });
    await register(slow, h.port, 'bob', { contact: slow.contact('bob'), contactParams: ';q=1' });
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    await slow.request('INVITE');
    await slow.request('CANCEL', 2000);
    await next.request('INVITE', 2000);
    assert.equal((await alice.response(inv.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('CANCEL from the caller during ringing: 200 for the CANCEL, the callee is cancelled, the caller gets 487', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve({ status: null });
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    await alice.response(inv.callId, 180);

    const cancel = cancelOf(inv);
    alice.send(cancel, h.port);
    const cancelOk = await alice.waitFor('200 for CANCEL', (m) => !m.isRequest && m.cseq.method === 'CANCEL');
    assert.equal(cancelOk.message.isRequest ? 0 : cancelOk.message.status, 200);
    const atBob = (await bob.request('CANCEL')).message;
    assert.equal(atBob.vias.length, 1, 'a CANCEL is hop by hop: the proxy sends its own');
    const final = await alice.response(inv.callId);
    assert.equal(final.status, 487);
    assert.equal(final.cseq.method, 'INVITE');
  } finally {
    await h.stop();
  }
});

test('CANCEL before any provisional from the callee: the caller gets 487 at once, the CANCEL follows a late 180', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve({ status: null, ring: false });
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const atBob = (await bob.request('INVITE')).message;
    alice.send(cancelOf(inv), h.port);
    assert.equal((await alice.response(inv.callId, 487, 1000)).status, 487);
    // §9.1: the proxy may only CANCEL once the callee has answered provisionally.
    assert.ok(await bob.nothing((m) => m.isRequest && m.method === 'CANCEL', 300));
    bob.send(createResponse(atBob, 180, { toTag: 'late' }), h.port);
    await bob.request('CANCEL');
  } finally {
    await h.stop();
  }
});

test('every 2xx goes upstream: retransmissions through the transaction (RFC 6026 Accepted) and as strays after it', async () => {
  const h = await startProxy();
  try {
    const bob = await h.ua('bob');
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const atBob = (await bob.request('INVITE')).message;
    const ok = createResponse(atBob, 200, { toTag: 'b1', headers: [['Contact', `<${bob.contact('bob')}>`]] });
    bob.send(ok, h.port);
    await alice.response(inv.callId, 200);
    bob.send(ok, h.port);
    await alice.response(inv.callId, 200);

    // The same 2xx under a branch of ours that no transaction holds any more (as after Timer M): forwarded by Via.
    const stray = (branch: string, status: number) => {
      const res = createResponse(atBob, status, { toTag: 'b1' });
      res.headers.set('via', [atBob.via.toString().replace(/branch=[^;]+/, `branch=${branch}`), ...atBob.vias.slice(1).map(String)].join(', '));
      return res;
    };
    const hash = parseBranch(atBob.via.branch)!.hash;
    bob.send(stray(`z9hG4bKsw${hash}.gone000000`, 200), h.port);
    await alice.response(inv.callId, 200);
    bob.send(stray(`z9hG4bKsw${hash}.gone000000`, 486), h.port);
    assert.ok(await alice.nothing((m) => !m.isRequest && m.status === 486, 300), 'a late non-2xx for a stateful branch is not forwarded');
    const stats = h.proxy().stats();
    assert.equal(stats.strayForwarded, 1);
    assert.equal(stats.strayDropped, 1);
  } finally {
    await h.stop();
  }
});
