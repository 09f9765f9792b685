/**
 * Issue 14's kill switch: a resolver that cannot be reached (the machine's DNS server on a network it has no route
 * to, a broadcast address) made the DNS client send on an unconnected socket from inside connect()'s callback, and
 * the RangeError it threw ended the process at the first request for a foreign domain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DnsClient, DnsQueryError, parseDnsServer } from '../../src/transport/dns-client.js';
import { FakeClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestServer, UdpClient } from '../helpers/server.js';
import { sharedPath } from '../helpers/paths.js';

/** connect() to the limited broadcast address fails with EACCES without sending anything: an unreachable server. */
const UNREACHABLE = '255.255.255.255:53';

test('a DNS server that connect() cannot reach is a failed query, not an exception', async () => {
  const client = new DnsClient({ servers: [parseDnsServer(UNREACHABLE)], timeoutMs: 500, clock: new FakeClock(0), logger: silentLogger() });
  await assert.rejects(client.query('example.com', 'A'), (e: unknown) => e instanceof DnsQueryError && /cannot reach 255\.255\.255\.255:53: EACCES/.test(e.message));
});

test("RFC 4475 wsinv to a foreign domain with an unreachable resolver is answered, and the server keeps answering", async () => {
  const errors: unknown[] = [];
  const onError = (e: unknown): void => void errors.push(e);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  const ts = await startTestServer({ domains: ['example.com'], auth: { register: false }, proxy: { authenticateCallers: false }, dns: { servers: [UNREACHABLE], timeoutMs: 200 },
    // wsinv's Via names 192.0.2.2: answered at the datagram's source instead.
    transport: { forceRport: true },
  });
  const client = new UdpClient();
  try {
    await client.bind();
    // wsinv: INVITE sip:vivekg@chair-dnrc.example.com from sip:jdrosen@example.com, a user of a served domain.
    client.send(readFileSync(sharedPath('conformance', 'rfc4475', 'wsinv.dat')), ts.port);
    let answer = await client.next(5000);
    if (answer?.status === 100) answer = await client.next(5000);
    assert.ok(answer, 'a final answer to wsinv');
    assert.ok(answer.status >= 400, `a final error answer (got ${answer.status} ${answer.reason})`);
    assert.equal(answer.callId, 'wsinv.ndaksdj@192.0.2.1');
    client.send(Buffer.from(`OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bK-alive;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: alive-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`), ts.port);
    const alive = await client.next(3000);
    assert.equal(alive?.status, 200);
    assert.deepEqual(errors, []);
  } finally {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    client.close();
    await ts.stop();
  }
});
