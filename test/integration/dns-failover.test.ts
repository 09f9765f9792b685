/**
 * RFC 3263 failover end to end: a call to a domain whose SRV records name two servers, the first of which is down,
 * completes through the second. The DNS server is our own on loopback, never the machine's resolver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server.js';
import { startProxy } from '../proxy/harness.js';
import { invite, TestUa } from '../proxy/ua.js';

async function callThroughSrv(firstHop: 'silent' | '503'): Promise<void> {
  const second = await TestUa.udp('gw2');
  second.serve();
  const first = await TestUa.udp('gw1');
  if (firstHop === '503') first.serve({ status: 503, ring: false });
  const dns = await startDnsServer({
    zone: {
      '_sip._udp.gw.test': [
        { type: 'SRV', priority: 10, weight: 0, port: first.port, target: 'a.gw.test' },
        { type: 'SRV', priority: 20, weight: 0, port: second.port, target: 'b.gw.test' },
      ],
      'a.gw.test': [{ type: 'A', address: '127.0.0.1' }],
      'b.gw.test': [{ type: 'A', address: '127.0.0.1' }],
    },
  });
  // T1 = 50 ms makes Timer B (64*T1) 3.2 s, so that a silent first server is given up in a bounded test.
  const h = await startProxy({}, { dns: { servers: [`127.0.0.1:${dns.port}`], timeoutMs: 500 }, timers: { T1: 50, T2: 4000, T4: 5000 } });
  try {
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:pstn@gw.test' });
    alice.send(inv, h.port);
    if (firstHop === 'silent') await first.request('INVITE', 2000); // it got the INVITE, and says nothing
    const atSecond = (await second.request('INVITE', 6000)).message;
    assert.equal(atSecond.uri.toString(), 'sip:pstn@gw.test');
    const ok = await alice.response(inv.callId, 200, 6000);
    assert.equal(ok.status, 200, 'the call completes through the second SRV target');
    assert.ok(dns.count('_sip._udp.gw.test', 'SRV') >= 1);
  } finally {
    first.close();
    second.close();
    await h.stop();
  }
}

test('SRV failover: the first target answers 503, the call completes through the second', { timeout: 30000 }, async () => {
  await callThroughSrv('503');
});

test('SRV failover: the first target is down (no answer), the call completes through the second', { timeout: 30000 }, async () => {
  await callThroughSrv('silent');
});
