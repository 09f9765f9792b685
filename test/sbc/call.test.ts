import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pcmuTarget } from '../../src/media/index.js';
import { audioFlows, DOMAIN, headerValues, lab, LOOPBACK, until, within } from './harness.js';

test('SBC call: RTP both ways through the embedded relay, hold and resume, UPDATE, INFO, BYE; each phone sees only the SBC', async () => {
  const l = await lab();
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const infos: string[] = [];
    bob.onCall = (s) => {
      s.onInfo = (r) => void infos.push(r.body.toString());
      s.ring();
      setTimeout(() => s.accept(bob.sdp()), 30);
    };
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp(), headers: [['User-Agent', 'alice-phone/1.0'], ['X-Secret', 'inner']] });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const bobCall = bob.incoming[0]!;
    await until(() => bobCall.state === 'Confirmed' && !bobCall.awaitingAck, 2000);

    // Leg b is a call of its own: Call-ID, tags; only what the config passes crossed (nothing by default).
    assert.notEqual(bobCall.invite.callId, call.invite.callId);
    assert.notEqual(bobCall.invite.fromTag, call.invite.fromTag);
    assert.equal(bobCall.invite.from.uri.toString(), `sip:alice@${DOMAIN}`);
    assert.equal(bobCall.invite.headers.get('user-agent'), undefined, 'User-Agent is on the deny list');
    assert.equal(bobCall.invite.headers.get('x-secret'), undefined, 'nothing crosses unless passed');

    // Media anchored: each phone was given the relay's port, not the other phone's.
    const toRelayFromA = pcmuTarget(call.remoteSdp)!;
    const toRelayFromB = pcmuTarget(bobCall.remoteSdp)!;
    assert.notEqual(toRelayFromA.port, bob.rtp.port);
    assert.notEqual(toRelayFromB.port, alice.rtp.port);
    assert.equal(toRelayFromA.address, LOOPBACK);
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });

    // Hold and resume from the caller (re-INVITE), through the relay.
    assert.equal((await call.hold()).status, 200);
    assert.equal(bobCall.held, true, 'the hold reached Bob');
    assert.match(call.remoteSdp!, /a=recvonly/);
    assert.equal((await call.resume()).status, 200);
    assert.equal(bobCall.held, false);
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });

    // UPDATE from the callee with a new RTP address: the relay follows, audio still flows.
    await until(() => !call.awaitingAck && !bobCall.awaitingAck, 2000);
    assert.equal((await bobCall.update(bob.sdp().replace(/^o=(\S+) (\d+) 1 /m, 'o=$1 $2 2 '))).status, 200);
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });

    // INFO crosses.
    assert.equal(await call.info('Signal=5\r\nDuration=160\r\n', 'application/dtmf-relay'), 200);
    assert.ok(await until(() => infos.length === 1, 2000), 'the INFO reached Bob');
    assert.equal(infos[0], 'Signal=5\r\nDuration=160\r\n');

    // `sipway calls` sees it, with the relay's counters.
    const listed = await l.ts.server.sbcCalls();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.a.callId, call.invite.callId);
    assert.equal(listed[0]!.b.callId, bobCall.invite.callId);
    assert.equal(listed[0]!.state, 'answered');
    const sides = listed[0]!.media!.streams[0]!.sides;
    assert.ok(sides.every((s) => s.rtp.packets >= 10), 'packets counted on both sides');

    // BYE from the callee ends both legs.
    assert.equal(await bobCall.bye(), 200);
    assert.equal((await within(call.ended, 'the caller hears the BYE', 3000)).by, 'remote');
    assert.ok(await until(async () => (await l.ts.server.sbcCalls()).length === 0, 2000), 'the call is gone from the list');

    // Topology hiding, on what each phone received: nothing of the other side's address, Call-ID or tags.
    const hidden = (raws: string[], other: { port: number; rtpPort: number; callId: string; tag: string }, who: string): void => {
      for (const raw of raws) {
        assert.ok(!raw.includes(`:${other.port}`), `${who} received the other phone's SIP port:\n${raw}`);
        assert.ok(!raw.includes(` ${other.rtpPort} `) && !raw.includes(`:${other.rtpPort}`), `${who} received the other phone's RTP port:\n${raw}`);
        assert.ok(!raw.includes(other.callId), `${who} received the other leg's Call-ID:\n${raw}`);
        assert.ok(!raw.includes(other.tag), `${who} received the other phone's tag:\n${raw}`);
        assert.deepEqual(headerValues(raw, 'Server').filter((s) => !s.startsWith('sipway')), [], `${who} got a Server header of the far side`);
        assert.deepEqual(headerValues(raw, 'User-Agent'), [], `${who} got a User-Agent`);
      }
    };
    assert.ok(bob.received.length > 3 && alice.received.length > 3);
    hidden(bob.received, { port: alice.port, rtpPort: alice.rtp.port, callId: call.invite.callId, tag: call.invite.fromTag! }, 'Bob');
    hidden(alice.received, { port: bob.port, rtpPort: bob.rtp.port, callId: bobCall.invite.callId, tag: bobCall.dialog!.localTag }, 'Alice');
    for (const raw of bob.received) for (const rr of headerValues(raw, 'Record-Route')) assert.ok(rr.includes(`127.0.0.1:${l.ts.port}`), `Bob's Record-Route names the server only: ${rr}`);
    for (const raw of alice.received) assert.deepEqual(headerValues(raw, 'Record-Route'), [], 'Alice gets no route set of the far side');
  } finally {
    await l.close();
  }
});

test('SBC call: the caller hangs up (BYE both legs), CANCEL before the answer is 487 on both legs, a busy callee is 486', async () => {
  const l = await lab();
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'answer', 5000)).status, 200);
    await until(() => !bob.incoming[0]!.awaitingAck, 2000);
    assert.equal(await call.bye(), 200);
    assert.equal((await within(bob.incoming[0]!.ended, 'Bob hears the BYE', 3000)).by, 'remote');

    bob.onCall = (s) => s.ring();
    const ringing = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.ok(await until(() => ringing.state === 'Early', 3000), 'ringing crossed');
    assert.equal(ringing.cancel(), true);
    assert.equal((await within(ringing.answered, 'the 487', 3000)).status, 487);
    assert.equal((await within(bob.incoming[1]!.answered, 'Bob cancelled', 3000)).status, 487);

    bob.onCall = (s) => s.reject(486);
    const busy = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    const answer = await within(busy.answered, 'the 486', 3000);
    assert.equal(answer.status, 486);
    assert.equal(answer.reason, 'Busy Here', 'the standard reason: leg b\'s own text does not cross');
    assert.ok(await until(async () => (await l.ts.server.sbcCalls()).length === 0, 2000));
  } finally {
    await l.close();
  }
});

test('SBC call records: the proxy accounts leg b as any call; the callee\'s BYE, which the SBC takes, closes the record too', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-sbc-cdr-'));
  const jsonl = path.join(dir, 'cdr.jsonl');
  const l = await lab({ accounting: { enabled: true, jsonlFile: jsonl } });
  try {
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const records = (): Array<Record<string, unknown>> => {
      try {
        return readFileSync(jsonl, 'utf8').split('\n').filter((x) => x !== '').map((x) => JSON.parse(x) as Record<string, unknown>);
      } catch {
        return [];
      }
    };
    for (const [hangsUp, endedBy] of [['bob', 'callee'], ['alice', 'caller']] as const) {
      const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
      assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
      const bobCall = bob.incoming[bob.incoming.length - 1]!;
      assert.ok(await until(() => !call.awaitingAck && !bobCall.awaitingAck, 2000));
      await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
      assert.equal(await (hangsUp === 'bob' ? bobCall : call).bye(), 200);
      const legB = bobCall.invite.callId;
      assert.ok(await until(() => records().some((r) => r.type === 'call' && r.callId === legB), 3000), `a call record for ${legB}`);
      const record = records().find((r) => r.type === 'call' && r.callId === legB)!;
      assert.equal(record.caller, `sip:alice@${DOMAIN}`);
      assert.equal(record.callee, `sip:bob@${DOMAIN}`);
      assert.equal(record.endedBy, endedBy);
      // What each party sent through the relay (the record waited for the SBC to take the relay call down).
      const media = record.media as { caller: { packets: number; bytes: number }; callee: { packets: number; bytes: number } } | undefined;
      assert.ok(media, 'the record has the relay\'s counters');
      assert.ok(media.caller.packets >= 10 && media.callee.packets >= 10, JSON.stringify(media));
      assert.ok(media.caller.bytes >= media.caller.packets * 172, 'PCMU packets: 12 bytes of header, 160 of audio');
    }
  } finally {
    await l.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
