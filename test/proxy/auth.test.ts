import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import { serialize, type SipRequest, type SipResponse } from '../../src/message/index.js';
import { buildNon2xxAck } from '../../src/transaction/index.js';
import { startProxy, type ProxyHarness } from './harness.js';
import { Dialog, invite, outOfDialog, parse, register, retryWithCredentials } from './ua.js';

const PASSWORD = 'secret-alice';

async function withAlice(h: ProxyHarness): Promise<void> {
  await h.ts.server.subscribers.put({
    username: 'alice',
    domain: 'sipway.test',
    ha1Md5: computeHa1('alice', 'sipway.test', PASSWORD, 'MD5'),
    ha1Sha256: computeHa1('alice', 'sipway.test', PASSWORD, 'SHA-256'),
    groups: [],
    createdAt: 0,
  });
}

function withCredentials(inv: SipRequest, challenge: SipResponse, user = 'alice', extra: string[] = []): SipRequest {
  return retryWithCredentials(inv, challenge, user, PASSWORD, extra);
}

test('callers of our domain are challenged (407); with credentials the call goes through without ours, others kept', async () => {
  const h = await startProxy({ authenticateCallers: true });
  try {
    await withAlice(h);
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const challenge = await alice.response(inv.callId);
    assert.equal(challenge.status, 407);
    assert.match(challenge.headers.get('proxy-authenticate')!, /realm="sipway\.test"/);
    alice.send(buildNon2xxAck(inv, challenge), h.port);
    assert.ok(await bob.nothing((m) => m.isRequest && m.method === 'INVITE', 100), 'nothing forwarded before authentication');

    const other = 'Digest username="alice", realm="other.example", nonce="x", uri="sip:bob@sipway.test", response="00000000000000000000000000000000"';
    const retry = withCredentials(inv, challenge, 'alice', [other]);
    alice.send(retry, h.port);
    const atBob = (await bob.request('INVITE')).message;
    assert.deepEqual(atBob.headers.getAll('proxy-authorization'), [other], 'our credentials removed, those for another realm kept');
    const ok = await alice.response(inv.callId, 200);

    // In-dialog requests are not challenged (authenticateInDialog is false by default).
    const bye = Dialog.caller(retry, ok).request(alice, 'BYE');
    alice.send(bye, h.port);
    await bob.request('BYE');
    assert.equal((await alice.response(bye.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('credentials of one user do not let a request claim another From (403)', async () => {
  const h = await startProxy({ authenticateCallers: true });
  try {
    await withAlice(h);
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test', from: 'sip:mallory@sipway.test' });
    alice.send(inv, h.port);
    const challenge = await alice.response(inv.callId);
    assert.equal(challenge.status, 407);
    const retry = withCredentials(inv, challenge, 'alice');
    alice.send(retry, h.port);
    const res = await alice.response(inv.callId, 403);
    assert.match(res.reason, /From/);
  } finally {
    await h.stop();
  }
});

test('callers from foreign domains reach our users unchallenged; foreign to foreign is not relayed', async () => {
  const h = await startProxy({ authenticateCallers: true });
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const eve = await h.ua('eve');
    const inv = invite(eve, { to: 'sip:bob@sipway.test', from: 'sip:eve@foreign.example' });
    eve.send(inv, h.port);
    await bob.request('INVITE');
    assert.equal((await eve.response(inv.callId)).status, 200);

    const relay = outOfDialog(eve, 'MESSAGE', 'sip:someone@elsewhere.example', [], 'sip:eve@foreign.example');
    eve.send(relay, h.port);
    const denied = await eve.response(relay.callId);
    assert.equal(denied.status, 403);
    assert.equal(denied.reason, 'Relaying Denied');
  } finally {
    await h.stop();
  }
});

test('an authenticated account over its budget gets 503 with Retry-After (flood.perAccount)', async () => {
  const h = await startProxy({ authenticateCallers: true }, { flood: { perAccount: { rate: 1, burst: 2 } } });
  try {
    await withAlice(h);
    const alice = await h.ua('alice');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const msg = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test', ['Content-Type: text/plain']);
      alice.send(msg, h.port);
      const challenge = await alice.response(msg.callId, 407);
      const retry = withCredentials(msg, challenge);
      alice.send(retry, h.port);
      const res = await alice.response(msg.callId);
      statuses.push(res.status);
      if (res.status === 503) assert.equal(res.headers.get('retry-after'), '1');
    }
    // bob has no binding: the two within the budget reach the lookup (404), the third does not.
    assert.deepEqual(statuses, [404, 404, 503]);
    assert.equal(h.proxy().stats().accountLimited, 1);
  } finally {
    await h.stop();
  }
});
