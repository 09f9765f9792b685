/**
 * RFC 4475 and RFC 5118 at the message layer: every message of ../shared/conformance is read as bytes and parsed;
 * what the parser (and the full request validation) says must agree with the message's INDEX.tsv expectation.
 * The server-level behaviour (which status goes back on the wire) is in rfc4475-server.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseMessage, validateRequest, cseqMatchesMethod, SipRequest, SipUri, type ParseResult } from '../../src/message/index.js';
import { sharedPath } from '../helpers/paths.js';
import { readIndex } from '../helpers/conformance.js';

/** Parse + full validation + the CSeq/method rule: undefined when the message is acceptable, else the fault's status. */
function verdict(r: ParseResult): { accepted: boolean; status?: number; code?: string } {
  if (!r.ok) return { accepted: false, status: r.error.status, code: r.error.code };
  if (r.message instanceof SipRequest) {
    const fault = validateRequest(r.message);
    if (fault) return { accepted: false, status: fault.status, code: fault.code };
    if (!cseqMatchesMethod(r.message)) return { accepted: false, status: 400, code: 'CSEQ_METHOD' };
  }
  return { accepted: true };
}

/** Messages whose INDEX verdict is decided by the message layer as a rejection, with the expected code. */
const REJECTED_BY_PARSER: Record<string, string> = {
  insuf: 'MISSING_HEADER', // valid-but-400
  multi01: 'DUPLICATE_HEADER', // valid-but-400
  mcl01: 'CONTENT_LENGTH', // valid-but-400-framing-error
};

const entries4475 = readIndex('rfc4475');

test('the RFC 4475 index lists 49 messages', () => {
  assert.equal(entries4475.length, 49);
});

for (const e of entries4475) {
  test(`RFC 4475 ${e.section} ${e.name} (${e.expected})`, () => {
    const bytes = readFileSync(sharedPath('conformance', 'rfc4475', `${e.name}.dat`));
    const r = parseMessage(bytes);
    const v = verdict(r);
    if (e.expected === 'invalid') {
      assert.equal(v.accepted, false, `${e.name} must be rejected: ${e.note}`);
      if (e.name === 'badvers') assert.equal(v.status, 505);
      else assert.equal(v.status, 400, `${e.name}: ${v.code}`);
    } else if (e.name in REJECTED_BY_PARSER) {
      assert.equal(v.accepted, false);
      assert.equal(v.code, REJECTED_BY_PARSER[e.name]);
      assert.equal(v.status, 400);
    } else {
      assert.equal(v.accepted, true, `${e.name} must parse: ${!r.ok ? r.error.toString() : v.code}`);
    }
  });
}

test('RFC 4475 details the parser must get right', () => {
  const parse = (name: string): SipRequest => {
    const r = parseMessage(readFileSync(sharedPath('conformance', 'rfc4475', `${name}.dat`)));
    assert.ok(r.ok && r.message instanceof SipRequest, name);
    return r.message;
  };
  const wsinv = parse('wsinv');
  assert.equal(wsinv.maxForwards, 68);
  assert.deepEqual(wsinv.cseq, { seq: 9, method: 'INVITE' });
  assert.equal(wsinv.toTag, '1918181833n');
  assert.equal(wsinv.fromTag, '98asjd8');
  assert.equal(wsinv.from.displayNameText, 'J Rosenberg \\"');
  assert.equal(wsinv.headers.get('UnknownHeaderWithUnusualValue'), ';;,,;;,;');
  assert.deepEqual(wsinv.vias.map((v) => v.transport), ['UDP', 'TCP', 'UDP']);
  assert.equal(wsinv.vias[2]!.branch, 'z9hG4bK30239');
  assert.equal(wsinv.contacts[0]!.params.get('q'), '0.33');
  assert.equal(wsinv.body.length, 150);

  const intmeth = parse('intmeth');
  assert.equal(intmeth.method, "!interesting-Method0123456789_*+`.%indeed'~");
  assert.ok(intmeth.to.displayNameText!.includes('\u0000'));

  const esc02 = parse('esc02');
  assert.equal(esc02.method, 'RE%47IST%45R');
  assert.equal(esc02.contacts.length, 2, "'C%6Fntact' is an unknown header, not a Contact");

  assert.equal((parse('semiuri').uri as SipUri).userUnescaped, 'user;par=u@example.net');
  assert.equal(parse('dblreq').body.length, 0, 'octets after Content-Length are ignored');
  assert.equal(parse('mpart01').body.length, Number(parse('mpart01').headers.get('content-length')));
  assert.deepEqual(parse('transports').vias.map((v) => v.transport), ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
  assert.equal(parse('badbranch').via.hasRfc3261Branch, false, 'a lone magic cookie is an RFC 2543 branch');
  const inv2543 = parse('inv2543');
  assert.equal(inv2543.via.branch, undefined);
  assert.equal(inv2543.maxForwards, undefined);
  assert.ok(inv2543.body.length > 0, 'without Content-Length the body is the rest of the datagram');
  const escnull = parse('escnull');
  assert.equal(escnull.contacts.length, 2);
  assert.notEqual((escnull.contacts[0]!.uri as SipUri).userUnescaped, (escnull.contacts[1]!.uri as SipUri).userUnescaped);
  const cparam01 = parse('cparam01');
  assert.equal((cparam01.contacts[0]!.uri as SipUri).params.has('unknownparam'), false);
  assert.equal(cparam01.contacts[0]!.params.has('unknownparam'), true);
  const cparam02 = parse('cparam02');
  assert.equal((cparam02.contacts[0]!.uri as SipUri).params.has('unknownparam'), true);
  const regescrt = parse('regescrt');
  assert.deepEqual((regescrt.contacts[0]!.uri as SipUri).headers, [['Route', '%3Csip:sip.example.com%3E']]);
});

test('RFC 4475 extra: the CRLF-terminated baddn is rejected for its display names', () => {
  const r = parseMessage(readFileSync(sharedPath('conformance', 'rfc4475', 'extra', 'baddn.crlf-terminated.dat')));
  assert.ok(!r.ok && (r.error.code === 'FROM' || r.error.code === 'TO'), !r.ok ? r.error.toString() : 'accepted');
});

const entries5118 = readIndex('rfc5118');

test('the RFC 5118 index lists 12 messages', () => {
  assert.equal(entries5118.length, 12);
});

for (const e of entries5118) {
  test(`RFC 5118 ${e.section} ${e.name} (${e.expected})`, () => {
    const r = parseMessage(readFileSync(sharedPath('conformance', 'rfc5118', 'wire', `${e.name}.dat`)));
    const v = verdict(r);
    if (e.expected === 'invalid') {
      assert.equal(v.accepted, false);
      assert.equal(v.status, 400);
    } else assert.equal(v.accepted, true, `${e.name}: ${!r.ok ? r.error.toString() : v.code}`);
  });
}

test('RFC 5118 addresses are read correctly', () => {
  const parse = (name: string): SipRequest => {
    const r = parseMessage(readFileSync(sharedPath('conformance', 'rfc5118', 'wire', `${name}.dat`)));
    assert.ok(r.ok && r.message instanceof SipRequest, name);
    return r.message;
  };
  const amb = parse('port-ambiguous').uri as SipUri;
  assert.equal(amb.hostname, '2001:db8::10:5070');
  assert.equal(amb.port, undefined);
  const unamb = parse('port-unambiguous').uri as SipUri;
  assert.equal(unamb.hostname, '2001:db8::10');
  assert.equal(unamb.port, 5070);
  assert.equal(parse('via-received-param-with-delim').via.received, '2001:db8::9:255');
  const noDelim = parse('via-received-param-no-delim').via;
  assert.equal(noDelim.received, '2001:db8::9:255');
  assert.ok(noDelim.branch?.startsWith('z9hG4bK'), 'the branch after the colons is still read');
  const vias = parse('mult-ip-in-header').vias;
  assert.equal(vias.length, 3);
  assert.equal(vias[0]!.hostname, '2001:db8::9:1');
  assert.equal(vias[0]!.port, 6050);
  assert.equal(vias[1]!.hostname, '192.0.2.1');
  assert.equal(vias[2]!.hostname, '2001:db8::9:255');
  assert.equal(vias[2]!.received, '192.0.2.200');
  const mapped = parse('ipv4-mapped-ipv6');
  assert.equal(mapped.via.port, 19823);
  assert.equal(mapped.via.hostKind, 'ipv6');
  assert.equal(mapped.via.hostname, '::ffff:192.0.2.10');
});
