import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:net';
import { createResponse, type SipRequest } from '../../src/message/index.js';
import { responseDestination } from '../../src/transport/response-route.js';
import { RECEIVE_CHANNEL, SEND_CHANNEL, type ReceiveEvent, type SendEvent } from '../../src/transport/transport-layer.js';
import { TransportError } from '../../src/transport/types.js';
import { asResponse, parse, request, response, spec, startLayer, UdpPeer, within } from './harness.js';

test('a UDP request arrives with received and rport stamped and its source recorded', async () => {
  const { inbox, port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  await peer.send(request(), port('udp'));
  const msg = (await inbox.next()) as SipRequest;
  assert.equal(msg.method, 'OPTIONS');
  assert.equal(msg.via.received, '127.0.0.1');
  assert.equal(msg.via.rport, peer.port);
  assert.equal(msg.headers.get('via'), `SIP/2.0/UDP client.example.com:5070;branch=z9hG4bK-t1;rport=${peer.port};received=127.0.0.1`);
  assert.deepEqual(
    { ...msg.source, receivedAt: 0 },
    { transport: 'udp', address: '127.0.0.1', port: peer.port, localAddress: '127.0.0.1', localPort: port('udp'), flowId: msg.source!.flowId, receivedAt: 0 },
  );
  assert.match(msg.source!.flowId, /^udp-/);
});

test('sent-by equal to the source address and no rport leaves the Via untouched (§18.2.1)', async () => {
  const { inbox, port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  const via = `SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bK-t2`;
  await peer.send(request({ via }), port('udp'));
  assert.equal((await inbox.next()).headers.get('via'), via);
});

test('forceRport fills rport (and received) although the client did not ask', async () => {
  const { inbox, port } = await startLayer({ listen: [spec('udp')], forceRport: true });
  const peer = await UdpPeer.open();
  await peer.send(request({ via: `SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-t3` }), port('udp'));
  const msg = await inbox.next();
  assert.equal(msg.via.rport, peer.port);
  assert.equal(msg.via.received, '127.0.0.1');
});

test('a response goes back over UDP to received:rport, from the socket the request came to', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  await peer.send(request(), port('udp'));
  const req = (await inbox.next()) as SipRequest;
  // Without a destination the response's own top Via (stamped) says where it goes; with one, the request's.
  await layer.send(createResponse(req, 200));
  await layer.send(createResponse(req, 202), responseDestination(req));
  for (const status of [200, 202]) {
    const got = await peer.inbox.next('the response');
    assert.equal(got.port, port('udp'));
    assert.equal(asResponse(parse(got.bytes)).status, status);
  }
  assert.equal(layer.stats().sent, 2);
});

test('stray CRLF keep-alives on UDP are ignored silently', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  await peer.send('\r\n\r\n', port('udp'));
  await peer.send('\r\n', port('udp'));
  await peer.send(request({ callId: 'after-keepalive@example.com' }), port('udp'));
  assert.equal((await inbox.next()).callId, 'after-keepalive@example.com');
  assert.equal(peer.inbox.size, 0);
  const { received, parseErrors, dropped, badRequestsAnswered } = layer.stats();
  assert.deepEqual({ received, parseErrors, dropped, badRequestsAnswered }, { received: 1, parseErrors: 0, dropped: 0, badRequestsAnswered: 0 });
});

test('an unparsable request is answered 400 with a reason naming the fault, to received:rport', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  await peer.send(request({ callId: null }), port('udp'));
  const res = asResponse(await peer.next('the 400'));
  assert.equal(res.status, 400);
  assert.equal(res.reason, 'Bad Request - missing Call-ID');
  assert.equal(res.via.rport, peer.port);
  assert.equal(res.via.received, '127.0.0.1');
  assert.equal(inbox.size, 0);
  assert.equal(layer.stats().parseErrors, 1);
  assert.equal(layer.stats().badRequestsAnswered, 1);
});

test('the reason phrase of a 400 is sanitised: printable ASCII, at most 100 characters', async () => {
  const { port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  const bad = request().replace('Max-Forwards: 70', `Bad\u0001Header\u00e9 ${'x'.repeat(200)}`);
  await peer.send(bad, port('udp'));
  const res = asResponse(await peer.next('the 400'));
  assert.equal(res.status, 400);
  assert.ok(res.reason.startsWith('Bad Request - malformed header line'), res.reason);
  assert.ok(res.reason.length <= 100);
  assert.match(res.reason, /^[\x20-\x7e]+$/);
});

test('a request without a usable top Via is answered to the packet source', async () => {
  const { port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  await peer.send(request({ via: 'garbage' }), port('udp'));
  const res = asResponse(await peer.next('the 400'));
  assert.equal(res.status, 400);
  assert.match(res.reason, /^Bad Request - /);
});

test('an unparsable ACK is not answered; an unparsable response is dropped and counted', async () => {
  const { layer, port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  await peer.send(request({ method: 'ACK', callId: null }), port('udp'));
  await peer.send('SIP/2.0 2000 Way Too Big\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\n\r\n', port('udp'));
  // A well-formed request afterwards is answered, so anything sent for the two above would have arrived first.
  await peer.send(request({ callId: null, method: 'INFO' }), port('udp'));
  const res = await peer.next('the 400 for INFO');
  assert.equal(res.cseq.method, 'INFO');
  assert.equal(layer.stats().parseErrors, 3);
  assert.equal(layer.stats().dropped, 2);
});

test('a message over the size limit is answered 513', async () => {
  const { layer, port } = await startLayer({ listen: [spec('udp')], limits: { maxMessageSize: 1000 } });
  const peer = await UdpPeer.open();
  await peer.send(request({ body: 'x'.repeat(1500), extra: ['Content-Type: text/plain'] }), port('udp'));
  const res = asResponse(await peer.next('the 513'));
  assert.equal(res.status, 513);
  assert.match(res.reason, /^Message Too Large - /);
  assert.equal(layer.stats().badRequestsAnswered, 1);
});

test('a response whose top Via is not ours is discarded (§18.1.2); ours is delivered', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  await peer.send(response('SIP/2.0/UDP elsewhere.example.com:5060;branch=z9hG4bK-x'), port('udp'));
  const ours = layer.listenerFor('udp')!.advertised;
  await peer.send(response(`SIP/2.0/UDP ${ours};branch=z9hG4bK-ours`), port('udp'));
  const got = await inbox.next();
  assert.equal(got.via.branch, 'z9hG4bK-ours');
  assert.equal(got.source?.port, peer.port);
  assert.equal(layer.stats().dropped, 1);
});

test('the destination filter refuses a destination before anything is sent', async () => {
  const { layer } = await startLayer({ listen: [spec('udp')] });
  const req = parse(request()) as SipRequest;
  await assert.rejects(layer.send(req, { transport: 'udp', address: '192.0.2.1', port: 5060 }), (e: unknown) => e instanceof TransportError && e.kind === 'refused-destination');
  await assert.rejects(layer.send(req, { transport: 'tcp', address: '192.0.2.1', port: 5060 }), (e: unknown) => e instanceof TransportError && e.kind === 'refused-destination');
  assert.equal(layer.stats().sent, 0);
});

test('requests need a destination; sending without a listener of the family fails with no-listener', async () => {
  const { layer } = await startLayer({ listen: [spec('udp')] });
  const req = parse(request()) as SipRequest;
  await assert.rejects(layer.send(req), (e: unknown) => e instanceof TransportError && e.kind === 'refused-destination');
  await assert.rejects(layer.send(req, { transport: 'udp', address: '::1', port: 5060 }), (e: unknown) => e instanceof TransportError && e.kind === 'no-listener');
});

test('IPv6: a UDP request on ::1 is stamped and answered', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('udp', '::1')] });
  assert.equal(layer.listenerFor('udp', 6)?.advertised, `[::1]:${port('udp')}`);
  const peer = await UdpPeer.open(6);
  await peer.send(request({ via: 'SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK-v6;rport' }), port('udp'), '::1');
  const req = (await inbox.next()) as SipRequest;
  assert.equal(req.via.received, '::1');
  assert.equal(req.source?.address, '::1');
  await layer.send(createResponse(req, 200));
  const got = await peer.inbox.next('the response over IPv6');
  assert.equal(got.address, '::1');
  assert.equal(asResponse(parse(got.bytes)).status, 200);
});

test('received and sent messages are published on the diagnostics channels', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('udp')] });
  const peer = await UdpPeer.open();
  const received: ReceiveEvent[] = [];
  const sent: SendEvent[] = [];
  const onReceive = (e: unknown): void => void received.push(e as ReceiveEvent);
  const onSend = (e: unknown): void => void sent.push(e as SendEvent);
  subscribe(RECEIVE_CHANNEL, onReceive);
  subscribe(SEND_CHANNEL, onSend);
  try {
    await peer.send(request(), port('udp'));
    const req = (await inbox.next()) as SipRequest;
    await layer.send(createResponse(req, 200));
    await peer.inbox.next('the response');
  } finally {
    unsubscribe(RECEIVE_CHANNEL, onReceive);
    unsubscribe(SEND_CHANNEL, onSend);
  }
  assert.equal(received.length, 1);
  assert.equal(received[0]!.source.port, peer.port);
  assert.equal(received[0]!.bytes.toString(), request());
  assert.equal(sent.length, 1);
  assert.deepEqual({ ...sent[0]!.destination, flowId: undefined }, { transport: 'udp', address: '127.0.0.1', port: peer.port, flowId: undefined });
});

test('§18.1.1: a request over 1300 bytes bound for UDP goes over TCP, Via rewritten; UDP if TCP is refused', async () => {
  const { layer } = await startLayer({ listen: [spec('udp'), spec('tcp')] });
  const big = (): SipRequest => {
    const r = parse(request({ body: 'x'.repeat(1400), via: `SIP/2.0/UDP ${layer.listenerFor('udp')!.advertised};branch=z9hG4bK-big;rport` }));
    return r as SipRequest;
  };

  // A peer listening on TCP at the port the request was meant for gets it over TCP.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const tcpPort = (server.address() as { port: number }).port;
  const received = new Promise<Buffer>((resolve) => {
    server.once('connection', (s) => {
      let all = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        all = Buffer.concat([all, d]);
        if (all.length >= 1400) resolve(all);
      });
    });
  });
  const viaTcp = big();
  await layer.send(viaTcp, { transport: 'udp', address: '127.0.0.1', port: tcpPort });
  const got = parse(await within(received, 'the request over TCP'));
  assert.equal(got.via.transport, 'TCP');
  assert.equal(got.via.sentBy, layer.listenerFor('tcp')!.advertised);
  assert.equal(viaTcp.via.transport, 'TCP');
  await layer.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('§18.1.1: when the TCP connection is refused the oversized request falls back to UDP with its Via intact', async () => {
  const { layer } = await startLayer({ listen: [spec('udp'), spec('tcp')] });
  const peer = await UdpPeer.open();
  const via = `SIP/2.0/UDP ${layer.listenerFor('udp')!.advertised};branch=z9hG4bK-big;rport`;
  const req = parse(request({ body: 'y'.repeat(1400), via })) as SipRequest;
  // Nothing listens on TCP at the UDP peer's port, so the connection is refused.
  await layer.send(req, { transport: 'udp', address: '127.0.0.1', port: peer.port });
  const got = await peer.next('the request over UDP');
  assert.equal(got.headers.get('via'), via);
  assert.equal(got.body.length, 1400);
});
