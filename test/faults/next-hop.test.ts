/**
 * A next hop that cannot be reached fails its branch at once, whether it is a registered contact (the binding's
 * flow) or a Request-URI: an ICMP port unreachable for a datagram, a TCP connection refused, a TCP connection reset
 * before the peer answered, a network without a route. The caller gets the §16.7 best response (500 for our own 503,
 * its reason naming the fault) within about a second, not a 408 after Timer B's 32 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labOrSkip } from '../helpers/netns.js';
import { closedUdpPort, startCliServer } from '../helpers/process.js';
import { startProxy, type ProxyHarness } from '../proxy/harness.js';
import { invite, outOfDialog, register, TestUa } from '../proxy/ua.js';
import { assertAnswers, assertReleased, heapAfterGc, since } from './faults.js';

/** A loopback TCP port nobody listens on: a connection to it is refused. */
async function closedTcpPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A TCP server that resets every connection as soon as something arrives on it. */
async function resettingServer(): Promise<{ port: number; resets: () => number; close: () => Promise<void> }> {
  let resets = 0;
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      resets++;
      socket.resetAndDestroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    resets: () => resets,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Sends an INVITE for `to` and returns its final response and how long it took. */
async function call(h: ProxyHarness, caller: TestUa, to: string): Promise<{ status: number; reason: string; ms: number }> {
  const inv = invite(caller, { to });
  const start = performance.now();
  caller.send(inv, h.port);
  const res = await caller.response(inv.callId, undefined, 5000);
  return { status: res.status, reason: res.reason, ms: since(start) };
}

function assertFailedFast(r: { status: number; reason: string; ms: number }, fault: RegExp): void {
  assert.equal(r.status, 500, `${r.status} ${r.reason}`);
  assert.match(r.reason, /^Server Internal Error - no reachable next hop: /);
  assert.match(r.reason, fault);
  // About 500 ms (Timer A's first firing) for a datagram, a few ms for a stream; the margin is for a loaded machine,
  // and still far from Timer B's 32 s.
  assert.ok(r.ms < 2500, `answered in ${r.ms} ms, not at Timer B`);
}

test('ICMP port unreachable: a registered UDP contact that is gone fails the call at once, as does a Request-URI', { timeout: 20000 }, async () => {
  const h = await startProxy();
  try {
    const alice = await h.ua('alice');
    const bob = await TestUa.udp('bob');
    await register(bob, h.port, 'bob');
    bob.close();
    assertFailedFast(await call(h, alice, 'sip:bob@sipway.test'), /port unreachable \(udp:127\.0\.0\.1:\d+\)/);
    const port = await closedUdpPort();
    assertFailedFast(await call(h, alice, `sip:gw@127.0.0.1:${port}`), new RegExp(`port unreachable \\(udp:127\\.0\\.0\\.1:${port}\\)`));
    // A non-INVITE request to the same contact: the same, rather than silence until Timer F.
    const msg = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test');
    const start = performance.now();
    alice.send(msg, h.port);
    const res = await alice.response(msg.callId, undefined, 5000);
    assertFailedFast({ status: res.status, reason: res.reason, ms: since(start) }, /port unreachable/);
    await assertAnswers(h.port);
    await assertReleased(h.ts.server);
  } finally {
    await h.stop();
  }
});

test('ICMP port unreachable, repeated: probe sockets, transactions and heap come back to where they were', { timeout: 30000 }, async () => {
  const h = await startProxy();
  try {
    const alice = await h.ua('alice');
    const port = await closedUdpPort();
    await call(h, alice, `sip:warmup@127.0.0.1:${port}`);
    const before = heapAfterGc();
    const rounds = 40;
    const results = await Promise.all(Array.from({ length: rounds }, (_, i) => call(h, alice, `sip:gw${i}@127.0.0.1:${port}`)));
    for (const r of results) assertFailedFast(r, /port unreachable/);
    await assertReleased(h.ts.server);
    const grown = heapAfterGc() - before;
    assert.ok(grown < 8, `heap grew ${grown.toFixed(1)} MB over ${rounds} failed calls`);
    await assertAnswers(h.port);
  } finally {
    await h.stop();
  }
});

test('TCP connection refused: a TCP contact whose connection is gone, and a Request-URI, fail at once', { timeout: 20000 }, async () => {
  const h = await startProxy();
  try {
    const alice = await h.ua('alice');
    const carol = await h.tcpUa('carol');
    await register(carol, h.port, 'carol');
    carol.close();
    // The server sees the connection close, so the Contact itself is tried: nobody listens there any more.
    await assertReleased(h.ts.server);
    assertFailedFast(await call(h, alice, 'sip:carol@sipway.test'), /ECONNREFUSED/);
    const port = await closedTcpPort();
    assertFailedFast(await call(h, alice, `sip:gw@127.0.0.1:${port};transport=tcp`), /ECONNREFUSED/);
    await assertAnswers(h.port);
    await assertReleased(h.ts.server);
  } finally {
    await h.stop();
  }
});

test('TCP reset: a registered phone whose connection is reset on the INVITE fails the call at once', { timeout: 20000 }, async () => {
  const h = await startProxy();
  try {
    const alice = await h.ua('alice');
    // The phone registers over its own connection, which then resets when the INVITE arrives on it.
    const socket = net.connect(h.ts.tcpPort!, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.on('error', () => undefined);
    const port = socket.localPort!;
    const registered = new Promise<string>((resolve) => socket.once('data', (c) => resolve(c.toString())));
    const lines = [
      'REGISTER sip:sipway.test SIP/2.0',
      `Via: SIP/2.0/TCP 127.0.0.1:${port};branch=z9hG4bKrst1;rport`,
      'Max-Forwards: 70',
      'From: <sip:dave@sipway.test>;tag=r1',
      'To: <sip:dave@sipway.test>',
      'Call-ID: rst-reg@test',
      'CSeq: 1 REGISTER',
      `Contact: <sip:dave@127.0.0.1:${port};transport=tcp>`,
      'Expires: 600',
      'Content-Length: 0',
    ];
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    assert.match(await registered, /^SIP\/2\.0 200/);
    socket.once('data', () => socket.resetAndDestroy());
    assertFailedFast(await call(h, alice, 'sip:dave@sipway.test'), /tcp connection to 127\.0\.0\.1:\d+ reset by the peer before an answer/);
    // A next hop by Request-URI that resets the connection it accepted: the same.
    const rst = await resettingServer();
    try {
      assertFailedFast(await call(h, alice, `sip:gw@127.0.0.1:${rst.port};transport=tcp`), /reset by the peer/);
      assert.equal(rst.resets(), 1);
    } finally {
      await rst.close();
    }
    await assertAnswers(h.port);
    await assertReleased(h.ts.server);
  } finally {
    await h.stop();
  }
});

/** A request from wherever udpExchange sends it: rport brings the answer back to that socket. */
function rawRequest(method: string, uri: string, extra: string[] = [], from = 'sip:alice@sipway.test', to = uri): string {
  const id = `${method.toLowerCase()}${Math.random().toString(36).slice(2, 10)}`;
  const lines = [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK${id};rport`,
    'Max-Forwards: 70',
    `From: <${from}>;tag=${id}`,
    `To: <${to}>`,
    `Call-ID: ${id}@test`,
    `CSeq: 1 ${method}`,
    ...extra,
    'Content-Length: 0',
  ];
  return lines.join('\r\n') + '\r\n\r\n';
}

/** The final response among what udpExchange collected. */
function finalOf(got: Array<{ data: string }>): string | undefined {
  return got.map((g) => g.data.split('\r\n')[0]!).find((l) => /^SIP\/2\.0 [2-6]\d\d /.test(l));
}

test('ENETUNREACH: a registered contact and a Request-URI on a network without a route fail at once (namespaces)', { timeout: 60000 }, async (t) => {
  const lab = labOrSkip(t);
  if (!lab) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-netunreach-'));
  try {
    lab.network('lan');
    const host = lab.host('server', [{ network: 'lan', address: '10.214.0.1' }]);
    const phone = lab.host('phone', [{ network: 'lan', address: '10.214.0.2' }]);
    const config = path.join(dir, 'sipway.json');
    writeFileSync(config, JSON.stringify({ proxy: { authenticateCallers: false } }));
    const server = await startCliServer(['--config', config, '--listen', 'udp:0.0.0.0:5060', '--domain', 'sipway.test', '--data', dir, '--no-auth', '--workers', '1'], 15000, { host });
    try {
      const register = rawRequest('REGISTER', 'sip:sipway.test', ['Contact: <sip:bob@10.214.0.2:5060>', 'Expires: 600'], 'sip:bob@sipway.test', 'sip:bob@sipway.test');
      const registered = await phone.udpExchange('10.214.0.1', 5060, register, 1000);
      assert.match(finalOf(registered) ?? 'nothing', /^SIP\/2\.0 200/);
      // The server's own link to the phone's network goes: no route to it any more.
      host.run('ip', ['route', 'del', '10.214.0.0/24', 'dev', 'eth0']);
      for (const uri of ['sip:bob@sipway.test', 'sip:gw@10.214.0.99']) {
        const got = await host.udpExchange('127.0.0.1', 5060, rawRequest('INVITE', uri, ['Contact: <sip:alice@127.0.0.1:9>']), 2000);
        assert.match(finalOf(got) ?? `no final answer to ${uri} within 2 s`, /^SIP\/2\.0 500 Server Internal Error - no reachable next hop: .*network unreachable/);
      }
      const options = await host.udpExchange('127.0.0.1', 5060, rawRequest('OPTIONS', 'sip:127.0.0.1:5060'), 1000);
      assert.match(finalOf(options) ?? 'no answer to OPTIONS', /^SIP\/2\.0 200/);
    } finally {
      await server.stop();
    }
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
