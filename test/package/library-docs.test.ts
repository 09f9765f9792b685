import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';

const EXAMPLE_TIMEOUT_MS = 30_000;

function run(file: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: EXAMPLE_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(args[0] ?? file)} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve();
    });
  });
}

test("docs/library.md's examples type-check (strict) and run against the package's own entry points", { timeout: 120_000 }, async (t) => {
  const doc = readFileSync(path.join(projectRoot, 'docs', 'library.md'), 'utf8');
  const examples = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(examples.length >= 4, 'the page has its examples');
  // Inside the package, so that 'sipway' resolves to itself as it does from a project that depends on it.
  const dir = mkdtempSync(path.join(projectRoot, 'dist', '.library-examples-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const names = examples.map((code, i) => {
    writeFileSync(path.join(dir, `example${i + 1}.ts`), code);
    return `example${i + 1}`;
  });
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      // The declaration files themselves are checked by package.test.ts; here only the examples' use of them.
      compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: ['node'], outDir: '.', rootDir: '.', skipLibCheck: true },
      files: names.map((n) => `${n}.ts`),
    }),
  );
  await run(process.execPath, [path.join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir);
  for (const name of names) await run(process.execPath, [`${name}.js`], dir);
});
