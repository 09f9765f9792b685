import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, requireTool, runCli, runCliAsync } from '../helpers/process.js';
import { projectRoot } from '../helpers/paths.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { startRedisServer } from '../store/redis-server.js';
import { policySource } from '../policy/policy-harness.js';

/**
 * A self-signed certificate for CN=sip.test valid from `start` to `end` (openssl ASN.1 times, e.g. 20200101000000Z),
 * made with `openssl ca`: `openssl req -x509` cannot date a certificate in the past.
 */
function certificate(dir: string, name: string, start: string, end: string): { cert: string; key: string } {
  requireTool('openssl', 'openssl');
  const work = mkdtempSync(path.join(dir, 'ca-'));
  writeFileSync(path.join(work, 'ca.cnf'), '[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\n[ p ]\ncommonName = supplied\n');
  writeFileSync(path.join(work, 'index.txt'), '');
  writeFileSync(path.join(work, 'serial'), '01\n');
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: work, stdio: 'ignore' });
  run(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=sip.test', '-keyout', key, '-out', 'req.csr']);
  run(['ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', key, '-in', 'req.csr', '-startdate', start, '-enddate', end, '-out', cert]);
  return { cert, key };
}

/** `sipway doctor ARGS`, run without blocking this process: the DNS servers it asks live here. */
async function doctor(args: string[]): Promise<{ status: number | null; lines: string[]; stderr: string }> {
  const r = await runCliAsync(['doctor', ...args]);
  return { status: r.status, lines: r.stdout.trim().split('\n'), stderr: r.stderr };
}

/** The one line about `subject`, whose level and text are then checked. */
function line(lines: string[], subject: string): string {
  const found = lines.filter((l) => l.slice(6).startsWith(`${subject}: `));
  assert.equal(found.length, 1, `one line about ${subject} in:\n${lines.join('\n')}`);
  return found[0]!;
}

test('doctor: a config this machine can serve gets ok on every line and exit 0', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-doctor-'));
  try {
    const dns = await startDnsServer({
      zone: {
        '_sip._udp.sip.test': [{ type: 'SRV', priority: 10, weight: 1, port: 5060, target: 'proxy.sip.test' }],
        'proxy.sip.test': [{ type: 'A', address: '127.0.0.1' }],
      },
    });
    const data = path.join(dir, 'data');
    assert.equal(runCli(['user', 'add', 'alice@sip.test', '--password', 'pw', '--data', data]).status, 0);
    const { cert, key } = certificate(dir, 'good', '20200101000000Z', '20991231000000Z');
    const port = await freePort();
    const admin = await freePort();
    const config = path.join(dir, 'sipway.json');
    writeFileSync(config, JSON.stringify({ dns: { servers: [`127.0.0.1:${dns.port}`] }, tls: { cert, key } }));
    const policy = path.join(projectRoot, 'examples', 'policy', 'call-forwarding.ts');
    const r = await doctor(['--config', config, '--listen', `udp:127.0.0.1:${port}`, '--listen', `tls:127.0.0.1:${port}`, '--domain', 'sip.test', '--data', data, '--admin', `127.0.0.1:${admin}`, '--policy', policy]);
    assert.equal(r.status, 0, r.lines.join('\n') + r.stderr);
    assert.ok(r.lines.every((l) => l.startsWith('ok    ')), r.lines.join('\n'));
    assert.match(line(r.lines, 'config'), new RegExp(`^ok    config: ${config}: 2 listener\\(s\\), domains sip\\.test`));
    assert.deepEqual(
      r.lines.filter((l) => l.includes('listen: ')),
      [`ok    listen: udp:127.0.0.1:${port} is free`, `ok    listen: tls:127.0.0.1:${port} is free`],
    );
    assert.equal(line(r.lines, 'admin'), `ok    admin: 127.0.0.1:${admin} is free`);
    assert.equal(line(r.lines, 'data'), `ok    data: ${path.join(data, 'sipway.db')}: readable and writable, 1 subscriber`);
    assert.match(line(r.lines, 'tls.cert'), new RegExp(`^ok    tls\\.cert: ${cert}: CN=sip\\.test, key matches, valid until 2099-12-31T00:00:00\\.000Z`));
    assert.equal(line(r.lines, `dns 127.0.0.1:${dns.port}`), `ok    dns 127.0.0.1:${dns.port}: answers (NAPTR sip.test)`);
    assert.equal(line(r.lines, 'domain sip.test'), 'ok    domain sip.test: sip:sip.test resolves to udp:127.0.0.1:5060');
    assert.equal(line(r.lines, 'policy'), `ok    policy: ${policy} loads and type-checks`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('doctor: each thing the server would trip over is a FAIL line naming it, exit 1', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-doctor-'));
  const udp = dgram.createSocket('udp4');
  const tcp = net.createServer();
  try {
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const sipPort = udp.address().port;
    const adminPort = (tcp.address() as net.AddressInfo).port;
    const expired = certificate(dir, 'expired', '20200101000000Z', '20200102000000Z');
    const other = certificate(dir, 'other', '20200101000000Z', '20991231000000Z');
    const policy = path.join(dir, 'routing.ts');
    writeFileSync(policy, policySource("export default P.definePolicy({ onRequest(ctx) { const status: number = 'busy'; ctx.reply(status); } });"));
    const redisPort = await freePort();
    const silent = await startDnsServer({ zone: {}, behaviour: () => 'drop' });
    const config = path.join(dir, 'sipway.json');
    writeFileSync(config, JSON.stringify({ dns: { servers: [`127.0.0.1:${silent.port}`], timeoutMs: 300 }, domains: ['sip.test'] }));
    const base = ['--config', config, '--listen', `udp:127.0.0.1:${sipPort}`, '--admin', `127.0.0.1:${adminPort}`, '--policy', policy];
    const r = await doctor([...base, '--tls-cert', expired.cert, '--tls-key', expired.key, '--store', `redis://127.0.0.1:${redisPort}`]);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.equal(line(r.lines, 'listen'), `FAIL  listen: udp:127.0.0.1:${sipPort} is in use (another sipway?)`);
    assert.equal(line(r.lines, 'admin'), `FAIL  admin: 127.0.0.1:${adminPort} is in use (another sipway?)`);
    assert.match(line(r.lines, 'store'), new RegExp(`^FAIL  store: cannot connect to redis://127\\.0\\.0\\.1:${redisPort}/?: .*ECONNREFUSED`));
    assert.equal(line(r.lines, 'tls.cert'), `FAIL  tls.cert: ${expired.cert} expired on 2020-01-02T00:00:00.000Z`);
    // No DNS answer is a warning: the server serves its own domains without one.
    assert.equal(line(r.lines, `dns 127.0.0.1:${silent.port}`), `warn  dns 127.0.0.1:${silent.port}: no answer (asked twice, 300 ms each): calls to other domains will fail (dns.servers)`);
    assert.equal(line(r.lines, 'domain sip.test'), 'warn  domain sip.test: not looked up: no DNS server answers');
    assert.match(line(r.lines, 'policy'), new RegExp(`^FAIL  policy: ${policy}:\\d+:\\d+ - error TS2322: Type 'string' is not assignable to type 'number'`));

    const mismatch = await doctor([...base, '--tls-cert', expired.cert, '--tls-key', other.key]);
    assert.equal(line(mismatch.lines, 'tls.key'), `FAIL  tls.key: ${other.key} is not the key of the certificate ${expired.cert}`);
    const unreadable = await doctor([...base, '--tls-cert', path.join(dir, 'missing.pem'), '--tls-key', other.key]);
    assert.equal(line(unreadable.lines, 'tls.cert'), `FAIL  tls.cert: ${path.join(dir, 'missing.pem')}: cannot read (ENOENT)`);
  } finally {
    udp.close();
    tcp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('doctor: a certificate near its end and a store not created yet are warnings; exit 0', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-doctor-'));
  try {
    const soon = new Date(Date.now() + 5 * 86_400_000 + 3_600_000);
    const asn1 = soon.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
    const { cert, key } = certificate(dir, 'soon', '20200101000000Z', asn1);
    const data = path.join(dir, 'not-yet');
    const dns = await startDnsServer({ zone: {} });
    const config = path.join(dir, 'sipway.json');
    writeFileSync(config, JSON.stringify({ dns: { servers: [`127.0.0.1:${dns.port}`] }, domains: ['sip.test'], tls: { cert, key } }));
    const r = await doctor(['--config', config, '--listen', `udp:127.0.0.1:${await freePort()}`, '--data', data, '--admin', 'off']);
    assert.equal(r.status, 0, r.lines.join('\n'));
    assert.equal(line(r.lines, 'tls.cert'), `warn  tls.cert: ${cert} expires in 5 days (${new Date(Date.parse(soon.toISOString().slice(0, 19) + 'Z')).toISOString()})`);
    assert.equal(line(r.lines, 'data'), `warn  data: ${data} holds no sipway.db yet: serve creates an empty store (no users; add them with 'sipway user add')`);
    assert.equal(line(r.lines, 'admin'), "ok    admin: off ('sipway reload' cannot reach this server; send it SIGHUP)");
    assert.equal(line(r.lines, 'domain sip.test'), 'warn  domain sip.test: sip:sip.test resolves to nothing: phones must be given this server by address');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('doctor: Redis that answers is ok; a config that does not validate is one FAIL line', async () => {
  requireTool('redis-server', 'redis-server');
  const redis = await startRedisServer();
  try {
    const r = await doctor(['--listen', `udp:127.0.0.1:${await freePort()}`, '--admin', 'off', '--store', redis.url, '--domain', 'localhost']);
    assert.equal(line(r.lines, 'store'), `ok    store: ${redis.url} answers PING`);
  } finally {
    await redis.stop();
  }
  const bad = await doctor(['--workers', '0']);
  assert.equal(bad.status, 1);
  assert.deepEqual(bad.lines, ['FAIL  config: --workers: must be a number between 1 and 64']);
});
