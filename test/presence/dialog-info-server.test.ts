import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHa1 } from '../../src/auth/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { UserAgent, type InviteSession, type Notification, type RegistrationClient } from '../../src/ua/index.js';
import { until } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';

/** The dialogs a dialog-info NOTIFY reports: direction, state and the event of a terminated one. */
function dialogsOf(n: Notification): Array<{ direction: string; state: string; event?: string; callId: string; version: number; full: boolean }> {
  const root = /<dialog-info [^>]*version="(\d+)" state="(full|partial)"/.exec(n.body);
  assert.ok(root, n.body);
  return [...n.body.matchAll(/<dialog [^>]*call-id="([^"]+)"[^>]*direction="(\w+)">\s*<state(?: event="([\w-]+)")?[^>]*>(\w+)<\/state>/g)].map((m) => ({
    callId: m[1]!,
    direction: m[2]!,
    event: m[3],
    state: m[4]!,
    version: Number(root[1]),
    full: root[2] === 'full',
  }));
}

/** A server with alice, bob and carol; bob registered, ringing and holding each call until the test says. */
async function setUp(): Promise<{ ts: TestServer; alice: UserAgent; bob: UserAgent; carol: UserAgent; registration: RegistrationClient; incoming: InviteSession[] }> {
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, presence: { notifyIntervalMs: 50 } });
  const users = [['alice', 'pa'], ['bob', 'pb'], ['carol', 'pc']] as const;
  for (const [user, pw] of users) {
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: ts.port };
  const incoming: InviteSession[] = [];
  const [alice, bob, carol] = await Promise.all(
    users.map(([user, pw]) =>
      UserAgent.start({
        aor: `sip:${user}@${DOMAIN}`,
        credentials: { username: user, password: pw },
        proxy,
        onInvite:
          user === 'bob'
            ? (session) => {
                incoming.push(session);
                session.ring();
              }
            : undefined,
      }),
    ),
  );
  const registration = bob!.registration({ expires: 600 });
  assert.equal((await registration.register()).status, 200);
  return { ts, alice: alice!, bob: bob!, carol: carol!, registration, incoming };
}

test('busy lamp through sipway serve: carol watches bob (Event: dialog, answered by sipway, not bob\'s phone); alice calls bob: early, confirmed, terminated', async () => {
  const { ts, alice, bob, carol, registration, incoming } = await setUp();
  try {
    const watching = await carol.subscribe(`sip:bob@${DOMAIN}`, 'dialog', { expires: 600, accept: 'application/dialog-info+xml' });
    assert.equal(watching.status, 200, `sipway serves the dialog package (bob's phone would say 501): ${watching.reason}`);
    const sub = watching.subscription!;
    assert.ok(await until(() => sub.notifications.length >= 1, 3000));
    assert.equal(sub.notifications[0]!.contentType, 'application/dialog-info+xml');
    assert.deepEqual(dialogsOf(sub.notifications[0]!), [], 'bob is idle');
    assert.match(sub.notifications[0]!.body, /version="0" state="full" entity="sip:bob@sipway\.test"/);

    const call = await alice.call(`sip:bob@${DOMAIN}`);
    const latest = (): ReturnType<typeof dialogsOf> => dialogsOf(sub.notifications.at(-1)!);
    assert.ok(await until(() => latest().some((d) => d.state === 'early'), 3000), 'bob\'s phone rings: early');
    assert.deepEqual(latest().map((d) => [d.direction, d.state]), [['recipient', 'early']]);
    const callId = latest()[0]!.callId;
    assert.equal(callId, call.invite.callId);

    incoming[0]!.accept();
    assert.equal((await call.answered).status, 200);
    assert.ok(await until(() => latest().some((d) => d.state === 'confirmed'), 3000), 'bob answers: confirmed');

    assert.equal(await call.bye(), 200);
    assert.ok(await until(() => latest().some((d) => d.state === 'terminated'), 3000), 'alice hangs up: terminated');
    assert.deepEqual(latest().map((d) => [d.callId, d.direction, d.state, d.event]), [[callId, 'recipient', 'terminated', 'remote-bye']]);

    const versions = sub.notifications.map((n) => dialogsOf(n)[0]?.version ?? Number(/version="(\d+)"/.exec(n.body)![1]));
    assert.deepEqual(versions, versions.map((_, i) => i), 'one version more per NOTIFY, from 0');
    assert.ok(sub.notifications.slice(1).every((n) => /state="partial"/.test(n.body)), 'after the first, partial state');
    assert.equal(await sub.unsubscribe(), 200);
  } finally {
    registration.stop();
    await Promise.all([alice.stop(), bob.stop(), carol.stop()]);
    await ts.stop();
  }
});

test('busy lamp through sipway serve: the caller\'s own lamp (initiator) and a call alice cancels while bob\'s phone rings (terminated, cancelled)', async () => {
  const { ts, alice, bob, carol, registration, incoming } = await setUp();
  try {
    const watching = await carol.subscribe(`sip:alice@${DOMAIN}`, 'dialog', { expires: 600 });
    assert.equal(watching.status, 200, watching.reason);
    const sub = watching.subscription!;
    assert.ok(await until(() => sub.notifications.length >= 1, 3000));
    const latest = (): ReturnType<typeof dialogsOf> => dialogsOf(sub.notifications.at(-1)!);

    const call = await alice.call(`sip:bob@${DOMAIN}`);
    assert.ok(await until(() => latest().some((d) => d.state === 'early'), 3000));
    assert.deepEqual(latest().map((d) => [d.direction, d.state]), [['initiator', 'early']], 'alice is calling');
    assert.equal(incoming.length, 1);
    assert.ok(call.cancel());
    assert.equal((await call.answered).status, 487);
    assert.ok(await until(() => latest().some((d) => d.state === 'terminated'), 3000));
    assert.deepEqual(latest().map((d) => [d.direction, d.state, d.event]), [['initiator', 'terminated', 'cancelled']]);
    assert.match(sub.notifications.at(-1)!.body, /<state event="cancelled" code="487">terminated<\/state>/);
    await sub.unsubscribe();
  } finally {
    registration.stop();
    await Promise.all([alice.stop(), bob.stop(), carol.stop()]);
    await ts.stop();
  }
});
