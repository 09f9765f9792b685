import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loopUserAgents } from '../../src/testing/index.js';

const OFFER = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER = 'v=0\r\no=- 2 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';

test('a scripted callee on the loop: 180, a reliable 183 with the answer (PRACKed), 200 at 2 s, BYE 5 s later, all on the clock', async () => {
  const { alice, bob, run, clock } = loopUserAgents();
  bob.script = { progress: [{ status: 180 }, { status: 183, sdp: ANSWER, afterMs: 500 }], answer: { afterMs: 2000 }, hangUpAfterMs: 5000 };
  const call = alice.call(undefined, { sdp: OFFER });
  await run(10);
  assert.equal(call.state, 'Early');
  await run(600);
  assert.equal(alice.sender.requests('PRACK').length, 1, 'the reliable 183 was PRACKed');
  assert.equal(call.remoteSdp, ANSWER, 'the answer came in the 183');
  let answeredAt = -1;
  void call.answered.then(() => (answeredAt = clock.now()));
  await run(1500);
  assert.equal((await call.answered).status, 200);
  assert.equal(answeredAt, 2000);
  let endedAt = -1;
  void call.ended.then(() => (endedAt = clock.now()));
  await run(5100, 10);
  assert.deepEqual(await call.ended, { by: 'remote', reason: 'BYE received' });
  assert.equal(endedAt, 7000);
  assert.equal(bob.incoming.length, 1);
});

test('a scripted callee refusing: the failure status is the caller\'s answer; a CANCEL during ringing gets 487', async () => {
  const { alice, bob, run } = loopUserAgents();
  bob.script = { answer: { status: 486, reason: 'Busy Here', afterMs: 100 } };
  const busy = alice.call();
  await run(200);
  assert.deepEqual(await busy.answered, { status: 486, reason: 'Busy Here' });
  bob.script = { progress: [{ status: 180 }] };
  const ringing = alice.call();
  await run(10);
  assert.equal(ringing.cancel(), true);
  await run(10);
  assert.equal((await ringing.answered).status, 487);
  assert.deepEqual(await bob.incoming[1]!.ended, { by: 'failure', reason: '487 Request Terminated' });
});
