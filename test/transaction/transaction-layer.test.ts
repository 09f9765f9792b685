import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createResponse, type SipRequest, type SipResponse } from '../../src/message/index.js';
import {
  addVia,
  InviteClientTransaction,
  TRANSACTION_CHANNEL,
  TransactionLayer,
  type TransactionEvent,
} from '../../src/transaction/index.js';
import { TransportError, type Destination, type MessageSender } from '../../src/transport/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { LoopTransport } from '../../src/testing/loop-transport.js';
import { ConfigError, SipError } from '../../src/util/errors.js';
import { incomingRequest, outgoingRequest, RecordingHandlers, RecordingUser, responseTo, setup, UDP_DEST } from './helpers.js';

test('addVia puts our Via on top: transport, advertised sent-by, a fresh magic-cookie branch and rport', () => {
  const { sender } = setup();
  const request = outgoingRequest('OPTIONS', { via: 'SIP/2.0/TCP 198.51.100.7;branch=z9hG4bKup' });
  const via = addVia(request, sender, UDP_DEST);
  assert.match(request.headers.getAll('via')[0]!, /^SIP\/2\.0\/UDP 192\.0\.2\.10:5060;branch=z9hG4bK[a-z0-9]{16};rport$/);
  assert.equal(request.via.branch, via.branch);
  assert.equal(request.via.rport, null);
  assert.equal(request.vias.length, 2);
  assert.notEqual(addVia(outgoingRequest('OPTIONS'), sender, UDP_DEST).branch, via.branch);
  const asked: Array<Destination | string> = [];
  const v6: MessageSender = {
    send: () => Promise.resolve(),
    resend: () => Promise.resolve(),
    isReliable: () => false,
    listenerFor: (destination) => {
      asked.push(destination);
      return { transport: 'tcp', host: '::', port: 5062, advertised: '[2001:db8::10]:5062' };
    },
  };
  const v6Request = outgoingRequest('OPTIONS');
  const v6Dest: Destination = { transport: 'tcp', address: '2001:db8::20', port: 5060 };
  addVia(v6Request, v6, v6Dest);
  // The sender is asked about the destination itself: the listener that will send it names the Via.
  assert.deepEqual([v6Request.via.transport, v6Request.via.host, v6Request.via.port, asked], ['TCP', '[2001:db8::10]', 5062, [v6Dest]]);
  const none: MessageSender = { ...v6, listenerFor: () => undefined };
  assert.throws(() => addVia(outgoingRequest('OPTIONS'), none, UDP_DEST), (e: unknown) => e instanceof TransportError && e.kind === 'no-listener');
});

test('beyond maxTransactions a new request gets a stateless 503 with Retry-After and is not stored', () => {
  const { layer, user, sender } = setup({ maxTransactions: 2 });
  layer.receive(incomingRequest('INVITE', { branch: 'z9hG4bK1' }));
  layer.receive(incomingRequest('OPTIONS', { branch: 'z9hG4bK2' }));
  layer.receive(incomingRequest('OPTIONS', { branch: 'z9hG4bK3' }));
  assert.equal(user.requests.length, 2);
  const rejected = sender.responses(503);
  assert.equal(rejected.length, 1);
  const response = rejected[0]!.message as SipResponse;
  assert.equal(response.headers.get('retry-after'), '5');
  assert.equal(response.via.branch, 'z9hG4bK3');
  assert.deepEqual(rejected[0]!.destination, { transport: 'udp', address: '192.0.2.1', port: 5060 });
  assert.deepEqual(layer.stats(), { clientTransactions: 0, serverTransactions: 2, retransmissions: 0, timeouts: 0, rejected: 1 });
  // Retransmissions of stored transactions are still matched, and the TU cannot start client transactions either.
  layer.receive(incomingRequest('OPTIONS', { branch: 'z9hG4bK2' }));
  assert.equal(layer.stats().rejected, 1);
  const request = outgoingRequest('OPTIONS');
  addVia(request, sender, UDP_DEST);
  assert.throws(
    () => layer.sendRequest(request, UDP_DEST, new RecordingHandlers(new FakeClock())),
    (e: unknown) => e instanceof SipError && e.status === 503,
  );
  assert.throws(() => new TransactionLayer({ sender, clock: new FakeClock(), maxTransactions: 0 }), ConfigError);
  assert.throws(() => new TransactionLayer({ sender, clock: new FakeClock(), timers: { T1: -1 } }), ConfigError);
});

test('state changes are published on the sipway:transaction diagnostics channel', () => {
  const events: TransactionEvent[] = [];
  const listener = (message: unknown): void => {
    events.push(message as TransactionEvent);
  };
  subscribe(TRANSACTION_CHANNEL, listener);
  try {
    const { layer, user, clock } = setup();
    layer.receive(incomingRequest('OPTIONS', { branch: 'z9hG4bKdiag' }));
    user.requests[0]!.st.respond(createResponse(user.requests[0]!.request, 200));
    clock.advance(32_000);
  } finally {
    unsubscribe(TRANSACTION_CHANNEL, listener);
  }
  const id = 'z9hG4bKdiag|192.0.2.1:5060|OPTIONS';
  assert.deepEqual(events, [
    { event: 'created', id, side: 'server', method: 'OPTIONS', state: 'Trying' },
    { event: 'state', id, side: 'server', method: 'OPTIONS', state: 'Completed' },
    { event: 'terminated', id, side: 'server', method: 'OPTIONS', state: 'Terminated' },
  ]);
});

function inviteInCalling() {
  const env = setup();
  const invite = outgoingRequest('INVITE', { route: '<sip:edge.example.net;lr>' });
  addVia(invite, env.sender, UDP_DEST);
  const handlers = new RecordingHandlers(env.clock);
  const ct = env.layer.sendRequest(invite, UDP_DEST, handlers);
  assert.ok(ct instanceof InviteClientTransaction);
  return { ...env, invite, handlers, ct };
}

test('cancel waits for a provisional response, then sends a §9.1 CANCEL in its own transaction', () => {
  const { layer, sender, invite, ct, handlers } = inviteInCalling();
  assert.equal(layer.cancel(ct), true);
  assert.equal(sender.requests('CANCEL').length, 0, 'no CANCEL before a provisional response');
  layer.receive(responseTo(invite, 180));
  const sent = sender.requests('CANCEL');
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.destination, UDP_DEST);
  const cancel = sent[0]!.message as SipRequest;
  assert.equal(cancel.uri.toString(), invite.uri.toString());
  for (const name of ['call-id', 'from', 'to']) assert.equal(cancel.headers.get(name), invite.headers.get(name), name);
  assert.deepEqual(cancel.cseq, { seq: invite.cseq.seq, method: 'CANCEL' });
  assert.deepEqual(cancel.headers.getAll('via'), [invite.via.toString()]);
  assert.deepEqual(cancel.headers.getAll('route'), ['<sip:edge.example.net;lr>']);
  assert.equal(layer.stats().clientTransactions, 2);
  // Asking again while that CANCEL is under way sends nothing more.
  assert.equal(layer.cancel(ct), true);
  assert.equal(sender.requests('CANCEL').length, 1);

  layer.receive(responseTo(cancel, 200));
  layer.receive(responseTo(invite, 487));
  assert.equal(ct.state, 'Completed');
  assert.equal(sender.requests('ACK').length, 1);
  assert.deepEqual(handlers.responses.map((r) => r.status), [180, 487]);
  assert.equal(layer.cancel(ct), false, 'nothing left to cancel');
});

test('a queued CANCEL is dropped when a final response arrives first', () => {
  const { layer, sender, invite, ct } = inviteInCalling();
  layer.cancel(ct);
  layer.receive(responseTo(invite, 200));
  layer.receive(responseTo(invite, 180));
  assert.equal(sender.requests('CANCEL').length, 0);
  assert.equal(ct.state, 'Accepted');
});

test('after a CANCEL, an INVITE that never gets a final response is given up after 64*T1 (§9.1)', () => {
  const { layer, invite, ct, handlers, clock } = inviteInCalling();
  layer.receive(responseTo(invite, 183));
  layer.cancel(ct);
  clock.advance(31_999);
  assert.equal(ct.state, 'Proceeding');
  clock.advance(1);
  assert.equal(ct.state, 'Terminated');
  assert.equal(handlers.timeouts.length, 1);
});

test('sendStateless routes by the request when given and never rejects', async () => {
  const { layer, sender } = setup();
  const request = incomingRequest('OPTIONS', { via: 'SIP/2.0/UDP 10.0.0.1:5060;received=192.0.2.1;rport=40000;branch=z9hG4bKs' });
  await layer.sendStateless(createResponse(request, 400), request);
  assert.deepEqual(sender.sent[0]!.destination, { transport: 'udp', address: '192.0.2.1', port: 40000 });
  await layer.sendStateless(createResponse(request, 200));
  assert.equal(sender.sent[1]!.destination, undefined);
  sender.failure = new TransportError('write', 'boom');
  await layer.sendStateless(createResponse(request, 500), request);
  assert.equal(layer.stats().serverTransactions, 0);
});

test('sendRequest refuses programming errors: ACK, no RFC 3261 branch, reused branch, CSeq mismatch', () => {
  const { layer, sender, clock } = setup();
  const handlers = new RecordingHandlers(clock);
  const ack = outgoingRequest('ACK');
  addVia(ack, sender, UDP_DEST);
  assert.throws(() => layer.sendRequest(ack, UDP_DEST, handlers), /ACK/);
  assert.throws(() => layer.sendRequest(outgoingRequest('OPTIONS', { via: 'SIP/2.0/UDP 192.0.2.10;branch=1234' }), UDP_DEST, handlers), /branch/);
  const request = outgoingRequest('OPTIONS');
  addVia(request, sender, UDP_DEST);
  layer.sendRequest(request, UDP_DEST, handlers);
  assert.throws(() => layer.sendRequest(request, UDP_DEST, handlers), /already used/);
  const mismatch = outgoingRequest('OPTIONS');
  mismatch.headers.set('cseq', '1 INFO');
  addVia(mismatch, sender, UDP_DEST);
  assert.throws(() => layer.sendRequest(mismatch, UDP_DEST, handlers), /CSeq/);
  assert.equal(sender.sent.length, 1);
});

test('a throwing TU does not break the layer', () => {
  const clock = new FakeClock();
  const sender = new LoopTransport({ clock });
  const layer = new TransactionLayer({ sender, clock });
  layer.receive(incomingRequest('OPTIONS', { branch: 'z9hG4bKearly' }));
  assert.equal(layer.stats().serverTransactions, 0, 'dropped before a TU is attached');
  layer.setUser(
    new RecordingUser(() => {
      throw new Error('TU bug');
    }),
  );
  layer.receive(incomingRequest('INVITE'));
  assert.equal(layer.stats().serverTransactions, 1);
  const request = outgoingRequest('OPTIONS');
  addVia(request, sender, UDP_DEST);
  const ct = layer.sendRequest(request, UDP_DEST, {
    onResponse: () => {
      throw new Error('handler bug');
    },
    onTimeout: () => {
      throw new Error('handler bug');
    },
    onTransportError: () => {},
  });
  layer.receive(responseTo(request, 100));
  clock.advance(32_000);
  assert.equal(ct.state, 'Terminated');
});

test('close terminates every transaction and cancels its timers', () => {
  const { layer, sender, clock } = setup();
  layer.receive(incomingRequest('INVITE'));
  const request = outgoingRequest('INVITE');
  addVia(request, sender, UDP_DEST);
  layer.sendRequest(request, UDP_DEST, new RecordingHandlers(clock));
  assert.ok(clock.pending > 0);
  layer.close();
  assert.equal(clock.pending, 0);
  assert.deepEqual(layer.stats(), { clientTransactions: 0, serverTransactions: 0, retransmissions: 0, timeouts: 0, rejected: 0 });
});

test('onTerminated: every listener runs once, in order, a throwing one does not stop the next; late ones run at once', () => {
  const { clock, layer, user } = setup();
  const bye = incomingRequest('BYE', { branch: 'z9hG4bKlisteners' });
  layer.receive(bye);
  const st = user.requests[0]!.st;
  const calls: string[] = [];
  st.onTerminated(() => calls.push('first'));
  st.onTerminated(() => {
    calls.push('second');
    throw new Error('listener fault');
  });
  st.onTerminated(() => calls.push('third'));
  st.respond(createResponse(bye, 200, { toTag: 'b1' }));
  assert.equal(calls.length, 0);
  clock.advance(32_000);
  assert.deepEqual(calls, ['first', 'second', 'third']);
  st.onTerminated(() => calls.push('late'));
  assert.deepEqual(calls, ['first', 'second', 'third', 'late']);
  clock.advance(60_000);
  assert.equal(calls.length, 4);
});

test('onAnswered: once per server transaction, at its final response, with the request it may let go of right after', () => {
  const { clock, layer, user } = setup();
  const options = incomingRequest('OPTIONS', { branch: 'z9hG4bKans1' });
  const invite = incomingRequest('INVITE', { branch: 'z9hG4bKans2' });
  const busy = incomingRequest('INVITE', { branch: 'z9hG4bKans3' });
  for (const r of [options, invite, busy]) layer.receive(r);
  const [o, i, b] = user.requests.map((r) => r.st);
  o!.respond(createResponse(options, 100));
  assert.equal(user.answered.length, 0, 'a provisional is no answer');
  o!.respond(createResponse(options, 200, { toTag: 'o' }));
  o!.respond(createResponse(options, 500, { toTag: 'o' }));
  clock.advance(300); // the INVITE transactions' own 100 Trying is not an answer either
  i!.respond(createResponse(invite, 200, { toTag: 'i' }));
  i!.respond(createResponse(invite, 200, { toTag: 'i' })); // the TU's 2xx retransmission
  b!.respond(createResponse(busy, 486, { toTag: 'b' }));
  layer.receive(options); // a retransmission, answered from the transaction
  assert.deepEqual(
    user.answered.map((a) => [a.request.method, a.request.callId === a.st.callId, a.response.status]),
    [['OPTIONS', true, 200], ['INVITE', true, 200], ['INVITE', true, 486]],
  );
  assert.equal(o!.holdsRequest, false, 'the non-INVITE transaction let its request go after the call');
});
