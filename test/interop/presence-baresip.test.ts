/**
 * sipway's presence server (docs/presence.md) with real baresip phones (Debian 12: baresip 1.0.0, libre 1.1.0), at an
 * in-process sipway with digest for REGISTER, SUBSCRIBE and PUBLISH:
 * - presence: alice and bob (modules contact and presence, each the other's contact with `;presence=p2p`) subscribe
 *   to each other at the server and PUBLISH their own state; alice's `contacts` follows bob's `presence_online` /
 *   `presence_offline` and his quitting;
 * - message waiting: a baresip with the mwi module is told of `sipway mwi set` at once (admin endpoint), and after a
 *   restart of the server on the same data directory a baresip started anew still sees the counts.
 *
 * What baresip 1.0 does here: the helper's config loads neither module, so they are loaded with `insmod` (contact
 * reads `contacts` in the config directory). The presence module PUBLISHes (account `pubint`, 60 s here) as soon as
 * it is loaded: first `<basic>unknown</basic>` (not a PIDF value; baresip shows such a contact Offline), then `open`
 * / `closed` on its `presence_online` / `presence_offline` commands (1.0 has no command for away or busy, though it
 * reads `rpid:away` / `rpid:busy` from others); it subscribes to each `presence=p2p` contact through its outbound
 * proxy (Expires 600) and prints "<sip:bob@...> changed status from X to Y" on a change. On quitting it removes its
 * publication (PUBLISH Expires 0), ends its subscriptions (SUBSCRIBE Expires 0 to the server's Contact) and
 * unregisters: between the removal and the unregistration, sipway's state for bob falls back to his registration
 * (`open`), so a watcher may briefly see bob Online before Offline. The mwi module subscribes to message-summary on
 * REGISTER_OK (so it is loaded before the account registers) only for an account with `mwi=yes` (the helper's account line says `mwi=no`, and the first value of a
 * parameter wins, so the account is made with `uanew`), and reports each NOTIFY as an MWI_NOTIFY event (and prints
 * "----- MWI for sip:... -----" with the body). It does not re-subscribe by itself when the server restarts (not
 * before its refresh, 90% of 600 s), so it is started anew.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeHa1 } from '../../src/auth/index.js';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { freePort, runCliAsync, skipWithout } from '../helpers/process.js';
import { Baresip } from '../helpers/baresip.js';
import { until as pollUntil } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
const MODULES = '/usr/lib/baresip/modules';
/** Each wait for baresip or the server. */
const STEP_MS = 8000;

/** skipWithout('baresip'), and the baresip modules a test loads. */
function skipReason(...modules: string[]): string | undefined {
  const tool = skipWithout('baresip');
  if (tool) return tool;
  const missing = modules.filter((m) => !existsSync(path.join(MODULES, `${m}.so`)));
  return missing.length ? `baresip modules missing: ${missing.join(', ')} (in ${MODULES}; Debian package baresip-core)` : undefined;
}

async function addUsers(ts: TestServer, users: string[]): Promise<void> {
  for (const user of users) {
    const pw = `${user}-pw`;
    await ts.server.subscribers.put({ username: user, domain: DOMAIN, ha1Md5: computeHa1(user, DOMAIN, pw, 'MD5'), ha1Sha256: computeHa1(user, DOMAIN, pw, 'SHA-256'), groups: [], createdAt: Date.now() });
  }
}

/** Polls `condition` every 50 ms until it holds; false when STEP_MS (or `ms`) passed first. */
const until = (condition: () => boolean | Promise<boolean>, ms = STEP_MS): Promise<boolean> => pollUntil(condition, ms, 50);

const ANSI = /\x1b\[[0-9;]*m/g;

/** The presence baresip's `contacts` command shows for `uri` (Online, Offline, Busy, Away, Unknown), or ''. */
async function statusOf(b: Baresip, uri: string): Promise<string> {
  const text = ((await b.command('contacts')).data ?? '').replace(ANSI, '');
  const line = text.split('\n').find((l) => l.includes(`<${uri}>`));
  return /\b(Online|Offline|Busy|Away|Unknown)\b/.exec(line ?? '')?.[1] ?? '';
}

async function expectStatus(b: Baresip, uri: string, status: string, what: string): Promise<void> {
  let last = '';
  const ok = await until(async () => (last = await statusOf(b, uri)) === status);
  assert.ok(ok, `${what}: baresip ${b.name} shows ${uri} '${last}', not '${status}', after ${STEP_MS} ms`);
}

async function registered(ts: TestServer, user: string, b: Baresip): Promise<boolean> {
  return (await ts.server.location.lookup(`sip:${user}@${DOMAIN}`)).some((r) => r.contact.includes(`@127.0.0.1:${b.sipPort}`));
}

/**
 * A regexp for baresip's SIP trace: a message whose first line starts with `start` and that has a line matching
 * `line` (the lines between belong to the same message: none starts another one).
 */
function inOneMessage(start: string, line: RegExp): RegExp {
  const esc = (t: string): string => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const other = String.raw`(?:(?!SIP/2\.0 \d|[A-Z]+ sip:)[^\n]*\n)*?`;
  return new RegExp(`^${esc(start)}[^\n]*\n${other}${line.source.replace(/^\^/, '')}`, 'm');
}

function transcript(phones: Baresip[]): string {
  return phones.map((b) => `--- baresip ${b.name} (events: ${b.events.map((e) => e.type).join(', ')}) ---\n${b.output().slice(-7000)}`).join('\n');
}

test('baresip presence through sipway: SUBSCRIBE and PUBLISH with digest, online, offline, online, quit → offline', { timeout: 60000, skip: skipReason('contact', 'presence') }, async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-presence-baresip-'));
  let ts: TestServer | undefined;
  const phones: Baresip[] = [];
  try {
    // NOTIFYs paced 200 ms apart instead of 5 s, to keep the test short.
    ts = await startTestServer({ domains: [DOMAIN], auth: { register: true }, proxy: { authenticateCallers: true }, presence: { notifyIntervalMs: 200 } });
    await addUsers(ts, ['alice', 'bob']);
    for (const [user, peer] of [['alice', 'bob'], ['bob', 'alice']] as const) {
      const dir = path.join(work, user);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'contacts'), `"${peer}" <sip:${peer}@${DOMAIN}>;presence=p2p\n`);
      const b = await Baresip.start(user, dir, { user, domain: DOMAIN, password: `${user}-pw`, outboundProxy: `sip:127.0.0.1:${ts.port}`, regint: 600, extra: ['pubint=60'] });
      phones.push(b);
      assert.ok(await until(() => registered(ts!, user, b)), `baresip ${user} registered at sipway`);
      for (const m of ['contact', 'presence']) {
        const r = await b.command('insmod', `${m}.so`);
        assert.ok(r.ok && /loaded module/.test(r.data ?? ''), `baresip ${user}: insmod ${m}: ${JSON.stringify(r)}`);
      }
    }
    const [alice, bob] = phones as [Baresip, Baresip];
    const bobUri = `sip:bob@${DOMAIN}`;
    const aliceUri = `sip:alice@${DOMAIN}`;

    // Each subscribed (407, then 200 and a NOTIFY) and published (407, then 200 with SIP-ETag).
    for (const b of phones) {
      await b.waitForOutput(inOneMessage('SIP/2.0 200 OK', /^CSeq: \d+ SUBSCRIBE\r?$/m), STEP_MS);
      await b.waitForOutput(inOneMessage('SIP/2.0 200 OK', /^CSeq: \d+ PUBLISH\r?\nSIP-ETag: \S+/m), STEP_MS);
      await b.waitForOutput(inOneMessage('NOTIFY sip:', /^Event: presence\r?\nSubscription-State: active;expires=\d+/m), STEP_MS);
    }

    let since = alice.output().length;
    assert.ok((await bob.command('presence_online')).ok);
    await expectStatus(alice, bobUri, 'Online', 'bob presence_online');
    await alice.waitForOutput(/<sip:bob@sipway\.test> changed status from \S*Offline\S* to \S*Online/, STEP_MS, since);

    assert.ok((await alice.command('presence_online')).ok);
    await expectStatus(bob, aliceUri, 'Online', 'alice presence_online');

    since = alice.output().length;
    assert.ok((await bob.command('presence_offline')).ok);
    await expectStatus(alice, bobUri, 'Offline', 'bob presence_offline');
    await alice.waitForOutput(/<basic>closed<\/basic>/, STEP_MS, since);

    assert.ok((await bob.command('presence_online')).ok);
    await expectStatus(alice, bobUri, 'Online', 'bob presence_online again');

    // bob quits: PUBLISH Expires 0, SUBSCRIBE Expires 0, REGISTER Expires 0; alice ends up seeing him Offline.
    await bob.stop();
    assert.ok(await until(async () => !(await registered(ts!, 'bob', bob))), 'bob unregistered when quitting');
    await expectStatus(alice, bobUri, 'Offline', 'bob quit');
    const last = await statusOf(alice, bobUri);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await statusOf(alice, bobUri), last, 'bob stays Offline');
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${transcript(phones)}`, { cause: e });
  } finally {
    await Promise.all(phones.map((b) => b.stop()));
    await ts?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
});

test('baresip message waiting through sipway: sipway mwi set → MWI NOTIFY 3/1, kept across a server restart', { timeout: 60000, skip: skipReason('mwi') }, async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-mwi-baresip-'));
  const data = path.join(work, 'data');
  const admin = await freePort();
  const port = await freePort();
  const serve = async (): Promise<TestServer> => {
    const ts = await startTestServer({ listen: [`udp:127.0.0.1:${port}`], domains: [DOMAIN], data, admin: { listen: `127.0.0.1:${admin}` }, auth: { register: true }, proxy: { authenticateCallers: true } });
    await addUsers(ts, ['bob']);
    return ts;
  };
  /** A baresip whose only account is bob's with mwi=yes (made with uanew: the helper's account line has mwi=no). */
  const phone = async (name: string): Promise<Baresip> => {
    const b = await Baresip.start(name, path.join(work, name), { user: 'idle', domain: DOMAIN, regint: 0 });
    phones.push(b);
    // The module first: it subscribes when it sees the account's REGISTER_OK.
    const r = await b.command('insmod', 'mwi.so');
    assert.ok(r.ok && /loaded module/.test(r.data ?? ''), `insmod mwi: ${JSON.stringify(r)}`);
    const made = await b.command('uanew', `<sip:bob@${DOMAIN};transport=udp>;auth_user=bob;auth_pass=bob-pw;outbound="sip:127.0.0.1:${port}";regint=600;mwi=yes`);
    assert.ok(made.ok, `uanew: ${JSON.stringify(made)}`);
    assert.ok((await b.command('uadel', `sip:idle@${DOMAIN}`)).ok, 'uadel idle');
    return b;
  };
  const phones: Baresip[] = [];
  let ts: TestServer | undefined;
  try {
    ts = await serve();
    let bob = await phone('bob');
    await bob.waitForEvent('REGISTER_OK', STEP_MS, (e) => e.accountaor === `sip:bob@${DOMAIN}`);
    const first = await bob.waitForEvent('MWI_NOTIFY', STEP_MS);
    assert.match(String(first.param), /^Messages-Waiting: no\r\nMessage-Account: sip:bob@sipway\.test\r\nVoice-Message: 0\/0 \(0\/0\)\r\n$/);

    const set = await runCliAsync(['mwi', 'set', `bob@${DOMAIN}`, '--new', '3', '--old', '1', '--data', data, '--admin', `127.0.0.1:${admin}`], 15000);
    assert.equal(set.status, 0, `${set.stdout}${set.stderr}`);
    assert.match(set.stdout, /^sip:bob@sipway\.test: message-waiting set to 3\/1 \(0\/0\); watchers told/);
    const told = await bob.waitForEvent('MWI_NOTIFY', STEP_MS, (e) => /Messages-Waiting: yes/.test(String(e.param)));
    assert.match(String(told.param), /^Messages-Waiting: yes\r\nMessage-Account: sip:bob@sipway\.test\r\nVoice-Message: 3\/1 \(0\/0\)\r\n$/);
    await bob.waitForOutput(/----- MWI for sip:bob@sipway\.test -----\r?\nMessages-Waiting: yes\r?\nMessage-Account: sip:bob@sipway\.test\r?\nVoice-Message: 3\/1 \(0\/0\)/, STEP_MS);

    // The server restarts on the same data directory and port; bob's phone starts anew and subscribes again.
    await bob.stop();
    await ts.stop();
    ts = await serve();
    bob = await phone('bob-again');
    const again = await bob.waitForEvent('MWI_NOTIFY', STEP_MS);
    assert.match(String(again.param), /^Messages-Waiting: yes\r\nMessage-Account: sip:bob@sipway\.test\r\nVoice-Message: 3\/1 \(0\/0\)\r\n$/, 'the counts are kept across a restart');
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${transcript(phones)}`, { cause: e });
  } finally {
    await Promise.all(phones.map((b) => b.stop()));
    await ts?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
});
