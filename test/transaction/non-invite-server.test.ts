import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, serialize } from '../../src/message/index.js';
import { NonInviteServerTransaction } from '../../src/transaction/index.js';
import { incomingRequest, setup } from './helpers.js';

function receiveOptions(transport = 'UDP') {
  const env = setup();
  const request = incomingRequest('OPTIONS', { transport });
  env.layer.receive(request);
  const st = env.user.requests[0]!.st;
  assert.ok(st instanceof NonInviteServerTransaction);
  return { ...env, request, st };
}

const statuses = (sent: ReturnType<typeof setup>['sender']) => sent.responses().map((s) => (s.message.isRequest ? 0 : s.message.status));

test('Trying absorbs retransmissions; Proceeding and Completed answer them with the latest response', () => {
  const { layer, sender, st, request, user } = receiveOptions();
  assert.equal(st.state, 'Trying');
  layer.receive(incomingRequest('OPTIONS'));
  assert.equal(sender.sent.length, 0);
  st.respond(createResponse(request, 100));
  assert.equal(st.state, 'Proceeding');
  layer.receive(incomingRequest('OPTIONS'));
  assert.deepEqual(statuses(sender), [100, 100]);
  st.respond(createResponse(request, 200, { toTag: 'b1' }));
  assert.equal(st.state, 'Completed');
  layer.receive(incomingRequest('OPTIONS'));
  assert.deepEqual(statuses(sender), [100, 100, 200, 200]);
  // The retransmission is the same bytes, sent again from what the transaction kept: the request is gone.
  assert.deepEqual(serialize(sender.responses(200)[1]!.message), serialize(sender.responses(200)[0]!.message));
  assert.equal(st.holdsRequest, false);
  assert.throws(() => st.request, /released after the final response/);
  assert.equal(st.method, 'OPTIONS');
  assert.equal(user.requests.length, 1);
});

test('in Completed further final responses are discarded; Timer J (64*T1) ends the transaction over UDP', () => {
  const { clock, sender, st, request, layer } = receiveOptions();
  st.respond(createResponse(request, 404));
  st.respond(createResponse(request, 200));
  assert.deepEqual(statuses(sender), [404]);
  clock.advance(31_999);
  assert.equal(st.state, 'Completed');
  clock.advance(1);
  assert.equal(st.state, 'Terminated');
  // The same request now starts a new transaction.
  layer.receive(incomingRequest('OPTIONS'));
  assert.equal(layer.stats().serverTransactions, 1);
});

test('over TCP Timer J is zero', () => {
  const { st, request, clock } = receiveOptions('TCP');
  st.respond(createResponse(request, 200));
  assert.equal(st.state, 'Terminated');
  assert.equal(clock.pending, 0);
});
