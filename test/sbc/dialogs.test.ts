/**
 * In-dialog requests through the SBC, each test after a bug of the anchors' trackers (Kamailio topos, OpenSIPS
 * topology_hiding, drachtio's B2BUA) and the REFER loops an SBC must not make.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { audioFlows, DOMAIN, headerValues, lab, until, within, type Lab, type Phone } from './harness.js';
import type { InviteSession } from '../../src/ua/index.js';
import { UdpClient } from '../../src/testing/index.js';

/** Alice calls Bob through the SBC; both legs up and ACKed. */
async function connected(l: Lab, alice: Phone, bob: Phone): Promise<{ call: InviteSession; bobCall: InviteSession }> {
  const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
  assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
  const bobCall = bob.incoming[bob.incoming.length - 1]!;
  assert.ok(await until(() => bobCall.state === 'Confirmed' && !bobCall.awaitingAck && !call.awaitingAck, 2000));
  return { call, bobCall };
}

const sbcContact = (l: Lab): string => `<sip:sbc@127.0.0.1:${l.ts.port}>`;

test('re-INVITEs from the callee follow its route set and get their 200 and ACK, twice (Kamailio topos #2554, #1496)', async () => {
  const l = await lab();
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const { call, bobCall } = await connected(l, alice, bob);
    // Bob's dialog has the server's Record-Route as its route set: his re-INVITE goes through it to the SBC.
    assert.ok(bobCall.dialog!.routeSet.length > 0);
    assert.equal((await bobCall.hold()).status, 200, 'the callee\'s re-INVITE answered 200');
    assert.equal(call.held, true, 'and reached the caller');
    assert.ok(await until(() => !bobCall.awaitingAck && !call.awaitingAck, 2000), 'ACKed on both legs');
    assert.equal((await bobCall.resume()).status, 200, 'a second re-INVITE on the same route set');
    assert.equal(call.held, false);
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
    // The 200s Bob got for his re-INVITEs name the SBC as remote target; his BYE reaches it.
    const oks = bob.received.filter((r) => r.startsWith('SIP/2.0 200') && / INVITE\r\n/.test(r) && r.includes(`CSeq: ${bobCall.dialog!.localSeq}`));
    for (const ok of oks) assert.deepEqual(headerValues(ok, 'Contact'), [sbcContact(l)]);
    assert.equal(await bobCall.bye(), 200);
    assert.equal((await within(call.ended, 'the BYE at Alice', 3000)).by, 'remote');
  } finally {
    await l.close();
  }
});

test('after an UPDATE each phone still has the SBC as remote target: every Contact it got is the SBC\'s (OpenSIPS #2107)', async () => {
  const l = await lab();
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const { call, bobCall } = await connected(l, alice, bob);
    assert.equal((await call.update(alice.sdp().replace(/^o=(\S+) (\d+) 1 /m, 'o=$1 $2 2 '))).status, 200);
    assert.equal((await bobCall.update(bob.sdp().replace(/^o=(\S+) (\d+) 1 /m, 'o=$1 $2 2 '))).status, 200);
    for (const [phone, name] of [[alice, 'Alice'], [bob, 'Bob']] as const) {
      // Everything but the answers to the phone's own REGISTER (whose Contact is its binding).
      const contacts = phone.received.filter((r) => !/^CSeq:\s*\d+ REGISTER/im.test(r)).flatMap((r) => headerValues(r, 'Contact'));
      assert.ok(contacts.length >= 3, `${name} got Contacts`);
      assert.deepEqual([...new Set(contacts)], [sbcContact(l)], `${name} only ever learnt the SBC as remote target`);
    }
    assert.equal(call.dialog!.remoteTarget.toString(), `sip:sbc@127.0.0.1:${l.ts.port}`);
    assert.equal(bobCall.dialog!.remoteTarget.toString(), `sip:sbc@127.0.0.1:${l.ts.port}`);
    // In-dialog requests after the UPDATE still reach the other side, both ways.
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
    assert.equal(await call.bye(), 200);
    assert.equal((await within(bobCall.ended, 'the BYE at Bob', 3000)).by, 'remote');
  } finally {
    await l.close();
  }
});

test('reliable provisionals (100rel): each leg PRACKs its own; the early answer crosses as the caller\'s answer', async () => {
  const l = await lab();
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    bob.onCall = (s) => {
      s.progress(183, { sdp: bob.sdp(), reliable: true });
      setTimeout(() => s.accept(), 300);
    };
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp(), headers: [['Require', '100rel']] });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const provisional = alice.received.find((r) => r.startsWith('SIP/2.0 183'));
    assert.ok(provisional, 'Alice got the 183');
    assert.equal(headerValues(provisional, 'RSeq').length, 1, 'reliably');
    assert.ok(!provisional.includes(`m=audio ${bob.rtp.port} `), 'its SDP names the relay, not Bob');
    const pracksAtBob = bob.received.filter((r) => r.startsWith('PRACK '));
    assert.equal(pracksAtBob.length, 1, 'Bob got the SBC\'s PRACK');
    assert.ok(!pracksAtBob[0]!.includes(call.invite.callId), 'in leg b');
    await audioFlows({ session: call, phone: alice }, { session: bob.incoming[0]!, phone: bob });
    assert.equal(await call.bye(), 200);
  } finally {
    await l.close();
  }
});

test('a CANCEL that crosses the callee\'s 200 leaves no leg up (drachtio-srf #47)', async (t) => {
  const l = await lab();
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    bob.onCall = (s) => s.ring();
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.ok(await until(() => call.state === 'Early' && bob.incoming.length === 1, 3000));
    // Both at once: Alice's CANCEL reaches the SBC in one hop, Bob's 200 in two (through the proxy).
    call.cancel();
    bob.incoming[0]!.accept(bob.sdp());
    const answer = await within(call.answered, 'the caller\'s answer', 5000);
    t.diagnostic(`the caller got ${answer.status}`);
    if (answer.status === 487) {
      // The SBC's CANCEL came too late for Bob's 200: leg b was answered all the same and is hung up.
      assert.equal((await within(bob.incoming[0]!.ended, 'Bob hung up by the SBC', 5000)).by, 'remote');
    } else {
      // The 200 was first: the call is up on both legs, as RFC 3261 §9.1 has it, and ends like any.
      assert.equal(answer.status, 200);
      assert.equal(await call.bye(), 200);
      await within(bob.incoming[0]!.ended, 'Bob', 3000);
    }
    assert.ok(await until(async () => (await l.ts.server.sbcCalls()).length === 0, 3000), 'nothing left on the SBC');
  } finally {
    await l.close();
  }
});

test('a re-INVITE answered 491 is tried again and passes, CSeqs in order on both legs (drachtio-server #318)', async () => {
  const l = await lab();
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const { call, bobCall } = await connected(l, alice, bob);
    let offers = 0;
    bobCall.onOffer = (offer) => (++offers === 1 ? { status: 491, reason: 'Request Pending' } : offer.replace(/a=sendonly/, 'a=recvonly').replace(/^o=(\S+) (\d+) \d+ /m, 'o=$1 $2 9 '));
    const held = await within(call.hold(), 'the hold', 15_000);
    assert.equal(held.status, 200, 'the retried re-INVITE got through');
    assert.equal(offers, 2);
    assert.equal(call.held, false);
    assert.match(call.remoteSdp!, /a=recvonly/);
    const reinvites = bob.received.filter((r) => r.startsWith('INVITE ') && r.includes('tag=' + bobCall.dialog!.localTag));
    const seqs = reinvites.map((r) => Number(/^CSeq:\s*(\d+)/im.exec(r)![1]));
    assert.equal(seqs.length, 2);
    assert.ok(seqs[1]! > seqs[0]!, `leg b's CSeq goes up: ${seqs.join(', ')}`);
    assert.ok(await until(() => !bobCall.awaitingAck, 2000));
    assert.equal(await bobCall.bye(), 200, 'the dialog is intact after the glare');
    await within(call.ended, 'Alice', 3000);
  } finally {
    await l.close();
  }
});

test('REFER is never forwarded: declined 603 by default; with sbc.refer transfer the SBC calls the target and connects it', async () => {
  const declining = await lab();
  try {
    const alice = await declining.phone('alice', { register: false });
    const bob = await declining.phone('bob');
    const carol = await declining.phone('carol');
    const { call, bobCall } = await connected(declining, alice, bob);
    const outcome = await within(bobCall.refer(`sip:carol@${DOMAIN}`), 'the REFER', 5000);
    assert.equal(outcome.status, 603);
    assert.deepEqual(alice.received.filter((r) => r.startsWith('REFER ')), [], 'the REFER did not cross');
    assert.equal(carol.incoming.length, 0, 'nobody called Carol');
    assert.equal(call.state, 'Confirmed');
    assert.equal(await call.bye(), 200);
  } finally {
    await declining.close();
  }

  const transferring = await lab({}, { refer: 'transfer' });
  try {
    const alice = await transferring.phone('alice', { register: false });
    const bob = await transferring.phone('bob');
    const carol = await transferring.phone('carol');
    const { call, bobCall } = await connected(transferring, alice, bob);
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
    // Bob transfers Alice to Carol: the SBC places the call (no offer: Carol offers, Alice answers in a re-INVITE).
    const outcome = await within(bobCall.refer(`sip:carol@${DOMAIN}`), 'the transfer', 8000);
    assert.equal(outcome.status, 200, 'Bob hears the transfer succeeded');
    assert.equal(await bobCall.bye(), 200, 'and leaves');
    const carolCall = carol.incoming[0]!;
    assert.equal(carolCall.invite.from.uri.toString(), `sip:alice@${DOMAIN}`, 'Carol sees Alice calling');
    assert.equal(carolCall.invite.headers.get('referred-by'), undefined);
    assert.deepEqual(alice.received.filter((r) => r.startsWith('REFER ')), [], 'the REFER did not cross');
    assert.ok(await until(() => !carolCall.awaitingAck && call.state === 'Confirmed', 2000));
    assert.equal(call.state, 'Confirmed', 'Alice stays in the call');
    await audioFlows({ session: call, phone: alice }, { session: carolCall, phone: carol });
    const listed = await transferring.ts.server.sbcCalls();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.b.callId, carolCall.invite.callId, 'leg b is now the call to Carol');
    assert.equal(await call.bye(), 200);
    assert.equal((await within(carolCall.ended, 'Carol hears the BYE', 3000)).by, 'remote');
  } finally {
    await transferring.close();
  }
});

test('a call without an offer: the callee offers in its 2xx through the relay, the caller answers in its ACK, and audio flows', async () => {
  const l = await lab();
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { onOffer: () => alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const bobCall = bob.incoming[0]!;
    assert.ok(await until(() => bobCall.remoteSdp !== undefined, 2000), 'Alice\'s answer reached Bob in the ACK');
    assert.ok(!bobCall.remoteSdp!.includes(`m=audio ${alice.rtp.port} `));
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
    assert.equal(await call.bye(), 200);
  } finally {
    await l.close();
  }
});

test('a request to the SBC\'s Contact in a dialog it does not have is answered 481, not routed', async () => {
  const l = await lab();
  const client = new UdpClient();
  try {
    const port = await client.bind();
    const bye = [
      `BYE sip:sbc@127.0.0.1:${l.ts.port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKgone1;rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@${DOMAIN}>;tag=gone-b`,
      `To: <sip:alice@${DOMAIN}>;tag=gone-a`,
      'Call-ID: no-such-call@test',
      'CSeq: 2 BYE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const answer = await client.request(Buffer.from(bye), l.ts.port);
    assert.equal(answer?.status, 481);
  } finally {
    client.close();
    await l.close();
  }
});
