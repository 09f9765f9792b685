/**
 * DnsClient against a server it cannot even connect to: the UDP connect fails at once (here EACCES, as for any
 * broadcast address; in a network namespace without a route, ENETUNREACH) and the query must reject, not throw from
 * a socket callback and take the process down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsClient, DnsQueryError } from '../../src/transport/dns-client.js';
import { SystemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';

test('DnsClient: a server the UDP socket cannot connect to makes the query reject, naming the failure', async () => {
  const client = new DnsClient({ servers: [{ address: '255.255.255.255', port: 53 }], timeoutMs: 500, clock: new SystemClock(), logger: silentLogger() });
  await assert.rejects(client.query('unreachable.example', 'A'), (e: unknown) => e instanceof DnsQueryError && /255\.255\.255\.255:53: .*EACCES/.test(e.message));
});
