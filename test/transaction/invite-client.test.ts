import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialize, type SipRequest } from '../../src/message/index.js';
import { addVia } from '../../src/transaction/index.js';
import { TransportError } from '../../src/transport/types.js';
import { outgoingRequest, RecordingHandlers, responseTo, settle, setup, TCP_DEST, UDP_DEST } from './helpers.js';

function startInvite(dest = UDP_DEST, route?: string) {
  const env = setup();
  // A proxied INVITE: the upstream Via stays below ours, which the ACK must not carry (§17.1.1.3).
  const invite = outgoingRequest('INVITE', { via: 'SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKupstream', route });
  addVia(invite, env.sender, dest);
  const handlers = new RecordingHandlers(env.clock);
  const ct = env.layer.sendRequest(invite, dest, handlers);
  return { ...env, invite, handlers, ct };
}

test('over UDP, Timer A retransmits the INVITE at 500, 1000, 2000, ... ms intervals until Timer B (64*T1) times out', () => {
  const { clock, sender, handlers, ct, layer } = startInvite();
  assert.equal(ct.state, 'Calling');
  const started = clock.now();
  clock.advance(40_000);
  assert.deepEqual(
    sender.requests('INVITE').map((s) => s.at),
    [0, 500, 1500, 3500, 7500, 15500, 31500],
  );
  assert.deepEqual(handlers.timeouts, [started + 32_000]);
  assert.equal(ct.state, 'Terminated');
  assert.deepEqual(layer.stats(), { clientTransactions: 0, serverTransactions: 0, retransmissions: 6, timeouts: 1, rejected: 0 });
  assert.equal(clock.pending, 0);
});

test('over TCP there are no retransmissions, but Timer B still ends the Calling state', () => {
  const { clock, sender, handlers, ct } = startInvite(TCP_DEST);
  clock.advance(31_999);
  assert.equal(sender.requests('INVITE').length, 1);
  assert.equal(handlers.timeouts.length, 0);
  clock.advance(1);
  assert.equal(handlers.timeouts.length, 1);
  assert.equal(ct.state, 'Terminated');
});

test('a provisional response stops retransmissions and Timer B; it reaches the TU', () => {
  const { clock, sender, handlers, ct, invite, layer } = startInvite();
  clock.advance(600);
  layer.receive(responseTo(invite, 180));
  assert.equal(ct.state, 'Proceeding');
  clock.advance(60_000);
  assert.equal(sender.requests('INVITE').length, 2);
  assert.deepEqual(handlers.timeouts, []);
  assert.deepEqual(handlers.responses.map((r) => r.status), [180]);
  assert.equal(ct.state, 'Proceeding');
});

test('a non-2xx final response is ACKed by the transaction with the headers of §17.1.1.3', () => {
  const { sender, handlers, ct, invite, layer } = startInvite(UDP_DEST, '<sip:proxy.example.net;lr>');
  layer.receive(responseTo(invite, 183));
  const busy = responseTo(invite, 486, 'uas-tag');
  layer.receive(busy);
  assert.equal(ct.state, 'Completed');
  assert.deepEqual(handlers.responses.map((r) => r.status), [183, 486]);

  const acks = sender.requests('ACK');
  assert.equal(acks.length, 1);
  assert.deepEqual(acks[0]!.destination, UDP_DEST);
  const ack = acks[0]!.message as SipRequest;
  assert.equal(ack.uri.toString(), invite.uri.toString());
  assert.equal(ack.callId, invite.callId);
  assert.equal(ack.headers.get('from'), invite.headers.get('from'));
  assert.deepEqual(ack.cseq, { seq: invite.cseq.seq, method: 'ACK' });
  assert.equal(ack.headers.get('to'), busy.headers.get('to'));
  assert.equal(ack.toTag, 'uas-tag');
  assert.deepEqual(ack.headers.getAll('via'), [invite.via.toString()]);
  assert.equal(ack.via.branch, invite.via.branch);
  assert.deepEqual(ack.headers.getAll('route'), ['<sip:proxy.example.net;lr>']);
  assert.equal(ack.maxForwards, 70);
  assert.equal(ack.headers.has('contact'), false);
  assert.match(serialize(ack).toString(), /\r\nContent-Length: 0\r\n\r\n$/);
});

test('in Completed, a retransmitted non-2xx is absorbed and answered with the same ACK; Timer D (32 s) ends it', () => {
  const { clock, sender, handlers, ct, invite, layer } = startInvite();
  layer.receive(responseTo(invite, 486));
  clock.advance(1000);
  layer.receive(responseTo(invite, 486));
  layer.receive(responseTo(invite, 486));
  assert.equal(handlers.responses.length, 1);
  const acks = sender.requests('ACK');
  assert.equal(acks.length, 3);
  // The very same ACK each time: the bytes sent first, resent.
  assert.ok(acks.every((a) => serialize(a.message).equals(serialize(acks[0]!.message))));
  clock.advance(30_999);
  assert.equal(ct.state, 'Completed');
  clock.advance(1);
  assert.equal(ct.state, 'Terminated');
  // Once terminated, a late retransmission matches nothing.
  layer.receive(responseTo(invite, 486));
  assert.equal(layer.stats().clientTransactions, 0);
});

test('over TCP Timer D is zero: the transaction terminates as soon as the ACK is sent', () => {
  const { sender, ct, invite, layer, handlers } = startInvite(TCP_DEST);
  layer.receive(responseTo(invite, 603));
  assert.equal(sender.requests('ACK').length, 1);
  assert.equal(ct.state, 'Terminated');
  assert.deepEqual(handlers.responses.map((r) => r.status), [603]);
});

test('a 2xx moves to Accepted (RFC 6026): retransmissions reach the TU, no ACK is generated, Timer M ends it', () => {
  const { clock, sender, handlers, ct, invite, layer, user } = startInvite();
  clock.advance(4000);
  layer.receive(responseTo(invite, 200));
  assert.equal(ct.state, 'Accepted');
  clock.advance(4000);
  layer.receive(responseTo(invite, 200));
  assert.deepEqual(handlers.responses.map((r) => r.status), [200, 200]);
  assert.equal(sender.requests('ACK').length, 0);
  assert.equal(sender.requests('INVITE').length, 4, 'retransmissions stopped at the 2xx');
  clock.advance(28_000);
  assert.equal(ct.state, 'Terminated');
  layer.receive(responseTo(invite, 200));
  assert.equal(user.strays.length, 1, 'after Timer M a 2xx is a stray for the TU core');
});

test('a transport error is reported to the TU and terminates the transaction (§17.1.4)', async () => {
  const { clock, sender, layer } = setup();
  const failure = new TransportError('connect', 'connection refused', TCP_DEST);
  sender.failure = failure;
  const invite = outgoingRequest('INVITE');
  addVia(invite, sender, TCP_DEST);
  const handlers = new RecordingHandlers(clock);
  const ct = layer.sendRequest(invite, TCP_DEST, handlers);
  await settle();
  assert.deepEqual(handlers.transportErrors, [failure]);
  assert.equal(ct.state, 'Terminated');
  assert.equal(layer.stats().clientTransactions, 0);
  assert.equal(clock.pending, 0);
});
