import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/process.js';
import { openStores } from '../../src/store/index.js';
import { SystemClock } from '../../src/util/clock.js';
import { computeHa1 } from '../../src/auth/digest.js';

test('user add / list / passwd / del, with HA1s only in the store', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-user-'));
  try {
    const add = runCli(['user', 'add', 'alice@Example.COM', '--password', 'secret', '--groups', 'intl,registrar-admin', '--data', data]);
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.stdout, /added alice@example.com/);
    assert.equal(runCli(['user', 'add', 'bob@example.com', '--password-stdin', '--data', data], { input: 'pw2\n' }).status, 0);
    const list = runCli(['user', 'list', '--data', data]);
    assert.deepEqual(list.stdout.trim().split('\n'), ['alice@example.com\tgroups=intl,registrar-admin', 'bob@example.com']);
    assert.equal(runCli(['user', 'passwd', 'alice@example.com', '--password', 'new', '--data', data]).status, 0);
    const stores = await openStores({ dataDir: data }, new SystemClock());
    try {
      const alice = await stores.subscribers.get('alice', 'example.com');
      assert.equal(alice?.ha1Md5, computeHa1('alice', 'example.com', 'new', 'MD5'));
      assert.equal(alice?.ha1Sha256, computeHa1('alice', 'example.com', 'new', 'SHA-256'));
      assert.deepEqual(alice?.groups, ['intl', 'registrar-admin'], 'passwd keeps the groups');
      const bob = await stores.subscribers.get('bob', 'example.com');
      assert.equal(bob?.ha1Md5, computeHa1('bob', 'example.com', 'pw2', 'MD5'));
    } finally {
      await stores.close();
    }
    assert.match(runCli(['user', 'del', 'bob@example.com', '--data', data]).stdout, /deleted bob@example.com/);
    assert.equal(runCli(['user', 'list', 'example.com', '--data', data]).stdout.trim(), 'alice@example.com\tgroups=intl,registrar-admin');
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('user and location errors name the problem in one line', () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-user-'));
  try {
    const cases: Array<[string[], RegExp]> = [
      [['user', 'add', 'not an aor', '--password', 'x'], /'not an aor' is not a valid address of record/],
      [['user', 'add', 'alice@example.com'], /--password: required \(or --password-stdin\)/],
      [['user', 'add', 'alice@example.com:5060', '--password', 'x'], /not a valid address of record/],
      [['user', 'passwd', 'ghost@example.com', '--password', 'x'], /no such user ghost@example.com/],
      [['user', 'del', 'ghost@example.com'], /no such user ghost@example.com/],
      [['user', 'frob', 'a@b'], /unknown action 'frob'/],
      [['location', '@@@'], /not a valid address of record/],
      [['user', 'list', '--store', 'mysql://x'], /--store: 'mysql:\/\/x' is neither/],
    ];
    // A store to look in: without one, every lookup is refused for that reason first.
    assert.equal(runCli(['user', 'add', 'zed@example.com', '--password', 'z', '--data', data]).status, 0);
    for (const [args, re] of cases) {
      const r = runCli([...args, '--data', data]);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    assert.equal(runCli(['user', 'add', 'alice@example.com', '--password', 'x', '--data', data]).status, 0);
    assert.match(runCli(['user', 'add', 'alice@example.com', '--password', 'y', '--data', data]).stderr, /already exists/);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('user import validates every line before writing anything', () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-user-'));
  try {
    const file = path.join(data, 'users.txt');
    writeFileSync(file, '# users\nu1@example.com pw1\nu2@example.com pw2 intl|vip\n');
    const ok = runCli(['user', 'import', file, '--data', data]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /imported 2 users/);
    assert.match(runCli(['user', 'list', '--data', data]).stdout, /u2@example.com\tgroups=intl,vip/);
    writeFileSync(file, 'u3@example.com pw3\nbroken-line\n');
    const bad = runCli(['user', 'import', file, '--data', data]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /line 2/);
    assert.doesNotMatch(runCli(['user', 'list', '--data', data]).stdout, /u3@/, 'nothing written from a bad file');
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
