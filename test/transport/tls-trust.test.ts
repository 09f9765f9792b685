/**
 * TLS trust in both directions (docs/transports.md#tls): the CA bundle sipway trusts, verification of the servers it
 * connects to, client certificates asked of phones and presented to peers, and errors at start naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import type { SipRequest } from '../../src/message/index.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import { TransportError } from '../../src/transport/types.js';
import { SipwayServer } from '../../src/server/server.js';
import { applyConfigObject, defaultConfig, finishConfig } from '../../src/server/config.js';
import { ConfigError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { parse, request, spec, startLayer, testPki } from './harness.js';

const pki = testPki();
const to = (port: number) => ({ transport: 'tls' as const, address: '127.0.0.1', port });

test('a server certificate signed by the configured CA verifies; one of another CA is refused', async () => {
  const trusting = await startLayer({ listen: [spec('tls')], tls: { ...pki.server, ca: pki.ca } });
  const good = await startLayer({ listen: [spec('tls')], tls: pki.server });
  const foreign = await startLayer({ listen: [spec('tls')], tls: pki.foreign });
  await trusting.layer.send(parse(request({ via: 'SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-ca1' })), to(good.port('tls')));
  assert.equal(((await good.inbox.next('the request over verified TLS')) as SipRequest).via.branch, 'z9hG4bK-ca1');
  await assert.rejects(
    trusting.layer.send(parse(request()), to(foreign.port('tls'))),
    (e: unknown) => e instanceof TransportError && e.kind === 'connect' && /certificate/i.test(e.message),
  );
});

test('verifyServer: false connects to a peer whatever its certificate', async () => {
  const lax = await startLayer({ listen: [spec('tls')], tls: { ...pki.server, verifyServer: false } });
  const foreign = await startLayer({ listen: [spec('tls')], tls: pki.foreign });
  await lax.layer.send(parse(request({ via: 'SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-lax' })), to(foreign.port('tls')));
  assert.equal(((await foreign.inbox.next('the request')) as SipRequest).via.branch, 'z9hG4bK-lax');
});

test("verifyClient 'require': a client without a certificate gets nothing through; with the CA's client certificate it does", async () => {
  const strict = await startLayer({ listen: [spec('tls')], tls: { ...pki.server, ca: pki.ca, verifyClient: 'require' } });
  const anonymous = await startLayer({ listen: [spec('tls')], tls: { ...pki.server, ca: pki.ca } });
  await anonymous.layer.send(parse(request({ via: 'SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-anon' })), to(strict.port('tls'))).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(strict.inbox.size, 0, 'nothing from the client without a certificate');
  const mutual = await startLayer({ listen: [spec('tls')], tls: { ...pki.server, ca: pki.ca, clientCert: pki.client.cert, clientKey: pki.client.key } });
  await mutual.layer.send(parse(request({ via: 'SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-mtls' })), to(strict.port('tls')));
  assert.equal(((await strict.inbox.next('the request over mutual TLS')) as SipRequest).via.branch, 'z9hG4bK-mtls');
});

test("verifyClient 'request': a client may come without a certificate, never with one that does not verify", async () => {
  const server = await startLayer({ listen: [spec('tls')], tls: { ...pki.server, ca: pki.ca, verifyClient: 'request' } });
  const port = server.port('tls');
  const attempt = (cert?: { cert: Buffer; key: Buffer }): Promise<'open' | 'closed'> =>
    new Promise((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...(cert ?? {}) }, () => {
        socket.write(request({ via: 'SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-req' }));
      });
      socket.on('error', () => resolve('closed'));
      socket.on('close', () => resolve('closed'));
      setTimeout(() => {
        resolve(socket.destroyed ? 'closed' : 'open');
        socket.destroy();
      }, 400);
    });
  assert.equal(await attempt(), 'open');
  assert.equal(((await server.inbox.next('the anonymous request')) as SipRequest).via.branch, 'z9hG4bK-req');
  assert.equal(await attempt(pki.foreign), 'closed');
  assert.equal(server.inbox.size, 0);
});

test('a CA bundle or client certificate that cannot be used stops the start, naming the field', async () => {
  const badCa = new TransportLayer({ listen: [spec('tls')], tls: { ...pki.server, ca: 'not a certificate' } });
  await assert.rejects(badCa.start(), (e: unknown) => e instanceof ConfigError && e.field === 'tls.ca');
  const badClient = new TransportLayer({ listen: [spec('udp')], tls: { ...pki.server, clientCert: 'nope', clientKey: 'nope' } });
  await assert.rejects(badClient.start(), (e: unknown) => e instanceof ConfigError && e.field === 'tls.clientCert');
});

test('config: tls.ca, tls.clientCert/clientKey files, verifyClient and minVersion are checked and read at start', () => {
  const base = { listen: ['tls:127.0.0.1:0'], admin: false, log: { level: 'silent' } };
  const files = { cert: join(pki.dir, 'server.pem'), key: join(pki.dir, 'server.key') };
  assert.throws(
    () => applyConfigObject(defaultConfig(), { ...base, tls: { ...files, clientCert: join(pki.dir, 'client.pem') } }),
    (e: unknown) => e instanceof ConfigError && e.field === 'tls.clientKey',
  );
  assert.throws(() => applyConfigObject(defaultConfig(), { ...base, tls: { ...files, verifyClient: 'yes' } }), (e: unknown) => e instanceof ConfigError && e.field === 'tls.verifyClient');
  assert.throws(() => applyConfigObject(defaultConfig(), { ...base, tls: { ...files, minVersion: 'SSLv3' } }), (e: unknown) => e instanceof ConfigError && e.field === 'tls.minVersion');
  assert.throws(() => applyConfigObject(defaultConfig(), { ...base, tls: { ...files, sni: true } }), (e: unknown) => e instanceof ConfigError && e.field === 'tls.sni');
  const missing = finishConfig(applyConfigObject(defaultConfig(), { ...base, tls: { ...files, ca: join(pki.dir, 'no-such-ca.pem') } }));
  assert.throws(() => new SipwayServer(missing, { logger: silentLogger() }), (e: unknown) => e instanceof ConfigError && e.field === 'tls.ca' && /ENOENT/.test(e.message));
});
