import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closedUdpPort } from '../helpers/process.js';
import { DOMAIN, lab, until, within } from './harness.js';

test('relay failures answer the caller, never escape: no ports left is 503, an SDP without an allowed codec 488, a silent rtpengine 503', async () => {
  // Room for one call: two RTP/RTCP port pairs.
  const portMin = 14000 + 4 * Math.floor(Math.random() * 500);
  const small = await lab({}, { media: { portMin, portMax: portMin + 3, codecs: ['PCMU'] } });
  try {
    const alice = await small.phone('alice', { register: false });
    const bob = await small.phone('bob');
    const carol = await small.phone('carol');
    const first = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(first.answered, 'the first call', 5000)).status, 200);
    const second = await alice.ua.call(`sip:carol@${DOMAIN}`, { sdp: alice.sdp() });
    const noPorts = await within(second.answered, 'the second call', 5000);
    assert.equal(noPorts.status, 503);
    assert.equal(noPorts.reason, 'Service Unavailable - no media relay resources', 'a reason that names nothing of ours');
    assert.equal(carol.incoming.length, 0, 'no second leg without media');

    const pcmaOnly = alice.sdp().replace('RTP/AVP 0', 'RTP/AVP 8').replace('a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000');
    assert.ok(await until(() => !first.awaitingAck, 2000));
    assert.equal(await first.bye(), 200);
    assert.ok(await until(async () => (await small.ts.server.sbcCalls()).length === 0, 2000));
    const refused = await alice.ua.call(`sip:carol@${DOMAIN}`, { sdp: pcmaOnly });
    const answer = await within(refused.answered, 'the PCMA call', 5000);
    assert.equal(answer.status, 488);
    assert.equal(answer.reason, 'Not Acceptable Here - the media relay cannot take this SDP');
    assert.ok(await until(async () => (await small.ts.server.sbcCalls()).length === 0, 2000), 'nothing left of the refused calls');
  } finally {
    await small.close();
  }

  const silent = await lab({}, { media: { engine: 'rtpengine', rtpengine: { host: '127.0.0.1', port: await closedUdpPort(), timeoutMs: 50 } } });
  try {
    const alice = await silent.phone('alice', { register: false });
    const bob = await silent.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    const answer = await within(call.answered, 'the answer', 5000);
    assert.equal(answer.status, 503);
    assert.equal(bob.incoming.length, 0);
  } finally {
    await silent.close();
  }
});
