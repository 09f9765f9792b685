/**
 * RelayHooks.interceptResponse on a hand-composed proxy: a held response keeps its branch's later responses behind
 * it without holding up other transactions; a verdict withholds, replaces, forwards an edited copy or adds branches;
 * a 2xx to an INVITE goes upstream whatever the verdict says; a failing hook leaves the response to go on as usual.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, tryParseUri, type SipRequest, type SipResponse } from '../../src/message/index.js';
import { Proxy, type RelayHooks, type Target } from '../../src/proxy/index.js';
import type { ServerTransaction } from '../../src/transaction/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { TransportLayer } from '../../src/transport/index.js';
import { SystemClock } from '../../src/util/clock.js';
import { invite, TestUa } from './ua.js';

let transport: TransportLayer;
let transactions: TransactionLayer;
let port: number;
/** The UASs, by the user part of the Request-URI the caller uses: each answers 180 and then its status. */
const uas = new Map<string, TestUa>();
/** How the test routes the next INVITE for a user: the UAS users to relay to, and the hooks. */
const routes = new Map<string, { to: string[]; hooks: RelayHooks }>();

function target(user: string): Target {
  const uri = tryParseUri(`sip:${user}@127.0.0.1:${uas.get(user)!.port}`);
  assert.ok(uri?.type === 'sip');
  return { uri, routeSet: [], q: 1 };
}

before(async () => {
  const clock = new SystemClock();
  transport = new TransportLayer({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], clock });
  transactions = new TransactionLayer({ sender: transport, clock });
  for (const [user, status] of [['ok', 200], ['okToo', 200], ['busy', 486], ['gone', 404]] as const) {
    uas.set(user, (await TestUa.udp(user)).serve({ status }));
  }
  const proxy = new Proxy({
    transactions,
    sender: transport,
    domains: ['sipway.test'],
    isLocalHost: (host, p) => host === '127.0.0.1' && (p === undefined || p === port),
    clock,
    authenticateCallers: false,
  });
  transactions.setUser({
    onRequest: (req: SipRequest, st: ServerTransaction) => {
      const route = routes.get(req.uri.type === 'sip' ? (req.uri.user ?? '') : '');
      const pr = proxy.begin(req, st);
      proxy.trying(pr);
      if (!route) return proxy.reply(pr, 404);
      void proxy.relay(pr, route.to.map(target), {}, route.hooks);
    },
    onAck: (ack) => proxy.handleAck(ack),
    onStrayResponse: (res) => proxy.handleStrayResponse(res),
  });
  transport.setReceiver({ onMessage: (m) => transactions.receive(m) });
  await transport.start();
  port = transport.listeners()[0]!.port;
});

after(async () => {
  transactions.close();
  await transport.stop();
  for (const ua of uas.values()) ua.close();
});

/** Sends an INVITE for `user` routed as given; returns the caller and the INVITE. */
async function call(user: string, to: string[], hooks: RelayHooks): Promise<{ alice: TestUa; inv: SipRequest }> {
  routes.set(user, { to, hooks });
  const alice = await TestUa.udp('alice');
  const inv = invite(alice, { to: `sip:${user}@sipway.test` });
  alice.send(inv, port);
  return { alice, inv };
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('a held 180 keeps its 200 behind it, while another transaction goes on meanwhile', async () => {
  const held = deferred<undefined>();
  const seen: number[] = [];
  const slow = await call('slow', ['ok'], {
    interceptResponse: (res) => {
      seen.push(res.status);
      return res.status === 180 ? held.promise : undefined;
    },
  });
  try {
    await slow.alice.response(slow.inv.callId, 100, 5000);
    // The UAS has answered 180 and 200 back to back; both wait behind the held 180.
    await uas.get('ok')!.request('INVITE', 5000);
    const fast = await call('fast', ['okToo'], { interceptResponse: () => undefined });
    try {
      assert.equal((await fast.alice.response(fast.inv.callId, 200, 5000)).status, 200, 'another transaction is not held up');
    } finally {
      fast.alice.close();
    }
    assert.ok(await slow.alice.nothing((m) => !m.isRequest && m.status > 100, 200), 'nothing of the held branch went upstream');
    assert.deepEqual(seen, [180], 'the 200 is offered only after the 180 is decided');
    held.resolve(undefined);
    const ringing = await slow.alice.waitFor('180', (m) => !m.isRequest && m.status === 180, 5000);
    const ok = await slow.alice.waitFor('200', (m) => !m.isRequest && m.status === 200, 5000);
    assert.ok(ringing.at <= ok.at, '180 before 200');
    assert.deepEqual(seen, [180, 200]);
  } finally {
    slow.alice.close();
  }
});

test('a withheld failure is replaced by a response of the hook\'s own, and the 180 goes upstream edited', async () => {
  const { alice, inv } = await call('replace', ['busy'], {
    interceptResponse: async (res) => {
      if (res.status === 180) {
        const copy = createResponse(inv, 180, { toTag: res.toTag });
        copy.headers.append('X-Edited', 'yes');
        return { response: copy };
      }
      return { response: null, send: [createResponse(inv, 480, { reason: 'Gone Fishing' })] };
    },
  });
  try {
    assert.equal((await alice.response(inv.callId, 180, 5000)).headers.get('x-edited'), 'yes');
    const final = await alice.response(inv.callId, undefined, 5000);
    assert.equal(final.status, 480);
    assert.equal(final.reason, 'Gone Fishing');
  } finally {
    alice.close();
  }
});

test('a verdict\'s targets become new branches: a busy callee\'s 486 gives way to another target\'s 200', async () => {
  const { alice, inv } = await call('failover', ['busy'], {
    interceptResponse: async (res) => (res.status === 486 ? { response: null, targets: [target('okToo')] } : undefined),
  });
  try {
    assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 200);
  } finally {
    alice.close();
  }
});

test('a withheld final that is the only one left is still the answer (not a 408)', async () => {
  const { alice, inv } = await call('lastResort', ['gone'], { interceptResponse: async () => ({ response: null }) });
  try {
    assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 404);
  } finally {
    alice.close();
  }
});

test('§16.7 step 5: a 2xx to an INVITE goes upstream even when the verdict withholds it or sends a failure', async () => {
  const { alice, inv } = await call('keep2xx', ['ok'], {
    interceptResponse: async (res) => (res.status === 200 ? { response: null, send: [createResponse(inv, 603)] } : undefined),
  });
  try {
    assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 200);
  } finally {
    alice.close();
  }
});

test('a hook that throws or rejects leaves the responses to go on as usual', async () => {
  const { alice, inv } = await call('failing', ['ok'], {
    interceptResponse: (res: SipResponse) => {
      if (res.status === 180) throw new Error('hook bug');
      return Promise.reject(new Error('lookup failed'));
    },
  });
  try {
    await alice.response(inv.callId, 180, 5000);
    assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 200);
  } finally {
    alice.close();
  }
});
