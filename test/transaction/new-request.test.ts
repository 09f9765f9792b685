import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage, parseUri, serialize, type SipRequest } from '../../src/message/index.js';
import { addVia, newRequest } from '../../src/transaction/index.js';
import { setup, UDP_DEST } from './helpers.js';

test('§8.1.1: a request outside a dialog carries To, From with a fresh tag, Call-ID, CSeq, Max-Forwards, and parses back', () => {
  const { sender } = setup();
  const uri = parseUri('sip:bob@example.com');
  const a = newRequest('OPTIONS', uri, { from: '"Alice" <sip:alice@example.org>' });
  const b = newRequest('OPTIONS', uri, { from: '"Alice" <sip:alice@example.org>' });
  assert.equal(a.headers.get('to'), '<sip:bob@example.com>', 'To is the Request-URI, without a tag');
  assert.equal(a.headers.get('max-forwards'), '70');
  assert.equal(a.headers.get('cseq'), '1 OPTIONS');
  assert.match(a.headers.get('from')!, /^"Alice" <sip:alice@example\.org>;tag=[a-z0-9]{12}$/);
  assert.notEqual(a.fromTag, b.fromTag);
  assert.notEqual(a.callId, b.callId);
  assert.equal(a.headers.get('contact'), undefined);
  addVia(a, sender, UDP_DEST);
  const back = parseMessage(serialize(a));
  assert.ok(back.ok, 'a valid request on the wire');
  assert.equal((back.message as SipRequest).method, 'OPTIONS');
});

test('§8.1.1: what the caller keeps (Call-ID, CSeq for a refresh or a retry) and adds (Contact, headers, body)', () => {
  const uri = parseUri('sip:registrar.example.com');
  const r = newRequest('REGISTER', uri, {
    from: '<sip:alice@example.com>',
    to: '<sip:alice@example.com>',
    callId: 'reg-1@alice',
    cseq: 7,
    maxForwards: 10,
    contact: '<sip:alice@192.0.2.1:5060>',
    headers: [['Expires', '600']],
  });
  assert.deepEqual(
    ['to', 'call-id', 'cseq', 'max-forwards', 'contact', 'expires'].map((h) => r.headers.get(h)),
    ['<sip:alice@example.com>', 'reg-1@alice', '7 REGISTER', '10', '<sip:alice@192.0.2.1:5060>', '600'],
  );
  const sdp = Buffer.from('v=0\r\n');
  const invite = newRequest('INVITE', parseUri('sip:bob@example.com'), { from: '<sip:alice@example.com>', contact: '<sip:alice@192.0.2.1>', body: sdp, contentType: 'application/sdp' });
  assert.equal(invite.headers.get('content-type'), 'application/sdp');
  assert.equal(invite.body.toString(), 'v=0\r\n');
  assert.throws(() => newRequest('INVITE', parseUri('sip:bob@example.com'), { from: '<sip:alice@example.com>' }), /needs a Contact/);
});
