import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cplCommand } from '../../src/cli/cpl.js';
import { CommandFailed, UsageError } from '../../src/cli/usage-error.js';
import { CLI, runCli } from '../helpers/process.js';
import { projectRoot } from '../helpers/paths.js';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Calls the command function in process, printing what `sipway` would (UsageError: one line, exit 2; CommandFailed: exit 1). */
async function direct(args: string[], input = ''): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const io = { out: (t: string) => (stdout += t + '\n'), err: (t: string) => (stderr += t + '\n'), readStdin: async () => input };
  try {
    return { status: await cplCommand(args, io), stdout, stderr };
  } catch (e) {
    if (!(e instanceof UsageError) && !(e instanceof CommandFailed)) throw e;
    return { status: e instanceof UsageError ? 2 : 1, stdout, stderr: stderr + `sipway: ${e.message}\n` };
  }
}

/** The `sipway` command itself once main.ts dispatches `cpl`; until then the function, with the same output. */
const dispatched = /cplCommand/.test(readFileSync(CLI, 'utf8'));
const sipway = (args: string[], input?: string): Promise<Result> =>
  dispatched ? Promise.resolve(runCli(['cpl', ...args], { input })) : direct(args, input);

const monica = path.join(projectRoot, 'examples', 'cpl', 'screen-monica-business-hours.xml');

describe(`sipway cpl (${dispatched ? 'through the sipway command' : 'cplCommand called directly'})`, () => {
  let dir: string;
  let data: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cpl-cli-'));
    data = path.join(dir, 'data');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('put / get / list / del', async () => {
    const put = await sipway(['put', 'alice@Example.COM', monica, '--data', data]);
    assert.equal(put.status, 0, put.stderr);
    assert.equal(put.stdout.trim(), 'stored the CPL script of alice@example.com (incoming)');
    const get = await sipway(['get', 'alice@example.com', '--data', data]);
    assert.equal(get.stdout, readFileSync(monica, 'utf8'));
    const list = await sipway(['list', '--data', data]);
    assert.match(list.stdout, /^alice@example\.com\t\d+ bytes\t\d{4}-\d\d-\d\dT[\d:.]+Z\n$/);
    assert.equal((await sipway(['list', 'other.example', '--data', data])).stdout, '');
    assert.equal((await sipway(['del', 'alice@example.com', '--data', data])).stdout.trim(), 'deleted the CPL script of alice@example.com');
    const again = await sipway(['del', 'alice@example.com', '--data', data]);
    assert.deepEqual([again.status, again.stderr.trim()], [1, 'sipway: cpl del: alice@example.com has no CPL script']);
  });

  it('put refuses an invalid script, printing every error as FILE:LINE:COLUMN, and stores nothing', async () => {
    const file = path.join(dir, 'script.xml');
    writeFileSync(
      file,
      `<?xml version="1.0"?>
<cpl xmlns="urn:ietf:params:xml:ns:cpl">
  <incoming>
    <proxy>
      <busy/>
      <busy/>
      <success/>
    </proxy>
  </incoming>
</cpl>
`,
    );
    const put = await sipway(['put', 'bob@example.com', file, '--data', data]);
    assert.equal(put.status, 1);
    assert.deepEqual(put.stderr.trim().split('\n'), [
      `sipway: cpl: ${file}:6:7: <proxy> output 'busy' appears twice (first at line 5)`,
      `sipway: cpl: ${file}:7:7: <proxy> output 'success' is not valid (it takes busy, noanswer, redirection, failure, default)`,
    ]);
    assert.equal((await sipway(['get', 'bob@example.com', '--data', data])).status, 1, 'nothing stored');
  });

  it('put reads standard input with -; check validates without a store', async () => {
    const put = await sipway(['put', 'carol@example.com', '-', '--data', data], readFileSync(monica, 'utf8'));
    assert.equal(put.status, 0, put.stderr);
    const broken = await sipway(['put', 'carol@example.com', '-', '--data', data], '<cpl xmlns="urn:ietf:params:xml:ns:cpl"><incoming>');
    assert.match(broken.stderr, /^sipway: cpl: <stdin>:1:\d+: /);
    const check = await sipway(['check', monica]);
    assert.equal(check.stdout.trim(), `${monica}: valid CPL script (incoming)`);
  });

  it('usage errors name the problem in one line', async () => {
    const cases: Array<[string[], string]> = [
      [['put', 'alice@example.com'], 'sipway: cpl put: missing FILE'],
      [['get'], 'sipway: cpl get: missing USER@DOMAIN'],
      [['get', 'alice@example.com', 'extra'], "sipway: cpl get: unexpected argument 'extra'"],
      [['frob'], "sipway: cpl: unknown action 'frob' (put, get, del, list, check)"],
      [['get', 'not an address'], "sipway: cpl get: 'not an address' is not a valid address of record (expected user@domain)"],
      [['put', 'alice@example.com', path.join(dir, 'missing.xml')], `sipway: cpl: cannot read ${path.join(dir, 'missing.xml')}: ENOENT`],
    ];
    for (const [args, message] of cases) {
      const r = await sipway([...args, '--data', data]);
      assert.deepEqual([r.status, r.stderr.trim()], [2, message], args.join(' '));
    }
  });
});
