import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, runCli } from '../helpers/process.js';

/** Every command that only finds, shows or changes entries that must already be in the store. */
const READING: string[][] = [
  ['location'],
  ['location', 'alice@example.com'],
  ['cdr'],
  ['user', 'list'],
  ['user', 'del', 'alice@example.com'],
  ['user', 'passwd', 'alice@example.com', '--password', 'x'],
  ['cpl', 'get', 'alice@example.com'],
  ['cpl', 'list'],
  ['cpl', 'del', 'alice@example.com'],
  ['gateway', 'list'],
  ['gateway', 'del', 'gw1'],
  ['gateway', 'enable', 'gw1'],
  ['gateway', 'disable', 'gw1'],
  ['route', 'list'],
  ['route', 'del', '49', 'de'],
];

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${stderr}`);
  return lines[0]!;
}

test('reading commands refuse a --data directory that holds no store, exit 1, and create nothing', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sipway-nostore-'));
  try {
    const typo = path.join(root, 'typo', 'dir');
    const empty = path.join(root, 'empty');
    mkdirSync(empty);
    for (const args of READING) {
      for (const dir of [typo, empty]) {
        const r = runCli([...args, '--data', dir]);
        assert.equal(r.status, 1, `${args.join(' ')} --data ${dir}: ${r.stderr}`);
        assert.equal(oneLine(r.stderr), `sipway: --data: no sipway store in ${dir} (no sipway.db there; 'sipway serve' and 'sipway user add' create one)`);
      }
      assert.equal(existsSync(path.join(root, 'typo')), false, `${args.join(' ')} created the directory`);
      assert.deepEqual(readdirSync(empty), [], `${args.join(' ')} created a database`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('run from another directory, a reading command names the default ./data and does not create it', () => {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'sipway-nostore-'));
  try {
    for (const args of [['location'], ['user', 'list'], ['cdr']]) {
      const r = runCli(args, { cwd });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(oneLine(r.stderr), `sipway: --data: no sipway store in ${path.join(cwd, 'data')} (the default, ./data; pass --data DIR or --config FILE)`);
    }
    assert.deepEqual(readdirSync(cwd), []);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("a store directory from --config is named by the config file's field", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-nostore-'));
  try {
    const config = path.join(dir, 'sipway.json');
    const data = path.join(dir, 'store');
    writeFileSync(config, JSON.stringify({ data }));
    const r = runCli(['user', 'list', '--config', config]);
    assert.equal(r.status, 1);
    assert.equal(oneLine(r.stderr), `sipway: data: no sipway store in ${data} (no sipway.db there; 'sipway serve' and 'sipway user add' create one)`);
    // A flag typed beside the config file is named as typed.
    assert.match(oneLine(runCli(['user', 'list', '--config', config, '--data', data]).stderr), /^sipway: --data: no sipway store/);
    assert.equal(existsSync(data), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writing commands create the store; reading commands then find it', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-nostore-'));
  try {
    const users = path.join(dir, 'users');
    assert.equal(runCli(['user', 'add', 'alice@example.com', '--password', 'pw', '--data', users]).status, 0);
    const list = runCli(['user', 'list', '--data', users]);
    assert.equal(list.status, 0, list.stderr);
    assert.equal(list.stdout.trim(), 'alice@example.com');
    const gateways = path.join(dir, 'gateways');
    assert.equal(runCli(['gateway', 'add', 'gw1', 'sip:gw.example.net', '--group', 'de', '--data', gateways]).status, 0);
    assert.equal(runCli(['gateway', 'list', '--data', gateways]).status, 0);
    const routes = path.join(dir, 'routes');
    assert.equal(runCli(['route', 'add', '49', 'de', '--cost', '1', '--data', routes]).status, 0);
    assert.equal(runCli(['route', 'list', '--data', routes]).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a Redis store that does not answer gives one line naming --store, exit 1', async () => {
  const port = await freePort();
  for (const args of [['user', 'list'], ['location'], ['gateway', 'list'], ['cpl', 'list'], ['user', 'add', 'a@example.com', '--password', 'x']]) {
    const r = runCli([...args, '--store', `redis://127.0.0.1:${port}`]);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(oneLine(r.stderr), new RegExp(`^sipway: --store: cannot connect to redis://127\\.0\\.0\\.1:${port}/?: .*ECONNREFUSED`));
  }
});
