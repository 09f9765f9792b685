import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage, type SipRequest, type SipResponse } from '../../src/message/index.js';
import { advertisedHost, formatListenSpec, normalizeAddress, parseListenSpec } from '../../src/transport/address.js';
import { stampVia, viaDestination } from '../../src/transport/via-stamp.js';
import { responseDestination } from '../../src/transport/response-route.js';
import { ConfigError } from '../../src/util/errors.js';
import { request, response } from './harness.js';

test('listen specs: transport:host[:port], IPv6 in brackets, default ports per transport', () => {
  assert.deepEqual(parseListenSpec('udp:0.0.0.0:5060'), { transport: 'udp', host: '0.0.0.0', port: 5060 });
  assert.deepEqual(parseListenSpec('tls:[::1]:5061'), { transport: 'tls', host: '::1', port: 5061 });
  assert.deepEqual(parseListenSpec('tcp:[::]'), { transport: 'tcp', host: '::', port: 5060 });
  assert.deepEqual(parseListenSpec('wss:sip.example.com'), { transport: 'wss', host: 'sip.example.com', port: 443 });
  assert.deepEqual(parseListenSpec('ws:127.0.0.1:0'), { transport: 'ws', host: '127.0.0.1', port: 0 });
  assert.equal(formatListenSpec(parseListenSpec('tls:[::1]:5061')), 'tls:[::1]:5061');
  for (const bad of ['sctp:1.2.3.4:5060', 'udp', 'udp:1.2.3.4:99999', 'udp:::1:5060', 'tcp:[zz]:5060', 'udp:1.2.3.4:']) {
    assert.throws(() => parseListenSpec(bad), ConfigError, bad);
  }
});

test('addresses: IPv4-mapped IPv6 is unwrapped; wildcard binds advertise the configured host', () => {
  assert.equal(normalizeAddress('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(normalizeAddress('2001:DB8::1'), '2001:db8::1');
  assert.equal(advertisedHost('192.0.2.7', 'ignored.example.com'), '192.0.2.7');
  assert.equal(advertisedHost('0.0.0.0', 'sip.example.com'), 'sip.example.com');
  assert.ok(advertisedHost('0.0.0.0', undefined).includes('.'));
});

function req(via: string): SipRequest {
  const r = parseMessage(Buffer.from(request({ via })));
  assert.ok(r.ok && r.message.isRequest);
  return r.message;
}

test('stampVia: received when sent-by differs, rport filled when empty, only the top Via rewritten', () => {
  const r = req('SIP/2.0/UDP client.example.com;branch=z9hG4bK-1;rport, SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-0');
  stampVia(r, '192.0.2.7', 40000, false);
  assert.deepEqual(r.headers.getAll('via'), [
    'SIP/2.0/UDP client.example.com;branch=z9hG4bK-1;rport=40000;received=192.0.2.7',
    'SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-0',
  ]);
  assert.equal(r.vias.length, 2);
});

test('stampVia: a numeric sent-by equal to the source is left alone unless rport is asked for or forced', () => {
  const same = req('SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-2');
  stampVia(same, '192.0.2.7', 5060, false);
  assert.equal(same.headers.get('via'), 'SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-2');
  // RFC 3581 §4: with rport, received is added even when it equals sent-by.
  const asked = req('SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-3;rport');
  stampVia(asked, '192.0.2.7', 5060, false);
  assert.equal(asked.headers.get('via'), 'SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-3;rport=5060;received=192.0.2.7');
  const forced = req('SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-4');
  stampVia(forced, '192.0.2.7', 61000, true);
  assert.equal(forced.via.rport, 61000);
  assert.equal(forced.via.received, '192.0.2.7');
  const v6 = req('SIP/2.0/UDP [2001:DB8::1]:5060;branch=z9hG4bK-5');
  stampVia(v6, '2001:db8::1', 5060, false);
  assert.equal(v6.via.received, undefined);
});

test('stampVia: a received the sender wrote itself is replaced by the source address, so it cannot steer responses', () => {
  // Found by the fuzzer: the sent-by host matched the source, so the forged received stayed and the response went
  // to it (a reflector for third-party addresses; a name there was looked up with the system resolver).
  for (const forged of ['198.51.100.9', 'victim.example.com', '1.2.3.4.5']) {
    const r = req(`SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-6;received=${forged}`);
    stampVia(r, '192.0.2.7', 5060, false);
    assert.equal(r.via.received, '192.0.2.7', forged);
    assert.equal(responseDestination(r).address, '192.0.2.7', forged);
  }
});

test('viaDestination: maddr, then received with rport over UDP; received and sent-by port for streams (§18.2.2)', () => {
  const res = (via: string): SipResponse => {
    const r = parseMessage(Buffer.from(response(via)));
    assert.ok(r.ok && !r.message.isRequest);
    return r.message;
  };
  assert.deepEqual(viaDestination(res('SIP/2.0/UDP c.example.com:5070;branch=z9hG4bK-1;rport=40000;received=192.0.2.7')), {
    transport: 'udp',
    address: '192.0.2.7',
    port: 40000,
  });
  assert.deepEqual(viaDestination(res('SIP/2.0/UDP c.example.com;branch=z9hG4bK-1;maddr=239.1.1.1')), { transport: 'udp', address: '239.1.1.1', port: 5060 });
  // A name in maddr is not followed (it would be looked up on the sender's word): received and rport instead.
  assert.deepEqual(viaDestination(res('SIP/2.0/UDP c.example.com;branch=z9hG4bK-1;maddr=victim.example.org;received=192.0.2.7;rport=4000')), {
    transport: 'udp',
    address: '192.0.2.7',
    port: 4000,
  });
  assert.deepEqual(viaDestination(res('SIP/2.0/TLS c.example.com;branch=z9hG4bK-1;rport=40000;received=192.0.2.7')), {
    transport: 'tls',
    address: '192.0.2.7',
    port: 5061,
  });
  assert.deepEqual(viaDestination(res('SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK-1')), { transport: 'udp', address: '2001:db8::1', port: 5070 });
});
