import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialize, type SipRequest, type SipResponse } from '../../src/message/index.js';
import { Dialog, Dialogs } from '../../src/dialog/index.js';
import { parseText } from '../../src/testing/index.js';

// RFC 3261 §12 from both ends of one call: alice (UAC) -> proxy p1 (lr) -> proxy p2 (lr) -> bob (UAS).

function invite(extra: string[] = []): SipRequest {
  return parseText<SipRequest>(
    [
      'INVITE sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2',
      'Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1',
      'Via: SIP/2.0/UDP alice.example.org;branch=z9hG4bKa',
      'Record-Route: <sip:p2.example.com;lr>',
      'Record-Route: <sip:p1.example.com;lr>',
      'Max-Forwards: 68',
      '"Alice" <sip:alice@example.org>;tag=a1'.replace(/^/, 'From: '),
      'To: <sip:bob@example.com>',
      'Call-ID: call-1@alice.example.org',
      'CSeq: 314 INVITE',
      'Contact: <sip:alice@192.0.2.1:5060>',
      ...extra,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

function answer(status: number, toTag: string | undefined, contact = '<sip:bob@192.0.2.2:5062>', recordRoute = ['<sip:p2.example.com;lr>', '<sip:p1.example.com;lr>']): SipResponse {
  return parseText<SipResponse>(
    [
      `SIP/2.0 ${status} Whatever`,
      'Via: SIP/2.0/UDP alice.example.org;branch=z9hG4bKa',
      ...recordRoute.map((r) => `Record-Route: ${r}`),
      'From: "Alice" <sip:alice@example.org>;tag=a1',
      `To: <sip:bob@example.com>${toTag ? `;tag=${toTag}` : ''}`,
      'Call-ID: call-1@alice.example.org',
      'CSeq: 314 INVITE',
      ...(contact ? [`Contact: ${contact}`] : []),
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

/** A request as the other side receives it: serialised and parsed, as the wire would. */
function received(request: SipRequest, via = 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKin'): SipRequest {
  request.headers.prepend('via', via);
  return parseText<SipRequest>(serialize(request).toString('utf8'));
}

test('§12.1.2 UAC dialog from a 2xx: ID, route set reversed from Record-Route, remote target from Contact, local CSeq', () => {
  const d = Dialog.asUac(invite(), answer(200, 'b1'));
  assert.equal(d.state, 'Confirmed');
  assert.deepEqual([d.callId, d.localTag, d.remoteTag], ['call-1@alice.example.org', 'a1', 'b1']);
  assert.deepEqual(d.routeSet.map(String), ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
  assert.equal(d.remoteTarget.toString(), 'sip:bob@192.0.2.2:5062');
  assert.equal(d.localSeq, 314);
  assert.equal(d.remoteSeq, undefined);
  assert.equal(d.secure, false);
});

test('§12.1.1 UAS dialog: route set in Record-Route order, remote target from the Contact, remote CSeq, our tag in To', () => {
  const d = Dialog.asUas(invite(), 'b1');
  assert.deepEqual(d.routeSet.map(String), ['<sip:p2.example.com;lr>', '<sip:p1.example.com;lr>']);
  assert.equal(d.remoteTarget.toString(), 'sip:alice@192.0.2.1:5060');
  assert.deepEqual([d.localTag, d.remoteTag, d.remoteSeq, d.localSeq], ['b1', 'a1', 314, undefined]);
  assert.equal(d.local.tag, 'b1');
});

test('§12.2.1.1 loose routing: the remote target is the Request-URI, the route set the Route; CSeq counts up', () => {
  const d = Dialog.asUac(invite(), answer(200, 'b1'));
  const bye = d.createRequest('BYE');
  assert.equal(bye.uri.toString(), 'sip:bob@192.0.2.2:5062');
  assert.deepEqual(bye.headers.getAll('route'), ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
  assert.equal(bye.headers.get('cseq'), '315 BYE');
  assert.equal(bye.headers.get('from'), '"Alice" <sip:alice@example.org>;tag=a1');
  assert.equal(bye.headers.get('to'), '<sip:bob@example.com>;tag=b1');
  assert.equal(bye.headers.get('call-id'), 'call-1@alice.example.org');
  assert.equal(bye.headers.get('max-forwards'), '70');
  assert.equal(d.createRequest('INFO').headers.get('cseq'), '316 INFO');
  // §13.2.2.4: the ACK for a 2xx takes the INVITE's number, and leaves the local number alone.
  assert.equal(d.createRequest('ACK', { cseq: 314 }).headers.get('cseq'), '314 ACK');
  assert.equal(d.localSeq, 316);
  assert.throws(() => d.createRequest('ACK'), /CSeq number of the request it refers to/);
});

test('§12.2.1.1 strict routing: the first route is the Request-URI and the remote target the last Route', () => {
  const d = Dialog.asUac(invite(), answer(200, 'b1', '<sip:bob@192.0.2.2:5062>', ['<sip:p2.example.com>', '<sip:p1.example.com;method=INVITE>']));
  const bye = d.createRequest('BYE');
  assert.equal(bye.uri.toString(), 'sip:p1.example.com', 'without parameters a Request-URI may not carry');
  assert.deepEqual(bye.headers.getAll('route'), ['<sip:p2.example.com>', '<sip:bob@192.0.2.2:5062>']);
});

test('§12.2.2: a request out of order is refused 500; a target refresh moves the remote target; BYE ends the dialog', () => {
  const caller = Dialog.asUac(invite(), answer(200, 'b1'));
  const callee = Dialog.asUas(invite(), 'b1');
  const reinvite = caller.createRequest('INVITE', { headers: [['Contact', '<sip:alice@198.51.100.9:5070>']] });
  assert.equal(callee.receiveRequest(received(reinvite)), undefined);
  assert.equal(callee.remoteTarget.toString(), 'sip:alice@198.51.100.9:5070');
  assert.equal(callee.remoteSeq, 315);
  const stale = Dialog.asUac(invite(), answer(200, 'b1')).createRequest('INFO'); // CSeq 315 again
  assert.equal(callee.receiveRequest(received(stale)), undefined, 'equal is not lower');
  const older = parseText<SipRequest>(serialize(received(stale)).toString('utf8').replace('CSeq: 315 INFO', 'CSeq: 300 INFO'));
  assert.deepEqual(callee.receiveRequest(older)?.status, 500);
  assert.equal(callee.remoteSeq, 315, 'a refused request does not move the number');
  // The ACK for the re-INVITE carries its CSeq number; it is never out of order.
  assert.equal(callee.receiveRequest(received(caller.createRequest('ACK', { cseq: 315 }))), undefined);
  assert.equal(callee.receiveRequest(received(caller.createRequest('BYE'))), undefined);
  assert.equal(callee.state, 'Terminated');
});

test('§12.2.1.2: a 2xx to our target refresh moves the remote target; 481 or 408 ends the dialog', () => {
  const d = Dialog.asUac(invite(), answer(200, 'b1'));
  const update = d.createRequest('UPDATE');
  d.receiveResponse(update, answer(200, 'b1', '<sip:bob@203.0.113.5:5080>'));
  assert.equal(d.remoteTarget.toString(), 'sip:bob@203.0.113.5:5080');
  const info = d.createRequest('INFO');
  d.receiveResponse(info, answer(200, 'b1', '<sip:bob@203.0.113.99>'));
  assert.equal(d.remoteTarget.toString(), 'sip:bob@203.0.113.5:5080', 'INFO is no target refresh');
  d.receiveResponse(d.createRequest('INFO'), answer(481, 'b1'));
  assert.equal(d.state, 'Terminated');
  assert.throws(() => d.createRequest('BYE'), /terminated/);
});

test('forking: one early dialog per To tag; the 2xx confirms its own with the route set of the 2xx', () => {
  const dialogs = new Dialogs();
  const inv = invite();
  assert.equal(dialogs.fromResponse(inv, answer(100, undefined)), undefined, 'a 100 makes no dialog');
  const b1 = dialogs.fromResponse(inv, answer(180, 'b1', '<sip:bob@192.0.2.2>', ['<sip:p2.example.com;lr>', '<sip:p1.example.com;lr>']))!;
  const b2 = dialogs.fromResponse(inv, answer(183, 'b2', '<sip:bob@192.0.2.3>', ['<sip:p3.example.com;lr>', '<sip:p1.example.com;lr>']))!;
  assert.notEqual(b1, b2);
  assert.deepEqual([b1.state, b2.state, dialogs.size], ['Early', 'Early', 2]);
  assert.equal(dialogs.fromResponse(inv, answer(180, 'b2', '<sip:bob@192.0.2.3>')), b2, 'the same tag, the same dialog');
  // The 2xx comes through p4 this time: the confirmed dialog's route set is the 2xx's, not the 180's (§13.2.2.4).
  const ok = dialogs.fromResponse(inv, answer(200, 'b2', '<sip:bob@192.0.2.3>', ['<sip:p4.example.com;lr>', '<sip:p1.example.com;lr>']))!;
  assert.equal(ok, b2);
  assert.deepEqual([b1.state, b2.state], ['Early', 'Confirmed']);
  assert.deepEqual(b2.routeSet.map(String), ['<sip:p1.example.com;lr>', '<sip:p4.example.com;lr>']);
  assert.deepEqual(dialogs.ofRequest(inv).length, 2);
  // A 2xx from a third branch with no early dialog makes a confirmed one at once.
  const b3 = dialogs.fromResponse(inv, answer(200, 'b3', '<sip:bob@192.0.2.4>'))!;
  assert.equal(b3.state, 'Confirmed');
  assert.equal(dialogs.size, 3);
});

test('a final non-2xx ends the early dialogs of its request; an in-dialog request is matched by its tags or not at all', () => {
  const dialogs = new Dialogs();
  const inv = invite();
  const early = dialogs.fromResponse(inv, answer(180, 'b1'))!;
  assert.equal(dialogs.fromResponse(inv, answer(486, 'b1')), undefined);
  assert.equal(early.state, 'Terminated');
  assert.equal(dialogs.size, 0);

  const callee = dialogs.fromRequest(inv, 'b9');
  const caller = Dialog.asUac(inv, answer(200, 'b9'));
  const bye = received(caller.createRequest('BYE'));
  assert.equal(dialogs.match(bye), callee);
  const unknown = parseText<SipRequest>(serialize(bye).toString('utf8').replace('tag=b9', 'tag=zz'));
  assert.equal(dialogs.match(unknown), undefined, 'the caller answers 481 (§12.2.2)');
  dialogs.end(callee);
  assert.equal(dialogs.match(bye), undefined);
});

test('a response or request that cannot make a dialog is refused with the reason', () => {
  assert.throws(() => Dialog.asUac(invite(), answer(200, undefined)), /To tag/);
  assert.throws(() => Dialog.asUac(invite(), answer(200, 'b1', '')), /no Contact/);
  assert.throws(() => Dialog.asUac(invite(), answer(404, 'b1')), /makes no dialog/);
  const noContact = parseText<SipRequest>(serialize(invite()).toString('utf8').replace(/Contact: [^\r]*\r\n/, ''));
  assert.throws(() => Dialog.asUas(noContact, 'b1'), /no Contact/);
  const sips = parseText<SipRequest>(serialize(invite()).toString('utf8').replace('INVITE sip:bob', 'INVITE sips:bob'));
  assert.equal(Dialog.asUas(sips, 'b1').secure, true);
});

test('§12.2.2: a request with a lower CSeq is refused 500, unless the caller accepts it out of order (the remote number stays)', async () => {
  const { Dialog } = await import('../../src/dialog/index.js');
  const { parseText } = await import('../../src/testing/index.js');
  const req = (method: string, seq: number) =>
    parseText<import('../../src/message/index.js').SipRequest>(
      [`${method} sip:bob@192.0.2.10 SIP/2.0`, 'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKooo' + seq, 'Max-Forwards: 70', 'From: <sip:alice@example.com>;tag=a', 'To: <sip:bob@example.com>', 'Call-ID: ooo', `CSeq: ${seq} ${method}`, 'Contact: <sip:alice@192.0.2.1>', 'Content-Length: 0', '', ''].join('\n'),
    );
  const d = Dialog.asUas(req('INVITE', 10), 'b');
  assert.equal(d.receiveRequest(req('BYE', 12)), undefined);
  assert.equal(d.receiveRequest(req('NOTIFY', 11))?.status, 500);
  assert.equal(d.receiveRequest(req('NOTIFY', 11), { outOfOrder: 'accept' }), undefined);
  assert.equal(d.remoteSeq, 12);
});
