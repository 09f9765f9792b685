import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/process.js';
import { openStores } from '../../src/store/index.js';
import { SystemClock } from '../../src/util/clock.js';
import { computeHa1 } from '../../src/auth/digest.js';

const LOG_LEVELS = 'fatal, error, warn, info, debug, trace, silent';

function expectError(args: string[], status: number, line: string | RegExp, cwd?: string): void {
  const r = runCli(args, cwd === undefined ? {} : { cwd });
  assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stdout, '', `${args.join(' ')} prints no help or output`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  if (typeof line === 'string') assert.equal(lines[0], line);
  else assert.match(lines[0]!, line);
}

test('usage errors: one line naming the command or the flag as typed, exit 2', () => {
  const cases: Array<[string[], string | RegExp]> = [
    [['help', 'nosuch'], "sipway: help: unknown command 'nosuch' (run 'sipway --help')"],
    [['nosuch'], "sipway: unknown command 'nosuch' (run 'sipway --help')"],
    [['--bogus'], "sipway: unknown option '--bogus' (run 'sipway --help')"],
    [['serve', '--bogus'], "sipway: serve: unknown option '--bogus' (run 'sipway serve --help')"],
    [['doctor', '--bogus'], "sipway: doctor: unknown option '--bogus' (run 'sipway doctor --help')"],
    [['user', 'list', '--bogus'], "sipway: user: unknown option '--bogus' (run 'sipway user --help')"],
    [['cdr', '-x'], "sipway: cdr: unknown option '-x' (run 'sipway cdr --help')"],
    [['gateway', 'list', '--bogus=1'], "sipway: gateway: unknown option '--bogus' (run 'sipway gateway --help')"],
    [['serve', '--listen'], "sipway: --listen: needs a value (run 'sipway serve --help')"],
    [['location', '--json=yes'], 'sipway: --json: takes no value'],
    [['reload', 'now'], "sipway: reload: unexpected argument 'now' (run 'sipway reload --help')"],
    [['serve', 'now'], "sipway: serve: unexpected argument 'now' (run 'sipway serve --help')"],
    [['serve', '--workers', 'many'], "sipway: --workers: 'many' is not a number or 'auto'"],
    [['serve', '--workers', '0'], 'sipway: --workers: must be a number between 1 and 64'],
    [['serve', '--log-level', 'loud'], `sipway: --log-level: must be one of ${LOG_LEVELS}`],
    [['serve', '--listen', 'sctp:1.2.3.4'], "sipway: --listen: unknown transport 'sctp' in 'sctp:1.2.3.4' (use udp, tcp, tls, ws, wss)"],
    [['serve', '--listen', 'udp:127.0.0.1:99999'], "sipway: --listen: bad port in 'udp:127.0.0.1:99999'"],
    [['serve', '--listen', 'tls:127.0.0.1:0'], /^sipway: --tls-cert: listener tls:127\.0\.0\.1:0 needs tls\.cert and tls\.key/],
    [['serve', '--tls-cert', 'cert.pem'], 'sipway: --tls-key: needed with --tls-cert (the PEM private key)'],
    [['serve', '--store', 'mysql://x'], "sipway: --store: 'mysql://x' is neither 'sqlite' nor a redis:// URL"],
    [['user', 'list', '--store', 'mysql://x'], "sipway: --store: 'mysql://x' is neither 'sqlite' nor a redis:// URL"],
    [['cdr', '--limit', '0'], "sipway: --limit: must be a positive integer (got '0')"],
    [['cdr', '--type', 'nope'], "sipway: --type: must be one of attempt, call, missed (got 'nope')"],
    [['user', 'add', 'alice@example.com'], 'sipway: --password: required (or --password-stdin)'],
    [['user', 'add', 'not an aor', '--password', 'x'], "sipway: user add: 'not an aor' is not a valid address of record (expected user@domain)"],
    [['gateway', 'add', 'gw1', 'sip:gw.example.net'], "sipway: --group: required by 'gateway add'"],
  ];
  for (const [args, line] of cases) expectError(args, 2, line);
});

test('config file mistakes are usage errors too, named by their field path', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-style-'));
  try {
    const file = path.join(dir, 'sipway.json');
    const cases: Array<[unknown, string]> = [
      [{ workers: 0 }, 'sipway: workers: must be a number between 1 and 64'],
      [{ log: { level: 'loud' } }, `sipway: log.level: must be one of ${LOG_LEVELS}`],
      [{ listen: ['sctp:1.2.3.4'] }, "sipway: listen[0]: unknown transport 'sctp' in 'sctp:1.2.3.4' (use udp, tcp, tls, ws, wss)"],
      [{ admin: { listen: '0.0.0.0:5090' } }, "sipway: admin.listen: '0.0.0.0' is not a loopback address (the admin endpoint has no authentication)"],
    ];
    for (const [config, line] of cases) {
      writeFileSync(file, JSON.stringify(config));
      expectError(['serve', '--config', file], 2, line);
    }
    // A flag beside the file overrides it and is named as typed.
    writeFileSync(file, JSON.stringify({ workers: 2 }));
    expectError(['serve', '--config', file, '--workers', '99'], 2, 'sipway: --workers: must be a number between 1 and 64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a command understood but refused by the state of things exits 1', () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-style-'));
  try {
    assert.equal(runCli(['user', 'add', 'alice@example.com', '--password', 'pw', '--data', data]).status, 0);
    expectError(['user', 'add', 'alice@example.com', '--password', 'pw', '--data', data], 1, "sipway: user add: alice@example.com already exists (use 'sipway user passwd')");
    expectError(['user', 'del', 'ghost@example.com', '--data', data], 1, 'sipway: user del: no such user ghost@example.com');
    expectError(['cpl', 'get', 'alice@example.com', '--data', data], 1, 'sipway: cpl get: alice@example.com has no CPL script');
    expectError(['gateway', 'del', 'gw9', '--data', data], 1, "sipway: gateway del: no gateway 'gw9'");
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('user import: quoted passwords keep their spaces and quotes; a line that does not read cleanly is refused by number', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-import-'));
  try {
    const file = path.join(data, 'users.txt');
    writeFileSync(file, 'alice@example.com "pw 3"\n');
    const one = runCli(['user', 'import', file, '--data', data]);
    assert.equal(one.status, 0, one.stderr);
    assert.equal(one.stdout.trim(), 'imported 1 user');
    writeFileSync(file, ['# comment', 'bob@example.com\t"say \\"hi\\" \\\\o/"   intl,vip', 'carol@example.com plain intl|vip'].join('\n'));
    assert.equal(runCli(['user', 'import', file, '--data', data]).stdout.trim(), 'imported 2 users');
    const stores = await openStores({ dataDir: data }, new SystemClock());
    try {
      assert.equal((await stores.subscribers.get('alice', 'example.com'))?.ha1Md5, computeHa1('alice', 'example.com', 'pw 3', 'MD5'));
      const bob = await stores.subscribers.get('bob', 'example.com');
      assert.equal(bob?.ha1Sha256, computeHa1('bob', 'example.com', 'say "hi" \\o/', 'SHA-256'));
      assert.deepEqual(bob?.groups, ['intl', 'vip']);
      assert.deepEqual((await stores.subscribers.get('carol', 'example.com'))?.groups, ['intl', 'vip']);
    } finally {
      await stores.close();
    }
    const refused: Array<[string, string]> = [
      ['dave@example.com "pw 3', 'a quoted field has no closing quote'],
      ['dave@example.com pw"3', 'field 2 has a quote inside; put the whole field in double quotes and write \\" for the quote'],
      ['dave@example.com "pw"3', 'field 2 goes on after its closing quote; put a space after it'],
      ['dave@example.com pw 3 extra', '4 fields where 2 or 3 are expected (a password with spaces goes in double quotes: "two words")'],
      ['dave@example.com ""', 'the password is empty'],
      ['dave@example.com', "expected 'USER@DOMAIN PASSWORD [GROUPS]'"],
    ];
    for (const [line, problem] of refused) {
      writeFileSync(file, `erin@example.com pw\n\n${line}\n`);
      expectError(['user', 'import', file, '--data', data], 2, `sipway: user import: line 3: ${problem}`);
    }
    const list = runCli(['user', 'list', '--data', data]).stdout;
    assert.doesNotMatch(list, /erin@|dave@/, 'nothing written from a refused file');
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
