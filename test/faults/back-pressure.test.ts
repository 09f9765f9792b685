/**
 * A TCP next hop that accepts a connection and never reads from it: once 1 MiB waits in our queue for it (beyond
 * what the kernel buffers), the connection is dropped, and every request still waiting on it fails at once with a
 * reason naming the fault, rather than in silence at Timer F.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { wire } from '../helpers/messages.js';
import { startProxy } from '../proxy/harness.js';
import { unique } from '../proxy/ua.js';
import { assertAnswers, assertReleased, heapAfterGc } from './faults.js';

test('back-pressure: a next hop that never reads is disconnected at 1 MiB queued, and its requests fail at once', { timeout: 30000 }, async () => {
  const h = await startProxy();
  // Accepts one connection and never reads it; later connections are refused.
  let accepted: net.Socket | undefined;
  const peer = net.createServer({ pauseOnConnect: true }, (socket) => {
    accepted = socket;
    socket.on('error', () => undefined);
    peer.close();
  });
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
  const peerPort = (peer.address() as net.AddressInfo).port;
  try {
    const alice = await h.tcpUa('alice');
    const body = 'x'.repeat(59_000);
    const count = 150;
    const heapBefore = heapAfterGc();
    const callIds: string[] = [];
    for (let i = 0; i < count; i++) {
      const callId = `${unique('bp')}@test`;
      callIds.push(callId);
      const lines = [
        `MESSAGE sip:gw@127.0.0.1:${peerPort};transport=tcp SIP/2.0`,
        `Via: ${alice.via};branch=${unique('z9hG4bKbp')};rport`,
        'Max-Forwards: 70',
        `From: <sip:alice@sipway.test>;tag=${unique('a')}`,
        `To: <sip:gw@127.0.0.1:${peerPort}>`,
        `Call-ID: ${callId}`,
        'CSeq: 1 MESSAGE',
        'Content-Type: text/plain',
      ];
      alice.send(wire(lines, body), h.ts.tcpPort!);
    }
    const answers = await Promise.all(callIds.map((id) => alice.response(id, undefined, 8000)));
    const reasons = new Map<string, number>();
    for (const r of answers) {
      assert.equal(r.status, 500, `${r.status} ${r.reason}`);
      const kind = r.reason.replace(/\d+/g, 'N');
      reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
    }
    const text = [...reasons].map(([k, n]) => `${n} × ${k}`).join('\n');
    assert.ok([...reasons.keys()].some((k) => /is not reading; connection dropped/.test(k)), `a write over the limit drops the connection:\n${text}`);
    assert.ok([...reasons.keys()].some((k) => /lost .* before an answer|reset by the peer before an answer|closed before an answer/.test(k)), `requests already written fail with it:\n${text}`);
    assert.ok(accepted !== undefined, 'the peer took the connection');
    await assertAnswers(h.port);
    // Only alice's own connection is left: the one to the peer that would not read is closed.
    await assertReleased(h.ts.server, 1);
    const grown = heapAfterGc() - heapBefore;
    assert.ok(grown < 16, `heap grew ${grown.toFixed(1)} MB`);
  } finally {
    accepted?.destroy();
    peer.close();
    await h.stop();
  }
});
