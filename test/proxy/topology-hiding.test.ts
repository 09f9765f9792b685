/**
 * Topology hiding, the proxy's stateless mode (src/proxy/topology-hiding.ts), without sockets: the encoding, and the
 * messages of a dialog as the proxy's forwarder and its response path make them, with proxies inside and outside.
 * Then calls end to end through `sipway serve` between sipway user agents, one inside and one outside.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callIdOwner, createResponse, parseMessage, serialize, type AnyMessage, type MessageSource, type SipRequest, type SipResponse, type SipUri } from '../../src/message/index.js';
import {
  CALL_ID_PREFIX,
  defaultTopologyHidingConfig,
  MAX_PLAINTEXT,
  ProxyIdentity,
  readTopologyHidingConfig,
  routedCopy,
  TopologyCodec,
  TopologyHiding,
  topologyHidingKey,
  type ProxySender,
  type Target,
} from '../../src/proxy/index.js';
import { startTestServer, UdpClient } from '../../src/testing/index.js';
import { FlowTokens, RECEIVE_CHANNEL, type BoundListener, type Destination, type ReceiveEvent, type SipResolver } from '../../src/transport/index.js';
import { UserAgent, type InviteSession, type UserAgentOptions } from '../../src/ua/index.js';
import { SipError } from '../../src/util/errors.js';
import { until, within } from '../helpers/waits.js';

const SECRET = 'topology-hiding-test-secret-0123456789';
const US: BoundListener = { transport: 'udp', host: '10.0.0.1', port: 5060, advertised: '10.0.0.1:5060' };
const identity = new ProxyIdentity({
  domains: ['example.com'],
  isLocalHost: (host, port) => host === US.host && (port === undefined || port === US.port),
  listeners: () => [US],
});
const sender: ProxySender = {
  listeners: () => [US],
  listenerFor: () => US,
  send: async () => undefined,
  resend: async () => undefined,
  isReliable: (t) => t !== 'udp',
};
const resolver: SipResolver = { resolve: async () => [], markFailed: () => undefined };
const tokens = new FlowTokens('flow-token-test-secret-0123456789');

/** What each side is made of: none of it may show on the other. */
const INSIDE = ['10.1.', 'inside-call', 'alice@10', '5062'];
const OUTSIDE = ['203.0.113.', 'outside-call', '5070'];

function hiding(outside: string[] = ['203.0.113.0/24'], secret = SECRET): TopologyHiding {
  const h = new TopologyHiding({ secret, outside });
  h.attach({ identity, sender, tokens });
  return h;
}

/** The message as the next element parses it off the wire. */
function wireCopy<T extends AnyMessage>(m: T): T {
  const r = parseMessage(serialize(m));
  assert.ok(r.ok, `not valid on the wire: ${r.ok ? '' : r.error.toString()}\n${serialize(m).toString()}`);
  return r.message as T;
}

function parse<T extends AnyMessage>(lines: string[], source?: Partial<MessageSource>): T {
  const r = parseMessage(Buffer.from([...lines, 'Content-Length: 0', '', ''].join('\r\n')));
  assert.ok(r.ok, r.ok ? '' : r.error.toString());
  if (source) r.message.source = { transport: 'udp', port: 5060, localAddress: US.host, localPort: US.port, flowId: 'udp', receivedAt: 0, address: '', ...source };
  return r.message as T;
}

function headerSection(m: AnyMessage): string {
  return serialize(m).toString().split('\r\n\r\n')[0]!;
}

function assertNothingOf(side: string[], m: AnyMessage, what: string): void {
  const text = headerSection(m);
  for (const s of side) assert.ok(!text.includes(s), `${what} shows '${s}' of the other side:\n${text}`);
}
const assertNothingOfInside = (m: AnyMessage, what: string): void => assertNothingOf(INSIDE, m, what);
const assertNothingOfOutside = (m: AnyMessage, what: string): void => assertNothingOf(OUTSIDE, m, what);

/** The proxy's steps for one request: arrival, §16.4, the policy's choice, one branch built for `hop`. */
async function forward(
  h: TopologyHiding,
  req: SipRequest,
  hop: Destination,
  options: { branch?: string; choose?: boolean; recordRoute?: boolean } = {},
): Promise<SipRequest> {
  const arrival = h.arrived(req);
  const { work } = routedCopy(req, identity, tokens);
  if (arrival) h.adopt(work, arrival);
  if (options.choose !== undefined) h.choose(work, options.choose);
  const forwarder = h.forwarder({ sender, resolver, tokens });
  const target: Target = { uri: work.uri as SipUri, routeSet: [], q: 1, destination: hop };
  const prepared = await forwarder.prepare(work, target);
  const rr = options.recordRoute === false ? undefined : { inbound: US, inboundFlow: undefined };
  return wireCopy(forwarder.build(prepared, hop, options.branch ?? `z9hG4bKsw${'0'.repeat(16)}.${Math.random().toString(36).slice(2, 8)}`, rr));
}

/** A response through the hiding's entry point (as the server's receiver runs it), then as the next element sees it. */
function back(h: TopologyHiding, res: SipResponse): SipResponse {
  const copy = wireCopy(res);
  assert.equal(h.response(copy), true, 'the response is accepted');
  return wireCopy(copy);
}

/** §16.4 at an inside or outside proxy: its own top Route goes (what arrives at us after it). */
function pastProxy(req: SipRequest): SipRequest {
  const copy = wireCopy(req);
  copy.headers.removeFirstValue('route');
  return wireCopy(copy);
}

function flip(encoded: string, at: number): string {
  const c = encoded[at]!;
  return encoded.slice(0, at) + (c === 'A' ? 'B' : 'A') + encoded.slice(at + 1);
}

// ---- the encoding ----

test('encoding: round trip of every kind, deterministic, bounded in size', () => {
  const codec = new TopologyCodec(SECRET);
  const values = ['', 'SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bKa;rport=5062;received=10.1.0.9', 'sip:alice@10.1.0.9:5062;ob', 'a84b4c76e66710@pc33.atlanta.example.com', 'ünïcödé ✓', 'x'.repeat(MAX_PLAINTEXT)];
  for (const kind of ['via', 'route', 'contact', 'call-id'] as const) {
    for (const v of values) {
      const e = codec.seal(kind, v);
      assert.match(e, /^[A-Za-z0-9_-]+$/, 'a URI/Via parameter and Call-ID safe token');
      assert.equal(codec.open(kind, e), v);
      assert.equal(codec.seal(kind, v), e, 'the same value encodes the same (a dialog keeps its Call-ID)');
      // 12 bytes of tag, then the value: base64url of n bytes is ceil(4n/3) characters.
      assert.ok(e.length <= Math.ceil(((12 + Buffer.byteLength(v)) * 4) / 3), `${kind} of ${v.length} chars: ${e.length}`);
      assert.ok(!e.includes(v) || v === '', 'the value does not show');
    }
  }
  assert.notEqual(codec.seal('via', 'a'), codec.seal('via', 'b'));
  assert.throws(() => codec.seal('via', 'x'.repeat(MAX_PLAINTEXT + 1)), (e: unknown) => e instanceof SipError && e.status === 500);
});

test('encoding: an altered, truncated, extended, re-spelled, foreign-key or other-kind value does not open', () => {
  const codec = new TopologyCodec(SECRET);
  const v = 'SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bKa;received=10.1.0.9';
  const e = codec.seal('via', v);
  for (let i = 0; i < e.length; i++) assert.equal(codec.open('via', flip(e, i)), undefined, `char ${i} altered`);
  assert.equal(codec.open('via', e.slice(0, -1)), undefined);
  assert.equal(codec.open('via', e + 'A'), undefined);
  assert.equal(codec.open('via', e.slice(0, 10)), undefined);
  assert.equal(codec.open('via', ''), undefined);
  assert.equal(codec.open('via', e.replace(/.$/, '=')), undefined);
  assert.equal(codec.open('via', 'A'.repeat(5000)), undefined, 'longer than any value we make: refused before any crypto');
  assert.equal(codec.open('contact', e), undefined, 'a Via value is no Contact');
  assert.equal(new TopologyCodec('another-key-after-a-key-change-000').open('via', e), undefined, 'another key');
  // One spelling per value: the last character of base64url carries unused bits.
  const raw = Buffer.from(e, 'base64url');
  if (raw.length % 3 !== 0) {
    const last = e[e.length - 1]!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const other = alphabet[alphabet.indexOf(last) + 1]!;
    const respelled = e.slice(0, -1) + other;
    if (Buffer.from(respelled, 'base64url').equals(raw)) assert.equal(codec.open('via', respelled), undefined);
  }
});

test('encoded Call-IDs steer to the worker of the original (docs/workers.md) and open again', () => {
  for (const workers of [1, 2, 3, 4, 7, 16, 64]) {
    const h = new TopologyHiding({ secret: SECRET, workers });
    for (let i = 0; i < 100; i++) {
      const callId = `${Math.random().toString(36).slice(2)}@10.1.0.${i}`;
      const masked = h.maskCallId(callId);
      assert.ok(masked.startsWith(CALL_ID_PREFIX));
      assert.equal(h.openCallId(masked), callId);
      assert.ok(!masked.includes('10.1.0'));
      if (workers > 1) assert.equal(callIdOwner(masked, workers), callIdOwner(callId, workers), `${workers} workers: ${callId}`);
    }
  }
});

test('config: topologyHiding is validated (outside blocks, ports, secret length, unknown keys)', () => {
  const c = readTopologyHidingConfig(defaultTopologyHidingConfig(), { enabled: true, outside: ['203.0.113.0/24', '198.51.100.7:5070', '[2001:db8::1]:5060', '2001:db8::/32'] });
  assert.equal(c.enabled, true);
  assert.equal(c.outside.length, 4);
  assert.throws(() => readTopologyHidingConfig(c, { outside: ['example.com'] }), /topologyHiding.outside\[0\]/);
  assert.throws(() => readTopologyHidingConfig(c, { outside: ['10.0.0.1:99999'] }), /bad port/);
  assert.throws(() => readTopologyHidingConfig(c, { secret: 'short' }), /at least 16 bytes/);
  assert.throws(() => readTopologyHidingConfig(c, { inside: [] }), /unknown setting/);
});

// ---- a dialog the inside started: INVITE out, 200 back, in-dialog requests both ways ----

const FROM_P1 = { address: '10.1.0.2', port: 5060 };
const FROM_Q = { address: '203.0.113.1', port: 5060 };
const TO_Q: Destination = { transport: 'udp', address: '203.0.113.1', port: 5060 };
const TO_P1: Destination = { transport: 'udp', address: '10.1.0.2', port: 5060 };

/** Alice (10.1.0.9) calls through inside proxies P0 (10.1.0.3) and P1 (10.1.0.2), then us, then Q (outside) to Bob. */
function insideInvite(): SipRequest {
  return parse<SipRequest>(
    [
      'INVITE sip:bob@203.0.113.5:5070 SIP/2.0',
      'Via: SIP/2.0/UDP 10.1.0.2:5060;branch=z9hG4bKp1;received=10.1.0.2',
      'Via: SIP/2.0/UDP 10.1.0.3:5060;branch=z9hG4bKp0',
      'Via: SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bKa;rport=5062;received=10.1.0.9',
      'Record-Route: <sip:10.1.0.2;lr;p1>',
      'Record-Route: <sip:10.1.0.3;lr;p0>',
      'Route: <sip:10.0.0.1:5060;lr>',
      'Max-Forwards: 68',
      'From: "Alice" <sip:alice@example.com>;tag=a1',
      'To: <sip:bob@example.net>',
      'Call-ID: inside-call-1@10.1.0.9',
      'CSeq: 1 INVITE',
      'Contact: "Alice" <sip:alice@10.1.0.9:5062;ob>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000000000001>"',
    ],
    FROM_P1,
  );
}

test('a call the inside starts: the outside sees one Via, one Record-Route and a Contact of ours and an encoded Call-ID; the answer comes back with the inside’s own values and nothing of the outside', async () => {
  const h = hiding();
  const invite = insideInvite();
  const out = await forward(h, invite, TO_Q);
  assertNothingOfInside(out, 'the INVITE sent out');
  assert.equal(out.vias.length, 1, 'only our Via');
  assert.equal(out.via.sentBy, '10.0.0.1:5060');
  assert.ok(typeof out.via.params.get('swth') === 'string');
  assert.equal(out.recordRoutes.length, 1, 'one Record-Route value: ours');
  assert.match(out.headers.get('record-route')!, /^<sip:(?:ft\.[A-Za-z0-9_-]+@)?10\.0\.0\.1:5060;lr;swth=[A-Za-z0-9_-]+>$/, "ours, with the outside phone's flow token at most");
  assert.match(out.headers.get('contact')!, /^"Alice" <sip:th@10\.0\.0\.1:5060;swct=[A-Za-z0-9_-]+>;\+sip\.instance=/);
  assert.ok(out.callId.startsWith(CALL_ID_PREFIX));
  assert.equal(out.cseq.seq, 1, 'CSeq untouched');
  assert.equal(out.fromTag, 'a1');

  // Bob answers; Q, an outside proxy, record-routed too.
  const atBob = wireCopy(out);
  atBob.headers.prepend('record-route', '<sip:203.0.113.1;lr;q>');
  atBob.headers.prepend('via', 'SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKq');
  const ok = createResponse(atBob, 200, { toTag: 'b1', headers: [['Contact', '<sip:bob@203.0.113.5:5070>']] });
  ok.headers.removeFirstValue('via'); // Q takes its own Via
  const restored = back(h, ok);
  assert.deepEqual(
    restored.vias.slice(1).map((v) => v.toString()),
    invite.vias.map((v) => v.toString()),
    'the inside gets its own Via values back, in order',
  );
  assert.equal(restored.callId, invite.callId);
  const routes = restored.headers.list('record-route');
  assert.equal(routes.length, 3);
  assert.match(routes[0]!, /^<sip:10\.0\.0\.1:5060;lr;swth=[A-Za-z0-9_-]+>$/, "ours facing the inside, the outside's values in it");
  assert.deepEqual(routes.slice(1), ['<sip:10.1.0.2;lr;p1>', '<sip:10.1.0.3;lr;p0>'], "then the inside's own, in their order");
  assert.match(restored.headers.get('contact')!, /^<sip:th@10\.0\.0\.1:5060;swct=[A-Za-z0-9_-]+>$/, "Bob's Contact masked too");
  assertNothingOfOutside(restored, 'the 200 the inside gets');
  assert.deepEqual(h.stats(), { hidden: 1, responses: 1, forged: 0 });
});

test("in-dialog requests of the inside's call, both ways: Route order restored for the inside (Kamailio #3778), Call-ID stable, a BYE each way", async () => {
  const h = hiding();
  const invite = insideInvite();
  const out = await forward(h, invite, TO_Q);
  const atBob = wireCopy(out);
  atBob.headers.prepend('record-route', '<sip:203.0.113.1;lr;q>');
  const ok = back(h, createResponse(atBob, 200, { toTag: 'b1', headers: [['Contact', '<sip:bob@203.0.113.5:5070>']] }));
  const insideRoutes = ok.headers.list('record-route').reverse(); // Alice, a UAC, reverses them

  const bobsTarget = ok.contacts[0]!.uri.toString(); // Alice's remote target: a Contact of ours

  // Alice's re-INVITE (hold), past P0 and P1: hidden again, with the Call-ID and Contact Bob knows.
  const reinvite = parse<SipRequest>(
    [
      `INVITE ${bobsTarget} SIP/2.0`,
      'Via: SIP/2.0/UDP 10.1.0.2:5060;branch=z9hG4bKp1r;received=10.1.0.2',
      'Via: SIP/2.0/UDP 10.1.0.3:5060;branch=z9hG4bKp0r',
      'Via: SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bKar;rport=5062;received=10.1.0.9',
      ...insideRoutes.slice(2).map((r) => `Route: ${r}`),
      'Max-Forwards: 68',
      'From: "Alice" <sip:alice@example.com>;tag=a1',
      'To: <sip:bob@example.net>;tag=b1',
      'Call-ID: inside-call-1@10.1.0.9',
      'CSeq: 2 INVITE',
      'Contact: <sip:alice@10.1.0.9:5062;ob>',
    ],
    FROM_P1,
  );
  const reOut = await forward(h, reinvite, TO_Q);
  assertNothingOfInside(reOut, 'the re-INVITE sent out');
  assert.equal(reOut.uri.toString(), 'sip:bob@203.0.113.5:5070', "Bob's own Contact as the Request-URI");
  assert.equal(reOut.callId, out.callId, 'the Call-ID Bob knows');
  assert.equal(reOut.cseq.seq, 2);
  assert.deepEqual(reOut.headers.list('route'), ['<sip:203.0.113.1;lr;q>'], 'our values gone, the outside route left');
  assert.equal(reOut.contacts[0]!.uri.toString(), out.contacts[0]!.uri.toString(), 'the same Contact of ours: nothing changed for Bob');
  assert.equal(reOut.vias.length, 1);
  // The 200 to the re-INVITE (Kamailio #1496): back with the inside's Vias.
  const reOk = back(h, createResponse(wireCopy(reOut), 200, { toTag: 'b1', headers: [['Contact', '<sip:bob@203.0.113.5:5070>']] }));
  assert.deepEqual(reOk.vias.slice(1).map(String), reinvite.vias.map(String));
  assert.equal(reOk.callId, reinvite.callId);
  assertNothingOfOutside(reOk, 'the 200 to the re-INVITE');

  // Bob's BYE along his route set, past Q: Route of ours with the set, Request-URI our Contact, the encoded Call-ID.
  const bobRoutes = atBob.headers.list('record-route'); // Bob, a UAS, keeps the order
  const bye = parse<SipRequest>(
    [
      `BYE ${atBob.contacts[0]!.uri.toString()} SIP/2.0`,
      'Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKqb;received=203.0.113.1',
      'Via: SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bKb2',
      ...bobRoutes.slice(1).map((r) => `Route: ${r}`),
      'Max-Forwards: 69',
      'From: <sip:bob@example.net>;tag=b1',
      'To: "Alice" <sip:alice@example.com>;tag=a1',
      `Call-ID: ${out.callId}`,
      'CSeq: 7 BYE',
    ],
    FROM_Q,
  );
  const byeIn = await forward(h, bye, TO_P1);
  assert.equal(byeIn.uri.toString(), 'sip:alice@10.1.0.9:5062;ob', "Alice's own Contact");
  assert.equal(byeIn.callId, invite.callId, "Alice's own Call-ID");
  assert.deepEqual(byeIn.headers.list('route'), ['<sip:10.1.0.2;lr;p1>', '<sip:10.1.0.3;lr;p0>'], 'through P1 then P0: the order the inside recorded');
  assert.equal(byeIn.vias.length, 1, "Bob's side's Vias are hidden from the inside too");
  assertNothingOfOutside(byeIn, "Bob's BYE sent in");
  assert.equal(byeIn.cseq.seq, 7);
  // Alice's 200 to the BYE, as it comes back to us: Call-ID encoded again.
  const byeOk = back(h, createResponse(byeIn, 200));
  assert.equal(byeOk.callId, out.callId);
  byeOk.headers.removeFirstValue('via');
  assertNothingOfInside(byeOk, 'the 200 to the BYE sent out');

  // And Alice's BYE instead: hidden like the re-INVITE.
  const aliceBye = parse<SipRequest>(
    [
      `BYE ${bobsTarget} SIP/2.0`,
      'Via: SIP/2.0/UDP 10.1.0.2:5060;branch=z9hG4bKp1b;received=10.1.0.2',
      'Via: SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bKab;rport=5062;received=10.1.0.9',
      ...insideRoutes.slice(2).map((r) => `Route: ${r}`),
      'Max-Forwards: 69',
      'From: "Alice" <sip:alice@example.com>;tag=a1',
      'To: <sip:bob@example.net>;tag=b1',
      'Call-ID: inside-call-1@10.1.0.9',
      'CSeq: 3 BYE',
    ],
    FROM_P1,
  );
  const aliceByeOut = await forward(h, aliceBye, TO_Q);
  assertNothingOfInside(aliceByeOut, "Alice's BYE sent out");
  assert.equal(aliceByeOut.callId, out.callId);
  assert.equal(aliceByeOut.cseq.seq, 3);
});

// ---- a dialog the outside started ----

test('a call from the outside: hidden both ways (each side sees only itself and us); the callee’s side gets the encoded Call-ID; in-dialog requests both ways', async () => {
  const h = hiding();
  const invite = parse<SipRequest>(
    [
      'INVITE sip:alice@10.1.0.9:5062 SIP/2.0',
      'Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKq;received=203.0.113.1',
      'Via: SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bKb',
      'Record-Route: <sip:203.0.113.1;lr;q>',
      'Max-Forwards: 69',
      'From: <sip:bob@example.net>;tag=b1',
      'To: <sip:alice@example.com>',
      'Call-ID: outside-call-1@203.0.113.5',
      'CSeq: 10 INVITE',
      'Contact: <sip:bob@203.0.113.5:5070>',
    ],
    FROM_Q,
  );
  // Chosen by `outside` (the source is in it), towards P2 (10.1.0.4) then P3 (10.1.0.5) to Alice.
  const inward = await forward(h, invite, { transport: 'udp', address: '10.1.0.4', port: 5060 });
  assertNothingOfOutside(inward, 'the INVITE sent in');
  assert.equal(inward.vias.length, 1);
  assert.ok(inward.callId.startsWith(CALL_ID_PREFIX), "the callee's side gets the encoded Call-ID");
  assert.equal(inward.recordRoutes.length, 1, 'ours, with Q in it');
  // P2 and P3 record-route; Alice answers.
  const atAlice = wireCopy(inward);
  atAlice.headers.prepend('record-route', '<sip:10.1.0.4;lr;p2>');
  atAlice.headers.prepend('record-route', '<sip:10.1.0.5;lr;p3>');
  const ok = back(h, createResponse(atAlice, 200, { toTag: 'a9', headers: [['Contact', '<sip:alice@10.1.0.9:5062>']] }));
  assert.equal(ok.callId, invite.callId, "Bob's own Call-ID back");
  assert.deepEqual(ok.vias.slice(1).map(String), invite.vias.map(String));
  ok.headers.removeFirstValue('via');
  assertNothingOfInside(ok, 'the 200 sent out');
  assert.deepEqual(ok.headers.list('record-route').length, 2, 'ours (with the set), then Q');
  assert.match(ok.headers.list('record-route')[0]!, /^<sip:10\.0\.0\.1:5060;lr;swth=[A-Za-z0-9_-]{20,}>$/);
  assert.equal(ok.headers.list('record-route')[1], '<sip:203.0.113.1;lr;q>');
  assert.match(ok.headers.get('contact')!, /^<sip:th@10\.0\.0\.1:5060;swct=/);

  // Bob's BYE (a UAC: his route set is the 200's Record-Route reversed), past Q.
  const bye = parse<SipRequest>(
    [
      `BYE ${ok.contacts[0]!.uri.toString()} SIP/2.0`,
      'Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKqb;received=203.0.113.1',
      'Via: SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bKb2',
      `Route: ${ok.headers.list('record-route')[0]!}`,
      'Max-Forwards: 69',
      'From: <sip:bob@example.net>;tag=b1',
      'To: <sip:alice@example.com>;tag=a9',
      'Call-ID: outside-call-1@203.0.113.5',
      'CSeq: 11 BYE',
    ],
    FROM_Q,
  );
  const byeIn = await forward(h, bye, { transport: 'udp', address: '10.1.0.4', port: 5060 });
  assert.equal(byeIn.uri.toString(), 'sip:alice@10.1.0.9:5062');
  assert.deepEqual(byeIn.headers.list('route'), ['<sip:10.1.0.4;lr;p2>', '<sip:10.1.0.5;lr;p3>'], 'P2 (nearest to us) first, as the inside recorded them');
  assert.equal(byeIn.callId, inward.callId, 'the Call-ID the callee knows');
  assertNothingOfOutside(byeIn, "Bob's BYE sent in");

  // Alice's BYE instead (a UAS: her route set is the INVITE's Record-Route in order), past P3 and P2.
  const aliceRoutes = atAlice.headers.list('record-route').slice(2);
  const aliceBye = parse<SipRequest>(
    [
      `BYE ${inward.contacts[0]!.uri.toString()} SIP/2.0`,
      'Via: SIP/2.0/UDP 10.1.0.4:5060;branch=z9hG4bKp2b;received=10.1.0.4',
      'Via: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bKp3b',
      'Via: SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bKab;rport=5062;received=10.1.0.9',
      ...aliceRoutes.map((r) => `Route: ${r}`),
      'Max-Forwards: 68',
      'From: <sip:alice@example.com>;tag=a9',
      'To: <sip:bob@example.net>;tag=b1',
      `Call-ID: ${inward.callId}`,
      'CSeq: 1 BYE',
    ],
    { address: '10.1.0.4', port: 5060 },
  );
  const aliceByeOut = await forward(h, aliceBye, TO_Q);
  assertNothingOfInside(aliceByeOut, "Alice's BYE sent out");
  assert.equal(aliceByeOut.callId, invite.callId, "Bob's own Call-ID");
  assert.equal(aliceByeOut.uri.toString(), 'sip:bob@203.0.113.5:5070');
  assert.deepEqual(aliceByeOut.headers.list('route'), ['<sip:203.0.113.1;lr;q>']);
  assert.equal(aliceByeOut.vias.length, 1);
  const byeOk = back(h, createResponse(aliceByeOut, 200));
  assert.deepEqual(byeOk.vias.slice(1).map(String), aliceBye.vias.map(String));
  assert.equal(byeOk.callId, inward.callId, 'encoded again for the callee’s side');
});

// ---- hop-by-hop requests of a stateless INVITE ----

test('stateless: the CANCEL and the non-2xx ACK of a hidden INVITE leave with its Via and Call-ID, chosen by the policy alone', async () => {
  const h = hiding([]);
  const branch = `z9hG4bKsw${'a'.repeat(16)}.sl`;
  const invite = insideInvite();
  const out = await forward(h, invite, TO_Q, { branch, choose: true });
  const cancel = wireCopy(invite);
  cancel.method = 'CANCEL';
  cancel.headers.set('cseq', '1 CANCEL');
  cancel.headers.remove('contact');
  cancel.headers.remove('record-route');
  cancel.source = invite.source;
  const cancelOut = await forward(h, cancel, TO_Q, { branch, recordRoute: false });
  assert.equal(cancelOut.headers.get('via'), out.headers.get('via'), "the CANCEL's Via is the INVITE's as sent");
  assert.equal(cancelOut.callId, out.callId);
  assertNothingOfInside(cancelOut, 'the CANCEL');
  const ack = wireCopy(cancel);
  ack.method = 'ACK';
  ack.headers.set('cseq', '1 ACK');
  ack.headers.set('to', '<sip:bob@example.net>;tag=b486');
  ack.source = invite.source;
  const ackOut = await forward(h, ack, TO_Q, { branch, recordRoute: false });
  assert.equal(ackOut.headers.get('via'), out.headers.get('via'));
  assert.equal(ackOut.callId, out.callId);
  assert.equal(ackOut.headers.has('record-route'), false);
});

test('a request not hidden is left alone: no outside match, or the policy said no', async () => {
  const h = hiding(['198.51.100.0/24']);
  const invite = insideInvite();
  const plain = await forward(h, invite, TO_Q);
  assert.equal(plain.vias.length, 4);
  assert.equal(plain.callId, invite.callId);
  const h2 = hiding();
  const refused = await forward(h2, insideInvite(), TO_Q, { choose: false });
  assert.equal(refused.callId, invite.callId);
  assert.equal(h2.stats().hidden, 0);
});

test('a registration to an outside registrar: Path and Contact hidden, the 200 restored, requests to the user routed along the inside Path', async () => {
  const h = hiding();
  const register = parse<SipRequest>(
    [
      'REGISTER sip:example.net SIP/2.0',
      'Via: SIP/2.0/UDP 10.1.0.2:5060;branch=z9hG4bKp1reg;received=10.1.0.2',
      'Via: SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bKareg;rport=5062;received=10.1.0.9',
      'Path: <sip:10.1.0.2;lr;edge>',
      'Max-Forwards: 69',
      'From: <sip:alice@example.net>;tag=r1',
      'To: <sip:alice@example.net>',
      'Call-ID: inside-call-reg@10.1.0.9',
      'CSeq: 5 REGISTER',
      'Contact: <sip:alice@10.1.0.9:5062>;expires=600',
      'Supported: path',
    ],
    FROM_P1,
  );
  const out = await forward(h, register, TO_Q);
  assertNothingOfInside(out, 'the REGISTER sent out');
  assert.equal(out.headers.has('record-route'), false, 'a registration makes no route set');
  assert.match(out.headers.get('path')!, /^<sip:10\.0\.0\.1:5060;lr;swth=[A-Za-z0-9_-]+>$/);
  assert.match(out.headers.get('contact')!, /^<sip:th@10\.0\.0\.1:5060;swct=[A-Za-z0-9_-]+>;expires=600$/, 'its parameters stay');
  // The registrar's 200 names the bindings and the Path it stored.
  const ok = back(h, createResponse(out, 200, { headers: [['Contact', `${out.headers.get('contact')!}`], ['Path', out.headers.get('path')!]] }));
  assert.equal(ok.headers.get('contact'), '<sip:alice@10.1.0.9:5062>;expires=600', 'Alice sees her own binding');
  assert.equal(ok.headers.get('path'), '<sip:10.1.0.2;lr;edge>');
  assert.equal(ok.callId, register.callId);
  // A call for Alice from the registrar's side: the Path as Route, the Contact as Request-URI.
  const invite = parse<SipRequest>(
    [
      `INVITE ${out.contacts[0]!.uri.toString()} SIP/2.0`,
      'Via: SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bKbinv;received=203.0.113.5',
      `Route: ${out.headers.get('path')!}`,
      'Max-Forwards: 69',
      'From: <sip:bob@example.net>;tag=b7',
      'To: <sip:alice@example.net>',
      'Call-ID: outside-call-7@203.0.113.5',
      'CSeq: 1 INVITE',
      'Contact: <sip:bob@203.0.113.5:5070>',
    ],
    FROM_Q,
  );
  const inward = await forward(h, invite, TO_P1);
  assert.equal(inward.uri.toString(), 'sip:alice@10.1.0.9:5062');
  assert.deepEqual(inward.headers.list('route'), ['<sip:10.1.0.2;lr;edge>']);
  assertNothingOfOutside(inward, 'the INVITE sent in');
});

// ---- forgeries ----

test('an altered or foreign-key Route, Request-URI or Call-ID is refused (403, counted), an altered response dropped; nothing is followed', async () => {
  const h = hiding();
  const out = await forward(h, insideInvite(), TO_Q);
  const ourRoute = out.headers.get('record-route')!;
  const encoded = /swth=([A-Za-z0-9_-]+)/.exec(ourRoute)![1]!;
  const contact = out.contacts[0]!.uri.toString();
  const byeLines = (route: string, ruri: string, callId: string): string[] => [
    `BYE ${ruri} SIP/2.0`,
    'Via: SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bKb2;received=203.0.113.5',
    `Route: ${route}`,
    'Max-Forwards: 69',
    'From: <sip:bob@example.net>;tag=b1',
    'To: "Alice" <sip:alice@example.com>;tag=a1',
    `Call-ID: ${callId}`,
    'CSeq: 7 BYE',
  ];
  const refused = async (lines: string[], h2 = h): Promise<void> => {
    const req = parse<SipRequest>(lines, FROM_Q);
    const arrival = h2.arrived(req);
    assert.equal(arrival?.mark.kind, 'forged');
    const { work } = routedCopy(req, identity, tokens);
    h2.adopt(work, arrival!);
    assert.equal(h2.forged(work), true);
    const forwarder = h2.forwarder({ sender, resolver, tokens });
    const prepared = await forwarder.prepare(work, { uri: work.uri as SipUri, routeSet: [], q: 1, destination: TO_P1 });
    assert.throws(() => forwarder.build(prepared, TO_P1, 'z9hG4bKx', undefined), (e: unknown) => e instanceof SipError && e.status === 403, 'never sent in');
  };
  await refused(byeLines(ourRoute.replace(encoded, flip(encoded, 20)), contact, out.callId));
  await refused(byeLines(ourRoute, contact.replace(/swct=([A-Za-z0-9_-]+)/, (_m, e: string) => `swct=${flip(e, 18)}`), out.callId));
  await refused(byeLines(ourRoute, contact, flip(out.callId, 10)));
  await refused(byeLines(ourRoute, contact, `${CALL_ID_PREFIX}AAAAAAAAAAAAAAAAAAAAAAAA`));
  // After a key change, values made with the old key are foreign.
  await refused(byeLines(ourRoute, contact, out.callId), hiding(['203.0.113.0/24'], 'the-new-key-after-the-change-0000'));
  assert.equal(h.stats().forged, 4);

  // Responses: an altered Via value or Call-ID is dropped, and the response is left as it came.
  const ok = createResponse(wireCopy(out), 200, { toTag: 'b1' });
  const badVia = wireCopy(ok);
  const via = badVia.headers.get('via')!;
  badVia.headers.set('via', via.replace(/swth=([A-Za-z0-9_-]+)/, (_m, e: string) => `swth=${flip(e, 30)}`));
  const before = serialize(badVia).toString();
  assert.equal(h.response(badVia), false);
  assert.equal(serialize(badVia).toString(), before);
  const badCallId = wireCopy(ok);
  badCallId.headers.set('call-id', flip(out.callId, 12));
  assert.equal(h.response(badCallId), false);
  assert.equal(h.stats().forged, 6);
});

test('size bounded: an inside Via stack beyond what one value carries is refused (500), not sent half-hidden', async () => {
  const h = hiding();
  const invite = insideInvite();
  for (let i = 0; i < 60; i++) invite.headers.append('via', `SIP/2.0/UDP 10.1.${i}.1:5060;branch=z9hG4bKdeep${i}`);
  await assert.rejects(forward(h, invite, TO_Q), (e: unknown) => e instanceof SipError && e.status === 500);
});

// ---- end to end: sipway serve with sipway user agents inside (127.0.0.2) and outside (127.0.0.3) ----

const DOMAIN = 'sipway.test';
const INSIDE_HOST = '127.0.0.2';
const OUTSIDE_HOST = '127.0.0.3';

interface Phone {
  ua: UserAgent;
  host: string;
  port: number;
  /** Every SIP message it received, as text on the wire. */
  received: string[];
  incoming: InviteSession[];
  onCall: (s: InviteSession) => void;
  sdp(version?: number): string;
}

/** SDP naming no phone (a media relay's job is to hide the media addresses; here only signalling is checked). */
function sdpOf(port: number, version = 1): string {
  return `v=0\r\no=- 1 ${version} IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
}

async function lab(config: Record<string, unknown> = {}) {
  const { proxy, ...rest } = config as { proxy?: Record<string, unknown> };
  const ts = await startTestServer({
    domains: [DOMAIN],
    auth: { register: false },
    proxy: { authenticateCallers: false, ...proxy },
    topologyHiding: { enabled: true, outside: [OUTSIDE_HOST] },
    ...rest,
  });
  const phones: Phone[] = [];
  const byPort = new Map<number, Phone>();
  const listener = (message: unknown): void => {
    const event = message as ReceiveEvent;
    byPort.get(event.source.localPort)?.received.push(event.bytes.toString('utf8'));
  };
  subscribe(RECEIVE_CHANNEL, listener);
  let media = 40000;
  return {
    ts,
    async phone(user: string, host: string, options: Partial<UserAgentOptions> = {}): Promise<Phone> {
      const rtp = media += 2;
      const phone: Phone = {
        ua: undefined as unknown as UserAgent,
        host,
        port: 0,
        received: [],
        incoming: [],
        onCall: (s) => s.accept(phone.sdp()),
        sdp: (version = 1) => sdpOf(rtp, version),
      };
      phone.ua = await UserAgent.start({
        aor: `sip:${user}@${DOMAIN}`,
        proxy: { transport: 'udp', address: '127.0.0.1', port: ts.port },
        listen: { transport: 'udp', host, port: 0 },
        sessionTimer: false,
        onInvite: (s) => {
          phone.incoming.push(s);
          phone.onCall(s);
        },
        ...options,
      });
      phone.port = phone.ua.transport.listeners()[0]!.port;
      byPort.set(phone.port, phone);
      assert.equal((await phone.ua.registration().register()).status, 200);
      phones.push(phone);
      return phone;
    },
    async close(): Promise<void> {
      unsubscribe(RECEIVE_CHANNEL, listener);
      await Promise.all(phones.map((p) => p.ua.stop()));
      await ts.stop();
    },
  };
}

/** The header sections a phone received hold nothing of the other side: its address, its SIP port, its Call-IDs. */
function assertHidden(phone: Phone, others: Phone[], callIds: string[], who: string): void {
  assert.ok(phone.received.length > 3, `${who} received messages`);
  for (const raw of phone.received) {
    const head = raw.split('\r\n\r\n')[0]!;
    for (const other of others) {
      assert.ok(!head.includes(other.host), `${who} received the address of the other side (${other.host}):\n${head}`);
      assert.ok(!head.includes(`:${other.port}`), `${who} received the SIP port of the other side (${other.port}):\n${head}`);
    }
    for (const id of callIds) assert.ok(!head.includes(id), `${who} received the other side's Call-ID ${id}:\n${head}`);
  }
}

function messages(phone: Phone, firstLine: RegExp): string[] {
  return phone.received.filter((raw) => firstLine.test(raw.slice(0, raw.indexOf('\r\n'))));
}

function header(raw: string, name: string): string | undefined {
  const m = new RegExp(`^(?:${name})\\s*:\\s*(.*)$`, 'im').exec(raw.split('\r\n\r\n')[0]!);
  return m?.[1]?.trim();
}

for (const mode of ['stateful', 'stateless'] as const) {
  test(`sipway serve (${mode}): a call from inside out with PRACK, hold each way, UPDATE then INFO each way (OpenSIPS #2107), REFER passed through, BYE from the callee; neither side sees the other`, async () => {
    const l = await lab({ proxy: { stateless: mode === 'stateless' } });
    try {
      const alice = await l.phone('alice', INSIDE_HOST);
      const bob = await l.phone('bob', OUTSIDE_HOST);
      const infos: Array<[string, string]> = [];
      bob.onCall = (s) => {
        s.onInfo = (r) => void infos.push(['bob', r.body.toString()]);
        // A reliable 183 with the answer (RFC 3262): Alice PRACKs it through us.
        s.progress(183, { sdp: bob.sdp(), reliable: true });
        setTimeout(() => s.accept(), 50);
      };
      const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
      call.onInfo = (r) => void infos.push(['alice', r.body.toString()]);
      assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
      const bobCall = bob.incoming[0]!;
      assert.ok(await until(() => bobCall.state === 'Confirmed' && !bobCall.awaitingAck, 3000), 'the ACK reached Bob');
      assert.equal(messages(bob, /^PRACK /).length, 1, 'the PRACK reached Bob');
      assert.notEqual(bobCall.invite.callId, call.invite.callId, 'Bob knows an encoded Call-ID');
      assert.equal(bobCall.invite.cseq.seq, call.invite.cseq.seq, 'CSeq untouched');

      // Hold and resume from the caller, then from the callee (Kamailio topos #2554, #1496; OpenSIPS #2444): each
      // re-INVITE gets its 200 and its ACK through the route set.
      assert.equal((await call.hold()).status, 200);
      assert.equal(bobCall.held, true);
      assert.equal((await call.resume()).status, 200);
      await until(() => !call.awaitingAck && !bobCall.awaitingAck, 2000);
      assert.equal((await bobCall.hold()).status, 200, 'the 200 to the callee’s re-INVITE');
      assert.equal(call.held, true);
      assert.ok(await until(() => !bobCall.awaitingAck && !call.awaitingAck, 2000), 'the ACK for it reached Alice');
      assert.equal((await bobCall.resume()).status, 200);
      await until(() => !call.awaitingAck && !bobCall.awaitingAck, 2000);

      // UPDATE (a target refresh) each way; the next request still reaches the right Contact (OpenSIPS #2107).
      assert.equal((await call.update()).status, 200);
      assert.equal(await call.info('Signal=1\r\n', 'application/dtmf-relay'), 200);
      assert.equal(await bobCall.info('Signal=2\r\n', 'application/dtmf-relay'), 200);
      assert.equal((await bobCall.update()).status, 200);
      assert.equal(await call.info('Signal=3\r\n', 'application/dtmf-relay'), 200);
      assert.equal(await bobCall.info('Signal=4\r\n', 'application/dtmf-relay'), 200);
      assert.deepEqual(infos, [['bob', 'Signal=1\r\n'], ['alice', 'Signal=2\r\n'], ['bob', 'Signal=3\r\n'], ['alice', 'Signal=4\r\n']]);

      // REFER is an in-dialog request: it follows the route set to the peer (who declines it), never a new call here.
      assert.equal((await call.refer(`sip:carol@${DOMAIN}`)).status, 603);
      assert.equal((await bobCall.refer(`sip:carol@${DOMAIN}`)).status, 603);
      assert.equal(messages(bob, /^REFER /).length, 1);
      assert.equal(messages(alice, /^REFER /).length, 1);

      // BYE from the callee.
      assert.equal(await bobCall.bye(), 200);
      assert.equal((await within(call.ended, 'Alice hears the BYE', 3000)).by, 'remote');

      assertHidden(bob, [alice], [call.invite.callId], 'Bob (outside)');
      assertHidden(alice, [bob], [], 'Alice (inside)');
      const stats = l.ts.server.proxy.stats().topologyHiding!;
      assert.equal(stats.forged, 0);
      assert.ok(stats.hidden >= 15 && stats.responses >= 15, JSON.stringify(stats));
    } finally {
      await l.close();
    }
  });

  test(`sipway serve (${mode}): a call from outside in, re-INVITE from the caller, BYE from the callee; CANCEL with the INVITE's Via; ACK of a 486`, async () => {
    const l = await lab({ proxy: { stateless: mode === 'stateless' } });
    try {
      const alice = await l.phone('alice', INSIDE_HOST);
      const bob = await l.phone('bob', OUTSIDE_HOST);
      const call = await bob.ua.call(`sip:alice@${DOMAIN}`, { sdp: bob.sdp() });
      assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
      const aliceCall = alice.incoming[0]!;
      await until(() => aliceCall.state === 'Confirmed' && !aliceCall.awaitingAck, 2000);
      assert.equal((await call.hold()).status, 200);
      assert.equal(aliceCall.held, true);
      await until(() => !aliceCall.awaitingAck, 2000);
      assert.equal(await aliceCall.bye(), 200, 'BYE from the callee, inside');
      assert.equal((await within(call.ended, 'Bob hears the BYE', 3000)).by, 'remote');

      // CANCEL: Alice calls Bob, who only rings; Alice gives up.
      bob.onCall = (s) => s.ring();
      const ringing = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
      assert.ok(await until(() => bob.incoming.length === 1 && messages(alice, /^SIP\/2\.0 180 /).length === 1, 3000), 'it rings');
      assert.equal(ringing.cancel(), true);
      assert.equal((await within(ringing.answered, 'the 487', 5000)).status, 487);
      const invites = messages(bob, /^INVITE /);
      const cancels = messages(bob, /^CANCEL /);
      assert.equal(cancels.length >= 1, true, 'the CANCEL reached Bob');
      assert.equal(header(cancels[0]!, 'Via|v'), header(invites[invites.length - 1]!, 'Via|v'), "the CANCEL's Via is the INVITE's as sent");
      assert.equal(header(cancels[0]!, 'Call-ID|i'), header(invites[invites.length - 1]!, 'Call-ID|i'));

      // Bob is busy: his 486 is ACKed to him with the INVITE's Via and Call-ID.
      bob.onCall = (s) => s.reject(486);
      const busy = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
      assert.equal((await within(busy.answered, 'the 486', 5000)).status, 486);
      assert.ok(await until(() => messages(bob, /^ACK /).some((a) => header(a, 'Call-ID|i') === header(messages(bob, /^INVITE /).at(-1)!, 'Call-ID|i')), 3000), 'the ACK of the 486 reached Bob');
      const lastInvite = messages(bob, /^INVITE /).at(-1)!;
      const ack = messages(bob, /^ACK /).at(-1)!;
      assert.equal(/branch=([^;,\s]+)/.exec(header(ack, 'Via|v')!)![1], /branch=([^;,\s]+)/.exec(header(lastInvite, 'Via|v')!)![1]);

      assertHidden(bob, [alice], [ringing.invite.callId, busy.invite.callId], 'Bob (outside)');
      assertHidden(alice, [bob], [call.invite.callId], 'Alice (inside)');
    } finally {
      await l.close();
    }
  });
}

test('sipway serve: chosen by the policy alone (ctx.hideTopology), stateless; a transfer the callee asks for is placed by the caller and reported back', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-topoh-'));
  const policy = path.join(dir, 'routing.mjs');
  writeFileSync(
    policy,
    `export default {
  async onRequest(ctx) {
    if (!ctx.validate()) return;
    // Calls to the outside phones are hidden; in-dialog requests of them are recognised on their own.
    if (!ctx.inDialog && ctx.method === 'INVITE' && /^sip:(bob|carol)@/.test(ctx.ruri)) ctx.vars.set('hidden', ctx.hideTopology());
    await ctx.relay(undefined, { stateless: true });
  },
};
`,
  );
  const l = await lab({ topologyHiding: { enabled: true }, policy });
  try {
    const alice = await l.phone('alice', INSIDE_HOST, {
      onRefer: (transfer) => transfer.call({ sdp: sdpOf(40100) }),
    });
    const bob = await l.phone('bob', OUTSIDE_HOST);
    const carol = await l.phone('carol', OUTSIDE_HOST);
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const bobCall = bob.incoming[0]!;
    await until(() => bobCall.state === 'Confirmed' && !bobCall.awaitingAck, 2000);
    assert.notEqual(bobCall.invite.callId, call.invite.callId);
    // Bob transfers Alice to Carol: the REFER crosses in, Alice calls Carol (hidden too), the NOTIFYs cross out.
    const transferred = await within(bobCall.refer(`sip:carol@${DOMAIN}`), 'the transfer report', 8000);
    assert.equal(transferred.status, 200);
    const carolCall = carol.incoming[0]!;
    assert.ok(carolCall, 'Carol got the call');
    assert.ok(messages(bob, /^NOTIFY /).length >= 1, 'NOTIFYs reached Bob');
    await until(() => carolCall.state === 'Confirmed' && !carolCall.awaitingAck, 2000);
    assert.equal(await bobCall.bye(), 200);
    const aliceToCarol = [...alice.ua.sessions.values()].find((s) => s !== call) as InviteSession | undefined;
    assert.ok(aliceToCarol);
    assert.equal(await aliceToCarol.bye(), 200);
    assertHidden(bob, [alice], [call.invite.callId], 'Bob');
    assertHidden(carol, [alice], [aliceToCarol.invite.callId], 'Carol');
    assertHidden(alice, [bob, carol], [], 'Alice');
  } finally {
    await l.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sipway serve: a forged, altered or foreign-key value from the outside is answered 403 and counted; the inside never hears of it', async () => {
  const l = await lab();
  const raw = new UdpClient();
  try {
    const alice = await l.phone('alice', INSIDE_HOST);
    const bob = await l.phone('bob', OUTSIDE_HOST);
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const bobCall = bob.incoming[0]!;
    await until(() => bobCall.state === 'Confirmed' && !bobCall.awaitingAck, 2000);
    const invite = bobCall.invite;
    const route = invite.headers.list('record-route')[0]!;
    const encoded = /swth=([A-Za-z0-9_-]+)/.exec(route)![1]!;
    await raw.bind();
    let n = 0;
    const bye = (routeValue: string, ruri = invite.contacts[0]!.uri.toString(), callId = invite.callId): Buffer =>
      Buffer.from(
        [
          `BYE ${ruri} SIP/2.0`,
          `Via: SIP/2.0/UDP 127.0.0.1:${raw.port};branch=z9hG4bKforged${++n};rport`,
          `Route: ${routeValue}`,
          'Max-Forwards: 70',
          `From: <sip:bob@${DOMAIN}>;tag=${bobCall.dialog!.localTag}`,
          `To: <sip:alice@${DOMAIN}>;tag=${invite.fromTag}`,
          `Call-ID: ${callId}`,
          `CSeq: ${100 + n} BYE`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
    const refusal = async (bytes: Buffer): Promise<void> => {
      raw.send(bytes, l.ts.port);
      const res = await raw.next(2000);
      assert.equal(res?.status, 403, 'refused');
      assert.match(res!.reason, /topology hiding/);
    };
    await refusal(bye(route.replace(encoded, flip(encoded, 25))));
    // After a key change (or from anyone else's key): a well-formed value that does not open.
    const foreign = new TopologyCodec('somebody-elses-key-or-the-old-one').seal('route', `<sip:${INSIDE_HOST}:${alice.port};lr>`);
    await refusal(bye(route.replace(encoded, foreign)));
    await refusal(bye(route, invite.contacts[0]!.uri.toString().replace(/swct=([A-Za-z0-9_-]+)/, (_m, e: string) => `swct=${flip(e, 20)}`)));
    await refusal(bye(route, undefined, flip(invite.callId, 8)));
    assert.equal(l.ts.server.proxy.stats().topologyHiding!.forged, 4);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(messages(alice, /^BYE /).length, 0, 'no BYE reached Alice');
    assert.equal(call.state, 'Confirmed');
    assert.equal(await bobCall.bye(), 200, 'the real BYE still goes through');
  } finally {
    raw.socket.close();
    await l.close();
  }
});

test('the key: a configured secret, else a key file made once in the data directory and read again', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-topoh-key-'));
  try {
    assert.equal(topologyHidingKey(dir, 'a-configured-secret-of-enough-bytes'), 'a-configured-secret-of-enough-bytes');
    const first = topologyHidingKey(dir, undefined);
    assert.equal(first.length, 32);
    assert.deepEqual(topologyHidingKey(dir, undefined), first, 'the same key after a restart');
    assert.equal(statSync(path.join(dir, 'topology-hiding.key')).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
