import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { createResponse, parseMessage, type SipRequest } from '../../src/message/index.js';
import { responseDestination } from '../../src/transport/response-route.js';
import { TransportError } from '../../src/transport/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { asResponse, eventually, Inbox, parse, request, spec, startLayer, TcpPeer, within } from './harness.js';

const tcpVia = (branch: string): string => `SIP/2.0/TCP client.example.com:5070;branch=z9hG4bK-${branch}`;

test('TCP: a message split across writes is framed and delivered with its flow', async () => {
  const { inbox, port } = await startLayer({ listen: [spec('tcp')] });
  const peer = await TcpPeer.open(port('tcp'));
  const text = request({ via: tcpVia('split'), body: 'v=0\r\n', extra: ['Content-Type: application/sdp'] });
  for (const piece of [text.slice(0, 7), text.slice(7, 100), text.slice(100, text.length - 2), text.slice(text.length - 2)]) await peer.write(piece);
  const msg = (await inbox.next()) as SipRequest;
  assert.equal(msg.body.toString(), 'v=0\r\n');
  assert.equal(msg.source?.transport, 'tcp');
  assert.equal(msg.source?.port, peer.socket.localPort);
  assert.match(msg.source!.flowId, /^tcp-/);
  assert.equal(msg.via.received, '127.0.0.1');
});

test('TCP: two messages in one write are both delivered, in order, on the same flow', async () => {
  const { inbox, port } = await startLayer({ listen: [spec('tcp')] });
  const peer = await TcpPeer.open(port('tcp'));
  await peer.write(request({ via: tcpVia('one'), callId: 'one@x' }) + request({ via: tcpVia('two'), callId: 'two@x' }));
  const first = await inbox.next();
  const second = await inbox.next();
  assert.deepEqual([first.callId, second.callId], ['one@x', 'two@x']);
  assert.equal(first.source?.flowId, second.source?.flowId);
});

test('TCP: a response goes back over the connection the request came on (§18.2.2)', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')] });
  const peer = await TcpPeer.open(port('tcp'));
  await peer.write(request({ via: tcpVia('resp') }));
  const req = (await inbox.next()) as SipRequest;
  await layer.send(createResponse(req, 200), responseDestination(req));
  const res = asResponse(await peer.nextMessage());
  assert.equal(res.status, 200);
  assert.equal(res.via.branch, 'z9hG4bK-resp');
  assert.equal(layer.stats().connectionsOpen, 1);
});

test('TCP: a CRLFCRLF ping gets a single CRLF pong (RFC 5626 §4.4.1)', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')] });
  const peer = await TcpPeer.open(port('tcp'));
  await peer.write('\r\n\r\n');
  assert.equal((await peer.take(2, 'the pong')).toString(), '\r\n');
  await peer.write(request({ via: tcpVia('after-ping') }));
  assert.equal((await inbox.next()).via.branch, 'z9hG4bK-after-ping');
  assert.equal(layer.stats().parseErrors, 0);
});

test('TCP: a bad Content-Length is answered 400 and the connection closed', async () => {
  const { layer, port } = await startLayer({ listen: [spec('tcp')] });
  const peer = await TcpPeer.open(port('tcp'));
  await peer.write(request({ via: tcpVia('badcl'), contentLength: '-5' }));
  const res = asResponse(await peer.nextMessage('the 400'));
  assert.equal(res.status, 400);
  assert.equal(res.reason, "Bad Request - bad Content-Length '-5'");
  await within(peer.closed, 'the server to close the connection');
  assert.equal(layer.stats().parseErrors, 1);
  await eventually('the connection to leave the table', () => layer.stats().connectionsOpen === 0);
});

test('TCP: a message over the size limit is answered 513 and the connection closed', async () => {
  const { port } = await startLayer({ listen: [spec('tcp')], limits: { maxMessageSize: 1000 } });
  const peer = await TcpPeer.open(port('tcp'));
  await peer.write(request({ via: tcpVia('big'), contentLength: '5000' }));
  const res = asResponse(await peer.nextMessage('the 513'));
  assert.equal(res.status, 513);
  assert.match(res.reason, /^Message Too Large - message larger than the limit/);
  await within(peer.closed, 'the server to close the connection');
});

test('TCP layer to layer: request, response over the flow, and the connection reused both ways', async () => {
  const a = await startLayer({ listen: [spec('tcp')] });
  const b = await startLayer({ listen: [spec('tcp')] });
  const viaA = (branch: string): string => `SIP/2.0/TCP ${a.layer.listenerFor('tcp')!.advertised};branch=z9hG4bK-${branch}`;
  const toB = { transport: 'tcp' as const, address: '127.0.0.1', port: b.port('tcp') };

  await a.layer.send(parse(request({ via: viaA('1') })), toB);
  const req1 = (await b.inbox.next('the first request at B')) as SipRequest;
  assert.equal(req1.via.received, undefined, 'sent-by is the source address, so no received');
  await b.layer.send(createResponse(req1, 200), responseDestination(req1));
  assert.equal(asResponse(await a.inbox.next('the response at A')).status, 200);

  await a.layer.send(parse(request({ via: viaA('2') })), toB);
  const req2 = await b.inbox.next('the second request at B');
  assert.equal(req2.source?.flowId, req1.source?.flowId);

  // B reaches A over the connection A opened, by its flow id (RFC 5626) rather than by opening a new one.
  await b.layer.send(parse(request({ via: `SIP/2.0/TCP ${b.layer.listenerFor('tcp')!.advertised};branch=z9hG4bK-b` })), {
    transport: 'tcp',
    address: req1.source!.address,
    port: req1.source!.port,
    flowId: req1.source!.flowId,
  });
  assert.equal((await a.inbox.next('the request at A')).via.branch, 'z9hG4bK-b');
  assert.equal(a.layer.stats().connectionsOpen, 1);
  assert.equal(b.layer.stats().connectionsOpen, 1);
});

test('TCP: concurrent sends to a new peer share one connection', async () => {
  const a = await startLayer({ listen: [spec('tcp')] });
  const b = await startLayer({ listen: [spec('tcp')] });
  const toB = { transport: 'tcp' as const, address: '127.0.0.1', port: b.port('tcp') };
  const via = (n: number): string => `SIP/2.0/TCP ${a.layer.listenerFor('tcp')!.advertised};branch=z9hG4bK-c${n}`;
  await Promise.all([1, 2, 3].map((n) => a.layer.send(parse(request({ via: via(n) })), toB)));
  const flows = new Set([(await b.inbox.next()).source?.flowId, (await b.inbox.next()).source?.flowId, (await b.inbox.next()).source?.flowId]);
  assert.equal(flows.size, 1);
  assert.equal(a.layer.stats().connectionsOpen, 1);
});

test('TCP: a response whose connection has closed goes over a new one to received and the sent-by port (§18.2.2)', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')] });
  const client = createServer();
  await new Promise<void>((resolve) => client.listen(0, '127.0.0.1', resolve));
  const clientPort = (client.address() as { port: number }).port;
  const accepted = new Inbox<Socket>();
  client.on('connection', (s) => accepted.push(s));

  const peer = await TcpPeer.open(port('tcp'));
  await peer.write(request({ via: `SIP/2.0/TCP client.invalid:${clientPort};branch=z9hG4bK-gone` }));
  const req = (await inbox.next()) as SipRequest;
  peer.socket.destroy();
  await eventually('the server to notice the close', () => layer.stats().connectionsOpen === 0);

  await layer.send(createResponse(req, 200), responseDestination(req));
  const socket = await accepted.next('the new connection to the sent-by port');
  const bytes = await within(new Promise<Buffer>((resolve) => socket.once('data', resolve)), 'the response');
  const res = parseMessage(bytes);
  assert.ok(res.ok && !res.message.isRequest && res.message.status === 200);
  socket.destroy();
  await layer.stop();
  await new Promise<void>((resolve) => client.close(() => resolve()));
});

test('TCP: a connection that cannot be made rejects with a connect error', async () => {
  const { layer } = await startLayer({ listen: [spec('tcp')] });
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const unused = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await assert.rejects(layer.send(parse(request()), { transport: 'tcp', address: '127.0.0.1', port: unused }), (e: unknown) => e instanceof TransportError && e.kind === 'connect');
});

test('IPv6: TCP on ::1 carries a request and its response', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp', '::1')] });
  assert.equal(layer.listenerFor('tcp', 6)?.advertised, `[::1]:${port('tcp')}`);
  assert.equal(layer.listenerFor('tcp', 4), undefined);
  const peer = await TcpPeer.open(port('tcp'), '::1');
  await peer.write(request({ via: 'SIP/2.0/TCP [::1]:5070;branch=z9hG4bK-v6' }));
  const req = (await inbox.next()) as SipRequest;
  assert.equal(req.source?.address, '::1');
  assert.equal(req.via.received, undefined);
  await layer.send(createResponse(req, 200), responseDestination(req));
  assert.equal(asResponse(await peer.nextMessage()).status, 200);
});

test('the per-source connection limit refuses the connection over it and counts it', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')], maxConnectionsPerSource: 2 });
  const first = await TcpPeer.open(port('tcp'));
  await TcpPeer.open(port('tcp'));
  const third = await TcpPeer.open(port('tcp'));
  await within(third.closed, 'the connection over the limit to be closed');
  assert.equal(layer.stats().connectionsRejected, 1);
  await first.write(request({ via: tcpVia('within-limit') }));
  assert.equal((await inbox.next()).via.branch, 'z9hG4bK-within-limit');
  assert.equal(layer.stats().connectionsOpen, 2);
});

test('the total connection limit applies too, once every connection has delivered a message', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')], maxConnections: 1 });
  const first = await TcpPeer.open(port('tcp'));
  await first.write(request({ via: tcpVia('established') }));
  await inbox.next();
  const second = await TcpPeer.open(port('tcp'));
  await within(second.closed, 'the connection over the limit to be closed');
  assert.equal(layer.stats().connectionsRejected, 1);
});

test('an idle connection is closed after idleTimeoutMs without traffic; traffic postpones it', async () => {
  const clock = new FakeClock();
  const { layer, inbox, port } = await startLayer({ listen: [spec('tcp')], clock, idleTimeoutMs: 200 });
  const peer = await TcpPeer.open(port('tcp'));
  await peer.write(request({ via: tcpVia('i1') }));
  await inbox.next();
  clock.advance(150);
  await peer.write(request({ via: tcpVia('i2') }));
  await inbox.next();
  clock.advance(100);
  // 100 ms since the last message: still open.
  await peer.write(request({ via: tcpVia('i3') }));
  assert.equal((await inbox.next()).via.branch, 'z9hG4bK-i3');
  clock.advance(200);
  await within(peer.closed, 'the idle connection to be closed');
  await eventually('the connection to leave the table', () => layer.stats().connectionsOpen === 0);
});

test('stop() closes the listeners and every connection, inbound and outbound', async () => {
  const a = await startLayer({ listen: [spec('tcp'), spec('udp')] });
  const b = await startLayer({ listen: [spec('tcp')] });
  const inbound = await TcpPeer.open(a.port('tcp'));
  await a.layer.send(parse(request({ via: `SIP/2.0/TCP ${a.layer.listenerFor('tcp')!.advertised};branch=z9hG4bK-s` })), {
    transport: 'tcp',
    address: '127.0.0.1',
    port: b.port('tcp'),
  });
  await b.inbox.next();
  assert.equal(a.layer.stats().connectionsOpen, 2);
  await within(a.layer.stop(), 'stop()');
  await within(inbound.closed, 'the inbound connection to close');
  await eventually('B to see the outbound connection close', () => b.layer.stats().connectionsOpen === 0);
  assert.equal(a.layer.stats().connectionsOpen, 0);
  await assert.rejects(TcpPeer.open(a.port('tcp')));
  await assert.rejects(a.layer.send(parse(request()), { transport: 'udp', address: '127.0.0.1', port: 5060 }), (e: unknown) => e instanceof TransportError && e.kind === 'no-listener');
});
