import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { createResponse, parseMessage, serialize, type SipRequest } from '../../src/message/index.js';
import { NatKeepalive, isBehindNat } from '../../src/registrar/keepalive.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryLocationStore, openDatabase, SqliteLocationStore, type Binding, type LocationStore } from '../../src/store/index.js';
import { TransactionLayer, type ClientTransaction, type ClientTransactionHandlers } from '../../src/transaction/index.js';
import { TransportError, TransportLayer, type BoundListener, type Destination, type MessageSender } from '../../src/transport/index.js';
import { FakeClock, SystemClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';

const T0 = 1_700_000_000_000;
const HOUR = 3600_000;

function binding(over: Partial<Binding> & { aor?: string } = {}): Binding {
  return {
    aor: 'sip:alice@example.com',
    contact: 'sip:alice@192.168.1.10:5060',
    contactParams: {},
    expiresAt: T0 + HOUR,
    q: 1,
    callId: 'reg-1',
    cseq: 1,
    path: [],
    source: { transport: 'udp', address: '198.51.100.7', port: 40312 },
    flowId: 'udp:0',
    registeredAt: T0,
    ...over,
  };
}

async function put(store: LocationStore, ...bindings: Binding[]): Promise<void> {
  for (const b of bindings) await store.modify(b.aor, (current) => ({ next: [...current.filter((c) => c.contact !== b.contact), b], result: undefined }));
}

/** Lets the keep-alive's store reads (promises) complete after a clock advance. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('isBehindNat: source differs from the Contact, Outbound, ob, or an unresolvable Contact host', () => {
  const src = { transport: 'udp', address: '198.51.100.7', port: 5060 };
  assert.equal(isBehindNat(binding({ contact: 'sip:alice@198.51.100.7', source: src })), false, 'public phone, default port');
  assert.equal(isBehindNat(binding({ contact: 'sip:alice@198.51.100.7:5060;transport=udp', source: src })), false);
  assert.equal(isBehindNat(binding({ contact: 'sip:alice@192.168.1.10:5060', source: src })), true, 'private address in Contact');
  assert.equal(isBehindNat(binding({ contact: 'sip:alice@198.51.100.7:5062', source: src })), true, 'port rewritten by the NAT');
  assert.equal(isBehindNat(binding({ contact: 'sip:alice@198.51.100.7;ob', source: src })), true, 'RFC 5626 ob');
  assert.equal(isBehindNat(binding({ contact: 'sip:alice@198.51.100.7', source: src, regId: 1, instanceId: '"<urn:uuid:1>"' })), true, 'reg-id');
  assert.equal(isBehindNat(binding({ contact: 'sip:alice@phone.example.com', source: src })), true, 'host name');
  assert.equal(isBehindNat(binding({ contact: 'sip:alice@[2001:db8::1]', source: { ...src, address: '2001:db8::1' } })), false, 'IPv6 brackets');
  assert.equal(isBehindNat(binding({ contact: 'sips:alice@198.51.100.7', source: { ...src, transport: 'tls', port: 5061 } })), false, 'sips default 5061');
  assert.equal(isBehindNat(binding({ contact: 'tel:+15551234', source: src })), false);
});

interface Sent {
  request: SipRequest;
  destination: Destination;
  handlers: ClientTransactionHandlers<ClientTransaction>;
}

/** A keep-alive on a fake clock with the transaction layer replaced by a recorder the test answers by hand. */
function harness(options: { intervalMs?: number; maxFailures?: number; maxInFlight?: number; nodeId?: string } = {}, location: LocationStore = new MemoryLocationStore(new FakeClock(T0))) {
  const clock = new FakeClock(T0);
  // The store sweeps on a clock of its own, so that `clock.pending` counts only the keep-alive's timers.
  const sent: Sent[] = [];
  const sender: MessageSender = {
    send: async () => {},
    resend: async () => {},
    isReliable: (t) => t !== 'udp',
    listenerFor: (): BoundListener => ({ transport: 'udp', host: '192.0.2.10', port: 5060, advertised: '192.0.2.10:5060' }),
  };
  const transactions = {
    sendRequest(request: SipRequest, destination: Destination, handlers: ClientTransactionHandlers<ClientTransaction>): ClientTransaction {
      sent.push({ request, destination, handlers });
      return {} as ClientTransaction;
    },
  };
  const keepalive = new NatKeepalive({ location, transactions, sender, clock, logger: silentLogger(), intervalMs: 1000, ...options });
  const answer = (s: Sent, status: number): void => s.handlers.onResponse(createResponse(s.request, status), {} as ClientTransaction);
  const timeout = (s: Sent): void => s.handlers.onTimeout({} as ClientTransaction);
  return { clock, location, sent, keepalive, answer, timeout };
}

test('probes only NATed UDP bindings without Path, of this node, with an OPTIONS to the Contact through the registration flow', async () => {
  const h = harness({ nodeId: 'n1' });
  await put(
    h.location,
    binding({ node: 'n1' }),
    binding({ aor: 'sip:bob@example.com', contact: 'sip:bob@198.51.100.8:5060', source: { transport: 'udp', address: '198.51.100.8', port: 5060 } }),
    binding({ aor: 'sip:carol@example.com', contact: 'sip:carol@10.0.0.3;transport=tcp', source: { transport: 'tcp', address: '198.51.100.9', port: 50123 } }),
    binding({ aor: 'sip:dave@example.com', path: ['<sip:edge.example.com;lr;ob>'] }),
    binding({ aor: 'sip:erin@example.com', node: 'n2' }),
  );
  h.keepalive.start();
  h.clock.advance(999);
  await settle();
  assert.equal(h.sent.length, 0, 'the first round is one interval after start');
  h.clock.advance(1);
  await settle();
  assert.equal(h.sent.length, 1);
  const { request, destination } = h.sent[0]!;
  assert.deepEqual(destination, { transport: 'udp', address: '198.51.100.7', port: 40312, flowId: 'udp:0' });
  assert.equal(request.method, 'OPTIONS');
  assert.equal(request.uri.toString(), 'sip:alice@192.168.1.10:5060');
  assert.equal(request.to.uri.toString(), 'sip:alice@example.com');
  assert.equal(request.from.uri.toString(), 'sip:192.0.2.10:5060');
  assert.ok(request.fromTag);
  assert.equal(request.maxForwards, 1);
  assert.equal(request.headers.get('cseq'), '1 OPTIONS');
  assert.match(request.via.branch ?? '', /^z9hG4bK/);
  h.keepalive.stop();
  assert.equal(h.clock.pending, 0);
});

test('a round walks the SQLite store page by page and probes the same bindings', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-keepalive-'));
  const db = openDatabase(dir);
  const h = harness({ nodeId: 'n1' }, new SqliteLocationStore(db, new FakeClock(T0)));
  try {
    // More NATed users than one page (500), plus the kinds a round must skip.
    const nated = Array.from({ length: 1203 }, (_, i) =>
      binding({ aor: `sip:u${i}@example.com`, contact: `sip:u${i}@192.168.1.10:5060`, node: 'n1' }),
    );
    await put(
      h.location,
      ...nated,
      binding({ aor: 'sip:bob@example.com', contact: 'sip:bob@198.51.100.8:5060', source: { transport: 'udp', address: '198.51.100.8', port: 5060 } }),
      binding({ aor: 'sip:erin@example.com', node: 'n2' }),
    );
    h.keepalive.start();
    h.clock.advance(1000);
    for (let i = 0; i < 50 && h.sent.length === 0; i++) await settle();
    // The round spreads its probes over the interval (at most maxInFlight unanswered): answer them as they go.
    let answered = 0;
    for (let t = 0; t < 1000 && h.sent.length < nated.length; t += 10) {
      while (answered < h.sent.length) h.answer(h.sent[answered++]!, 200);
      h.clock.advance(10);
      await settle();
    }
    assert.equal(h.sent.length, nated.length, 'every NATed binding of this node, once');
    assert.equal(new Set(h.sent.map((s) => s.request.to.uri.toString())).size, nated.length);
  } finally {
    h.keepalive.stop();
    await h.location.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('maxFailures timeouts in a row remove the binding; any response, even 404, resets the count', async () => {
  const h = harness({ maxFailures: 3 });
  await put(h.location, binding());
  h.keepalive.start();
  const round = async (outcome: 'timeout' | number): Promise<void> => {
    const before = h.sent.length;
    h.clock.advance(1000);
    await settle();
    assert.equal(h.sent.length, before + 1, 'one probe per round');
    const s = h.sent[before]!;
    if (outcome === 'timeout') h.timeout(s);
    else h.answer(s, outcome);
    await settle();
  };
  await round('timeout');
  await round('timeout');
  await round(404);
  await round('timeout');
  await round('timeout');
  assert.equal((await h.location.lookup('sip:alice@example.com')).length, 1, 'two failures since the answer');
  await round('timeout');
  assert.equal((await h.location.lookup('sip:alice@example.com')).length, 0);
  h.keepalive.stop();
});

test('a transport error counts as a failure; a binding refreshed meanwhile is not removed', async () => {
  const h = harness({ maxFailures: 2 });
  await put(h.location, binding());
  h.keepalive.start();
  h.clock.advance(1000);
  await settle();
  h.sent[0]!.handlers.onTransportError(new TransportError('write', 'EHOSTUNREACH'), {} as ClientTransaction);
  h.clock.advance(1000);
  await settle();
  // The phone re-registers while the second probe is out: same Contact, new CSeq.
  await put(h.location, binding({ cseq: 2 }));
  h.timeout(h.sent[1]!);
  await settle();
  const left = await h.location.lookup('sip:alice@example.com');
  assert.deepEqual(left.map((b) => b.cseq), [2]);
  // Failures counted against the old registration do not carry over to the new one.
  h.clock.advance(1000);
  await settle();
  h.timeout(h.sent[2]!);
  await settle();
  assert.equal((await h.location.lookup('sip:alice@example.com')).length, 1);
  h.keepalive.stop();
});

test('a round spreads its probes over the interval, with at most maxInFlight unanswered', async () => {
  const h = harness({ maxInFlight: 3 });
  const phones = Array.from({ length: 10 }, (_, i) => binding({ aor: `sip:u${i}@example.com`, contact: `sip:u${i}@10.0.0.${i + 1}` }));
  await put(h.location, ...phones);
  h.keepalive.start();
  h.clock.advance(1000);
  await settle();
  assert.equal(h.sent.length, 1, 'first of ten, one every 100 ms');
  h.clock.advance(100);
  assert.equal(h.sent.length, 2);
  h.clock.advance(200);
  assert.equal(h.sent.length, 3, 'capped at three in flight');
  h.answer(h.sent[0]!, 200);
  h.answer(h.sent[1]!, 200);
  h.clock.advance(100);
  assert.equal(h.sent.length, 4);
  assert.equal(h.keepalive.probesInFlight, 2);
  for (let i = 0; i < 6; i++) {
    for (const s of h.sent.slice(2)) h.answer(s, 200);
    h.clock.advance(100);
  }
  assert.equal(h.sent.length, 10, 'the round ends late rather than bursting');
  assert.equal(new Set(h.sent.map((s) => s.request.to.uri.toString())).size, 10);
  h.keepalive.stop();
  assert.equal(h.clock.pending, 0);
});

test('a binding whose probe is still unanswered gets none in the next round', async () => {
  const h = harness();
  await put(h.location, binding(), binding({ aor: 'sip:bob@example.com', contact: 'sip:bob@10.0.0.2' }));
  h.keepalive.start();
  h.clock.advance(1000);
  await settle();
  h.clock.advance(500);
  assert.equal(h.sent.length, 2, 'two probes, half an interval apart');
  const [first, second] = h.sent;
  h.answer(first!, 200);
  h.clock.advance(500);
  await settle();
  h.clock.advance(500);
  assert.deepEqual(h.sent.slice(2).map((s) => s.request.to.uri.toString()), [first!.request.to.uri.toString()]);
  h.timeout(second!);
  h.answer(h.sent[2]!, 200);
  h.clock.advance(500);
  await settle();
  h.clock.advance(500);
  assert.equal(h.sent.length, 5, 'both again once the probe has failed');
  h.keepalive.stop();
});

test('bad options are ConfigErrors', () => {
  const h = harness();
  const base = { location: h.location, transactions: { sendRequest: () => ({}) as ClientTransaction }, sender: {} as MessageSender, clock: h.clock, logger: silentLogger() };
  assert.throws(() => new NatKeepalive({ ...base, intervalMs: 0 }), ConfigError);
  assert.throws(() => new NatKeepalive({ ...base, maxFailures: 1.5 }), ConfigError);
});

/** A phone on a loopback UDP socket: answers every request 200 or stays silent; records the Call-IDs it saw. */
async function phone(answers: boolean): Promise<{ socket: dgram.Socket; port: number; callIds: Set<string> }> {
  const socket = dgram.createSocket('udp4');
  const callIds = new Set<string>();
  socket.on('message', (bytes, remote) => {
    const r = parseMessage(bytes);
    if (!r.ok || !r.message.isRequest) return;
    callIds.add(r.message.callId);
    if (answers) socket.send(serialize(createResponse(r.message, 200)), remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port, callIds };
}

test('over UDP on loopback: a silent phone is removed after maxFailures Timer F timeouts, an answering one stays', async () => {
  const clock = new SystemClock();
  const transport = new TransportLayer({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], clock });
  // T1 = 10 ms, so Timer F (64*T1) fires after 640 ms.
  const transactions = new TransactionLayer({ sender: transport, clock, timers: { T1: 10, T2: 40, T4: 50 } });
  transport.setReceiver({ onMessage: (m) => transactions.receive(m) });
  transactions.setUser({ onRequest: () => {}, onAck: () => {}, onStrayResponse: () => {} });
  await transport.start();
  const location = new MemoryLocationStore(clock);
  const alive = await phone(true);
  const silent = await phone(false);
  const now = Date.now();
  const udp = (port: number) => ({ transport: 'udp', address: '127.0.0.1', port });
  await put(
    location,
    binding({ aor: 'sip:alive@example.com', contact: 'sip:alive@192.168.1.20:5060', source: udp(alive.port), flowId: undefined, expiresAt: now + HOUR }),
    binding({ aor: 'sip:silent@example.com', contact: 'sip:silent@192.168.1.21:5060', source: udp(silent.port), flowId: undefined, expiresAt: now + HOUR }),
  );
  const keepalive = new NatKeepalive({ location, transactions, sender: transport, clock, logger: silentLogger(), intervalMs: 150, maxFailures: 2 });
  keepalive.start();
  try {
    const deadline = Date.now() + 8000;
    while ((await location.lookup('sip:silent@example.com')).length > 0) {
      assert.ok(Date.now() < deadline, 'the silent phone was not removed within 8 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(silent.callIds.size >= 2, `the silent phone got ${silent.callIds.size} probes`);
    assert.equal((await location.lookup('sip:alive@example.com')).length, 1);
    assert.ok(alive.callIds.size >= 5, `the answering phone got ${alive.callIds.size} probes, one per round`);
  } finally {
    keepalive.stop();
    transactions.close();
    await transport.stop();
    await location.close();
    alive.socket.close();
    silent.socket.close();
  }
});
