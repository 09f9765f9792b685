import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, freePort, runCli, startCliServer } from '../helpers/process.js';
import { projectRoot } from '../helpers/paths.js';

/** Holds a TCP port on 127.0.0.1, as another server's admin endpoint would. */
async function holdPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * `sipway serve ARGS`, expected to give up by itself; one that runs on is killed outright after `timeoutMs` (a
 * server whose stdout is gone may not finish its graceful stop).
 */
function serveExpectingFailure(args: string[], timeoutMs = 20000): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'serve', ...args], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', cwd: projectRoot });
  return { status: r.status, stderr: r.stderr };
}

/** True when nothing listens on the port any more (UDP and TCP). */
async function released(port: number): Promise<boolean> {
  const udp = dgram.createSocket('udp4');
  const udpFree = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind(port, '127.0.0.1', () => resolve(true));
  });
  udp.close();
  const tcp = net.createServer();
  const tcpFree = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen(port, '127.0.0.1', () => tcp.close(() => resolve(true)));
  });
  return udpFree && tcpFree;
}

for (const workers of ['1', '2']) {
  test(`a taken admin port stops the start with one line naming --admin, and nothing is left listening (--workers ${workers})`, async () => {
    const taken = await holdPort();
    const port = await freePort();
    const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-admin-'));
    try {
      const r = serveExpectingFailure(['--listen', `udp:127.0.0.1:${port}`, '--listen', `tcp:127.0.0.1:${port}`, '--data', data, '--workers', workers, '--admin', `127.0.0.1:${taken.port}`]);
      assert.equal(r.status, 1, `the server must not run on: ${r.stderr}`);
      assert.equal(r.stderr.trim(), `sipway: --admin: 127.0.0.1:${taken.port} is in use (another sipway?); pass --admin HOST:PORT or --admin off`);
      assert.ok(await released(port), 'the SIP port is free again');
    } finally {
      await taken.close();
      rmSync(data, { recursive: true, force: true });
    }
  });
}

test("an admin address from the config file is named by the file's field", async () => {
  const taken = await holdPort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-admin-'));
  try {
    const config = path.join(dir, 'sipway.json');
    writeFileSync(config, JSON.stringify({ listen: [`udp:127.0.0.1:${await freePort()}`], data: path.join(dir, 'data'), admin: { listen: `127.0.0.1:${taken.port}` }, workers: 1 }));
    const r = serveExpectingFailure(['--config', config]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), `sipway: admin.listen: 127.0.0.1:${taken.port} is in use (another sipway?); set another admin.listen, or admin: false`);
  } finally {
    await taken.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--admin off starts without an admin endpoint, even where the config file names a taken one', async () => {
  const taken = await holdPort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-off-'));
  const config = path.join(dir, 'sipway.json');
  writeFileSync(config, JSON.stringify({ admin: { listen: `127.0.0.1:${taken.port}` } }));
  const server = await startCliServer(['--config', config, '--listen', `udp:127.0.0.1:${await freePort()}`, '--data', path.join(dir, 'data'), '--workers', '1', '--admin', 'off']);
  try {
    assert.match(server.output(), /sipway started/);
    const bad = runCli(['serve', '--admin', 'of']);
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim(), "sipway: --admin: 'of' is not HOST:PORT (e.g. 127.0.0.1:5090)");
  } finally {
    assert.equal(await server.stop(), 0);
    await taken.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
