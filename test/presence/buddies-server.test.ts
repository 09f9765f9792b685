import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeHa1 } from '../../src/auth/index.js';
import { SipResponse } from '../../src/message/index.js';
import { basicStatuses } from '../../src/presence/index.js';
import { startTestServer } from '../../src/testing/index.js';
import { UserAgent } from '../../src/ua/index.js';
import { freePort, runCliAsync } from '../helpers/process.js';
import { until } from '../helpers/waits.js';
import { readList } from './rlmi-reader.js';

const DOMAIN = 'sipway.test';
const ALICE = `sip:alice@${DOMAIN}`;
const LIST = `sip:alice-buddies@${DOMAIN}`;
const BOB = `sip:bob@${DOMAIN}`;
const CAROL = `sip:carol@${DOMAIN}`;

/** SUBSCRIBE to a list as a phone with RFC 4662 support sends it (Supported: eventlist unless `extra` says otherwise). */
async function subscribeList(ua: UserAgent, extra: Array<[string, string]> = [['Supported', 'eventlist']]) {
  const answer = await ua.subscribe(LIST, 'presence', { expires: 600, accept: 'multipart/related, application/rlmi+xml, application/pidf+xml', headers: extra });
  assert.ok(answer.response instanceof SipResponse, answer.reason);
  return { response: answer.response, subscription: answer.subscription };
}

test('RFC 4662 through sipway serve: a phone subscribes once to its buddy list, sees a member register and a member added with sipway buddies; nobody else may; bad CLI input exits 2', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-buddies-'));
  const admin = await freePort();
  const ts = await startTestServer({ domains: [DOMAIN], data, admin: { listen: `127.0.0.1:${admin}` }, presence: { notifyIntervalMs: 100 } });
  for (const [user, pw] of [['alice', 'pa'], ['bob', 'pb'], ['carol', 'pc']] as const) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const cli = (...args: string[]) => runCliAsync(['buddies', ...args, '--data', data, '--admin', `127.0.0.1:${admin}`]);
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const alice = await UserAgent.start({ aor: ALICE, credentials: { username: 'alice', password: 'pa' }, proxy });
  const bob = await UserAgent.start({ aor: BOB, credentials: { username: 'bob', password: 'pb' }, proxy });
  const carol = await UserAgent.start({ aor: CAROL, credentials: { username: 'carol', password: 'pc' }, proxy });
  const bobRegistration = bob.registration({ expires: 600 });
  try {
    const added = await cli('add', `alice@${DOMAIN}`, `bob@${DOMAIN}`, '--name', 'Bob');
    assert.equal(added.status, 0, added.stderr);
    assert.match(added.stdout, /^sip:alice-buddies@sipway\.test: sip:bob@sipway\.test added; subscribed phones told/);

    const without = await subscribeList(alice, []);
    assert.equal(without.response.status, 421);
    assert.equal(without.response.headers.get('require'), 'eventlist');
    const byCarol = await carol.subscribe(LIST, 'presence', { expires: 600 });
    assert.equal(byCarol.status, 403, 'only Alice may see whom Alice watches');

    const { response, subscription } = await subscribeList(alice);
    assert.equal(response.status, 200, response.reason);
    assert.equal(response.headers.get('require'), 'eventlist');
    const sub = subscription!;
    const lists = () => sub.notifications.filter((n) => n.body !== '').map((n) => readList(n.contentType!, n.body));
    /** The first list NOTIFY that `test` accepts, once it has come. */
    const notified = async (test: (l: ReturnType<typeof readList>) => boolean) => {
      await until(() => lists().some(test), 3000);
      return lists().find(test)!;
    };
    const first = await notified(() => true);
    assert.match(first.contentType, /^multipart\/related;type="application\/rlmi\+xml";start="<[^>]+>";boundary=/);
    assert.deepEqual([first.list.uri, first.list.version, first.list.fullState], [LIST, '0', 'true']);
    assert.deepEqual(first.resources.map((r) => [r.uri, r.name, r.instance.state]), [[BOB, 'Bob', 'active']]);
    assert.deepEqual(basicStatuses(first.pidf(BOB)!), { 'sipway-registration': 'closed' });

    assert.equal((await bobRegistration.register()).status, 200);
    const registered = await notified((l) => l.list.version === '1');
    assert.deepEqual([registered.list.version, registered.list.fullState], ['1', 'false']);
    assert.deepEqual(basicStatuses(registered.pidf(BOB)!), { 'sipway-registration': 'open' }, 'Bob\'s REGISTER reaches the list');

    const more = await cli('add', `alice@${DOMAIN}`, `carol@${DOMAIN}`, '--name', 'Carol');
    assert.equal(more.status, 0, more.stderr);
    assert.match(more.stdout, /subscribed phones told$/m);
    const edited = await notified((l) => l.resources.some((r) => r.uri === CAROL));
    assert.deepEqual([edited.list.version, edited.list.fullState], ['2', 'true'], 'the whole list again');
    assert.deepEqual(edited.resources.map((r) => [r.uri, r.name]), [
      [BOB, 'Bob'],
      [CAROL, 'Carol'],
    ]);
    assert.deepEqual(basicStatuses(edited.pidf(BOB)!), { 'sipway-registration': 'open' });
    assert.deepEqual(basicStatuses(edited.pidf(CAROL)!), { 'sipway-registration': 'closed' });

    const listed = await runCliAsync(['buddies', 'list', `alice@${DOMAIN}`, '--data', data]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.equal(listed.stdout, `${LIST} (buddy list of ${ALICE})\n${BOB} "Bob"\n${CAROL} "Carol"\n`);

    const badMember = await cli('add', `alice@${DOMAIN}`, 'not an address');
    assert.equal(badMember.status, 2);
    assert.match(badMember.stderr, /^sipway: MEMBER: 'not an address' is not an address/);
    const twoNames = await cli('add', `alice@${DOMAIN}`, `bob@${DOMAIN}`, `carol@${DOMAIN}`, '--name', 'Both');
    assert.equal(twoNames.status, 2);
    assert.match(twoNames.stderr, /^sipway: --name: names the one MEMBER of a buddies add/);
    const badUser = await cli('clear', 'nobody');
    assert.equal(badUser.status, 2);
    assert.match(badUser.stderr, /^sipway: buddies clear: 'nobody' is not a valid address of record/);
    const unknownAction = await cli('rename', `alice@${DOMAIN}`);
    assert.equal(unknownAction.status, 2);
    assert.match(unknownAction.stderr, /^sipway: buddies: unknown action 'rename'/);
    const notThere = await cli('remove', `alice@${DOMAIN}`, `dave@${DOMAIN}`);
    assert.equal(notThere.status, 1);
    assert.match(notThere.stderr, /^sipway: buddies remove: sip:dave@sipway\.test is not on sip:alice-buddies@sipway\.test/);

    const removed = await cli('remove', `alice@${DOMAIN}`, `bob@${DOMAIN}`);
    assert.equal(removed.status, 0, removed.stderr);
    const after = await notified((l) => l.list.fullState === 'true' && !l.resources.some((r) => r.uri === BOB));
    assert.deepEqual(after.resources.map((r) => r.uri), [CAROL]);

    assert.equal(await sub.unsubscribe(), 200);
    assert.equal((await sub.ended)?.state, 'terminated');
  } finally {
    bobRegistration.stop();
    for (const ua of [alice, bob, carol]) await ua.stop();
    await ts.stop();
    rmSync(data, { recursive: true, force: true });
  }
});
