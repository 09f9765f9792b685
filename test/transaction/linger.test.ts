import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse } from '../../src/message/index.js';
import { addVia, InviteServerTransaction, NonInviteServerTransaction } from '../../src/transaction/index.js';
import { resolveTimerConfig, timerDurations } from '../../src/transaction/timers.js';
import { ConfigError } from '../../src/util/errors.js';
import { incomingRequest, outgoingRequest, RecordingHandlers, responseTo, setup, UDP_DEST } from './helpers.js';

// timers.linger (Kamailio's wt_timer): how long a transaction with its final response stays to absorb retransmissions.

test('linger sets Timers D, J, L and M; the retransmission and timeout timers keep their RFC values', () => {
  const rfc = timerDurations(resolveTimerConfig(), false);
  assert.deepEqual([rfc.D, rfc.J, rfc.L, rfc.M], [32_000, 32_000, 32_000, 32_000]);
  const short = timerDurations(resolveTimerConfig({ linger: 5000 }), false);
  assert.deepEqual([short.D, short.J, short.L, short.M], [5000, 5000, 5000, 5000]);
  assert.deepEqual([short.A, short.B, short.E, short.F, short.G, short.H, short.I, short.K], [rfc.A, rfc.B, rfc.E, rfc.F, rfc.G, rfc.H, rfc.I, rfc.K]);
  // Over streams nothing is retransmitted: D and J stay zero whatever the linger.
  const tcp = timerDurations(resolveTimerConfig({ linger: 5000 }), true);
  assert.deepEqual([tcp.D, tcp.J, tcp.L, tcp.M], [0, 0, 5000, 5000]);
  assert.throws(() => resolveTimerConfig({ linger: 0 }), (e: unknown) => e instanceof ConfigError && e.field === 'timers.linger');
});

test('with linger 5 s an INVITE server transaction leaves Accepted at 5 s, a non-INVITE one leaves Completed at 5 s', () => {
  const { clock, layer, user } = setup({ timers: { linger: 5000 } });
  const invite = incomingRequest('INVITE');
  layer.receive(invite);
  const ist = user.requests[0]!.st;
  assert.ok(ist instanceof InviteServerTransaction);
  ist.respond(createResponse(invite, 200, { toTag: 'b1' }));
  const bye = incomingRequest('BYE', { branch: 'z9hG4bKbye' });
  layer.receive(bye);
  const nist = user.requests[1]!.st;
  assert.ok(nist instanceof NonInviteServerTransaction);
  nist.respond(createResponse(bye, 200, { toTag: 'b1' }));
  clock.advance(4999);
  assert.deepEqual([ist.state, nist.state], ['Accepted', 'Completed']);
  clock.advance(1);
  assert.deepEqual([ist.state, nist.state], ['Terminated', 'Terminated']);
  assert.equal(layer.stats().serverTransactions, 0);
});

test('with linger 5 s an INVITE client transaction leaves Accepted (2xx) and Completed (non-2xx) at 5 s', () => {
  const { clock, layer, sender } = setup({ timers: { linger: 5000 } });
  const start = () => {
    const invite = outgoingRequest('INVITE');
    addVia(invite, sender, UDP_DEST);
    return { invite, ct: layer.sendRequest(invite, UDP_DEST, new RecordingHandlers(clock)) };
  };
  const a = start();
  const c = start();
  layer.receive(responseTo(a.invite, 200));
  layer.receive(responseTo(c.invite, 486));
  assert.deepEqual([a.ct.state, c.ct.state], ['Accepted', 'Completed']);
  clock.advance(4999);
  assert.deepEqual([a.ct.state, c.ct.state], ['Accepted', 'Completed']);
  clock.advance(1);
  assert.deepEqual([a.ct.state, c.ct.state], ['Terminated', 'Terminated']);
  assert.equal(layer.stats().clientTransactions, 0);
});

test('timers.linger in the config file: read, bounded, and a typo named', async () => {
  const { applyConfigObject, defaultConfig } = await import('../../src/server/config.js');
  assert.equal(applyConfigObject(defaultConfig(), { timers: { linger: 5000 } }).timers.linger, 5000);
  assert.equal(defaultConfig().timers.linger, undefined, 'the RFC values by default');
  assert.throws(() => applyConfigObject(defaultConfig(), { timers: { linger: 0 } }), (e: unknown) => e instanceof ConfigError && e.field === 'timers.linger');
  assert.throws(() => applyConfigObject(defaultConfig(), { timers: { lingr: 5000 } }), /timers\.lingr: unknown timer \(T1, T2, T4, linger\)/);
});

test('completed transactions wait out Timers J and L without a clock timer each: 1,000 calls hold one per duration', () => {
  const { clock, layer, user } = setup();
  for (let i = 0; i < 1000; i++) {
    const invite = incomingRequest('INVITE', { branch: `z9hG4bKinv${i}` });
    layer.receive(invite);
    user.requests.at(-1)!.st.respond(createResponse(invite, 200, { toTag: 'b1' }));
    const bye = incomingRequest('BYE', { branch: `z9hG4bKbye${i}` });
    layer.receive(bye);
    user.requests.at(-1)!.st.respond(createResponse(bye, 200, { toTag: 'b1' }));
  }
  assert.equal(layer.stats().serverTransactions, 2000);
  assert.equal(clock.pending, 1, 'J and L are both 64*T1: one queue, one timer');
  clock.advance(31_999);
  assert.equal(layer.stats().serverTransactions, 2000);
  clock.advance(1);
  assert.equal(layer.stats().serverTransactions, 0);
  assert.equal(clock.pending, 0);
});

test('a transaction terminated early leaves its wait entry stale: it does not end a later one', () => {
  const { clock, layer, user } = setup();
  const bye = incomingRequest('BYE', { branch: 'z9hG4bKstale' });
  layer.receive(bye);
  const st = user.requests[0]!.st;
  st.respond(createResponse(bye, 200, { toTag: 'b1' }));
  st.terminate();
  assert.equal(layer.stats().serverTransactions, 0);
  // The same branch again is a new transaction; the stale entry of the first must not end it at the first's deadline.
  clock.advance(16_000);
  layer.receive(incomingRequest('BYE', { branch: 'z9hG4bKstale' }));
  const again = user.requests[1]!.st;
  again.respond(createResponse(bye, 200, { toTag: 'b1' }));
  clock.advance(16_000);
  assert.equal(again.state, 'Completed');
  clock.advance(16_000);
  assert.equal(again.state, 'Terminated');
});
