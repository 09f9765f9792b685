/**
 * `GET /stats` on the admin endpoint of `sipway serve`: the counters of every layer, one entry per process, with the
 * authentication counters that tell how many password guesses reached the verifier.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, runCli, startCliServer } from '../helpers/process.js';
import { UdpClient } from '../helpers/server.js';
import { register } from '../helpers/register.js';
import type { StatsAnswer } from '../../src/server/admin.js';

const DOMAIN = 'sipway.test';

async function getStats(adminPort: number): Promise<StatsAnswer> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/stats`);
  assert.equal(res.status, 200);
  return (await res.json()) as StatsAnswer;
}

for (const workers of [1, 2]) {
  test(`GET /stats with --workers ${workers}: one entry per process; wrong passwords counted as failed checks`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-admin-stats-'));
    const data = path.join(dir, 'data');
    assert.equal(runCli(['user', 'add', `alice@${DOMAIN}`, '--password', 'right', '--data', data]).status, 0);
    const [port, adminPort] = [await freePort(), await freePort()];
    const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', data, '--log-level', 'warn', '--workers', String(workers), '--admin', `127.0.0.1:${adminPort}`]);
    const client = new UdpClient();
    await client.bind();
    try {
      for (let i = 0; i < 2; i++) {
        const { res } = await register(client, port, { user: 'alice', domain: DOMAIN, password: `guess-${i}`, callId: `guess-${i}`, expires: 60 });
        assert.equal(res.status, 401);
      }
      const { res } = await register(client, port, { user: 'alice', domain: DOMAIN, password: 'right', callId: 'right', expires: 60 });
      assert.equal(res.status, 200);

      const stats = await getStats(adminPort);
      assert.equal(stats.workers.length, workers);
      if (workers > 1) assert.deepEqual(stats.workers.map((w) => w.worker), [0, 1]);
      const sum = (pick: (w: StatsAnswer['workers'][number]) => number): number => stats.workers.reduce((n, w) => n + pick(w), 0);
      assert.equal(sum((w) => w.auth!.failed), 2);
      assert.equal(sum((w) => w.auth!.accepted), 1);
      assert.equal(sum((w) => w.auth!.refused), 0);
      assert.ok(sum((w) => w.transport.received) >= 6, 'six REGISTERs received');
      assert.equal(typeof stats.workers[0]!.flood.bansStarted, 'number');
      assert.equal(typeof stats.workers[0]!.transactions.serverTransactions, 'number');

      const wrongMethod = await fetch(`http://127.0.0.1:${adminPort}/stats`, { method: 'POST' });
      assert.equal(wrongMethod.status, 405);
    } finally {
      client.close();
      assert.equal(await server.stop(), 0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
