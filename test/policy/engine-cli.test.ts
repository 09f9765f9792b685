import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, runCli, startCliServer } from '../helpers/process.js';
import { outOfDialog, TestUa } from '../proxy/ua.js';
import { policySource } from './policy-harness.js';

const replying = (status: number) => policySource(`export default P.definePolicy({ onRequest(ctx) { ctx.reply(${status}); } });`);

test('sipway reload (admin endpoint) and SIGHUP swap the policy of a running server; a broken one is refused', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-policy-cli-'));
  const file = path.join(dir, 'routing.mjs');
  writeFileSync(file, replying(486));
  const port = await freePort();
  const adminPort = await freePort();
  const admin = `127.0.0.1:${adminPort}`;
  const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', 'sipway.test', '--data', dir, '--no-auth', '--policy', file, '--admin', admin]);
  const ua = await TestUa.udp('alice');
  const ask = async (): Promise<number> => {
    const m = outOfDialog(ua, 'MESSAGE', 'sip:bob@sipway.test');
    ua.send(m, port);
    return (await ua.response(m.callId)).status;
  };
  try {
    assert.equal(await ask(), 486);

    writeFileSync(file, replying(480));
    const ok = runCli(['reload', '--admin', admin]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /routing policy reloaded/);
    assert.equal(await ask(), 480);

    writeFileSync(file, 'export default {');
    const broken = runCli(['reload', '--admin', admin]);
    assert.equal(broken.status, 1);
    assert.match(broken.stderr, /policy not reloaded, the previous one keeps running:\n.*routing\.mjs: SyntaxError/);
    assert.equal(await ask(), 480);

    writeFileSync(file, replying(603));
    server.child.kill('SIGHUP');
    let status = 0;
    for (let i = 0; i < 50 && status !== 603; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await ask();
    }
    assert.equal(status, 603, 'SIGHUP reloaded the policy');

    const nobody = runCli(['reload', '--admin', `127.0.0.1:${await freePort()}`]);
    assert.equal(nobody.status, 1);
    assert.match(nobody.stderr, /no server answers on 127\.0\.0\.1:\d+/);
  } finally {
    ua.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
