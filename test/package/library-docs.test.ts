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

function examplesOf(page: string): string[] {
  const doc = readFileSync(path.join(projectRoot, 'docs', page), 'utf8');
  return [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test("the examples of docs/library.md and docs/ua.md type-check (strict) and run against the package's own entry points", { timeout: 120_000 }, async (t) => {
  const library = examplesOf('library.md');
  const ua = examplesOf('ua.md');
  assert.ok(library.length >= 4 && ua.length >= 1, 'the pages have their examples');
  const examples = [...library, ...ua];
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

/** The names in the first column of the export table under `heading`. */
function tableNames(doc: string, heading: string): string[] {
  const section = doc.slice(doc.indexOf(`\n## ${heading}\n`)).split(/\n## /)[1]!;
  return [...section.matchAll(/^\| (.*?) \|/gm)].flatMap((row) => [...row[1]!.matchAll(/`([A-Za-z_][\w]*)/g)].map((m) => m[1]!));
}

test('docs/library.md names every export of sipway and sipway/testing, and nothing they do not export', async () => {
  const doc = readFileSync(path.join(projectRoot, 'docs', 'library.md'), 'utf8');
  for (const [heading, entry] of [
    ['`sipway`', 'index'],
    ['`sipway/testing`', 'testing/index'],
  ] as const) {
    const documented = new Set(tableNames(doc, heading));
    const values = Object.keys((await import(path.join(projectRoot, 'dist', 'src', `${entry}.js`))) as object);
    assert.deepEqual(values.filter((name) => !documented.has(name)), [], `exports of ${heading} the page does not describe`);
    // Types are only in the declarations.
    const declarations = readFileSync(path.join(projectRoot, 'dist', 'src', `${entry}.d.ts`), 'utf8');
    const unknown = [...documented].filter((name) => !values.includes(name) && !new RegExp(`\\b${name}\\b`).test(declarations));
    assert.deepEqual(unknown, [], `names in the ${heading} table that it does not export`);
  }
});
