import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';

/** What a user gets from `npm install sipway` and from the build in a checkout. */

interface PackageJson {
  name: string;
  version: string;
  bin: Record<string, string>;
  exports: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as PackageJson;
const STEP_TIMEOUT_MS = 45_000;

function run(file: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

test('the bin is executable as built: a rebuild leaves `npx sipway` runnable', async () => {
  const bin = path.join(projectRoot, pkg.bin['sipway']!);
  const mode = statSync(bin).mode;
  assert.equal(mode & 0o111, 0o111, `${bin} has mode ${(mode & 0o777).toString(8)}: not executable`);
  // Run as the shell runs it (shebang line, no `node` in front).
  assert.equal((await run(bin, ['--version'], projectRoot)).trim(), pkg.version);
});
