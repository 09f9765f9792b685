import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, type SipRequest } from '../../src/message/index.js';
import { InviteServerTransaction, TransactionTimeoutError } from '../../src/transaction/index.js';
import { TransportError } from '../../src/transport/types.js';
import { incomingRequest, RecordingUser, settle, setup } from './helpers.js';

function receiveInvite(transport = 'UDP', user?: RecordingUser) {
  const env = setup({ user });
  const invite = incomingRequest('INVITE', { transport });
  env.layer.receive(invite);
  const st = env.user.requests[0]!.st;
  assert.ok(st instanceof InviteServerTransaction);
  return { ...env, invite, st };
}

/** The ACK a UAC sends for a non-2xx final response: same branch as the INVITE, To with the response's tag. */
function non2xxAck(st: InviteServerTransaction, transport = 'UDP'): SipRequest {
  return incomingRequest('ACK', { transport, toTag: st.finalToTag ?? undefined });
}

test('the TU gets a new INVITE once; retransmissions are absorbed and answered with the latest provisional', () => {
  const { layer, user, sender, st, invite } = receiveInvite();
  assert.equal(st.state, 'Proceeding');
  st.respond(createResponse(invite, 180, { toTag: 'b1' }));
  layer.receive(incomingRequest('INVITE'));
  layer.receive(incomingRequest('INVITE'));
  assert.equal(user.requests.length, 1);
  assert.deepEqual(sender.responses().map((s) => s.message.isRequest ? 0 : s.message.status), [180, 180, 180]);
  assert.deepEqual(sender.responses()[0]!.destination, { transport: 'udp', address: '192.0.2.1', port: 5060 });
  assert.equal(layer.stats().retransmissions, 2);
});

test('100 Trying is sent after 200 ms when the TU has not sent a provisional response (§17.2.1)', () => {
  const { clock, sender, st } = receiveInvite();
  clock.advance(199);
  assert.equal(sender.responses().length, 0);
  clock.advance(1);
  const trying = sender.responses(100);
  assert.equal(trying.length, 1);
  assert.equal(trying[0]!.at, 200);
  assert.equal(st.state, 'Proceeding');
  assert.equal(trying[0]!.message.isRequest ? undefined : trying[0]!.message.toTag, undefined, '100 Trying carries no To tag');
});

test('no 100 Trying when the TU answers within 200 ms', () => {
  const user = new RecordingUser((req, st) => st.respond(createResponse(req, 180, { toTag: 'b1' })));
  const { clock, sender } = receiveInvite('UDP', user);
  clock.advance(1000);
  assert.deepEqual(sender.responses().map((s) => (s.message.isRequest ? 0 : s.message.status)), [180]);
});

test('a non-2xx final is retransmitted by Timer G (T1 doubling, capped at T2) until the ACK; Timer I then ends it', () => {
  const { clock, layer, sender, st, invite, user } = receiveInvite();
  st.respond(createResponse(invite, 486, { toTag: 'b1' }));
  assert.equal(st.state, 'Completed');
  clock.advance(12_000);
  assert.deepEqual(sender.responses(486).map((s) => s.at), [0, 500, 1500, 3500, 7500, 11500]);
  // A retransmitted INVITE in Completed gets the final response again.
  layer.receive(incomingRequest('INVITE'));
  assert.equal(sender.responses(486).length, 7);

  layer.receive(non2xxAck(st));
  assert.equal(st.state, 'Confirmed');
  layer.receive(non2xxAck(st));
  assert.equal(user.acks.length, 0, 'the ACK for a non-2xx is absorbed by the transaction');
  clock.advance(20_000);
  assert.equal(sender.responses(486).length, 7, 'Timer G stopped at the ACK');
  assert.equal(st.state, 'Terminated');
});

test('Timer I is T4 over UDP', () => {
  const { clock, layer, st, invite } = receiveInvite();
  st.respond(createResponse(invite, 404));
  layer.receive(non2xxAck(st));
  clock.advance(4999);
  assert.equal(st.state, 'Confirmed');
  clock.advance(1);
  assert.equal(st.state, 'Terminated');
});

test('without an ACK, Timer H (64*T1) terminates the transaction and reports the failure to the TU', () => {
  const { clock, layer, st, invite, user } = receiveInvite();
  const started = clock.now();
  st.respond(createResponse(invite, 500));
  clock.advance(31_999);
  assert.equal(st.state, 'Completed');
  clock.advance(1);
  assert.equal(st.state, 'Terminated');
  assert.equal(clock.now() - started, 32_000);
  assert.equal(user.errors.length, 1);
  assert.equal(user.errors[0]!.st, st);
  assert.ok(user.errors[0]!.err instanceof TransactionTimeoutError);
  assert.equal(layer.stats().timeouts, 1);
  assert.equal(layer.stats().serverTransactions, 0);
});

test('over TCP: no Timer G retransmissions, Timer I is zero', () => {
  const { clock, layer, sender, st, invite } = receiveInvite('TCP');
  st.respond(createResponse(invite, 486));
  clock.advance(10_000);
  assert.equal(sender.responses(486).length, 1);
  layer.receive(non2xxAck(st, 'TCP'));
  assert.equal(st.state, 'Terminated');
});

test('a 2xx moves to Accepted (RFC 6026): INVITE retransmissions absorbed, 2xx ACKs reach the TU, Timer L ends it', () => {
  const { clock, layer, sender, st, invite, user } = receiveInvite();
  const ok = createResponse(invite, 200, { toTag: 'b1' });
  st.respond(ok);
  assert.equal(st.state, 'Accepted');
  layer.receive(incomingRequest('INVITE'));
  assert.equal(sender.responses(200).length, 1, 'the transaction does not retransmit a 2xx itself');
  assert.equal(user.requests.length, 1);
  // The TU core retransmits its 2xx (§13.3.1.4); the transaction lets it through.
  st.respond(ok);
  assert.equal(sender.responses(200).length, 2);
  // Non-2xx responses are no longer allowed.
  st.respond(createResponse(invite, 486));
  assert.equal(sender.responses(486).length, 0);

  // An RFC 3261 ACK for a 2xx is its own transaction (new branch) and matches nothing.
  layer.receive(incomingRequest('ACK', { branch: 'z9hG4bKack2xx', toTag: 'b1' }));
  // One that reuses the INVITE's branch matches the transaction in Accepted and goes up with it.
  layer.receive(incomingRequest('ACK', { toTag: 'b1' }));
  assert.deepEqual(user.acks.map((a) => a.st), [undefined, st]);
  assert.equal(st.state, 'Accepted');

  clock.advance(31_999);
  assert.equal(st.state, 'Accepted');
  clock.advance(1);
  assert.equal(st.state, 'Terminated');
  assert.equal(user.errors.length, 0);
});

test('responses after the final one are discarded; an impossible status is a programming error', () => {
  const { sender, st, invite } = receiveInvite();
  assert.throws(() => st.respond(createResponse(invite, 99)), RangeError);
  assert.throws(() => st.respond(createResponse(invite, 700)), RangeError);
  st.respond(createResponse(invite, 603));
  st.respond(createResponse(invite, 180));
  st.respond(createResponse(invite, 200));
  assert.deepEqual(sender.responses().map((s) => (s.message.isRequest ? 0 : s.message.status)), [603]);
});

test('a transport error on a response is reported to the TU and terminates the transaction (§17.2.4)', async () => {
  const { sender, st, invite, user, clock } = receiveInvite('TCP');
  const failure = new TransportError('closed', 'connection closed');
  sender.failure = failure;
  st.respond(createResponse(invite, 180));
  await settle();
  assert.equal(st.state, 'Terminated');
  assert.deepEqual(user.errors.map((e) => e.err), [failure]);
  assert.equal(clock.pending, 0);
});
