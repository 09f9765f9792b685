import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './helpers/paths.js';

/**
 * The layer order of the README's architecture section. A module may import only from its own layer or from layers
 * of lower rank; this test fails on an upward import and on any import cycle between files.
 */
const RANK: Record<string, number> = {
  util: 0,
  message: 1,
  sdp: 2,
  store: 2,
  transport: 3,
  transaction: 4,
  auth: 5,
  dialog: 6,
  registrar: 6,
  accounting: 6,
  proxy: 7,
  presence: 7,
  ua: 7,
  media: 7,
  b2bua: 8,
  policy: 8,
  // The SBC ties the B2BUA's bridge to a media relay and implements the policy's ctx.sbc(): above both.
  sbc: 9,
  server: 10,
  // Above the server: its test server starts a SipwayServer in the test process.
  testing: 11,
  cli: 12,
};

const srcDir = path.join(projectRoot, 'src');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function layerOf(file: string): string {
  const rel = path.relative(srcDir, file).split(path.sep);
  return rel.length === 1 ? 'root' : rel[0]!;
}

function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const spec = (m[1] ?? m[2])!;
    out.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

const files = walk(srcDir);

test('every src directory has a rank', () => {
  for (const f of files) {
    const layer = layerOf(f);
    if (layer === 'root') continue;
    assert.ok(layer in RANK, `src/${layer} is not in the layer table of test/architecture.test.ts (and the README)`);
  }
});

test('the layer table lists only layers that exist', () => {
  const dirs = new Set(files.map(layerOf));
  assert.deepEqual(Object.keys(RANK).filter((layer) => !dirs.has(layer)), []);
});

test('no module imports a layer above its own', () => {
  const violations: string[] = [];
  for (const f of files) {
    const from = layerOf(f);
    if (from === 'root') continue;
    for (const target of localImports(f)) {
      const to = layerOf(target);
      if (to === 'root') {
        violations.push(`${path.relative(projectRoot, f)} imports the package root`);
        continue;
      }
      if (RANK[to]! > RANK[from]!) violations.push(`${path.relative(projectRoot, f)} (${from}) imports ${path.relative(projectRoot, target)} (${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('no import cycles between modules', () => {
  const graph = new Map(files.map((f) => [f, localImports(f).filter((t) => files.includes(t))]));
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, trail: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') {
      cycles.push([...trail.slice(trail.indexOf(f)), f].map((p) => path.relative(srcDir, p)).join(' -> '));
      return;
    }
    state.set(f, 'visiting');
    for (const t of graph.get(f) ?? []) visit(t, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(cycles, []);
});
