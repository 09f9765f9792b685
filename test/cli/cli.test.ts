import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, startCliServer, freePort, requireTool, skipWithout } from '../helpers/process.js';
import { spawnSync } from 'node:child_process';

test('sipway --help and serve --help', () => {
  const main = runCli(['--help']);
  assert.equal(main.status, 0);
  assert.match(main.stdout, /Usage: sipway <command>/);
  assert.match(main.stdout, /serve/);
  const serve = runCli(['serve', '--help']);
  assert.equal(serve.status, 0);
  assert.match(serve.stdout, /--listen SPEC/);
  assert.match(serve.stdout, /--domain NAME/);
  assert.match(serve.stdout, /--data DIR/);
  assert.match(runCli(['--version']).stdout, /^\d+\.\d+\.\d+/);
});

test('bad flags and config values exit 2 with one line naming the field', () => {
  const cases: Array<[string[], number, RegExp]> = [
    [['serve', '--bogus'], 2, /--bogus/],
    [['serve', '--listen', 'sctp:1.2.3.4:5060'], 2, /^sipway: --listen: unknown transport 'sctp'/],
    [['serve', '--listen', 'udp:127.0.0.1:99999'], 2, /--listen: bad port/],
    [['serve', '--listen', 'tls:127.0.0.1:0'], 2, /tls\.cert/],
    [['serve', '--log-level', 'loud'], 2, /--log-level/],
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
  ];
  for (const [args, status, re] of cases) {
    const r = runCli(args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});

test('config file errors name the field', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cfg-'));
  try {
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ listen: ['udp:127.0.0.1:0'], timers: { T1: -5 } }));
    const r = runCli(['serve', '--config', file]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /timers\.T1: must be a number/);
    writeFileSync(file, JSON.stringify({ listne: [] }));
    assert.match(runCli(['serve', '--config', file]).stderr, /listne: unknown setting/);
    writeFileSync(file, JSON.stringify({ transport: { workerPorts: 'yes' } }));
    assert.match(runCli(['serve', '--config', file]).stderr, /transport\.workerPorts: must be false or the first worker port \(1-65535\)/);
    writeFileSync(file, '{ nope');
    assert.match(runCli(['serve', '--config', file]).stderr, /not valid JSON/);
    assert.match(runCli(['serve', '--config', path.join(dir, 'missing.json')]).stderr, /--config: cannot read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve answers sipsak, logs a structured line per request, and shuts down on SIGTERM', { skip: skipWithout('sipsak') }, async () => {
  requireTool('sipsak');
  const port = await freePort(true);
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-cli-'));
  const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--listen', `tcp:127.0.0.1:${port}`, '--data', data]);
  try {
    for (const transport of ['udp', 'tcp']) {
      const r = spawnSync('sipsak', ['-s', `sip:127.0.0.1:${port}`, '-E', transport, '-vv'], { encoding: 'utf8', timeout: 10000 });
      assert.equal(r.status, 0, `sipsak over ${transport}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /SIP\/2.0 200 OK/);
    }
    // One line per request, each from the worker that handled it: their order in the output is not the requests'.
    // Only the request lines: under load sipsak may retransmit and be gone before the answer to that, and the failed
    // resend is logged (a warning naming the method) too.
    const logLines = (): Array<Record<string, unknown>> =>
      server
        .output()
        .split('\n')
        // The start helper's readiness probes (Call-ID ready...) may reach a worker that is up before the others.
        .filter((l) => l.includes('"msg":"request"') && l.includes('"method":"OPTIONS"') && !l.includes('"callId":"ready'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (let i = 0; i < 40 && logLines().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const entries = logLines();
    assert.equal(entries.length, 2, `a log line for each OPTIONS request: ${JSON.stringify(entries)}`);
    for (const transport of ['udp', 'tcp']) {
      const entry = entries.find((e) => String(e.src).startsWith(`${transport}:`));
      assert.ok(entry, `a log line for the OPTIONS over ${transport}`);
      assert.equal(entry.status, 200);
      assert.equal(entry.ruri, `sip:127.0.0.1:${port}`);
      assert.match(String(entry.src), new RegExp(`^${transport}:127\\.0\\.0\\.1:\\d+$`));
    }
  } finally {
    const code = await server.stop('SIGTERM');
    assert.equal(code, 0, 'graceful shutdown exits 0');
    assert.match(server.output(), /sipway stopped/);
    rmSync(data, { recursive: true, force: true });
  }
});

test('SIGINT also stops the server gracefully', async () => {
  const port = await freePort();
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-cli-'));
  const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--data', data]);
  assert.equal(await server.stop('SIGINT'), 0);
  rmSync(data, { recursive: true, force: true });
});
