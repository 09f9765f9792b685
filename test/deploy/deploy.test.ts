import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, requireTool } from '../helpers/process.js';
import { projectRoot } from '../helpers/paths.js';
import { Netns } from '../helpers/loopback-ns.js';

/*
 * Docker does not run here and systemd is not PID 1: what can be run of deploy/sipway.service and the Dockerfile is
 * their command lines, with the paths they name mapped into this checkout, against the defaults they rely on
 * (0.0.0.0:5060, the admin endpoint on 127.0.0.1:5090) in a network namespace of their own.
 */
const UNIT = path.join(projectRoot, 'deploy', 'sipway.service');
const DOCKERFILE = path.join(projectRoot, 'Dockerfile');
const INSTALLED_CLI = '/opt/sipway/dist/src/cli/main.js';
const IMAGE_CLI = '/app/dist/src/cli/main.js';

let ns: Netns;
let dir: string;

before(() => {
  ns = Netns.create('deploy');
  dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-deploy-'));
});

after(() => {
  ns.delete();
  rmSync(dir, { recursive: true, force: true });
});

/** `Key=value` lines of a unit section (the last one wins, as for systemd's single-valued keys). */
function unitSection(text: string, section: string): Map<string, string> {
  const out = new Map<string, string>();
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) current = header[1]!;
    else if (current === section) {
      const eq = line.indexOf('=');
      out.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  return out;
}

/** The deploy config with its store in a temporary directory (the test must not write /var/lib/sipway). */
function deployConfig(): string {
  const config = JSON.parse(readFileSync(path.join(projectRoot, 'deploy', 'sipway.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.data, '/var/lib/sipway', 'the config keeps its store where the unit gives the service a directory');
  const file = path.join(dir, 'sipway.json');
  writeFileSync(file, JSON.stringify({ ...config, data: path.join(dir, 'var-lib-sipway') }));
  return file;
}

test('systemd-analyze verify finds nothing to say about deploy/sipway.service', () => {
  requireTool('systemd-analyze', 'systemd');
  // A copy: verify reads the unit's name from the file name, and must not see other files of deploy/.
  const copy = path.join(dir, 'sipway.service');
  copyFileSync(UNIT, copy);
  const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', 'no warning');
});

test("the unit's ExecStart passes doctor, serves, reloads on ExecReload's SIGHUP and stops on SIGTERM", async () => {
  const service = unitSection(readFileSync(UNIT, 'utf8'), 'Service');
  assert.equal(service.get('ExecReload'), '/bin/kill -HUP $MAINPID');
  const [node, cli, command, ...args] = service.get('ExecStart')!.split(/\s+/);
  assert.deepEqual([node, cli, command], ['/usr/bin/node', INSTALLED_CLI, 'serve']);
  assert.deepEqual(args, ['--config', '/etc/sipway/sipway.json']);
  const mapped = args.map((a) => (a === '/etc/sipway/sipway.json' ? deployConfig() : a));

  const checked = ns.run([process.execPath, CLI, 'doctor', ...mapped]);
  assert.equal(checked.status, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, /^ok {4}listen: udp:0\.0\.0\.0:5060 is free$/m);
  assert.match(checked.stdout, /^ok {4}admin: 127\.0\.0\.1:5090 is free$/m);

  const server = await ns.start([process.execPath, CLI, 'serve', ...mapped], (l) => l.includes('"msg":"sipway started"'));
  try {
    server.signal('SIGHUP');
    await server.waitFor((l) => l.includes('"msg":"workers reloaded"') || l.includes('"msg":"gateways reloaded"'));
  } finally {
    assert.equal(await server.stop('SIGTERM'), 0);
  }
});

test("the Dockerfile's command serves on the exposed ports and its HEALTHCHECK follows the server's state", async () => {
  const text = readFileSync(DOCKERFILE, 'utf8').replace(/\\\n\s*/g, ' ');
  const instructions = text.split('\n').filter((l) => /^[A-Z]+ /.test(l));
  const all = (keyword: string): string[] => instructions.filter((l) => l.startsWith(`${keyword} `)).map((l) => l.slice(keyword.length + 1).trim());
  assert.ok(all('FROM').every((f) => f.startsWith('node:20-bookworm-slim')), all('FROM').join(', '));
  assert.ok(all('RUN').some((r) => r.includes('npm ci')) && all('RUN').some((r) => r.includes('npm run build')));
  assert.deepEqual(all('USER'), ['node'], 'runs as the image\'s unprivileged user');
  assert.deepEqual(all('EXPOSE'), ['5060/udp 5060/tcp 5061/tcp']);
  assert.deepEqual(all('VOLUME'), ['/data']);
  assert.match(readFileSync(path.join(projectRoot, '.dockerignore'), 'utf8'), /^node_modules$[\s\S]*^dist$/m);

  // Exec form (a JSON array), so that the server is PID 1 and gets the signals `docker stop` sends.
  const exec = (form: string): string[] => JSON.parse(form) as string[];
  const mapPaths = (argv: string[]): string[] => argv.map((a) => (a === 'node' ? process.execPath : a === IMAGE_CLI ? CLI : a === '/data' ? path.join(dir, 'data') : a));
  const healthcheck = /^(?:--\S+\s+)*CMD\s+(\[.*\])$/.exec(all('HEALTHCHECK')[0]!);
  assert.ok(healthcheck, all('HEALTHCHECK')[0]);
  const health = mapPaths(exec(healthcheck[1]!));
  const server = await ns.start(mapPaths([...exec(all('ENTRYPOINT')[0]!), ...exec(all('CMD')[0]!)]), (l) => l.includes('"msg":"sipway started"'));
  try {
    const healthy = ns.run(health);
    assert.equal(healthy.status, 0, healthy.stderr);
    assert.match(healthy.stdout, /^udp:127\.0\.0\.1:5060: 200 OK/);
  } finally {
    assert.equal(await server.stop('SIGTERM'), 0);
  }
  const gone = ns.run(health);
  assert.equal(gone.status, 1, 'unhealthy once the server is gone');
});
