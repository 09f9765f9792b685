import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseMessage,
  serialize,
  createResponse,
  SipRequest,
  SipResponse,
  decrementMaxForwards,
  prependVia,
  removeTopRoute,
  addRecordRoute,
  removeTopVia,
  resolveLimits,
} from '../../src/message/index.js';
import { wire, INVITE_LINES, OK_LINES, SDP_BODY } from '../helpers/messages.js';

function req(bytes: Buffer): SipRequest {
  const r = parseMessage(bytes);
  assert.ok(r.ok, r.ok ? '' : r.error.toString());
  assert.ok(r.message instanceof SipRequest);
  return r.message;
}

test('parses a typical INVITE with its hot headers', () => {
  const m = req(wire(INVITE_LINES, SDP_BODY));
  assert.equal(m.method, 'INVITE');
  assert.equal(m.uri.toString(), 'sip:bob@biloxi.example.com');
  assert.equal(m.via.branch, 'z9hG4bK776asdhds');
  assert.equal(m.via.rport, null);
  assert.equal(m.via.host, 'pc33.atlanta.example.com');
  assert.deepEqual(m.cseq, { seq: 314159, method: 'INVITE' });
  assert.equal(m.callId, 'a84b4c76e66710@pc33.atlanta.example.com');
  assert.equal(m.fromTag, '1928301774');
  assert.equal(m.toTag, undefined);
  assert.equal(m.maxForwards, 70);
  assert.equal(m.body.toString(), SDP_BODY);
  assert.equal(m.contacts[0]!.uri.toString(), 'sip:alice@pc33.atlanta.example.com');
  assert.equal(m.from.displayNameText, 'Alice');
});

test('compact forms, case-insensitive names, folding and unknown headers kept verbatim', () => {
  const bytes = Buffer.from(
    'OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\nf: <sip:c@d>;tag=1\r\nT: sip:a@b\r\ni: id1\r\n' +
      'cSeQ: 1\r\n  OPTIONS\r\nX-Custom:  one ,  two\r\n\tthree\r\nl: 0\r\n\r\n',
  );
  const m = req(bytes);
  assert.equal(m.headers.get('Via'), 'SIP/2.0/UDP h;branch=z9hG4bKx');
  assert.equal(m.callId, 'id1');
  assert.equal(m.cseq.method, 'OPTIONS');
  assert.equal(m.headers.get('x-custom'), 'one ,  two \tthree');
  // Serialising an untouched message gives the bytes back.
  assert.deepEqual(serialize(m), bytes);
});

test('multi-valued headers split at top-level commas only', () => {
  const m = req(
    wire([
      'REGISTER sip:example.com SIP/2.0',
      'Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5070;branch=z9hG4bK2',
      'Via: SIP/2.0/UDP c;branch=z9hG4bK3',
      'To: <sip:u@example.com>',
      'From: <sip:u@example.com>;tag=x',
      'Call-ID: c',
      'CSeq: 1 REGISTER',
      'Contact: "Doe, John" <sip:a@h1>;q=0.5, <sip:b@h2;lr>;expires=60',
    ]),
  );
  assert.deepEqual(
    m.vias.map((v) => `${v.transport} ${v.sentBy}`),
    ['UDP a', 'TCP b:5070', 'UDP c'],
  );
  assert.equal(m.contacts.length, 2);
  assert.equal(m.contacts[0]!.displayNameText, 'Doe, John');
  assert.equal(m.contacts[0]!.params.get('q'), '0.5');
  assert.equal(m.contacts[1]!.params.get('expires'), '60');
});

test('responses: status line, empty reason, body framing', () => {
  const r = parseMessage(wire(OK_LINES, SDP_BODY));
  assert.ok(r.ok && r.message instanceof SipResponse);
  assert.equal(r.message.status, 200);
  assert.equal(r.message.reason, 'OK');
  assert.equal(r.message.vias.length, 3);
  const e = parseMessage(Buffer.from('SIP/2.0 100 \r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\nFrom: <sip:a@b>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n'));
  assert.ok(e.ok && !e.message.isRequest && e.message.reason === '');
  for (const bad of ['SIP/2.0 1000 X', 'SIP/2.0 099 X', 'SIP/2.0 7xx X']) {
    const p = parseMessage(Buffer.from(bad + '\r\n\r\n'));
    assert.ok(!p.ok && p.error.code === 'STATUS_CODE', bad);
  }
});

test('faults are values with codes and statuses', () => {
  const cases: Array<[Buffer, string, number]> = [
    [Buffer.from('INVITE sip:a@b SIP/3.0\r\n\r\n'), 'VERSION', 505],
    [Buffer.from('INVITE  sip:a@b SIP/2.0\r\n\r\n'), 'START_LINE', 400],
    [wire(INVITE_LINES.filter((l) => !l.startsWith('Call-ID'))), 'MISSING_HEADER', 400],
    [wire([...INVITE_LINES, 'CSeq: 2 INVITE']), 'DUPLICATE_HEADER', 400],
    [wire(INVITE_LINES.map((l) => (l.startsWith('Max-Forwards') ? 'Max-Forwards: 256' : l))), 'MAX_FORWARDS', 400],
    [wire(INVITE_LINES.map((l) => (l.startsWith('CSeq') ? 'CSeq: 4294967296 INVITE' : l))), 'CSEQ', 400],
    [Buffer.from('INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 10\r\n\r\nabc'), 'BODY_TRUNCATED', 400],
    [Buffer.from('INVITE sip:a@b SIP/2.0\r\nBad Header\r\n\r\n'), 'HEADER_SYNTAX', 400],
  ];
  for (const [bytes, code, status] of cases) {
    const r = parseMessage(bytes);
    assert.ok(!r.ok, code);
    assert.equal(r.error.code, code);
    assert.equal(r.error.status, status);
  }
});

test('limits are named and over-limit gives 513 with the message kept for answering', () => {
  const many = [...INVITE_LINES, ...Array.from({ length: 20 }, (_, i) => `X-H${i}: v`)];
  const r = parseMessage(wire(many), { limits: resolveLimits({ maxHeaders: 15 }) });
  assert.ok(!r.ok && r.error.status === 513 && r.error.code === 'TOO_MANY_HEADERS' && r.message);
  const vias = [...INVITE_LINES, ...Array.from({ length: 10 }, (_, i) => `Via: SIP/2.0/UDP h${i};branch=z9hG4bK${i}`)];
  const v = parseMessage(wire(vias), { limits: resolveLimits({ maxVias: 5 }) });
  assert.ok(!v.ok && v.error.code === 'TOO_MANY_VIAS' && v.error.status === 513);
  const long = parseMessage(wire([...INVITE_LINES, 'X-Long: ' + 'a'.repeat(2000)]), { limits: resolveLimits({ maxHeaderLineLength: 1000 }) });
  assert.ok(!long.ok && long.error.code === 'HEADER_TOO_LONG');
  const body = parseMessage(wire(INVITE_LINES, 'x'.repeat(500)), { limits: resolveLimits({ maxBodySize: 100 }) });
  assert.ok(!body.ok && body.error.code === 'BODY_TOO_LARGE' && body.error.status === 513);
  const size = parseMessage(wire(INVITE_LINES, 'x'.repeat(500)), { limits: resolveLimits({ maxMessageSize: 600 }) });
  assert.ok(!size.ok && size.error.code === 'TOO_LARGE');
});

test('stream parsing requires Content-Length; datagrams take the rest', () => {
  const noCl = Buffer.from(wire(INVITE_LINES).toString().replace(/Content-Length: 0\r\n/, '') + 'body');
  const d = parseMessage(noCl);
  assert.ok(d.ok && d.message.body.toString() === 'body');
  const s = parseMessage(noCl, { stream: true });
  assert.ok(!s.ok && s.error.code === 'CONTENT_LENGTH');
});

test('proxy edit list: edits touch only their fields and serialise once', () => {
  const original = wire([...INVITE_LINES, 'Route: <sip:proxy.example.com;lr>, <sip:next.example.com;lr>'], SDP_BODY);
  const m = req(original);
  prependVia(m, 'SIP/2.0/UDP proxy.example.com;branch=z9hG4bKproxy1');
  assert.equal(decrementMaxForwards(m), 69);
  assert.equal(removeTopRoute(m), '<sip:proxy.example.com;lr>');
  addRecordRoute(m, '<sip:proxy.example.com;lr>');
  const out = serialize(m).toString();
  assert.match(out, /^INVITE sip:bob@biloxi.example.com SIP\/2.0\r\nVia: SIP\/2.0\/UDP proxy.example.com;branch=z9hG4bKproxy1\r\nVia: SIP\/2.0\/UDP pc33/);
  assert.match(out, /\r\nMax-Forwards: 69\r\n/);
  assert.match(out, /\r\nRoute: <sip:next.example.com;lr>\r\n/);
  assert.match(out, /\r\nRecord-Route: <sip:proxy.example.com;lr>\r\n/);
  assert.ok(out.endsWith(SDP_BODY));
  const again = req(serialize(m));
  assert.equal(again.via.branch, 'z9hG4bKproxy1');
  assert.equal(again.vias.length, 2);
  assert.equal(again.routes.length, 1);
  // Typed views follow edits.
  assert.equal(m.via.branch, 'z9hG4bKproxy1');
  removeTopVia(m);
  assert.equal(m.via.branch, 'z9hG4bK776asdhds');
  // Content-Length follows the body.
  m.body = Buffer.from('abc');
  assert.match(serialize(m).toString(), /Content-Length: 3\r\n\r\nabc$/);
});

test('response builder copies Via/From/To/Call-ID/CSeq and adds a To tag (§8.2.6)', () => {
  const m = req(wire([...INVITE_LINES, 'Record-Route: <sip:p1.example.com;lr>', 'Via: SIP/2.0/UDP second;branch=z9hG4bK2']));
  const trying = createResponse(m, 100);
  assert.equal(trying.to.tag, undefined, '100 Trying carries no To tag');
  const ringing = createResponse(m, 180, { toTag: 'abc' });
  assert.equal(ringing.to.tag, 'abc');
  assert.equal(ringing.vias.length, 2);
  assert.equal(ringing.headers.get('record-route'), '<sip:p1.example.com;lr>');
  assert.equal(ringing.callId, m.callId);
  assert.deepEqual(ringing.cseq, m.cseq);
  const busy = createResponse(m, 486, { headers: [['Retry-After', '60']] });
  assert.equal(busy.reason, 'Busy Here');
  assert.equal(busy.headers.get('record-route'), undefined);
  const text = serialize(busy).toString();
  assert.match(text, /^SIP\/2.0 486 Busy Here\r\nVia: SIP\/2.0\/UDP pc33[^\r]*\r\nVia: SIP\/2.0\/UDP second[^\r]*\r\nFrom: [^\r]*\r\nTo: Bob <sip:bob@biloxi.example.com>;tag=\w+\r\nCall-ID: [^\r]*\r\nCSeq: 314159 INVITE\r\nRetry-After: 60\r\nContent-Length: 0\r\n\r\n$/);
});
