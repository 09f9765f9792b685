import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cameOver, FlowTokens, type Flow } from '../../src/transport/flow-token.js';
import { chooseListener, LocalRoutes, needsRoute, type BoundEntry } from '../../src/transport/local-routes.js';
import { parseListen } from '../../src/server/config.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import type { MessageSource } from '../../src/message/index.js';

const tokens = new FlowTokens('a secret of sixteen bytes or more');

test('a flow token carries the flow (UDP, TCP, IPv4, IPv6) and fits a URI user part', () => {
  const flows: Flow[] = [
    { transport: 'udp', address: '203.0.113.9', port: 40312, localAddress: '0.0.0.0', localPort: 5060 },
    { transport: 'tls', address: '2001:db8::7', port: 51000, localAddress: '2001:db8::1', localPort: 5061, connectionId: 'tls-w1.abcdefghijklmnop' },
    { transport: 'ws', address: '192.0.2.1', port: 1, localAddress: '::', localPort: 80, connectionId: 'ws-0123456789abcdef' },
  ];
  for (const flow of flows) {
    const token = tokens.encode(flow);
    assert.match(token, /^ft\.[A-Za-z0-9_-]+$/, 'unreserved characters only (RFC 3261 §25.1 user)');
    assert.deepEqual(tokens.decode(token), { ok: true, flow });
  }
});

test('an altered token, or one made with another secret, is a forgery; a user name is no token at all', () => {
  const flow: Flow = { transport: 'udp', address: '198.51.100.4', port: 5060, localAddress: '0.0.0.0', localPort: 5060 };
  const token = tokens.encode(flow);
  for (let i = 3; i < token.length; i++) {
    const c = token[i] === 'A' ? 'B' : 'A';
    const altered = token.slice(0, i) + c + token.slice(i + 1);
    assert.equal(tokens.decode(altered).ok, false, `altered at ${i}`);
  }
  assert.deepEqual(new FlowTokens('another secret, also long enough').decode(token), { ok: false, reason: 'forged' });
  assert.deepEqual(tokens.decode('ft.short'), { ok: false, reason: 'forged' });
  assert.deepEqual(tokens.decode('alice'), { ok: false, reason: 'malformed' });
  assert.equal(FlowTokens.isToken('alice'), false);
  assert.equal(FlowTokens.isToken(token), true);
  assert.throws(() => new FlowTokens('short'), (e: unknown) => e instanceof ConfigError && e.field === 'proxy.flowTokenSecret');
});

test('a request came over a flow when it has its connection, or for UDP its source address and port', () => {
  const source = (transport: string, address: string, port: number, flowId: string): MessageSource => ({
    transport,
    address,
    port,
    localAddress: '0.0.0.0',
    localPort: 5060,
    flowId,
    receivedAt: 0,
  });
  const udp: Flow = { transport: 'udp', address: '203.0.113.9', port: 40312, localAddress: '0.0.0.0', localPort: 5060 };
  assert.equal(cameOver(source('udp', '203.0.113.9', 40312, 'udp-x'), udp), true);
  assert.equal(cameOver(source('udp', '203.0.113.9', 40313, 'udp-x'), udp), false);
  const tcp: Flow = { ...udp, transport: 'tcp', connectionId: 'tcp-1' };
  assert.equal(cameOver(source('tcp', '203.0.113.9', 40312, 'tcp-1'), tcp), true);
  assert.equal(cameOver(source('tcp', '203.0.113.9', 40312, 'tcp-2'), tcp), false, 'another connection from the same port');
  assert.equal(cameOver(undefined, udp), false);
});

function entry(localAddress: string, port = 5060): BoundEntry {
  return { listener: { transport: 'udp', host: localAddress, port, advertised: `${localAddress}:${port}` }, family: 4, host: localAddress, advertisedPort: port, localAddress };
}

test('the listener for a destination: ourselves, the kernel route once learned, else the same scope and longest prefix', async () => {
  const routes = new LocalRoutes(new FakeClock(0));
  const lo = entry('127.0.0.1');
  const priv = entry('10.1.2.3');
  const pub = entry('198.51.100.1');
  const all = [lo, priv, pub];
  assert.equal(needsRoute(all), true);
  assert.equal(needsRoute([entry('0.0.0.0')]), false);
  assert.equal(chooseListener(all, '10.1.2.3', routes), priv, 'a message to one of our own addresses');
  assert.equal(chooseListener(all, '127.0.0.5', routes), lo, 'loopback from loopback');
  assert.equal(chooseListener(all, '10.1.9.9', routes), priv, 'the same subnet');
  assert.equal(chooseListener(all, '203.0.113.5', routes), pub, 'never from loopback to another host');
  assert.equal(chooseListener([lo], '203.0.113.5', routes), lo, 'the only one there is');
  // The kernel's answer wins once learned: to 127.0.0.9 it sends from 127.0.0.1.
  await routes.learn('127.0.0.9');
  assert.equal(routes.localAddressFor('127.0.0.9'), '127.0.0.1');
  assert.equal(chooseListener([priv, lo, pub], '127.0.0.9', routes), lo);
});

test('listen specs take an advertised address (Kamailio form), checked', () => {
  assert.deepEqual(parseListen('udp:10.0.0.10:5060 advertise 203.0.113.7:5080'), { transport: 'udp', host: '10.0.0.10', port: 5060, advertise: '203.0.113.7:5080' });
  assert.deepEqual(parseListen('tls:[::1]:5061 advertise sip.example.com'), { transport: 'tls', host: '::1', port: 5061, advertise: 'sip.example.com' });
  assert.throws(() => parseListen('udp:10.0.0.10:5060 advertise 203.0.113.7:99999', 'listen[0]'), (e: unknown) => e instanceof ConfigError && e.field === 'listen[0]');
  assert.throws(() => parseListen('udp:10.0.0.10:5060 advertise a advertise b'), ConfigError);
});
