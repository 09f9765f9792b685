import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUri, uriEquals, SipUri, TelUri, AbsoluteUri } from '../../src/message/index.js';

function sip(s: string): SipUri {
  const u = parseUri(s);
  assert.ok(u instanceof SipUri, s);
  return u;
}

test('sip URI components', () => {
  const u = sip('sips:alice:secret@Atlanta.example.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent');
  assert.equal(u.scheme, 'sips');
  assert.equal(u.user, 'alice');
  assert.equal(u.password, 'secret');
  assert.equal(u.host, 'Atlanta.example.com');
  assert.equal(u.port, 5061);
  assert.equal(u.transportParam, 'tcp');
  assert.equal(u.lr, true);
  assert.deepEqual(u.headers, [
    ['subject', 'project%20x'],
    ['priority', 'urgent'],
  ]);
  assert.equal(u.toString(), 'sips:alice:secret@Atlanta.example.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent');
});

test('IPv6 references keep brackets; port outside brackets only (RFC 5118 §4.3, §4.4)', () => {
  const a = sip('sip:[2001:db8::10]:5070');
  assert.equal(a.host, '[2001:db8::10]');
  assert.equal(a.hostname, '2001:db8::10');
  assert.equal(a.port, 5070);
  assert.equal(a.hostKind, 'ipv6');
  const b = sip('sip:[2001:db8::10:5070]');
  assert.equal(b.hostname, '2001:db8::10:5070');
  assert.equal(b.port, undefined);
  assert.throws(() => parseUri('sip:2001:db8::10'), /bad port/);
  assert.equal(sip('sip:user@192.0.2.1').hostKind, 'ipv4');
  assert.equal(sip('sip:user@example.com').hostKind, 'domain');
});

test('user part may hold ; ? / and escapes (RFC 4475 semiuri, intmeth, esc01)', () => {
  assert.equal(sip('sip:user;par=u%40example.net@example.com').userUnescaped, 'user;par=u@example.net');
  const weird = sip("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
  assert.equal(weird.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  assert.equal(weird.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
  assert.equal(sip('sip:sips%3Auser%40example.com@example.net').userUnescaped, 'sips:user@example.com');
  assert.equal(sip('sip:%00%00@host').userUnescaped, '\u0000\u0000');
});

test('malformed URIs are rejected', () => {
  for (const bad of ['<sip:a@b>', 'sip:a@b c', 'sip:', 'sip:a@', 'sip:host;', 'sip:host:99999', '1sip:x', 'sip:host?x', 'sip:[::1']) {
    assert.throws(() => parseUri(bad), Error, bad);
  }
});

test('tel and opaque URIs', () => {
  const t = parseUri('tel:+1-201-555-0123;phone-context=example.com');
  assert.ok(t instanceof TelUri);
  assert.equal(t.digits, '+12015550123');
  assert.equal(t.isGlobal, true);
  const o = parseUri('nobodyKnowsThisScheme:totallyopaquecontent');
  assert.ok(o instanceof AbsoluteUri);
  assert.equal(o.toString(), 'nobodyKnowsThisScheme:totallyopaquecontent');
  assert.ok(parseUri('soap.beep://192.0.2.103:3002') instanceof AbsoluteUri);
});

test('§19.1.4 comparison', () => {
  const eq = (a: string, b: string): boolean => uriEquals(parseUri(a), parseUri(b));
  // The RFC's equivalent pairs.
  assert.ok(eq('sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'));
  assert.ok(eq('sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'));
  assert.ok(eq('sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;newparam=5'));
  assert.ok(eq('sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com', 'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com'));
  assert.ok(eq('sip:alice@atlanta.com?subject=project%20x&priority=urgent', 'sip:alice@atlanta.com?priority=urgent&subject=project%20x'));
  // The RFC's non-equivalent pairs.
  assert.ok(!eq('SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP'));
  assert.ok(!eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060'));
  assert.ok(!eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp'));
  assert.ok(!eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp'));
  assert.ok(!eq('sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting'));
  assert.ok(!eq('sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4'));
  assert.ok(!eq('sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off'));
  // escnull: %00 and %00%00 are distinct users.
  assert.ok(!eq('sip:%00@host', 'sip:%00%00@host'));
  assert.ok(eq('tel:+1-201-555-0123', 'tel:+12015550123'));
});
