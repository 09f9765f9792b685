/**
 * The server composed with every transport: OPTIONS to the server over UDP and TCP on IPv4 and IPv6, TLS, WS and
 * WSS (RFC 7118, subprotocol "sip") all get 200 from the same SipwayServer, configured the way an operator would.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { parseMessage, SipResponse } from '../../src/message/index.js';
import { selfSignedCert } from '../transport/harness.js';
import { skipWithout } from '../helpers/process.js';

// The server has TLS and WSS listeners: without openssl for their certificate, none of it runs.
describe('one server, every transport', { skip: skipWithout('openssl') }, () => {
  let ts: TestServer;
  let certDir: string;

  before(async () => {
    certDir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cert-'));
    const { cert, key } = selfSignedCert();
    writeFileSync(path.join(certDir, 'cert.pem'), cert);
    writeFileSync(path.join(certDir, 'key.pem'), key);
    ts = await startTestServer({
      listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0', 'udp:[::1]:0', 'tcp:[::1]:0', 'tls:127.0.0.1:0', 'ws:127.0.0.1:0', 'wss:[::1]:0'],
      tls: { cert: path.join(certDir, 'cert.pem'), key: path.join(certDir, 'key.pem') },
    });
  });

  after(async () => {
    await ts.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  function listener(transport: string, ipv6: boolean): { host: string; port: number } {
    const l = ts.server.listeners().find((x) => x.transport === transport && x.host.includes(':') === ipv6);
    assert.ok(l, `${transport} listener`);
    return { host: l.host, port: l.port };
  }

  function options(transport: string, host: string, port: number): string {
    const h = host.includes(':') ? `[${host}]` : host;
    return (
      `OPTIONS sip:${h}:${port} SIP/2.0\r\nVia: SIP/2.0/${transport} ${transport.startsWith('WS') ? 'client.invalid' : h};branch=z9hG4bK${transport}${port};rport\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:t@${h}>;tag=1\r\nTo: <sip:${h}:${port}>\r\nCall-ID: ${transport}-${port}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`
    );
  }

  function status(bytes: Buffer | string): number {
    const r = parseMessage(Buffer.from(bytes));
    assert.ok(r.message instanceof SipResponse, 'a SIP response');
    return r.message.status;
  }

  function bounded<T>(p: Promise<T>, what: string): Promise<T> {
    return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in 3 s`)), 3000))]);
  }

  for (const ipv6 of [false, true]) {
    test(`OPTIONS over UDP and TCP on IPv${ipv6 ? 6 : 4}`, async () => {
      const u = listener('udp', ipv6);
      const sock = dgram.createSocket(ipv6 ? 'udp6' : 'udp4');
      const got = new Promise<Buffer>((resolve) => sock.on('message', resolve));
      sock.send(options('UDP', u.host, u.port), u.port, u.host);
      assert.equal(status(await bounded(got, 'udp')), 200);
      sock.close();
      const t = listener('tcp', ipv6);
      const conn = net.connect(t.port, t.host, () => conn.write(options('TCP', t.host, t.port)));
      const data = await bounded(new Promise<Buffer>((resolve) => conn.once('data', resolve)), 'tcp');
      assert.equal(status(data), 200);
      conn.destroy();
    });
  }

  test('OPTIONS over TLS', async () => {
    const t = listener('tls', false);
    const conn = tls.connect({ host: t.host, port: t.port, rejectUnauthorized: false }, () => conn.write(options('TLS', t.host, t.port)));
    const data = await bounded(new Promise<Buffer>((resolve) => conn.once('data', resolve)), 'tls');
    assert.equal(status(data), 200);
    conn.destroy();
  });

  for (const [transport, ipv6] of [['ws', false], ['wss', true]] as const) {
    test(`OPTIONS over ${transport.toUpperCase()} (RFC 7118)`, async () => {
      const l = listener(transport, ipv6);
      const host = ipv6 ? `[${l.host}]` : l.host;
      const ws = new WebSocket(`${transport}://${host}:${l.port}`, 'sip', { rejectUnauthorized: false });
      await bounded(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 'ws open');
      assert.equal(ws.protocol, 'sip');
      const got = new Promise<Buffer>((resolve) => ws.once('message', (m) => resolve(Buffer.from(m as Buffer))));
      ws.send(options(transport.toUpperCase(), l.host, l.port));
      assert.equal(status(await bounded(got, transport)), 200);
      ws.close();
    });
  }
});
