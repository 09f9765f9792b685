import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, runCliAsync, startCliServer } from '../helpers/process.js';

test('sipway bans lists the sources a server with two workers banned, and lift ends a ban', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-bans-'));
  const config = path.join(dir, 'sipway.json');
  writeFileSync(config, JSON.stringify({ flood: { trusted: [], budgets: { options: { rate: 1, burst: 5 } }, banAfter: 20 } }));
  const port = await freePort();
  const adminPort = await freePort();
  const server = await startCliServer(['--config', config, '--listen', `udp:127.0.0.1:${port}`, '--data', path.join(dir, 'data'), '--admin', `127.0.0.1:${adminPort}`, '--workers', '2']);
  const flooder = dgram.createSocket('udp4');
  const admin = ['--admin', `127.0.0.1:${adminPort}`];
  try {
    assert.deepEqual(JSON.parse((await runCliAsync(['bans', '--json', ...admin])).stdout), []);
    await new Promise<void>((resolve) => flooder.bind(0, '127.0.0.2', resolve));
    for (let i = 0; i < 400; i++) {
      // Different Call-IDs: both workers see part of the flood, and each bans the source on its own.
      const ping = `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:${flooder.address().port};branch=z9hG4bK-b${i}\r\nMax-Forwards: 70\r\nFrom: <sip:f@example.org>;tag=${i}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: ban-${i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
      flooder.send(ping, port, '127.0.0.1');
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    let listed: Array<{ address: string; until: number }> = [];
    for (let i = 0; i < 50 && listed.length === 0; i++) {
      const r = await runCliAsync(['bans', '--json', ...admin]);
      assert.equal(r.status, 0, r.stderr);
      listed = JSON.parse(r.stdout) as typeof listed;
      if (listed.length === 0) await new Promise((r2) => setTimeout(r2, 100));
    }
    assert.deepEqual(listed.map((b) => b.address), ['127.0.0.2'], 'one entry, however many workers banned it');
    assert.ok(listed[0]!.until > Date.now());
    const table = await runCliAsync(['bans', ...admin]);
    assert.match(table.stdout, /127\.0\.0\.2\s+\d+ s/);
    const lift = await runCliAsync(['bans', 'lift', '127.0.0.2', ...admin]);
    assert.deepEqual([lift.status, lift.stdout.trim()], [0, 'ban of 127.0.0.2 lifted']);
    assert.deepEqual(JSON.parse((await runCliAsync(['bans', '--json', ...admin])).stdout), []);
    const again = await runCliAsync(['bans', 'lift', '127.0.0.2', ...admin]);
    assert.deepEqual([again.status, again.stderr.trim()], [1, 'sipway: 127.0.0.2 is not banned']);
    const bad = await runCliAsync(['bans', 'unban', ...admin]);
    assert.deepEqual([bad.status, bad.stderr.trim()], [2, "sipway: bans: unknown action 'unban' (list, lift)"]);
  } finally {
    flooder.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
