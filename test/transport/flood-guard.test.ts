import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { classify, defaultFloodGuardConfig, FloodGuard, readFloodConfig, Verdict, type FloodGuardConfig } from '../../src/transport/flood-guard.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import { parseMessage, SipResponse } from '../../src/message/index.js';
import { startTestServer } from '../helpers/server.js';

const INVITE = Buffer.from('INVITE sip:bob@example.com SIP/2.0\r\n');
const REGISTER = Buffer.from('REGISTER sip:example.com SIP/2.0\r\n');
const OPTIONS = Buffer.from('OPTIONS sip:example.com SIP/2.0\r\n');
const RESPONSE = Buffer.from('SIP/2.0 200 OK\r\n');

function guard(over: Partial<FloodGuardConfig> = {}, clock = new FakeClock(0), logger: Logger = silentLogger()): { g: FloodGuard; clock: FakeClock } {
  const config: FloodGuardConfig = {
    ...defaultFloodGuardConfig(),
    trusted: [],
    budgets: { register: { rate: 10, burst: 20 }, invite: { rate: 2, burst: 4 }, options: { rate: 5, burst: 5 }, other: { rate: 5, burst: 5 } },
    banAfter: 10,
    banWindowMs: 1000,
    banMs: 60_000,
    ...over,
  };
  return { g: new FloodGuard(config, clock, logger), clock };
}

test('classes come from the first bytes; a response is never budgeted', () => {
  assert.deepEqual([REGISTER, INVITE, OPTIONS, Buffer.from('BYE sip:x SIP/2.0'), RESPONSE].map(classify), [0, 1, 2, 3, -1]);
  assert.equal(classify(Buffer.from('INVITEX sip:x SIP/2.0')), 3);
});

test('a source gets its burst, then its rate; classes do not share tokens', () => {
  const { g, clock } = guard();
  const src = '192.0.2.1';
  assert.deepEqual(Array.from({ length: 5 }, () => g.check(src, INVITE)), [0, 0, 0, 0, 1]);
  assert.equal(g.check(src, REGISTER), Verdict.Pass, 'REGISTER has its own bucket');
  assert.equal(g.check(src, RESPONSE), Verdict.Pass);
  clock.advance(499);
  assert.equal(g.check(src, INVITE), Verdict.Refuse, 'not a whole token yet');
  clock.advance(1);
  assert.equal(g.check(src, INVITE), Verdict.Pass, '2/s: a token every 500 ms');
  assert.equal(g.check('192.0.2.2', INVITE), Verdict.Pass, 'another source has its own budget');
  assert.equal(g.stats().refused.invite, 2);
});

test('a source that keeps flooding is banned once, logged once, dropped unread, and freed after banMs', () => {
  const warnings: unknown[] = [];
  const logger = { ...silentLogger(), warn: (o: unknown) => void warnings.push(o), info: () => undefined } as unknown as Logger;
  const { g, clock } = guard({}, new FakeClock(0), logger);
  const src = '203.0.113.9';
  const verdicts = Array.from({ length: 20 }, () => g.check(src, INVITE));
  // 4 passed, the 10th refusal (the 14th INVITE) bans: everything after is dropped unread, responses too.
  assert.deepEqual(verdicts.slice(0, 4), [0, 0, 0, 0]);
  assert.equal(verdicts.indexOf(Verdict.Banned), 14);
  assert.equal(g.check(src, RESPONSE), Verdict.Banned);
  assert.equal(g.isBanned(src), true);
  assert.equal(warnings.length, 1);
  assert.deepEqual(g.bans().map((b) => [b.address, b.until]), [[src, 60_000]]);
  clock.advance(60_000);
  assert.equal(g.check(src, INVITE), Verdict.Pass, 'the ban is over and the bucket full again');
  assert.equal(g.stats().bansStarted, 1);
});

test('refusals spread over windows do not ban; a lifted ban forgets the source', () => {
  const { g, clock } = guard();
  const src = '198.51.100.4';
  for (let i = 0; i < 30; i++) {
    g.check(src, OPTIONS);
    clock.advance(150);
  }
  assert.equal(g.isBanned(src), false, 'a steady 6.7/s against 5/s refuses a few per window, never 10');
  for (let i = 0; i < 30; i++) g.check(src, OPTIONS);
  assert.equal(g.isBanned(src), true);
  assert.equal(g.lift(src), true);
  assert.equal(g.check(src, OPTIONS), Verdict.Pass);
  assert.equal(g.lift(src), false);
});

test('trusted addresses and blocks are never limited; failed lookups charge a source', () => {
  const { g } = guard({ trusted: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'] });
  for (const src of ['10.1.2.3', '2001:db8::5', '192.0.2.7']) {
    for (let i = 0; i < 100; i++) assert.equal(g.check(src, INVITE), Verdict.Pass, src);
  }
  assert.equal(g.isTrusted('192.0.2.8'), false);
  g.penalize('192.0.2.8', 'invite', 4);
  assert.equal(g.check('192.0.2.8', INVITE), Verdict.Refuse, 'a scanner pays for every user it did not find');
});

test('memory is bounded: the least recently seen unbanned source is forgotten first; idle ones are swept', () => {
  const { g, clock } = guard({ maxSources: 100 });
  g.start();
  for (let i = 0; i < 30; i++) g.check('203.0.113.1', INVITE);
  assert.equal(g.isBanned('203.0.113.1'), true);
  for (let i = 0; i < 1000; i++) g.check(`198.18.${i >> 8}.${i & 255}`, INVITE);
  assert.equal(g.stats().sources, 100);
  assert.equal(g.isBanned('203.0.113.1'), true, 'a banned source survives a spoofed-source flood');
  clock.advance(30_000);
  assert.equal(g.stats().sources, 1, 'only the banned source is left after a sweep');
  g.stop();
});

test('config: every field checked, unknown ones named', () => {
  const c = readFloodConfig(defaultFloodGuardConfig(), { budgets: { invite: { rate: 5 } }, trusted: ['10.0.0.0/8'], action: '503' });
  assert.deepEqual([c.budgets.invite, c.action, c.trusted], [{ rate: 5, burst: 250 }, '503', ['10.0.0.0/8']]);
  const bad: Array<[unknown, string]> = [
    [{ budgets: { bye: { rate: 1 } } }, 'flood.budgets.bye'],
    [{ budgets: { invite: { rate: -1 } } }, 'flood.budgets.invite.rate'],
    [{ trusted: ['10.0.0.0/33'] }, 'flood.trusted[0]'],
    [{ action: 'reject' }, 'flood.action'],
    [{ banMs: 0 }, 'flood.banMs'],
    [{ pike: true }, 'flood.pike'],
  ];
  for (const [value, field] of bad) assert.throws(() => readFloodConfig(defaultFloodGuardConfig(), value), (e: unknown) => e instanceof ConfigError && e.field === field, field);
});

/** A UDP socket on a loopback address of its own, so that sources differ. */
async function source(address: string): Promise<{ socket: dgram.Socket; got: SipResponse[] }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const got: SipResponse[] = [];
  socket.on('message', (b) => {
    const m = parseMessage(b).message;
    if (m instanceof SipResponse) got.push(m);
  });
  return { socket, got };
}

function request(method: string, from: dgram.Socket, n: number, target = 'sip:nobody@sipway.test'): Buffer {
  const a = from.address();
  return Buffer.from(
    `${method} ${target} SIP/2.0\r\nVia: SIP/2.0/UDP ${a.address}:${a.port};branch=z9hG4bK-f${n};rport\r\nMax-Forwards: 70\r\n` +
      `From: <sip:x@example.org>;tag=${n}\r\nTo: <sip:nobody@sipway.test>\r\nCall-ID: flood-${a.address}-${n}\r\nCSeq: 1 ${method}\r\nContent-Length: 0\r\n\r\n`,
  );
}

test('on the wire: a flooding source is refused and banned while another source is served every time', async () => {
  const ts = await startTestServer({ flood: { trusted: [], budgets: { invite: { rate: 20, burst: 40 } }, banAfter: 200, banWindowMs: 5000 } });
  const flooder = await source('127.0.0.2');
  const legit = await source('127.0.0.3');
  try {
    const started = Date.now();
    for (let i = 0; i < 2000; i++) {
      flooder.socket.send(request('INVITE', flooder.socket, i), ts.port, '127.0.0.1');
      // The other source asks the server itself (a lookup that finds nobody would cost it extra tokens).
      if (i % 40 === 0) legit.socket.send(request('OPTIONS', legit.socket, i, 'sip:sipway.test'), ts.port, '127.0.0.1');
      // Paced, so that the kernel's socket buffers (net.core.rmem_max) drop nothing: what is measured is the guard.
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    const sendingMs = Date.now() - started;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(legit.got.filter((r) => r.status === 200).length, 50, 'every OPTIONS of the other source answered');
    assert.equal(ts.server.flood.isBanned('127.0.0.2'), true);
    // Final answers are retransmitted until ACKed (Timer G): count calls, not messages.
    const answered = new Set(flooder.got.filter((r) => r.status >= 200).map((r) => r.callId)).size;
    const allowed = 40 + Math.ceil((20 * sendingMs) / 1000);
    assert.ok(answered <= allowed, `the flooder got at most its burst and its rate answered (${answered} > ${allowed})`);
    assert.ok(ts.server.transport.stats().floodDropped >= 1900);
    // A banned source's TCP connection is closed at its first message.
    const tcp = net.connect({ port: ts.tcpPort!, host: '127.0.0.1', localAddress: '127.0.0.2' });
    await new Promise<void>((resolve) => tcp.once('connect', resolve));
    tcp.write(request('OPTIONS', flooder.socket, 99999));
    await new Promise<void>((resolve) => tcp.once('close', () => resolve()));
  } finally {
    flooder.socket.close();
    legit.socket.close();
    await ts.stop();
  }
});

test("on the wire: action '503' answers a source over its budget with Retry-After", async () => {
  const ts = await startTestServer({ flood: { trusted: [], action: '503', budgets: { options: { rate: 1, burst: 2 } } } });
  const client = await source('127.0.0.4');
  try {
    for (let i = 0; i < 3; i++) client.socket.send(request('OPTIONS', client.socket, i), ts.port, '127.0.0.1');
    for (let i = 0; i < 50 && client.got.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    const refused = client.got.find((r) => r.status === 503);
    assert.ok(refused, `a 503 among ${client.got.map((r) => r.status).join(', ')}`);
    assert.equal(refused.headers.get('retry-after'), '1');
  } finally {
    client.socket.close();
    await ts.stop();
  }
});

test('a NAT reboot storm: 400 REGISTERs from one address in a burst are all answered, and nothing is banned', async () => {
  const ts = await startTestServer({ flood: { trusted: [] }, auth: { register: false } });
  const nat = await source('127.0.0.5');
  try {
    for (let i = 0; i < 400; i++) {
      const a = nat.socket.address();
      nat.socket.send(
        Buffer.from(
          `REGISTER sip:sipway.test SIP/2.0\r\nVia: SIP/2.0/UDP ${a.address}:${a.port};branch=z9hG4bK-r${i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:u${i}@sipway.test>;tag=${i}\r\n` +
            `To: <sip:u${i}@sipway.test>\r\nCall-ID: storm-${i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:u${i}@192.168.1.${(i % 250) + 2}:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n`,
        ),
        ts.port,
        '127.0.0.1',
      );
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 200 && nat.got.length < 400; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(nat.got.filter((r) => r.status === 200).length, 400);
    assert.equal(ts.server.flood.stats().banned, 0);
  } finally {
    nat.socket.close();
    await ts.stop();
  }
});
