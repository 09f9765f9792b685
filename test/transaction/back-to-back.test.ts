import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, Headers, SipRequest, type SipResponse } from '../../src/message/index.js';
import { addVia, TransactionLayer, type ClientTransaction } from '../../src/transaction/index.js';
import { LoopTransport } from '../../src/testing/loop-transport.js';
import type { Destination, MessageSender } from '../../src/transport/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { RecordingHandlers, RecordingUser, outgoingRequest } from './helpers.js';

const LATENCY_MS = 10;

/** What a transport sent, in order: method or status, `(lost)` when the network lost it. */
function log(transport: LoopTransport): string[] {
  return transport.sent.map(({ message, lost }) => `${message.isRequest ? message.method : message.status}${lost ? ' (lost)' : ''}`);
}

const UAS: Destination = { transport: 'udp', address: '192.0.2.20', port: 5060 };

/** Two layers on an in-memory UDP link: what one sends reaches the other LATENCY_MS later on the shared fake clock. */
function link() {
  const clock = new FakeClock();
  const uacSender = new LoopTransport({ clock, address: '192.0.2.10', latencyMs: LATENCY_MS });
  const uasSender = new LoopTransport({ clock, address: '192.0.2.20', latencyMs: LATENCY_MS });
  const uac = new TransactionLayer({ sender: uacSender, clock });
  const uas = new TransactionLayer({ sender: uasSender, clock });
  uacSender.deliverTo(uas);
  uasSender.deliverTo(uac);
  const uacUser = new RecordingUser();
  uac.setUser(uacUser);
  return { clock, uac, uas, uacSender, uasSender, uacUser };
}

/** §13.2.2.4: the UAC core's ACK for a 2xx, a request of its own with a new branch. */
function ackFor2xx(invite: SipRequest, ok: SipResponse, sender: MessageSender): SipRequest {
  const headers = new Headers();
  headers.append('max-forwards', '70');
  headers.append('from', invite.headers.get('from')!);
  headers.append('to', ok.headers.get('to')!);
  headers.append('call-id', invite.callId);
  headers.append('cseq', `${invite.cseq.seq} ACK`);
  const ack = new SipRequest('ACK', invite.uri.clone(), headers);
  addVia(ack, sender, UAS);
  return ack;
}

test('INVITE / 180 / 200 / ACK between two transaction layers', () => {
  const { clock, uac, uas, uacSender, uasSender } = link();
  const uasUser = new RecordingUser((request, st) => {
    const toTag = 'uas-tag';
    st.respond(createResponse(request, 180, { toTag }));
    clock.setTimer(1000, () => st.respond(createResponse(request, 200, { toTag })));
  });
  uas.setUser(uasUser);

  const invite = outgoingRequest('INVITE');
  addVia(invite, uacSender, UAS);
  const statuses: number[] = [];
  const ct: ClientTransaction = uac.sendRequest(invite, UAS, {
    onResponse: (response) => {
      statuses.push(response.status);
      if (response.status === 200) void uacSender.send(ackFor2xx(invite, response, uacSender), UAS);
    },
    onTimeout: () => assert.fail('timeout'),
    onTransportError: (err) => assert.fail(err),
  });

  clock.advance(1100);
  assert.deepEqual(statuses, [180, 200]);
  assert.equal(ct.state, 'Accepted');
  assert.equal(uasUser.requests[0]!.st.state, 'Accepted');
  assert.equal(uasUser.acks.length, 1);
  assert.equal(uasUser.acks[0]!.ack.toTag, 'uas-tag');
  assert.deepEqual(log(uacSender), ['INVITE', 'ACK']);
  assert.deepEqual(log(uasSender), ['180', '200']);

  clock.advance(32_000);
  assert.equal(ct.state, 'Terminated');
  assert.deepEqual(uac.stats(), { clientTransactions: 0, serverTransactions: 0, retransmissions: 0, timeouts: 0, rejected: 0 });
  assert.deepEqual(uas.stats(), { clientTransactions: 0, serverTransactions: 0, retransmissions: 0, timeouts: 0, rejected: 0 });
  assert.equal(clock.pending, 0);
});

test('a non-2xx with a lost ACK: the UAS retransmits the final response and the UAC transaction ACKs it again', () => {
  const { clock, uac, uas, uacSender, uasSender } = link();
  const uasUser = new RecordingUser((request, st) => {
    clock.setTimer(300, () => st.respond(createResponse(request, 486, { toTag: 'busy' })));
  });
  uas.setUser(uasUser);
  let acksLost = 0;
  uacSender.lose = (m) => m.isRequest && m.method === 'ACK' && acksLost++ === 0;

  const invite = outgoingRequest('INVITE');
  addVia(invite, uacSender, UAS);
  const handlers = new RecordingHandlers(clock);
  const ct = uac.sendRequest(invite, UAS, handlers);

  clock.advance(2000);
  assert.deepEqual(handlers.responses.map((r) => r.status), [100, 486]);
  assert.equal(ct.state, 'Completed');
  const st = uasUser.requests[0]!.st;
  assert.equal(st.state, 'Confirmed');
  assert.equal(uasUser.acks.length, 0, 'the ACK for a non-2xx stays in the transaction layer');
  // 100 Trying at 200 ms stopped the INVITE retransmission due at 500 ms; the 486 went twice, the ACK twice.
  assert.deepEqual(log(uacSender), ['INVITE', 'ACK (lost)', 'ACK']);
  assert.deepEqual(log(uasSender), ['100', '486', '486']);

  clock.advance(40_000);
  assert.equal(ct.state, 'Terminated');
  assert.equal(st.state, 'Terminated');
  assert.equal(uac.stats().retransmissions, 1);
  assert.equal(uas.stats().retransmissions, 1);
  assert.equal(clock.pending, 0);
});
