/**
 * The proxy composed by hand, without SipwayServer: a transport, a transaction layer, a location service of the
 * test's own and an accounting recorder. Shows what the proxy needs from its surroundings and checks the accounting
 * calls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallAccounting } from '../../src/accounting/index.js';
import type { SipRequest, SipResponse } from '../../src/message/index.js';
import { Proxy, readProxyConfig, defaultProxyConfig, checkProxyConfig } from '../../src/proxy/index.js';
import type { LookupResult } from '../../src/registrar/index.js';
import type { Binding } from '../../src/store/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { TransportLayer } from '../../src/transport/index.js';
import { SystemClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { Dialog, invite, TestUa } from './ua.js';

function binding(contact: string): Binding {
  return {
    aor: 'sip:bob@sipway.test',
    contact,
    contactParams: {},
    expiresAt: Date.now() + 60_000,
    q: 1,
    callId: 'reg@test',
    cseq: 1,
    path: [],
    source: { transport: 'udp', address: '127.0.0.1', port: Number(/:(\d+)$/.exec(contact)![1]) },
    registeredAt: Date.now(),
  };
}

test('a hand-composed proxy routes with its own location service and reports attempts, calls and missed calls', async () => {
  const clock = new SystemClock();
  const transport = new TransportLayer({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], clock });
  const transactions = new TransactionLayer({ sender: transport, clock });
  const bob = (await TestUa.udp('bob')).serve();
  const alice = await TestUa.udp('alice');
  const bindings = new Map([['sip:bob@sipway.test', [binding(bob.contact('bob'))]]]);
  const events: string[] = [];
  const accounting: CallAccounting = {
    attempt: (_inv: SipRequest, res: SipResponse) => events.push(`attempt ${res.status}`),
    answered: (_inv: SipRequest, res: SipResponse) => events.push(`answered ${res.status}`),
    ended: (_bye: SipRequest, res: SipResponse) => events.push(`ended ${res.status}`),
    missed: (_inv: SipRequest, res: SipResponse, callee: string) => events.push(`missed ${res.status} ${callee}`),
  };
  const proxy = new Proxy({
    transactions,
    sender: transport,
    domains: ['sipway.test'],
    isLocalHost: (host, port) => host === '127.0.0.1' && (port === undefined || transport.listeners().some((l) => l.port === port)),
    clock,
    location: {
      lookup: async (uri): Promise<LookupResult> => {
        const aor = `sip:${uri.user}@${uri.host}`;
        const found = bindings.get(aor) ?? [];
        return { aor, targets: found.map((b) => ({ binding: b, outbound: false, flowFailed: false })), allFlowsFailed: false };
      },
    },
    accounting,
    recordRoute: true,
  });
  transactions.setUser({
    onRequest: (req, st) => void proxy.handleRequest(req, st),
    onAck: (ack) => proxy.handleAck(ack),
    onStrayResponse: (res) => proxy.handleStrayResponse(res),
  });
  transport.setReceiver({ onMessage: (m) => transactions.receive(m) });
  await transport.start();
  const port = transport.listeners()[0]!.port;
  try {
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, port);
    const ok = await alice.response(inv.callId, 200);
    const dialog = Dialog.caller(inv, ok);
    alice.send(dialog.request(alice, 'ACK'), port);
    await bob.request('ACK');
    const bye = dialog.request(alice, 'BYE');
    alice.send(bye, port);
    await alice.response(bye.callId, 200);

    const missed = invite(alice, { to: 'sip:carol@sipway.test' });
    alice.send(missed, port);
    assert.equal((await alice.response(missed.callId)).status, 404);
    assert.deepEqual(events, ['attempt 200', 'answered 200', 'ended 200', 'attempt 404', 'missed 404 not-registered']);
  } finally {
    transactions.close();
    await transport.stop();
    bob.close();
    alice.close();
  }
});

test('proxy configuration: defaults, validation naming the field, redirect domains must be served', () => {
  const d = defaultProxyConfig();
  assert.equal(d.forking, 'parallel');
  assert.equal(d.timerCMs, 180_000);
  assert.equal(d.authenticateCallers, true);
  const c = readProxyConfig(d, { forking: 'serial', maxBranches: 4, inviteTimeoutStatus: 480, redirectDomains: ['Example.COM'] });
  assert.equal(c.forking, 'serial');
  assert.deepEqual(c.redirectDomains, ['example.com']);
  assert.equal(d.forking, 'parallel', 'the base is not changed');
  const fails = (raw: unknown, field: string) => assert.throws(() => readProxyConfig(d, raw), (e: unknown) => e instanceof ConfigError && e.field === field);
  fails({ forking: 'random' }, 'proxy.forking');
  fails({ maxBranches: 0 }, 'proxy.maxBranches');
  fails({ inviteTimeoutStatus: 500 }, 'proxy.inviteTimeoutStatus');
  fails({ recordRoute: 'yes' }, 'proxy.recordRoute');
  fails({ timerC: 1 }, 'proxy.timerC');
  fails([], 'proxy');
  assert.throws(() => checkProxyConfig(c, ['sipway.test']), (e: unknown) => e instanceof ConfigError && e.field === 'proxy.redirectDomains');
});
