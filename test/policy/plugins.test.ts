import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWithPolicy } from './policy-harness.js';
import { Dialog, invite, outOfDialog, register } from '../proxy/ua.js';

test('the default policy routes like the proxy without a policy: 404, 403 no open relay, a call and its BYE', async () => {
  const h = await startWithPolicy('export default P.defaultPolicy;');
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = (await h.ua('alice')).serve();
    const nobody = outOfDialog(alice, 'MESSAGE', 'sip:nobody@sipway.test');
    alice.send(nobody, h.port);
    assert.equal((await alice.response(nobody.callId)).status, 404);
    const relay = outOfDialog(alice, 'MESSAGE', 'sip:x@elsewhere.test', [], 'sip:eve@elsewhere.test');
    alice.send(relay, h.port);
    const denied = await alice.response(relay.callId);
    assert.deepEqual([denied.status, denied.reason], [403, 'Relaying Denied']);

    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    assert.equal((await alice.response(inv.callId, 100)).status, 100);
    const ok = await alice.response(inv.callId, 200);
    const caller = Dialog.caller(inv, ok);
    alice.send(caller.request(alice, 'ACK'), h.port);
    await bob.request('ACK');
    const bye = caller.request(alice, 'BYE');
    alice.send(bye, h.port);
    assert.equal((await bob.request('BYE')).message.headers.has('route'), false, 'loose routing: our Route removed');
    assert.equal((await alice.response(bye.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('plugins: sanity, maxForwards caps, natDetect, inDialog relays along the route, location answers 480/404', async () => {
  const h = await startWithPolicy(`
export default P.definePolicy({
  async onRequest(ctx) {
    if (!P.sanity(ctx)) return;
    P.maxForwards(ctx, 10);
    ctx.headers.set('X-Nat', String(P.natDetect(ctx)));
    if (await P.inDialog(ctx)) return;
    const targets = await P.location(ctx);
    if (targets) await ctx.relay(targets);
  },
});`);
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const msg = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test', ['Contact: <sip:alice@192.168.1.20:5060>']);
    alice.send(msg, h.port);
    const at = (await bob.request('MESSAGE')).message;
    assert.equal(at.maxForwards, 9, 'capped at 10, then decremented');
    assert.equal(at.headers.get('x-nat'), 'true', 'a private Contact the request did not come from');
    assert.equal((await alice.response(msg.callId)).status, 200);

    const plain = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test');
    alice.send(plain, h.port);
    assert.equal((await bob.request('MESSAGE')).message.headers.get('x-nat'), 'false');
    await alice.response(plain.callId);

    const nobody = outOfDialog(alice, 'MESSAGE', 'sip:nobody@sipway.test');
    alice.send(nobody, h.port);
    assert.equal((await alice.response(nobody.callId)).status, 404);

    const inDialog = outOfDialog(alice, 'MESSAGE', bob.contact('bob'));
    inDialog.headers.set('To', `<${bob.contact('bob')}>;tag=t1`);
    alice.send(inDialog, h.port);
    assert.equal((await bob.request('MESSAGE')).message.uri.toString(), bob.contact('bob'));
    assert.equal((await alice.response(inDialog.callId)).status, 200);

    const looped = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test');
    looped.headers.set('Max-Forwards', '0');
    alice.send(looped, h.port);
    assert.equal((await alice.response(looped.callId)).status, 483, 'the server core answers it before any policy');
  } finally {
    await h.stop();
  }
});
