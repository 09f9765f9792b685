import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { TransportLayer } from '../../src/transport/index.js';
import { FakeClock, SystemClock } from '../../src/util/clock.js';
import { RegistrationClient, type RegistrationOptions } from '../../src/ua/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';

const DOMAIN = 'sipway.test';

/** A UA's own stack on loopback: a UDP listener and a transaction layer that ignores requests. */
async function uaStack() {
  const transport = new TransportLayer({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] });
  const transactions = new TransactionLayer({ sender: transport, clock: new SystemClock() });
  transactions.setUser({ onRequest: () => undefined, onAck: () => undefined, onStrayResponse: () => undefined });
  transport.setReceiver({ onMessage: (m) => transactions.receive(m) });
  await transport.start();
  const port = transport.listeners()[0]!.port;
  return { transport, transactions, port, close: async () => (transactions.close(), await transport.stop()) };
}

/** Alice's registration from `ua` at `ts`, refreshing on `clock`. */
function aliceAt(ts: TestServer, ua: Awaited<ReturnType<typeof uaStack>>, clock: FakeClock, options: Partial<RegistrationOptions>): RegistrationClient {
  return new RegistrationClient({
    transactions: ua.transactions,
    sender: ua.transport,
    clock,
    registrar: { transport: 'udp', address: '127.0.0.1', port: ts.port },
    aor: `sip:alice@${DOMAIN}`,
    contact: `<sip:alice@127.0.0.1:${ua.port}>`,
    ...options,
  });
}

async function serverWithAlice(): Promise<TestServer> {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true } });
  await ts.server.subscribers.put({ username: 'alice', domain: DOMAIN, ha1Md5: computeHa1('alice', DOMAIN, 'pw', 'MD5'), ha1Sha256: computeHa1('alice', DOMAIN, 'pw', 'SHA-256'), groups: [], createdAt: Date.now() });
  return ts;
}

test('registers with digest at sipway, is found by the location service, refreshes at half the time, unregisters', async () => {
  const ts = await serverWithAlice();
  const ua = await uaStack();
  const clock = new FakeClock();
  const pending = (): number => clock.pending;
  const reg = aliceAt(ts, ua, clock, { credentials: { username: 'alice', password: 'pw' }, expires: 600 });
  try {
    const first = await reg.register();
    assert.deepEqual([first.status, first.expires, reg.state], [200, 600, 'Registered']);
    const bindings = await ts.server.location.lookup(`sip:alice@${DOMAIN}`);
    assert.deepEqual(bindings.map((b) => b.contact), [`sip:alice@127.0.0.1:${ua.port}`]);
    assert.equal(clock.pending, 1, 'a refresh is scheduled');
    clock.advance(299_999);
    assert.equal(clock.pending, 1, 'not before half of the 600 s');
    clock.advance(1);
    // The refresh runs over real sockets: wait until it is answered and the next one scheduled.
    for (let i = 0; i < 100 && pending() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(reg.state, 'Registered');
    assert.equal(clock.pending, 1);
    const gone = await reg.unregister();
    assert.deepEqual([gone.status, gone.expires, reg.state], [200, 0, 'Unregistered']);
    assert.deepEqual(await ts.server.location.lookup(`sip:alice@${DOMAIN}`), []);
    assert.equal(clock.pending, 0, 'no refresh after unregister');
  } finally {
    reg.stop();
    await ua.close();
    await ts.stop();
  }
});

test('a wrong password fails with the registrar\'s status and the reason, once, and is retried later', async () => {
  const ts = await serverWithAlice();
  const ua = await uaStack();
  const clock = new FakeClock();
  const reg = aliceAt(ts, ua, clock, { credentials: { username: 'alice', password: 'nope' }, retryMs: 10_000 });
  try {
    const r = await reg.register();
    assert.equal(r.status, 401);
    assert.match(r.reason, /wrong user name or password/);
    assert.equal(reg.state, 'Failed');
    assert.equal(clock.pending, 1, 'tried again after retryMs');
  } finally {
    reg.stop();
    await ua.close();
    await ts.stop();
  }
});

test('RFC 5626: an Outbound registration carries +sip.instance and reg-id, and sends a double-CRLF keep-alive every 80-100 % of 29 s over UDP', async () => {
  const ts = await serverWithAlice();
  const ua = await uaStack();
  const clock = new FakeClock(0);
  const keepAlives: number[] = [];
  const resend = ua.transport.resend.bind(ua.transport);
  ua.transport.resend = (bytes, to) => {
    if (bytes.toString() === '\r\n\r\n') keepAlives.push(clock.now());
    return resend(bytes, to);
  };
  const instance = 'urn:uuid:00000000-0000-4000-8000-00000000a11c';
  const reg = aliceAt(ts, ua, clock, { credentials: { username: 'alice', password: 'pw' }, outbound: { instanceId: instance, regId: 1 }, expires: 600 });
  try {
    const r = await reg.register();
    assert.equal(r.status, 200, r.reason);
    const [binding] = await ts.server.location.lookup(`sip:alice@${DOMAIN}`);
    assert.match(binding?.instanceId ?? '', new RegExp(instance), 'the registrar keeps our instance');
    assert.equal(binding?.regId, 1);
    clock.advance(23_199);
    assert.deepEqual(keepAlives, [], 'not before 80 % of 29 s');
    clock.advance(29_000 - 23_199);
    assert.equal(keepAlives.length, 1);
    clock.advance(29_000);
    assert.equal(keepAlives.length, 2, 'and again');
    reg.stop();
    clock.advance(60_000);
    assert.equal(keepAlives.length, 2, 'none after stop');
  } finally {
    reg.stop();
    await ua.close();
    await ts.stop();
  }
});
