import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import type { SipRequest } from '../../src/message/index.js';
import { UserAgent } from '../../src/ua/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';

const DOMAIN = 'sipway.test';

async function addUser(ts: TestServer, user: string, password: string): Promise<void> {
  await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, password, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, password, 'SHA-256'), groups: [], createdAt: Date.now() });
}

test('two user agents register with digest at sipway and exchange MESSAGE and OPTIONS through it', async () => {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, proxy: { authenticateCallers: true } });
  await addUser(ts, 'alice', 'pa');
  await addUser(ts, 'bob', 'pb');
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const inbox: SipRequest[] = [];
  const listen = { transport: 'udp' as const, host: '127.0.0.1', port: 0 };
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, credentials: { username: 'alice', password: 'pa' }, proxy, listen });
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: { username: 'bob', password: 'pb' }, proxy, listen, onMessage: (m) => inbox.push(m) });
  const regs = [alice.registration(), bob.registration()];
  try {
    for (const r of regs) assert.equal((await r.register()).status, 200);
    const sent = await alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { body: Buffer.from('hello bob'), contentType: 'text/plain' });
    assert.equal(sent.status, 200, sent.reason);
    assert.equal(inbox.length, 1);
    assert.equal(inbox[0]!.body.toString(), 'hello bob');
    assert.equal(inbox[0]!.from.uri.toString(), `sip:alice@${DOMAIN}`);
    const options = await alice.request('OPTIONS', `sip:bob@${DOMAIN}`);
    assert.equal(options.status, 200);
    assert.match(options.response!.headers.get('allow') ?? '', /MESSAGE/);
    const nobody = await alice.request('MESSAGE', `sip:nobody@${DOMAIN}`, { body: Buffer.from('?'), contentType: 'text/plain' });
    assert.ok(nobody.status === 404 || nobody.status === 480, `${nobody.status} ${nobody.reason}`);
  } finally {
    for (const r of regs) r.stop();
    await alice.stop();
    await bob.stop();
    await ts.stop();
  }
});

test('a request that cannot go out, or meets a closed port, comes back as a 503 with the reason, not an exception', async () => {
  const listen = { transport: 'udp' as const, host: '127.0.0.1', port: 0 };
  const noTcp = await UserAgent.start({ aor: 'sip:carol@sipway.test', proxy: { transport: 'tcp', address: '127.0.0.1', port: 9 }, listen });
  const closedPort = await UserAgent.start({ aor: 'sip:carol@sipway.test', proxy: { transport: 'udp', address: '127.0.0.1', port: 9 }, listen });
  try {
    const a = await noTcp.request('OPTIONS', 'sip:dave@sipway.test');
    assert.equal(a.status, 503);
    assert.match(a.reason, /no tcp listener/);
    // ICMP port unreachable on loopback: the transaction fails at once instead of waiting for Timer F.
    const b = await closedPort.request('OPTIONS', 'sip:dave@sipway.test');
    assert.equal(b.status, 503);
    assert.match(b.reason, /Service Unavailable/);
  } finally {
    await noTcp.stop();
    await closedPort.stop();
  }
});

test('a call to a name nothing resolves fails with 503 and the reason instead of throwing', async () => {
  // No proxy: the Request-URI is resolved (RFC 3263) by a resolver that cannot answer (the discard port).
  const ua = await UserAgent.start({ aor: 'sip:carol@sipway.test', listen: { transport: 'udp', host: '127.0.0.1', port: 0 }, dnsServers: ['127.0.0.1:9'] });
  try {
    const call = await ua.call('sip:dave@nowhere.invalid', { sdp: 'v=0\r\n' });
    assert.deepEqual(await call.answered, { status: 503, reason: 'Service Unavailable - no address for sip:dave@nowhere.invalid' });
    assert.equal((await call.ended).by, 'failure');
  } finally {
    await ua.stop();
  }
});
