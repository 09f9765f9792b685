/**
 * The real peers the tests drive (SIPp, Kamailio, baresip, ...): README names every one .ci/run installs, and a test
 * whose peer is missing skips with a message naming the tool and its Debian package, except in CI (CI=true), where
 * it fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEBIAN_PACKAGES, requireTool, skipWithout } from './helpers/process.js';
import { projectRoot } from './helpers/paths.js';

const MISSING = 'sipway-no-such-peer';
const NOT_INSTALLED = new RegExp(`${MISSING} is not installed \\(Debian package ${MISSING}; \\.ci/run installs it\\)`);

/** Runs `fn` with CI set to `value` (or unset), restoring the caller's CI afterwards. */
function withCi<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.CI;
  if (value === undefined) delete process.env.CI;
  else process.env.CI = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
}

test('skipWithout: outside CI the reason names the missing tool and its package; in CI no skip, and requireTool fails', () => {
  withCi(undefined, () => {
    assert.match(skipWithout(MISSING) ?? '', NOT_INSTALLED);
    assert.equal(skipWithout('sh'), undefined, 'an installed tool is no reason to skip');
    assert.match(skipWithout('sh', MISSING) ?? '', NOT_INSTALLED, 'one missing tool of several is enough');
  });
  for (const ci of ['true', '1']) {
    withCi(ci, () => assert.equal(skipWithout(MISSING), undefined, `CI=${ci}`));
  }
  withCi('false', () => assert.match(skipWithout(MISSING) ?? '', NOT_INSTALLED));
  assert.throws(() => requireTool(MISSING), NOT_INSTALLED);
  assert.match(requireTool('sh'), /\/sh$/);
});

test('a test needing a missing peer is reported skipped with the reason outside CI, and failed in CI', { timeout: 30000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-peers-'));
  try {
    const helper = pathToFileURL(path.join(projectRoot, 'dist', 'test', 'helpers', 'process.js')).href;
    const file = path.join(dir, 'needs-peer.test.mjs');
    writeFileSync(
      file,
      [
        "import { test } from 'node:test';",
        `import { requireTool, skipWithout } from ${JSON.stringify(helper)};`,
        `test('needs the peer', { skip: skipWithout('${MISSING}') }, () => { requireTool('${MISSING}'); });`,
        '',
      ].join('\n'),
    );
    const run = (ci: string | undefined) => {
      const env = { ...process.env };
      // Run as a test run of its own, not as a child reporting to this one.
      delete env.NODE_TEST_CONTEXT;
      delete env.CI;
      if (ci !== undefined) env.CI = ci;
      return spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], { env, encoding: 'utf8', timeout: 20000 });
    };
    const local = run(undefined);
    assert.equal(local.status, 0, local.stdout + local.stderr);
    assert.match(local.stdout, new RegExp(`ok 1 - needs the peer # SKIP ${NOT_INSTALLED.source}`));
    const ci = run('true');
    assert.equal(ci.status, 1, ci.stdout + ci.stderr);
    assert.match(ci.stdout, /not ok 1 - needs the peer/);
    assert.match(ci.stdout, NOT_INSTALLED);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('README names every peer .ci/run installs with its Debian package, and the tests know the same packages', () => {
  const ci = readFileSync(path.join(projectRoot, '.ci', 'run'), 'utf8');
  const installed = [...ci.matchAll(/command -v (\S+) >\/dev\/null 2>&1 \|\| need\+=\((\S+)\)/g)].map((m) => ({ tool: m[1]!, pkg: m[2]! }));
  assert.ok(installed.length >= 8, `.ci/run's peers: ${JSON.stringify(installed)}`);
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const aptLine = /apt-get install [^\n]*/.exec(readme)?.[0] ?? '';
  for (const { tool, pkg } of installed) {
    assert.equal(DEBIAN_PACKAGES[tool], pkg, `test/helpers/process.ts names ${tool}'s package`);
    assert.ok(readme.includes(`\`${tool}\``), `README names \`${tool}\``);
    assert.ok(aptLine.split(/\s+/).includes(pkg), `README's apt-get line installs ${pkg}: ${aptLine}`);
  }
});
