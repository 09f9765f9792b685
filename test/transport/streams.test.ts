import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { applyConfigObject, defaultConfig, finishConfig } from '../../src/server/config.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { asResponse, eventually, request, selfSignedCert, spec, startLayer, TcpPeer, within } from './harness.js';

const tcpVia = (branch: string): string => `SIP/2.0/TCP client.example.com:5070;branch=z9hG4bK-${branch}`;
const READ_TIMEOUT = 10_000;

/** A TCP peer bound to a loopback address of its own (127.0.0.0/8 is all local on Linux): another source. */
const peerFrom = (localAddress: string, port: number): Promise<TcpPeer> => TcpPeer.open(port, '127.0.0.1', localAddress);

test('a message must be complete within messageReadTimeoutMs of its first byte, however slowly it trickles', async () => {
  const clock = new FakeClock();
  const { layer, port } = await startLayer({ listen: [spec('tcp')], clock, messageReadTimeoutMs: READ_TIMEOUT, idleTimeoutMs: 600_000 });
  const peer = await TcpPeer.open(port('tcp'));
  const text = request({ via: tcpVia('trickle') });
  // One byte a second: each one is traffic (the idle timer), none of them buys the message more time.
  for (let i = 0; i < 9; i++) {
    await peer.write(text[i]!);
    await eventually(`byte ${i + 1} at the server`, () => layer.stats().partialMessageBytes === i + 1);
    clock.advance(1000);
  }
  clock.advance(READ_TIMEOUT - 9000 - 1);
  assert.equal(layer.stats().connectionsTimedOut, 0, 'still open 1 ms before the deadline');
  assert.equal(layer.stats().connectionsOpen, 1);
  clock.advance(1);
  await within(peer.closed, 'the slow connection to be closed at the deadline');
  assert.equal(layer.stats().connectionsTimedOut, 1);
  await eventually('its bytes to be let go', () => layer.stats().partialMessageBytes === 0 && layer.stats().socketsOpen === 0);
});

test('the deadline runs per message: none between messages, a new one from the first byte of the next', async () => {
  const clock = new FakeClock();
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')], clock, messageReadTimeoutMs: READ_TIMEOUT, idleTimeoutMs: 600_000 });
  const peer = await TcpPeer.open(port('tcp'));
  await peer.write(request({ via: tcpVia('first') }));
  await inbox.next('the first message');
  clock.advance(READ_TIMEOUT * 3);
  assert.equal(layer.stats().connectionsTimedOut, 0, 'an idle connection between messages is left to the idle timeout');
  const next = request({ via: tcpVia('second') });
  await peer.write(next.slice(0, 20));
  await eventually('the start of the second message', () => layer.stats().partialMessageBytes === 20);
  clock.advance(READ_TIMEOUT - 1);
  assert.equal(layer.stats().connectionsTimedOut, 0);
  clock.advance(1);
  await within(peer.closed, 'the connection to be closed at the second message deadline');
  assert.equal(layer.stats().connectionsTimedOut, 1);
});

test('an accepted TCP connection that says nothing is closed when its first message is due', async () => {
  const clock = new FakeClock();
  const { layer, port } = await startLayer({ listen: [spec('tcp')], clock, messageReadTimeoutMs: READ_TIMEOUT, idleTimeoutMs: 600_000 });
  const peer = await TcpPeer.open(port('tcp'));
  await eventually('the accept', () => layer.stats().connectionsOpen === 1);
  clock.advance(READ_TIMEOUT - 1);
  assert.equal(layer.stats().connectionsTimedOut, 0);
  clock.advance(1);
  await within(peer.closed, 'the silent connection to be closed');
  assert.equal(layer.stats().connectionsTimedOut, 1);
});

test('a header section over 64 KB is answered 513 before the connection is closed', async () => {
  const { layer, port } = await startLayer({ listen: [spec('tcp')] });
  const peer = await TcpPeer.open(port('tcp'));
  const filler = Array.from({ length: 800 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(76)}`);
  const text = request({ via: tcpVia('huge'), extra: filler });
  assert.ok(text.length > 70_000);
  await peer.write(text);
  const res = asResponse(await peer.nextMessage('the 513'));
  assert.equal(res.status, 513);
  assert.equal(res.reason, 'Message Too Large - header section larger than the limit of 65535 bytes');
  assert.equal(res.via.branch, 'z9hG4bK-huge');
  await within(peer.closed, 'the server to close the connection');
  assert.equal(layer.stats().badRequestsAnswered, 1);
});

test('a request written and reset before the server accepted it is dropped, not processed without a source', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')] });
  const text = request({ via: tcpVia('reset'), method: 'REGISTER', uri: 'sip:example.com' });
  // The client runs while this process is blocked, so that the kernel has the connection, its bytes and its reset
  // queued before the listener accepts it.
  const client = `const s=require('net').connect(${port('tcp')},'127.0.0.1',()=>{s.write(Buffer.from(process.argv[1],'base64'));s.resetAndDestroy()});s.on('error',()=>{});`;
  execFileSync(process.execPath, ['-e', client, Buffer.from(text).toString('base64')], { timeout: 5000 });
  await eventually('the reset connection to be seen', () => layer.stats().connectionsLostBeforeAccept === 1 || inbox.size > 0);
  assert.equal(inbox.size, 0, 'no message without its source');
  assert.equal(layer.stats().badRequestsAnswered, 0);
  const peer = await TcpPeer.open(port('tcp'));
  await peer.write(request({ via: tcpVia('after-reset') }));
  const next = await inbox.next('the next client');
  assert.equal(next.source?.address, '127.0.0.1');
  assert.equal(next.source?.port, peer.socket.localPort);
});

test('with the table full of connections that never completed a message, a new client is still served', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')], maxConnections: 20, maxConnectionsPerSource: 100 });
  const slow: TcpPeer[] = [];
  for (let i = 0; i < 20; i++) {
    const p = await peerFrom('127.0.0.2', port('tcp'));
    await p.write('OPTIONS sip:x SIP/2.0\r\nVia: ');
    slow.push(p);
  }
  // 18 places for addresses without an established flow (two reserved); the two over cannot displace their own.
  await within(Promise.all([slow[18]!.closed, slow[19]!.closed]), 'the slow connections over the limit to be refused');
  assert.equal(layer.stats().connectionsRejected, 2);
  assert.equal(layer.stats().socketsOpen, 18);
  const client = await peerFrom('127.0.0.3', port('tcp'));
  await client.write(request({ via: tcpVia('legit') }));
  const msg = await inbox.next('the new client message');
  assert.equal(msg.via.branch, 'z9hG4bK-legit');
  assert.equal(msg.source?.address, '127.0.0.3');
  await within(slow[0]!.closed, 'the oldest slow connection to make room');
  assert.equal(layer.stats().connectionsEvicted, 1);
});

test('the reserve keeps room for addresses with an established flow; a newcomer displaces the heaviest unestablished', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')], maxConnections: 6, reservedConnections: 2, maxConnectionsPerSource: 100 });
  for (const [i, address] of ['127.0.0.4', '127.0.0.4', '127.0.0.4', '127.0.0.6'].entries()) {
    const phone = await peerFrom(address, port('tcp'));
    await phone.write(request({ via: tcpVia(`phone${i}`), callId: `phone${i}@x` }));
    await inbox.next('a phone message');
  }
  const stranger = await peerFrom('127.0.0.5', port('tcp'));
  await within(stranger.closed, 'the stranger to be refused: the rest is reserved');
  assert.equal(layer.stats().connectionsRejected, 1);
  const known = await peerFrom('127.0.0.4', port('tcp'));
  await known.write(request({ via: tcpVia('known'), callId: 'known@x' }));
  assert.equal((await inbox.next('the known address')).via.branch, 'z9hG4bK-known');
  // Six of six: a connection that says nothing yet is the one a newcomer from an address holding none displaces.
  const quiet = await peerFrom('127.0.0.4', port('tcp'));
  await eventually('six sockets', () => layer.stats().socketsOpen === 6);
  const another = await peerFrom('127.0.0.6', port('tcp'));
  await within(quiet.closed, 'the unestablished connection to make room');
  await another.write(request({ via: tcpVia('another'), callId: 'another@x' }));
  assert.equal((await inbox.next('the newest connection')).via.branch, 'z9hG4bK-another');
  assert.equal(layer.stats().connectionsEvicted, 1);
  assert.equal(layer.stats().connectionsOpen, 6);
});

/** A WebSocket upgrade done by hand, so that the test can then write frames no library would. */
async function rawWebSocket(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await within(new Promise((resolve) => socket.once('connect', resolve)), 'ws connect');
  const key = randomBytes(16).toString('base64');
  socket.write(
    ['GET / HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: sip', '', ''].join('\r\n'),
  );
  let head = '';
  await within(
    new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        socket.off('data', onData);
        resolve();
      };
      socket.on('data', onData);
    }),
    'the 101',
  );
  const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  assert.match(head, /^HTTP\/1\.1 101/);
  assert.ok(head.includes(accept));
  return { socket, closed };
}

test('WebSocket: a garbage frame or one over the size limit closes the connection and is counted', async () => {
  const { layer, port } = await startLayer({ listen: [spec('ws')] });
  const garbage = await rawWebSocket(port('ws'));
  // Opcode 3 is reserved (RFC 6455 §5.2).
  garbage.socket.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
  await within(garbage.closed, 'the garbage connection to be closed');
  const big = await rawWebSocket(port('ws'));
  // A masked text frame announcing 100,000 octets, over maxMessageSize.
  big.socket.write(Buffer.from([0x81, 0xff, 0, 0, 0, 0, 0, 1, 0x86, 0xa0, 1, 2, 3, 4]));
  await within(big.closed, 'the oversized connection to be closed');
  await eventually('both to be counted and let go', () => layer.stats().streamProtocolErrors === 2 && layer.stats().socketsOpen === 0);
  assert.equal(layer.stats().connectionsOpen, 0);
});

test('WebSocket: a message whose frame trickles in is held to the read deadline', async () => {
  const clock = new FakeClock();
  const { layer, port } = await startLayer({ listen: [spec('ws')], clock, messageReadTimeoutMs: READ_TIMEOUT, idleTimeoutMs: 600_000 });
  const ws = await rawWebSocket(port('ws'));
  await eventually('the upgrade', () => layer.stats().connectionsOpen === 1);
  clock.advance(READ_TIMEOUT * 2);
  assert.equal(layer.stats().connectionsTimedOut, 0, 'no deadline for a WebSocket first message');
  // A masked text frame of 200 octets, of which only the header and one octet come.
  ws.socket.write(Buffer.from([0x81, 0xfe, 0, 200, 1, 2, 3, 4, 0x41]));
  // Nothing on the server side shows the bytes arriving, so the deadline is crossed in small steps.
  await eventually('the deadline to close the connection', () => {
    clock.advance(100);
    return layer.stats().connectionsTimedOut === 1;
  });
  await within(ws.closed, 'the trickling WebSocket to be closed');
});

test('TLS: a handshake of garbage closes the socket and frees its place', async () => {
  const { layer, port } = await startLayer({ listen: [spec('tls')], tls: selfSignedCert() });
  const socket = connect(port('tls'), '127.0.0.1');
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n'));
  await within(closed, 'the garbage handshake to be closed');
  await eventually('the failure to be counted and the socket let go', () => layer.stats().handshakeFailures === 1 && layer.stats().socketsOpen === 0);
  // The listener still serves real TLS clients.
  const good = tlsConnect({ port: port('tls'), host: '127.0.0.1', rejectUnauthorized: false });
  await within(new Promise((resolve) => good.once('secureConnect', resolve)), 'a real TLS client');
  good.destroy();
});

test('the stream limits are read from the config file and checked', () => {
  const c = finishConfig(applyConfigObject(defaultConfig(), { transport: { messageReadTimeoutMs: 5000, maxConnections: 100, reservedConnections: 10 } }));
  assert.equal(c.transport.messageReadTimeoutMs, 5000);
  assert.equal(c.transport.reservedConnections, 10);
  assert.equal(defaultConfig().transport.messageReadTimeoutMs, 10_000);
  assert.throws(() => applyConfigObject(defaultConfig(), { transport: { messageReadTimeoutMs: 0 } }), (e: unknown) => e instanceof ConfigError && e.field === 'transport.messageReadTimeoutMs');
  assert.throws(
    () => finishConfig(applyConfigObject(defaultConfig(), { transport: { maxConnections: 100, reservedConnections: 100 } })),
    (e: unknown) => e instanceof ConfigError && e.field === 'transport.reservedConnections' && /below transport.maxConnections \(100\)/.test(e.message),
  );
  assert.throws(() => new TransportLayer({ listen: [spec('tcp')], maxConnections: 5, reservedConnections: 5 }), (e: unknown) => e instanceof ConfigError && e.field === 'reservedConnections');
});
