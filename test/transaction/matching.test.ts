import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createResponse, type SipRequest } from '../../src/message/index.js';
import { clientKey, clientKeyOfResponse, InviteServerTransaction, NonInviteServerTransaction, serverKey } from '../../src/transaction/index.js';
import { sharedPath } from '../helpers/paths.js';
import { incomingRequest, parseBytes, parseText, responseTo, setup } from './helpers.js';

const rfc4475 = (name: string): Buffer => readFileSync(sharedPath('conformance', 'rfc4475', name));

/** A request derived from RFC 4475 inv2543 (RFC 2543 style: no branch, no From tag), as its sender would build it. */
function inv2543Request(method: string, options: { uri?: string; toTag?: string } = {}): SipRequest {
  return parseText<SipRequest>(
    [
      `${method} ${options.uri ?? 'sip:UserB@example.com'} SIP/2.0`,
      'Via: SIP/2.0/UDP iftgw.example.com',
      'From: <sip:+13035551111@ift.client.example.net;user=phone>',
      `To: sip:+16505552222@ss1.example.net;user=phone${options.toTag ? `;tag=${options.toTag}` : ''}`,
      'Call-ID: inv2543.1717@ift.client.example.com',
      `CSeq: 56 ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

test('client matching: top Via branch plus CSeq method (§17.1.3)', () => {
  const request = incomingRequest('INVITE', { branch: 'z9hG4bKxyz' });
  assert.equal(clientKeyOfResponse(responseTo(request, 180)), clientKey('z9hG4bKxyz', 'INVITE'));
  const cancel200 = responseTo(incomingRequest('CANCEL', { branch: 'z9hG4bKxyz' }), 200);
  assert.notEqual(clientKeyOfResponse(cancel200), clientKey('z9hG4bKxyz', 'INVITE'));
});

test('server matching: branch, sent-by and method; the ACK belongs to the INVITE (§17.2.3)', () => {
  const invite = incomingRequest('INVITE', { branch: 'z9hG4bKabc' });
  assert.equal(serverKey(incomingRequest('ACK', { branch: 'z9hG4bKabc', toTag: 'b1' })), serverKey(invite));
  assert.notEqual(serverKey(incomingRequest('CANCEL', { branch: 'z9hG4bKabc' })), serverKey(invite));
  assert.notEqual(serverKey(incomingRequest('INVITE', { via: 'SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKabc' })), serverKey(invite));
  // sent-by host is case-insensitive; Via parameters other than the branch do not take part.
  assert.equal(serverKey(incomingRequest('INVITE', { via: 'SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;branch=z9hG4bKabc' })), serverKey(invite));
});

test('RFC 4475 inv2543: matched by the RFC 2543 rules, retransmission absorbed, ACK matched by the To tag of our response', () => {
  const { layer, user, sender } = setup();
  const bytes = rfc4475('inv2543.dat');
  const invite = parseBytes<SipRequest>(bytes);
  assert.equal(invite.via.branch, undefined);
  layer.receive(invite);
  layer.receive(parseBytes(bytes));
  assert.equal(user.requests.length, 1, 'the retransmission matched the transaction');
  const st = user.requests[0]!.st;
  assert.ok(st instanceof InviteServerTransaction);
  assert.match(st.id, /^2543/);

  // §9.2: a CANCEL built per RFC 2543 (same Request-URI, To, From, Call-ID, CSeq number, Via) finds the INVITE.
  const cancel = inv2543Request('CANCEL');
  assert.equal(layer.findInviteForCancel(cancel), st);
  assert.equal(layer.findInviteForCancel(inv2543Request('CANCEL', { uri: 'sip:UserC@example.com' })), undefined);

  st.respond(createResponse(invite, 486, { toTag: 'uas1' }));
  // Wrong To tag: not for this transaction, so it reaches the TU unmatched.
  layer.receive(inv2543Request('ACK', { toTag: 'someone-else' }));
  assert.deepEqual(user.acks.map((a) => a.st), [undefined]);
  assert.equal(st.state, 'Completed');
  // Same fields, Request-URI equal under §19.1.4 (host case), To tag of our 486: the ACK for it.
  layer.receive(inv2543Request('ACK', { uri: 'sip:UserB@EXAMPLE.COM', toTag: 'uas1' }));
  assert.equal(st.state, 'Confirmed');
  assert.equal(user.acks.length, 1, 'absorbed');
  assert.equal(sender.responses(486).length, 1);
});

test('RFC 4475 inv2543: a request differing in the Request-URI is a different transaction', () => {
  const { layer, user } = setup();
  layer.receive(parseBytes(rfc4475('inv2543.dat')));
  layer.receive(inv2543Request('INVITE', { uri: 'sip:UserB@example.com;maddr=192.0.2.5' }));
  assert.equal(user.requests.length, 2);
});

test('RFC 4475 badbranch: a branch that is only the magic cookie falls back to the RFC 2543 rules', () => {
  const { layer, user, sender } = setup();
  const bytes = rfc4475('badbranch.dat');
  const options = parseBytes<SipRequest>(bytes);
  assert.equal(options.via.branch, 'z9hG4bK');
  assert.equal(options.via.hasRfc3261Branch, false);
  layer.receive(options);
  const st = user.requests[0]!.st;
  assert.ok(st instanceof NonInviteServerTransaction);
  assert.match(st.id, /^2543/);
  st.respond(createResponse(options, 200, { toTag: 'x' }));
  // A retransmission of the same bytes gets the same response again ...
  layer.receive(parseBytes(bytes));
  assert.equal(sender.responses(200).length, 2);
  // ... but another request with the same bare-cookie branch is not taken for it (branch matching would have).
  layer.receive(parseBytes(Buffer.from(bytes.toString('latin1').replace('badbranch.sadonfo23i420jv0as0derf3j3n', 'other-call'), 'latin1')));
  assert.equal(user.requests.length, 2);
});

test('CANCEL is its own server transaction; findInviteForCancel finds the INVITE it refers to (§9.2)', () => {
  const { layer, user, sender } = setup();
  layer.receive(incomingRequest('INVITE', { branch: 'z9hG4bKcall' }));
  const inviteSt = user.requests[0]!.st;
  const cancel = incomingRequest('CANCEL', { branch: 'z9hG4bKcall' });
  layer.receive(cancel);
  const cancelSt = user.requests[1]!.st;
  assert.ok(cancelSt instanceof NonInviteServerTransaction);
  assert.equal(layer.findInviteForCancel(cancel), inviteSt);

  // What a UAS core does with it: 200 to the CANCEL, 487 to the INVITE.
  cancelSt.respond(createResponse(cancel, 200, { toTag: 'b1' }));
  inviteSt.respond(createResponse(inviteSt.request, 487, { toTag: 'b1' }));
  assert.equal(sender.responses(200).length, 1);
  assert.equal(sender.responses(487).length, 1);

  // Another branch, or the same branch from another sent-by, refers to nothing: the TU answers 481.
  assert.equal(layer.findInviteForCancel(incomingRequest('CANCEL', { branch: 'z9hG4bKother' })), undefined);
  assert.equal(layer.findInviteForCancel(incomingRequest('CANCEL', { via: 'SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKcall' })), undefined);
});
