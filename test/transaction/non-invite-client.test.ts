import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addVia } from '../../src/transaction/index.js';
import { outgoingRequest, RecordingHandlers, responseTo, setup, TCP_DEST, UDP_DEST } from './helpers.js';

function startOptions(dest = UDP_DEST) {
  const env = setup();
  const request = outgoingRequest('OPTIONS');
  addVia(request, env.sender, dest);
  const handlers = new RecordingHandlers(env.clock);
  const ct = env.layer.sendRequest(request, dest, handlers);
  return { ...env, request, handlers, ct };
}

test('over UDP, Timer E doubles from T1 up to T2 and Timer F (64*T1) times the request out', () => {
  const { clock, sender, handlers, ct } = startOptions();
  assert.equal(ct.state, 'Trying');
  const started = clock.now();
  clock.advance(40_000);
  assert.deepEqual(
    sender.requests('OPTIONS').map((s) => s.at),
    [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500],
  );
  assert.deepEqual(handlers.timeouts, [started + 32_000]);
  assert.equal(ct.state, 'Terminated');
});

test('in Proceeding, Timer E fires every T2; Timer F still applies', () => {
  const { clock, sender, handlers, ct, request, layer } = startOptions();
  clock.advance(600);
  layer.receive(responseTo(request, 100));
  assert.equal(ct.state, 'Proceeding');
  clock.advance(40_000);
  assert.deepEqual(
    sender.requests('OPTIONS').map((s) => s.at),
    [0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500],
  );
  assert.equal(handlers.timeouts.length, 1);
  assert.deepEqual(handlers.responses.map((r) => r.status), [100]);
});

test('a final response completes the transaction; retransmissions of it are absorbed until Timer K (T4)', () => {
  const { clock, sender, handlers, ct, request, layer, user } = startOptions();
  clock.advance(700);
  layer.receive(responseTo(request, 200));
  assert.equal(ct.state, 'Completed');
  clock.advance(4999);
  layer.receive(responseTo(request, 200));
  assert.deepEqual(handlers.responses.map((r) => r.status), [200]);
  assert.equal(sender.requests('OPTIONS').length, 2, 'no retransmission after the final response');
  clock.advance(1);
  assert.equal(ct.state, 'Terminated');
  layer.receive(responseTo(request, 200));
  assert.equal(user.strays.length, 1);
  assert.equal(clock.pending, 0);
});

test('over TCP: no Timer E, and Timer K is zero', () => {
  const { clock, sender, handlers, ct, request, layer } = startOptions(TCP_DEST);
  clock.advance(20_000);
  assert.equal(sender.requests('OPTIONS').length, 1);
  layer.receive(responseTo(request, 404));
  assert.equal(ct.state, 'Terminated');
  assert.deepEqual(handlers.responses.map((r) => r.status), [404]);
  assert.equal(clock.pending, 0);
});

test('a response for another method with the same branch does not match (§17.1.3)', () => {
  const { request, layer, handlers, user } = startOptions();
  const other = responseTo(request, 200);
  other.headers.set('cseq', '1 INFO');
  layer.receive(other);
  assert.deepEqual(handlers.responses, []);
  assert.equal(user.strays.length, 1);
});
