/**
 * Garbage where a secure or WebSocket next hop should be: a TLS next hop that answers our ClientHello with bytes that
 * are no TLS, a WebSocket next hop that answers the upgrade with garbage. The call fails at once with the fault in
 * the reason, and the server goes on. (Garbage from clients, inbound, is test/transport/streams.test.ts's.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestCa } from '../helpers/certs.js';
import { skipWithout } from '../helpers/process.js';
import { startProxy } from '../proxy/harness.js';
import { invite } from '../proxy/ua.js';
import { assertAnswers, assertReleased, since } from './faults.js';

/** A TCP server that answers whatever arrives with garbage and closes. */
async function garbageServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end('\x15\x03\x03garbage, not TLS and not HTTP\r\n\r\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('garbage from a TLS or WebSocket next hop fails the call at once, naming it', { timeout: 30000, skip: skipWithout('openssl') }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-stream-fault-'));
  const cert = createTestCa(dir).issue('server', ['127.0.0.1']);
  const h = await startProxy({}, { listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0', 'tls:127.0.0.1:0', 'ws:127.0.0.1:0'], tls: { cert: cert.certFile, key: cert.keyFile } });
  const peer = await garbageServer();
  try {
    const alice = await h.ua('alice');
    for (const transport of ['tls', 'ws']) {
      const inv = invite(alice, { to: `sip:gw@127.0.0.1:${peer.port};transport=${transport}` });
      const start = performance.now();
      alice.send(inv, h.port);
      const res = await alice.response(inv.callId, undefined, 8000);
      assert.equal(res.status, 500, `${transport}: ${res.status} ${res.reason}`);
      assert.match(res.reason, new RegExp(`^Server Internal Error - no reachable next hop: cannot connect to ${transport}:127\\.0\\.0\\.1:${peer.port}: `));
      assert.ok(since(start) < 2500, `${transport}: answered in ${since(start)} ms`);
    }
    await assertAnswers(h.port);
    await assertReleased(h.ts.server);
  } finally {
    await peer.close();
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
