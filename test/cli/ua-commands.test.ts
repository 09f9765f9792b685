import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import type { SipRequest } from '../../src/message/index.js';
import { UserAgent } from '../../src/ua/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { runCliAsync } from '../helpers/process.js';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const DOMAIN = 'sipway.test';

async function serverWith(users: Array<[string, string]>): Promise<TestServer> {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true } });
  for (const [user, password] of users) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, password, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, password, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  return ts;
}

test('sipway register: registers with digest, reports the grant, removes with --expires 0; a wrong password exits 1 with the status', async () => {
  const ts = await serverWith([['alice', 'pa']]);
  const proxy = `udp:127.0.0.1:${ts.port}`;
  try {
    const ok = await runCliAsync(['register', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'pa', '--expires', '120']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^registered <sip:alice@127\\.0\\.0\\.1:\\d+> for sip:alice@${DOMAIN} at ${proxy} for 120 s \\(200 OK\\)`));
    assert.equal((await ts.server.location.lookup(`sip:alice@${DOMAIN}`)).length, 1);
    const wrong = await runCliAsync(['register', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'nope']);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /^sipway: register: sip:alice@sipway\.test at udp:127\.0\.0\.1:\d+: 401 Unauthorized - credentials for realm "sipway\.test" refused/);
  } finally {
    await ts.stop();
  }
});

test('sipway message: delivered to a registered user agent through the proxy; an unknown user exits 1 with the status', async () => {
  const ts = await serverWith([['alice', 'pa'], ['bob', 'pb']]);
  const inbox: SipRequest[] = [];
  const bob = await UserAgent.start({
    aor: `sip:bob@${DOMAIN}`,
    credentials: { username: 'bob', password: 'pb' },
    proxy: { transport: 'udp', address: '127.0.0.1', port: ts.port },
    listen: { transport: 'udp', host: '127.0.0.1', port: 0 },
    onMessage: (m) => inbox.push(m),
  });
  const registration = bob.registration();
  try {
    assert.equal((await registration.register()).status, 200);
    const proxy = `udp:127.0.0.1:${ts.port}`;
    const sent = await runCliAsync(['message', `sip:bob@${DOMAIN}`, 'grüß dich', '--from', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'pa']);
    assert.equal(sent.status, 0, sent.stderr);
    assert.equal(sent.stdout.trim(), `sip:bob@${DOMAIN}: 200 OK`);
    assert.equal(inbox.length, 1);
    assert.equal(inbox[0]!.body.toString('utf8'), 'grüß dich');
    const lost = await runCliAsync(['message', `sip:nobody@${DOMAIN}`, 'hi', '--from', `sip:alice@${DOMAIN}`, '--proxy', proxy, '--password', 'pa']);
    assert.equal(lost.status, 1);
    assert.match(lost.stderr, /^sipway: message: to sip:nobody@sipway\.test: (404|480) /);
    // Without credentials the proxy's challenge is the answer.
    const anonymous = await runCliAsync(['message', `sip:bob@${DOMAIN}`, 'hi', '--from', `sip:alice@${DOMAIN}`, '--proxy', proxy]);
    assert.equal(anonymous.status, 1);
    assert.match(anonymous.stderr, /^sipway: message: to sip:bob@sipway\.test: 407 Proxy Authentication Required/);
  } finally {
    registration.stop();
    await bob.stop();
    await ts.stop();
  }
});

test('register and message name the faulty argument and exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['register', 'alice'], /^sipway: AOR: 'alice' is not a SIP URI/],
    [['register', 'sip:example.com', '--proxy', 'udp:127.0.0.1:5060'], /^sipway: AOR: 'sip:example\.com' is not a sip: address-of-record with a user/],
    [['register', 'sip:alice@example.com'], /^sipway: register: --proxy is required/],
    [['register', 'sip:alice@example.com', '--proxy', 'ws:127.0.0.1:80'], /^sipway: --proxy: register speaks udp and tcp, not ws/],
    [['register', 'sip:alice@example.com', '--proxy', 'udp:127.0.0.1:5060', '--expires', 'soon'], /^sipway: --expires: 'soon' is not a number of seconds/],
    [['message', 'sip:bob@example.com', 'hi', '--proxy', 'udp:127.0.0.1:5060'], /^sipway: message: --from is required/],
    [['message', 'sip:bob@example.com'], /^sipway: message: needs URI and TEXT/],
  ];
  for (const [args, expected] of cases) {
    const r = await runCliAsync(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expected, args.join(' '));
  }
});

test('an account profile (--profile) gives the AOR, proxy and password; flags win; a readable password is warned about; a bad key exits 2', async () => {
  const ts = await serverWith([['alice', 'pa']]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-profile-'));
  try {
    const profile = path.join(dir, 'alice.json');
    writeFileSync(profile, JSON.stringify({ aor: `sip:alice@${DOMAIN}`, proxy: `udp:127.0.0.1:${ts.port}`, password: 'pa' }), { mode: 0o600 });
    const ok = await runCliAsync(['register', '--profile', profile, '--expires', '60']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^registered <sip:alice@127\.0\.0\.1:\d+> for sip:alice@sipway\.test .* for 60 s \(200 OK\)/);
    assert.equal(ok.stderr, '', 'a private profile gets no warning');
    const overridden = await runCliAsync(['register', '--profile', profile, '--password', 'wrong']);
    assert.equal(overridden.status, 1, 'the flag won over the profile');
    chmodSync(profile, 0o644);
    const warned = await runCliAsync(['register', '--profile', profile, '--expires', '0']);
    assert.equal(warned.status, 0, warned.stderr);
    assert.match(warned.stderr, /^sipway: warning: .*alice\.json holds a password and others can read it \(chmod 600 /);
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ aor: `sip:alice@${DOMAIN}`, pasword: 'pa' }));
    const refused = await runCliAsync(['register', '--profile', bad]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /^sipway: --profile: .*bad\.json: unknown key 'pasword' \(known: aor, proxy, user, password, listen\)/);
    const none = await runCliAsync(['register', '--proxy', 'udp:127.0.0.1:5060']);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^sipway: register: AOR is required/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await ts.stop();
  }
});
