import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { computeHa1 } from '../../src/auth/index.js';
import { startTestServer } from '../../src/testing/index.js';

/**
 * What a user gets from `npm install sipway`: the package is packed from the built dist (as `npm publish` would)
 * and installed into a fresh project, whose JS and TS then use every entry point and run the bin.
 */

interface PackageJson {
  name: string;
  version: string;
  bin: Record<string, string>;
  exports: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as PackageJson;
const STEP_TIMEOUT_MS = 45_000;

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** `sipway`, `sipway/testing`, ... for every key of package.json's exports. */
const entryPoints = Object.keys(pkg.exports).map((key) => (key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`));

test('the bin is executable as built: a rebuild leaves `npx sipway` runnable', async () => {
  const bin = path.join(projectRoot, pkg.bin['sipway']!);
  const mode = statSync(bin).mode;
  assert.equal(mode & 0o111, 0o111, `${bin} has mode ${(mode & 0o777).toString(8)}: not executable`);
  // Run as the shell runs it (shebang line, no `node` in front).
  assert.equal((await run(bin, ['--version'], projectRoot)).trim(), pkg.version);
});

test('the packed package installs into a fresh project; every entry point loads from JS and type-checks from TS', { timeout: 150_000 }, async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-package-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));

  // `prepare` would rebuild dist (rm -rf dist) under the other test files running now: pack what `npm test` built.
  const packed = JSON.parse(await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], projectRoot)) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  const files = packed[0]!.files.map((f) => f.path);
  const stray = files.filter((f) => !/^(dist\/src\/|docs\/[^/]+\.md$|README\.md$|LICENSE$|package\.json$)/.test(f));
  assert.deepEqual(stray, [], 'the tarball holds only the built library, its docs and the README');
  assert.deepEqual(files.filter((f) => /(^|\/)(test|bench)\//.test(f)), [], 'no test or bench files in the tarball');
  for (const target of [...Object.values(pkg.exports), ...Object.values(pkg.bin)]) {
    assert.ok(files.includes(path.posix.normalize(target)), `the tarball lacks ${target}, which package.json points to`);
  }

  const app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // --ignore-scripts: better-sqlite3 would compile its binding for a minute; it is loaded only when a database is
  // opened, which nothing here does. @types/node is what any TypeScript project on Node has.
  await run(
    'npm',
    ['install', path.join(work, packed[0]!.filename), '@types/node@20', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'],
    app,
  );

  writeFileSync(
    path.join(app, 'check.mjs'),
    `
const entries = ${JSON.stringify(entryPoints)};
const loaded = {};
for (const entry of entries) loaded[entry] = Object.keys(await import(entry)).length;
const sipway = await import('sipway');
const testing = await import('sipway/testing');
if (testing.FakeClock !== sipway.FakeClock) throw new Error('sipway/testing has a FakeClock of its own');
// A scripted request through the root's serializer and parser, sent over a loop transport by a transaction layer.
const clock = new testing.FakeClock();
const transport = new testing.LoopTransport({ clock });
const layer = new sipway.TransactionLayer({ sender: transport, clock });
const request = testing.outgoingRequest('OPTIONS');
const destination = { transport: 'udp', address: '192.0.2.20', port: 5060 };
sipway.addVia(request, transport, destination);
layer.sendRequest(request, destination, { onResponse() {}, onTimeout() {}, onTransportError() {} });
clock.advance(1000);
const parsed = sipway.parseMessage(sipway.serialize(transport.sent[0].message));
console.log(JSON.stringify({ loaded, sent: transport.requests('OPTIONS').length, method: parsed.ok && parsed.message.method }));
`,
  );
  const result = JSON.parse(await run(process.execPath, ['check.mjs'], app)) as { loaded: Record<string, number>; sent: number; method: string };
  for (const entry of entryPoints) assert.ok(result.loaded[entry]! > 0, `${entry} exports something`);
  assert.equal(result.sent, 2, 'the OPTIONS went out and was retransmitted once (Timer E at 500 ms)');
  assert.equal(result.method, 'OPTIONS');

  writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, skipLibCheck: false }, files: ['check.ts'] }),
  );
  writeFileSync(
    path.join(app, 'check.ts'),
    `
import { computeHa1, defaultConfig, parseMessage, SipRequest, TransactionLayer, type ServerConfig } from 'sipway';
import { FakeClock, LoopTransport, startTestServer, type TestServer } from 'sipway/testing';
import { definePolicy, sanity } from 'sipway/policy';
// @ts-expect-error: the typings are real, so a name sipway does not export is an error
import { noSuchExport } from 'sipway';

const clock = new FakeClock();
const layer: TransactionLayer = new TransactionLayer({ sender: new LoopTransport({ clock }), clock });
const parsed = parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\\r\\n\\r\\n'));
const method: string | undefined = parsed.ok && parsed.message instanceof SipRequest ? parsed.message.method : undefined;
const ha1: string = computeHa1('alice', 'example.com', 'secret', 'MD5');
const config: ServerConfig = defaultConfig();
const start: (config?: Record<string, unknown>) => Promise<TestServer> = startTestServer;
export const policy = definePolicy({
  async onRequest(ctx) {
    if (!sanity(ctx)) return;
    await ctx.relay();
  },
});
export { layer, method, ha1, config, start, noSuchExport };
`,
  );
  await run(process.execPath, [path.join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app);

  const installedBin = path.join(app, 'node_modules', '.bin', 'sipway');
  assert.equal((await run(installedBin, ['--version'], app)).trim(), pkg.version);

  // README's "Call from code", as a user would paste it, against a server with its two users.
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const example = /^### Call from code\n[\s\S]*?^```js\n([\s\S]*?)^```/m.exec(readme)?.[1];
  assert.ok(example, "README has a js block under '### Call from code'");
  assert.ok(example.split('\n').filter((l) => l.trim().length > 0).length <= 12, 'the example stays about ten lines');
  writeFileSync(path.join(app, 'call.mjs'), example);
  const server = await startTestServer({ domains: ['localhost'], auth: { register: true } });
  try {
    for (const [user, password] of [['alice', 'alicepw'], ['bob', 'bobpw']] as const) {
      await server.server.subscribers.put({ username: user, domain: 'localhost', ha1Md5: computeHa1(user, 'localhost', password, 'MD5'), ha1Sha256: computeHa1(user, 'localhost', password, 'SHA-256'), groups: [], createdAt: Date.now() });
    }
    const out = await run(process.execPath, ['call.mjs'], app, { SIP_PORT: String(server.port) });
    assert.equal(out.trim(), '200 true');
  } finally {
    await server.stop();
  }
});

test("package.json's description names only what README's 'What the server does today' describes", () => {
  const { description } = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { description: string };
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const today = /^## What the server does today\n([\s\S]*?)^## /m.exec(readme)?.[1]?.toLowerCase();
  assert.ok(today, "README has a section 'What the server does today'");
  // "A SIP server platform for Node.js: a, b and c": each of a, b, c must be something that section describes.
  const promises = description.slice(description.indexOf(':') + 1).split(/,| and /).map((p) => p.trim().replace(/^an? /, ''));
  assert.ok(promises.length > 1, `the description lists what sipway is: ${description}`);
  assert.deepEqual(promises.filter((p) => !today.includes(p.toLowerCase())), [], `description: ${description}`);
});
