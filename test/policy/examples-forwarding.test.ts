/** examples/policy/call-forwarding.ts, loaded (and type-checked) by a running server, against real UAs on loopback. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startProxy, type ProxyHarness } from '../proxy/harness.js';
import { invite, register, TestUa } from '../proxy/ua.js';
import { projectRoot } from '../helpers/paths.js';

let h: ProxyHarness;
let voicemail: TestUa;

before(async () => {
  voicemail = await TestUa.udp('voicemail');
  voicemail.serve();
  process.env.SIPWAY_VOICEMAIL = `sip:voicemail@127.0.0.1:${voicemail.port}`;
  process.env.SIPWAY_NO_ANSWER_MS = '1500';
  h = await startProxy({}, { policy: path.join(projectRoot, 'examples', 'policy', 'call-forwarding.ts'), admin: false });
});

after(async () => {
  voicemail.close();
  await h.stop();
});

test('unconditional forwarding: a call for carol rings dave', { timeout: 20000 }, async () => {
  const dave = (await h.ua('dave')).serve();
  await register(dave, h.port, 'dave');
  const alice = await h.ua('alice');
  const inv = invite(alice, { to: 'sip:carol@sipway.test' });
  alice.send(inv, h.port);
  const atDave = (await dave.request('INVITE')).message;
  assert.equal(atDave.uri.toString(), dave.contact('dave'));
  assert.equal((await alice.response(inv.callId, 200)).status, 200);
});

test('busy: bob answers 486, the call goes to voicemail', { timeout: 20000 }, async () => {
  const bob = (await h.ua('bob')).serve({ status: 486 });
  await register(bob, h.port, 'bob');
  const alice = await h.ua('alice');
  const inv = invite(alice, { to: 'sip:bob@sipway.test' });
  alice.send(inv, h.port);
  await bob.request('INVITE');
  const atVm = (await voicemail.request('INVITE', 5000)).message;
  assert.equal(atVm.callId, inv.callId);
  assert.equal((await alice.response(inv.callId, 200, 5000)).status, 200);
});

test('no answer on any of bob\'s phones: both ring, both are cancelled, voicemail answers', { timeout: 20000 }, async () => {
  const phone1 = (await h.ua('bob')).serve({ status: null });
  const phone2 = (await h.ua('bob')).serve({ status: null });
  await register(phone1, h.port, 'bob');
  await register(phone2, h.port, 'bob');
  const alice = await h.ua('alice');
  const inv = invite(alice, { to: 'sip:bob@sipway.test' });
  alice.send(inv, h.port);
  await phone1.request('INVITE');
  await phone2.request('INVITE');
  // After the no-answer time (1.5 s here) both branches are cancelled and voicemail is tried.
  await phone1.request('CANCEL', 5000);
  await phone2.request('CANCEL', 5000);
  assert.equal((await voicemail.request('INVITE', 5000)).message.callId, inv.callId);
  assert.equal((await alice.response(inv.callId, 200, 5000)).status, 200);
});
