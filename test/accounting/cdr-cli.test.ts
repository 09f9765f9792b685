import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cdrCommand } from '../../src/cli/cdr.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { openCdrStore, type CdrRecord } from '../../src/store/index.js';
import { runCli } from '../helpers/process.js';

const T0 = Date.parse('2024-05-01T08:00:00Z');

const RECORDS: CdrRecord[] = [
  { type: 'attempt', time: T0, callId: 'a1', caller: 'sip:alice@example.com', callee: 'sip:bob@example.com', requestUri: 'sip:bob@example.com', status: 486, reason: 'Busy Here' },
  {
    type: 'call', time: T0 + 60_000, callId: 'c1', caller: 'sip:alice@example.com', callee: 'sip:bob@example.com', requestUri: 'sip:bob@example.com',
    status: 200, reason: 'OK', stopTime: T0 + 125_000, durationMs: 65_000, durationS: 65, endedBy: 'callee',
  },
  { type: 'missed', time: T0 + 3600_000, callId: 'm1', caller: 'sip:carol@example.com', callee: 'sip:dave@example.com', requestUri: 'sip:dave@example.com', status: 480, reason: 'Temporarily Unavailable', cause: 'not-registered' },
];

async function filledDataDir(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cdrcli-'));
  const { cdrs, close } = openCdrStore(dir);
  for (const r of RECORDS) await cdrs.add(r);
  close();
  return dir;
}

/** Runs the command in-process and returns what it printed. */
async function run(args: string[]): Promise<{ code: number; out: string }> {
  const printed: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => printed.push(parts.join(' '));
  try {
    const code = await cdrCommand(args);
    return { code, out: printed.join('\n') };
  } finally {
    console.log = original;
  }
}

test('cdrCommand lists records most recent first, filtered by type, user, time and limit', async () => {
  const data = await filledDataDir();
  try {
    const all = await run(['--data', data]);
    assert.equal(all.code, 0);
    const lines = all.out.split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines[0], '2024-05-01T09:00:00.000Z\tmissed\tsip:carol@example.com -> sip:dave@example.com\t480 Temporarily Unavailable\tnot-registered\tm1');
    assert.equal(lines[1], '2024-05-01T08:01:00.000Z\tcall\tsip:alice@example.com -> sip:bob@example.com\t200 OK\t65s\tended by callee\tc1');
    assert.match(lines[2]!, /\tattempt\t.*\t486 Busy Here\ta1$/);
    assert.equal((await run(['--data', data, '--type', 'missed'])).out.split('\n').length, 1);
    assert.match((await run(['--data', data, '--user', 'bob@example.com', '--limit', '1'])).out, /\tc1$/);
    assert.match((await run(['--data', data, '--since', '2024-05-01T08:30:00Z'])).out, /^[^\n]*\tm1$/);
    assert.equal((await run(['--data', data, '--until', '2024-05-01T08:00:30Z'])).out.split('\n').length, 1);
    assert.equal((await run(['--data', data, '--user', 'nobody@example.com'])).out, 'no records');
    const json = JSON.parse((await run(['--data', data, '--json', '--type', 'call'])).out) as CdrRecord[];
    assert.deepEqual(json, [RECORDS[1]]);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('cdrCommand reads the data directory named by a config file', async () => {
  const data = await filledDataDir();
  try {
    const config = path.join(data, 'sipway.json');
    writeFileSync(config, JSON.stringify({ data }));
    assert.equal((await run(['--config', config, '--type', 'attempt'])).out.split('\n').length, 1);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('cdrCommand refuses bad flags with one line naming them', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--type', 'calls'], /^--type: must be one of attempt, call, missed/],
    [['--since', 'yesterday'], /^--since: 'yesterday' is not an ISO 8601/],
    [['--limit', '0'], /^--limit: must be a positive integer/],
    [['--limit', '5x'], /^--limit: must be a positive integer/],
    [['--user', 'not an aor'], /^--user: 'not an aor' is not a valid address of record/],
    [['--store', 'redis://127.0.0.1:6379'], /^--store: CDRs are not kept there/],
    [['extra'], /unexpected argument 'extra'/],
    [['--frob'], /^cdr: unknown option '--frob'/],
  ];
  for (const [args, re] of cases) await assert.rejects(cdrCommand(args), (e: unknown) => e instanceof UsageError && re.test(e.message), args.join(' '));
});

// Needs the `cdr` dispatch line in src/cli/main.ts.
test('sipway cdr through the CLI', async () => {
  const data = await filledDataDir();
  try {
    const r = runCli(['cdr', '--data', data, '--type', 'call', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [RECORDS[1]]);
    const bad = runCli(['cdr', '--data', data, '--type', 'nope']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^sipway: --type: must be one of/);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
