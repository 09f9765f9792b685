import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeHa1 } from '../../src/auth/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { UserAgent } from '../../src/ua/index.js';
import { freePort, runCliAsync } from '../helpers/process.js';
import { until } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';

async function server(data: string, admin: number): Promise<TestServer> {
  const ts = await startTestServer({ domains: [DOMAIN], data, admin: { listen: `127.0.0.1:${admin}` }, presence: { notifyIntervalMs: 100 } });
  await ts.server.subscribers.put({ username: 'bob', domain: DOMAIN, ha1Md5: computeHa1('bob', DOMAIN, 'pb', 'MD5'), ha1Sha256: computeHa1('bob', DOMAIN, 'pb', 'SHA-256'), groups: [], createdAt: Date.now() });
  return ts;
}

/** Bob's phone subscribed to his own message-summary at `ts`. */
async function bobWatching(ts: TestServer) {
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, credentials: { username: 'bob', password: 'pb' }, proxy: { transport: 'udp', address: '127.0.0.1', port: ts.port } });
  const answer = await bob.subscribe(`sip:bob@${DOMAIN}`, 'message-summary', { expires: 600 });
  assert.equal(answer.status, 200, answer.reason);
  const sub = answer.subscription!;
  await until(() => sub.notifications.length >= 1, 3000);
  return { bob, sub };
}

test('RFC 3842: sipway mwi set reaches a subscribed phone at once (admin endpoint), the counts survive a restart; bad counts exit 2', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-mwi-'));
  const admin = await freePort();
  let ts = await server(data, admin);
  try {
    let { bob, sub } = await bobWatching(ts);
    assert.equal(sub.notifications[0]!.contentType, 'application/simple-message-summary');
    assert.match(sub.notifications[0]!.body, /^Messages-Waiting: no\r\nMessage-Account: sip:bob@sipway\.test\r\nVoice-Message: 0\/0 \(0\/0\)\r\n$/);

    const set = await runCliAsync(['mwi', 'set', `bob@${DOMAIN}`, '--new', '2', '--old', '5', '--urgent-new', '1', '--data', data, '--admin', `127.0.0.1:${admin}`]);
    assert.equal(set.status, 0, set.stderr);
    assert.match(set.stdout, /^sip:bob@sipway\.test: message-waiting set to 2\/5 \(1\/0\); watchers told/);
    await until(() => sub.notifications.length >= 2, 3000);
    assert.match(sub.notifications.at(-1)!.body, /^Messages-Waiting: yes\r\n[\s\S]*Voice-Message: 2\/5 \(1\/0\)\r\n$/);
    const got = await runCliAsync(['mwi', 'get', `bob@${DOMAIN}`, '--data', data]);
    assert.match(got.stdout, /^sip:bob@sipway\.test: Messages-Waiting: yes; Voice-Message: 2\/5 \(1\/0\)/);

    await bob.stop();
    await ts.stop();
    ts = await server(data, admin);
    ({ bob, sub } = await bobWatching(ts));
    assert.match(sub.notifications[0]!.body, /Voice-Message: 2\/5 \(1\/0\)/, 'stored with the user: a restart keeps it');
    await bob.stop();

    const bad = await runCliAsync(['mwi', 'set', `bob@${DOMAIN}`, '--new', 'lots', '--data', data]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^sipway: --new: 'lots' is not a number of messages/);
    const urgent = await runCliAsync(['mwi', 'set', `bob@${DOMAIN}`, '--new', '1', '--urgent-new', '2', '--data', data]);
    assert.equal(urgent.status, 2);
    assert.match(urgent.stderr, /^sipway: --urgent-new: cannot exceed --new/);
  } finally {
    await ts.stop();
    rmSync(data, { recursive: true, force: true });
  }
});
