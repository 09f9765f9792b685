/**
 * DNS faults while locating a next hop (RFC 3263): a resolver that cannot be reached, one that refuses, one that never
 * answers, one that truncates its answer and then fails over TCP, one that answers garbage or with the wrong id.
 * Each call gets a prompt 5xx whose reason says the next hop could not be found, the server keeps answering, and
 * nothing (transactions, sockets, heap) is left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type Behaviour } from '../helpers/dns-server.js';
import { startProxy } from '../proxy/harness.js';
import { invite } from '../proxy/ua.js';
import { assertAnswers, assertReleased, heapAfterGc, since } from './faults.js';

const ZONE = { 'gw.test': [{ type: 'A' as const, address: '127.0.0.1' }] };
const TIMEOUT_MS = 250;

/** Calls sip:pstn@gw.test through a server whose only resolver is `server`; returns the answers and the slowest. */
async function callThrough(server: string, calls = 1): Promise<{ answers: string[]; slowestMs: number }> {
  const h = await startProxy({}, { dns: { servers: [server], timeoutMs: TIMEOUT_MS } });
  try {
    const alice = await h.ua('alice');
    const heapBefore = heapAfterGc();
    const start = performance.now();
    const answers = await Promise.all(
      Array.from({ length: calls }, async (_, i) => {
        // A fresh name per call: no answer (or failure) is cached from the one before.
        const inv = invite(alice, { to: `sip:pstn@gw${i}.gw.test` });
        alice.send(inv, h.port);
        const res = await alice.response(inv.callId, undefined, 8000);
        return `${res.status} ${res.reason}`;
      }),
    );
    const slowestMs = since(start);
    await assertAnswers(h.port);
    await assertReleased(h.ts.server);
    const grown = heapAfterGc() - heapBefore;
    assert.ok(grown < 8, `heap grew ${grown.toFixed(1)} MB over ${calls} calls`);
    return { answers, slowestMs };
  } finally {
    await h.stop();
  }
}

async function callWith(behaviour: (transport: 'udp' | 'tcp') => Behaviour, calls = 5): Promise<{ answers: string[]; slowestMs: number; queries: number }> {
  const dns = await startDnsServer({ zone: ZONE, behaviour: (q) => behaviour(q.transport) });
  const r = await callThrough(dns.address, calls);
  return { ...r, queries: dns.queries.length };
}

/** Every answer is the same prompt 5xx naming the failed resolution. */
function assertNoHop(r: { answers: string[]; slowestMs: number }, boundMs: number): void {
  for (const a of r.answers) assert.match(a, /^500 Server Internal Error - no reachable next hop: no address for gw\d+\.gw\.test \(DNS\)$/);
  assert.ok(r.slowestMs < boundMs, `answered within ${r.slowestMs} ms (bound ${boundMs})`);
}

test('DNS unreachable: a resolver address that cannot be reached (EACCES) and a closed resolver port (ICMP)', { timeout: 30000 }, async () => {
  assertNoHop(await callThrough('255.255.255.255:53', 5), 2500);
  assertNoHop(await callThrough('127.0.0.1:9', 5), 2500);
});

test('DNS REFUSED and SERVFAIL: the call fails at once', { timeout: 30000 }, async () => {
  const refused = await callWith(() => 'refused');
  assertNoHop(refused, 2500);
  assert.ok(refused.queries > 0);
  assertNoHop(await callWith(() => 'servfail'), 2500);
});

test('DNS silent: no answer at all ends in a bounded time (2 rounds × timeout per stage)', { timeout: 30000 }, async () => {
  // NAPTR, then the SRV names, then A and AAAA: three stages of at most 2 × TIMEOUT_MS each.
  assertNoHop(await callWith(() => 'drop'), 6 * TIMEOUT_MS + 2500);
});

test('DNS truncated: the TC bit sends the query to TCP, which resets; the call fails at once', { timeout: 30000 }, async () => {
  const r = await callWith((transport) => (transport === 'udp' ? 'truncate' : 'reset'));
  assertNoHop(r, 2500);
});

test('DNS garbage: answers that are no DNS message, or carry another id, are ignored until the timeout', { timeout: 30000 }, async () => {
  assertNoHop(await callWith(() => 'garbage'), 6 * TIMEOUT_MS + 2500);
  assertNoHop(await callWith(() => 'mismatch'), 6 * TIMEOUT_MS + 2500);
});
