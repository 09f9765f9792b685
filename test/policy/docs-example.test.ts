import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { PolicyLoader } from '../../src/policy/index.js';

test("docs/policy.md's example type-checks and loads, importing the package's own 'sipway/policy'", async () => {
  const doc = readFileSync(path.join(projectRoot, 'docs', 'policy.md'), 'utf8');
  const example = /## Example\n\n```ts\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(example, 'the example is there');
  // Inside the package, so that its name resolves to itself (as it does from a project that depends on it).
  const dir = mkdtempSync(path.join(projectRoot, 'dist', '.policy-example-'));
  try {
    const file = path.join(dir, 'routing.ts');
    writeFileSync(file, example);
    const policy = await new PolicyLoader().load(file);
    assert.equal(typeof policy.onRequest, 'function');
    assert.equal(typeof policy.onFailure, 'function');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
