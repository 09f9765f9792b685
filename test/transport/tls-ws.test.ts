import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { WebSocket } from 'ws';
import { createResponse, type SipRequest } from '../../src/message/index.js';
import { responseDestination } from '../../src/transport/response-route.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import { TransportError, type TransportName } from '../../src/transport/types.js';
import { ConfigError, UnavailableError } from '../../src/util/errors.js';
import { skipWithout } from '../helpers/process.js';
import { asResponse, Inbox, parse, request, selfSignedCert, spec, startLayer, within } from './harness.js';

let made: { cert: Buffer; key: Buffer } | undefined;
/** Made on first use: only the TLS and WSS tests need openssl. */
function certificate(): { cert: Buffer; key: Buffer } {
  return (made ??= selfSignedCert());
}
const needsOpenssl = { skip: skipWithout('openssl') };

test('a tls: or wss: listener without certificate or key is a ConfigError from start()', needsOpenssl, async () => {
  for (const transport of ['tls', 'wss'] as const) {
    const noCert = new TransportLayer({ listen: [spec(transport)] });
    await assert.rejects(noCert.start(), (e: unknown) => e instanceof ConfigError && e.field === 'tls.cert' && /certificate is required for/.test(e.message));
    const noKey = new TransportLayer({ listen: [spec(transport)], tls: { cert: certificate().cert, key: '' } });
    await assert.rejects(noKey.start(), (e: unknown) => e instanceof ConfigError && e.field === 'tls.key');
  }
  const garbage = new TransportLayer({ listen: [spec('tls')], tls: { cert: 'not a certificate', key: 'not a key' } });
  await assert.rejects(garbage.start(), (e: unknown) => e instanceof ConfigError && e.field === 'tls.cert');
});

test('a port already in use is an UnavailableError naming the listener', async () => {
  const { port } = await startLayer({ listen: [spec('tcp')] });
  const clash = new TransportLayer({ listen: [spec('udp'), spec('tcp', '127.0.0.1', port('tcp'))] });
  await assert.rejects(clash.start(), (e: unknown) => e instanceof UnavailableError && e.field === 'listen' && e.problem === `tcp:127.0.0.1:${port('tcp')} is in use (another sipway?)`);
});

/** Two layers on one transport: A sends B a request, B answers over the same flow. */
async function roundTrip(transport: TransportName): Promise<void> {
  const tls = transport === 'ws' ? {} : { tls: certificate() };
  const a = await startLayer({ listen: [spec(transport)], ...tls, tlsRejectUnauthorized: false });
  const b = await startLayer({ listen: [spec(transport)], ...tls });
  const via = `SIP/2.0/${transport.toUpperCase()} ${a.layer.listenerFor(transport)!.advertised};branch=z9hG4bK-${transport}`;
  await a.layer.send(parse(request({ via })), { transport, address: '127.0.0.1', port: b.port(transport) });
  const req = (await b.inbox.next(`the request over ${transport}`)) as SipRequest;
  assert.equal(req.source?.transport, transport);
  assert.equal(req.via.branch, `z9hG4bK-${transport}`);
  await b.layer.send(createResponse(req, 200), responseDestination(req));
  const res = asResponse(await a.inbox.next(`the response over ${transport}`));
  assert.equal(res.status, 200);
  assert.equal(res.source?.transport, transport);
  assert.equal(a.layer.stats().connectionsOpen, 1);
  assert.equal(b.layer.stats().connectionsOpen, 1);
}

test('TLS round trip with a self-signed certificate', needsOpenssl, () => roundTrip('tls'));
test('WS round trip with the sip subprotocol', () => roundTrip('ws'));
test('WSS round trip with the sip subprotocol', needsOpenssl, () => roundTrip('wss'));

test('a TLS client verifies the server certificate unless told not to', needsOpenssl, async () => {
  const a = await startLayer({ listen: [spec('tls')], tls: certificate() });
  const b = await startLayer({ listen: [spec('tls')], tls: certificate() });
  await assert.rejects(
    a.layer.send(parse(request()), { transport: 'tls', address: '127.0.0.1', port: b.port('tls') }),
    (e: unknown) => e instanceof TransportError && e.kind === 'connect',
  );
});

function wsOutcome(ws: WebSocket): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      ws.once('open', () => resolve(`open:${ws.protocol}`));
      ws.once('unexpected-response', (_req, res) => resolve(`http:${res.statusCode}`));
      ws.once('error', (err) => resolve(`error:${err.message}`));
    }),
    'the WebSocket handshake',
  );
}

test('a WebSocket handshake without the sip subprotocol is rejected (RFC 7118)', async () => {
  const { port } = await startLayer({ listen: [spec('ws')] });
  const url = `ws://127.0.0.1:${port('ws')}/`;
  assert.equal(await wsOutcome(new WebSocket(url)), 'http:400');
  assert.equal(await wsOutcome(new WebSocket(url, 'chat')), 'http:400');
  const sip = new WebSocket(url, ['chat', 'sip']);
  assert.equal(await wsOutcome(sip), 'open:sip');
  sip.terminate();
});

test('WS: one SIP message per WebSocket message, text or binary, Content-Length optional; CRLFCRLF gets a CRLF', async () => {
  const { layer, inbox, port } = await startLayer({ listen: [spec('ws')] });
  const ws = new WebSocket(`ws://127.0.0.1:${port('ws')}/`, 'sip');
  const replies = new Inbox<string>();
  ws.on('message', (data) => replies.push(String(data)));
  assert.equal(await wsOutcome(ws), 'open:sip');
  const via = 'SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-ws;rport';
  ws.send(request({ via }).replace(/Content-Length: 0\r\n/, ''));
  const req = (await inbox.next()) as SipRequest;
  assert.equal(req.source?.transport, 'ws');
  assert.equal(req.via.received, '127.0.0.1');
  ws.send(Buffer.from(request({ via, callId: 'binary@x' })), { binary: true });
  assert.equal((await inbox.next()).callId, 'binary@x');
  ws.send('\r\n\r\n');
  assert.equal(await replies.next('the pong'), '\r\n');
  await layer.send(createResponse(req, 200), responseDestination(req));
  assert.equal(asResponse(parse(await replies.next('the response'))).status, 200);
  ws.terminate();
});

test('a plain HTTP request on a WebSocket port is told to upgrade', async () => {
  const { port } = await startLayer({ listen: [spec('ws')] });
  const status = await within(
    new Promise<number | undefined>((resolve, reject) => {
      get(`http://127.0.0.1:${port('ws')}/`, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', reject);
    }),
    'the HTTP response',
  );
  assert.equal(status, 426);
});
