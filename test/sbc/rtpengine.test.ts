import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rtpengineMissing, startRtpEngine, type RunningRtpEngine } from '../helpers/rtpengine.js';
import { audioFlows, DOMAIN, lab, until, within } from './harness.js';

describe('SBC with media.engine rtpengine', { skip: rtpengineMissing() }, () => {
  let engine: RunningRtpEngine;
  before(async () => {
    engine = await startRtpEngine();
  });
  after(async () => {
    await engine?.stop();
  });

  test('a call through the SBC with its media in rtpengine: RTP both ways through its ports, hold, counters listed, deleted at the end', async () => {
    const l = await lab({}, { media: { engine: 'rtpengine', rtpengine: { host: '127.0.0.1', port: engine.ngPort } } });
    try {
      const alice = await l.phone('alice', { register: false });
      const bob = await l.phone('bob');
      const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
      assert.equal((await within(call.answered, 'the answer', 8000)).status, 200);
      const bobCall = bob.incoming[0]!;
      for (const sdp of [call.remoteSdp!, bobCall.remoteSdp!]) {
        const port = Number(/^m=audio (\d+) /m.exec(sdp)![1]);
        assert.ok(port >= engine.portMin && port <= engine.portMax, `${port} is one of rtpengine's ports`);
      }
      await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
      assert.ok(await until(() => !call.awaitingAck && !bobCall.awaitingAck, 2000));
      assert.equal((await call.hold()).status, 200);
      assert.equal(bobCall.held, true);
      assert.equal((await call.resume()).status, 200);
      await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });
      const [listed] = await l.ts.server.sbcCalls();
      assert.equal(listed?.media?.engine, 'rtpengine');
      assert.ok(listed!.media!.streams[0]!.sides.some((s) => s.rtp.packets >= 10), 'rtpengine counted packets');
      assert.equal(await call.bye(), 200);
      await within(bobCall.ended, 'Bob hears the BYE', 3000);
      assert.ok(await until(async () => (await l.ts.server.sbcCalls()).length === 0, 3000));
    } finally {
      await l.close();
    }
  });
});
