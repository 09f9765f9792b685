import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeHa1 } from '../../src/auth/index.js';
import { basicStatuses } from '../../src/presence/index.js';
import { startTestServer } from '../../src/testing/index.js';
import { UserAgent, type ClientSubscription } from '../../src/ua/index.js';
import { freePort, runCliAsync } from '../helpers/process.js';
import { until } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
const BOB = `sip:bob@${DOMAIN}`;

test('watcher authorisation (RFC 5025 sub-handling) and watcher info (RFC 3857/3858): own domain allowed, others pending, then allow, block, polite-block from the CLI', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-watchers-'));
  const admin = await freePort();
  const ts = await startTestServer({ domains: [DOMAIN], data, admin: { listen: `127.0.0.1:${admin}` }, presence: { notifyIntervalMs: 50 } });
  for (const [user, pw] of [['bob', 'pb'], ['carol', 'pc']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const bob = await UserAgent.start({ aor: BOB, credentials: { username: 'bob', password: 'pb' }, proxy });
  const carol = await UserAgent.start({ aor: `sip:carol@${DOMAIN}`, credentials: { username: 'carol', password: 'pc' }, proxy });
  const dave = await UserAgent.start({ aor: 'sip:dave@elsewhere.test', proxy });
  const cli = (...args: string[]) => runCliAsync(['watchers', ...args, '--data', data, '--admin', `127.0.0.1:${admin}`]);
  const last = (s: ClientSubscription) => s.notifications.at(-1)!;
  try {
    const winfo = (await bob.subscribe(BOB, 'presence.winfo', { expires: 600 })).subscription!;
    await until(() => winfo.notifications.length >= 1, 3000);
    assert.match(last(winfo).body, /<watcher-list resource="sip:bob@sipway\.test" package="presence">\r\n  <\/watcher-list>/, 'nobody watches yet');

    const byCarol = (await carol.subscribe(BOB, 'presence', { expires: 600 })).subscription!;
    await until(() => byCarol.notifications.length >= 1, 3000);
    assert.equal(last(byCarol).state, 'active', 'a watcher of the same domain is allowed by default');
    assert.deepEqual(basicStatuses(last(byCarol).body), { 'sipway-registration': 'closed' });

    const daveAnswer = await dave.subscribe(BOB, 'presence', { expires: 600 });
    assert.equal(daveAnswer.status, 200);
    const byDave = daveAnswer.subscription!;
    await until(() => byDave.notifications.length >= 1, 3000);
    assert.equal(last(byDave).state, 'pending', 'a watcher from elsewhere waits for Bob');
    assert.equal(last(byDave).body, '', 'and learns nothing meanwhile');
    await until(() => /dave@elsewhere\.test/.test(last(winfo).body), 3000);
    assert.match(last(winfo).body, /status="pending" duration-subscribed="\d+">sip:dave@elsewhere\.test</);
    assert.match(last(winfo).body, /status="active" duration-subscribed="\d+">sip:carol@sipway\.test</);

    const allowed = await cli('allow', `bob@${DOMAIN}`, 'dave@elsewhere.test');
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stdout, /^sip:bob@sipway\.test: sip:dave@elsewhere\.test allow; watchers decided again/);
    await until(() => last(byDave).state === 'active', 3000);
    assert.deepEqual(basicStatuses(last(byDave).body), { 'sipway-registration': 'closed' });

    const blocked = await cli('block', `bob@${DOMAIN}`, `carol@${DOMAIN}`);
    assert.equal(blocked.status, 0, blocked.stderr);
    const ended = await byCarol.ended;
    assert.equal(ended?.state, 'terminated');
    assert.equal(ended?.reason, 'rejected');
    assert.equal((await carol.subscribe(BOB, 'presence')).status, 403, 'a blocked watcher is refused');

    assert.equal((await cli('polite-block', `bob@${DOMAIN}`, 'dave@elsewhere.test')).status, 0);
    const published = await bob.request('PUBLISH', BOB, {
      headers: [['Event', 'presence'], ['Expires', '600']],
      body: Buffer.from(`<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${BOB}"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`),
      contentType: 'application/pidf+xml',
    });
    assert.equal(published.status, 200);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(basicStatuses(last(byDave).body), { 'sipway-registration': 'closed' }, 'politely blocked: always offline');

    assert.equal((await dave.subscribe(BOB, 'presence.winfo')).status, 403, 'only Bob sees who watches him');
    const listed = await runCliAsync(['watchers', 'list', `bob@${DOMAIN}`, '--data', data]);
    assert.equal(listed.stdout.trim(), 'sip:carol@sipway.test block\nsip:dave@elsewhere.test polite-block');
    const bad = await cli('allow', `bob@${DOMAIN}`, 'not an address');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^sipway: WATCHER: 'not an address' is not an address/);
  } finally {
    for (const ua of [bob, carol, dave]) await ua.stop();
    await ts.stop();
    rmSync(data, { recursive: true, force: true });
  }
});
