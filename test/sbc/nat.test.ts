/**
 * `sbc.calls: 'nat'`: the default policy hands the SBC only calls with a party behind NAT. On loopback a phone "behind
 * NAT" is one whose Contact names a private address it cannot be reached at (what a phone behind a NAT writes): only
 * its source address reaches it, and its SDP is wrong too (the relay latches onto where its RTP comes from).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pcmuDescription } from '../../src/media/index.js';
import { audioFlows, DOMAIN, lab, until, within } from './harness.js';

test("sbc.calls 'nat': a call between phones on public addresses is proxied as before", async () => {
  const l = await lab({}, { calls: 'nat' });
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    assert.equal(bob.incoming[0]!.invite.callId, call.invite.callId, 'the proxy forwarded the call itself');
    assert.deepEqual(await l.ts.server.sbcCalls(), []);
    assert.ok(await until(() => !call.awaitingAck, 2000));
    assert.equal(await call.bye(), 200);
  } finally {
    await l.close();
  }
});

test("sbc.calls 'nat': a caller behind NAT goes through the SBC; requests reach it at its source, media at its latched port", async () => {
  const l = await lab({}, { calls: 'nat' });
  try {
    // Alice's Contact and SDP name her private address (192.168.1.20); she sends from 127.0.0.1.
    const alice = await l.phone('alice', { register: false, ua: { contact: '<sip:alice@192.168.1.20:5060>' } });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: pcmuDescription('192.168.1.20', alice.rtp.port) });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const bobCall = bob.incoming[0]!;
    assert.notEqual(bobCall.invite.callId, call.invite.callId, 'the SBC placed a call of its own');
    assert.equal((await l.ts.server.sbcCalls()).length, 1);
    assert.ok(!bobCall.remoteSdp!.includes('192.168.1.20'), 'Bob never sees the private address');
    // Alice's RTP goes out first: the relay learns where she really is and sends Bob's audio there.
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
    assert.ok(await until(() => !bobCall.awaitingAck && !call.awaitingAck, 2000));
    // Bob's hold reaches Alice at the address she sends from, not at her Contact.
    assert.equal((await bobCall.hold()).status, 200);
    assert.equal(call.held, true);
    assert.equal(await bobCall.bye(), 200);
    assert.equal((await within(call.ended, 'the BYE at Alice', 3000)).by, 'remote');
  } finally {
    await l.close();
  }
});

test("sbc.calls 'nat': a callee registered from behind NAT gets its calls through the SBC", async () => {
  const l = await lab({}, { calls: 'nat' });
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob', { ua: { contact: '<sip:bob@10.1.2.3:5060>' } });
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const bobCall = bob.incoming[0]!;
    assert.notEqual(bobCall.invite.callId, call.invite.callId);
    assert.equal(bobCall.invite.uri.toString(), 'sip:bob@10.1.2.3:5060', 'the proxy reached Bob at his registered flow');
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
    assert.ok(await until(() => !bobCall.awaitingAck && !call.awaitingAck, 2000));
    assert.equal(await call.bye(), 200);
    assert.equal((await within(bobCall.ended, 'the BYE at Bob', 3000)).by, 'remote');
  } finally {
    await l.close();
  }
});


