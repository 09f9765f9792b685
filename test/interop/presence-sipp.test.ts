/**
 * SIPp 3.6 against sipway's presence server (docs/presence.md), through `sipway serve` as a child process with users
 * created by the CLI and its default policy: SUBSCRIBE and PUBLISH from users of our domain are challenged (407) and
 * SIPp answers with the [authentication] of its -inf file. Each SIPp run is one call (-m 1, -timeout) of a
 * test/sipp/presence-*.xml scenario that checks what it receives (<ereg check_it>: a missing header or document
 * fails the call) and logs it (-trace_logs); the tests assert SIPp's exit status and counters, then the logged
 * values. On failure the message carries SIPp's counters, stderr, logs, message trace and sipway's log (the work
 * directory is kept).
 *
 * One worker (`--workers 1`): one log, in order, for the failure reports (presence across workers is tested in
 * test/presence/persistence.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, requireTool, runCli, skipWithout, startCliServer, type RunningServer } from '../helpers/process.js';
import { runSippAsync, type SippResult } from '../helpers/sipp.js';
import { until } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
const USERS = { alice: 'alice-secret', bob: 'bob-secret' } as const;
type User = keyof typeof USERS;
/** SIPp's own timeout per run (-timeout): every scenario here takes a few seconds at most. */
const SIPP_TIMEOUT_S = 20;
const SKIP = skipWithout('sipp');

interface Sipway {
  port: number;
  server: RunningServer;
  /** Its data directory (for the CLI). */
  data: string;
}

/** One SIPp run: its result, its work directory and the lines of its <log> actions. */
interface Run {
  result: SippResult;
  dir: string;
  logs: string[];
}

interface Lab {
  sipway: Sipway;
  /**
   * Runs test/sipp/`scenario` as `user` (an -inf file with its credentials; `authUri` is the digest uri, the
   * Request-URI without "sip:") from its own port; `keys` become -key arguments.
   */
  sipp(scenario: string, user: User, authUri: string, keys?: Record<string, string>, port?: number): { run: Promise<Run>; dir: string };
  /** SIPp must have exited 0 with its one call successful. */
  ok(run: Run, what: string): void;
}

async function startSipway(work: string): Promise<Sipway> {
  const data = path.join(work, 'data');
  for (const [user, password] of Object.entries(USERS)) {
    const r = runCli(['user', 'add', `${user}@${DOMAIN}`, '--password', password, '--data', data]);
    assert.equal(r.status, 0, r.stderr);
  }
  // NOTIFYs paced at 100 ms instead of 5 s (RFC 3856 §6.10), so that watcher info follows a new watcher at once.
  const config = path.join(work, 'sipway.json');
  writeFileSync(config, JSON.stringify({ presence: { notifyIntervalMs: 100 }, accounting: { enabled: false } }));
  const port = await freePort();
  const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', data, '--config', config, '--log-level', 'info', '--workers', '1']);
  return { port, server, data };
}

/** Is a UDP socket bound to 127.0.0.1:`port`? (Linux's /proc/net/udp: the address in hex, the IP little-endian.) */
function udpBound(port: number): boolean {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .some((l) => l.trim().split(/\s+/)[1] === hex);
}

function logsOf(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('_logs.log'))
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n'))
    .filter((l) => l.trim() !== '');
}

/** Counters, SIPp's stderr, its logs, the tail of its message and error traces, and sipway's log tail. */
function report(r: SippResult | undefined, dir: string, sipway: Sipway): string {
  const traces = readdirSync(dir)
    .filter((f) => /_(messages|errors|logs)\.log$/.test(f))
    .sort()
    .map((f) => `--- ${f} (tail) ---\n${readFileSync(path.join(dir, f), 'utf8').slice(-5000)}`);
  const counters = r ? `SIPp exit ${r.status}, ${r.successful} successful, ${r.failed} failed\n${r.stderr.slice(-1500)}` : 'SIPp did not finish';
  return [counters, ...traces, `--- sipway (tail) ---\n${sipway.server.output().slice(-3000)}`].join('\n');
}

/** A server and a work directory for one test; the directory (SIPp's traces) is kept when the test fails. */
async function withLab(name: string, body: (lab: Lab) => Promise<void>): Promise<void> {
  requireTool('sipp');
  const work = mkdtempSync(path.join(os.tmpdir(), `sipway-presence-sipp-${name}-`));
  let sipway: Sipway | undefined;
  let seq = 0;
  try {
    sipway = await startSipway(work);
    const s = sipway;
    const lab: Lab = {
      sipway: s,
      sipp: (scenario, user, authUri, keys = {}, port) => {
        const dir = path.join(work, `${String(++seq).padStart(2, '0')}-${user}-${path.basename(scenario, '.xml')}`);
        mkdirSync(dir);
        const inf = path.join(dir, 'user.csv');
        writeFileSync(inf, `SEQUENTIAL\n${user};${DOMAIN};[authentication username=${user} password=${USERS[user]}]\n`);
        const run = (async (): Promise<Run> => {
          const args = ['-inf', inf, '-auth_uri', authUri, '-p', String(port ?? (await freePort())), '-m', '1', '-timeout', `${SIPP_TIMEOUT_S}s`, '-trace_msg', '-trace_err', '-trace_logs'];
          for (const [k, v] of Object.entries(keys)) args.push('-key', k, v);
          const result = await runSippAsync(scenario, s.port, dir, args, (SIPP_TIMEOUT_S + 10) * 1000);
          return { result, dir, logs: logsOf(dir) };
        })();
        return { run, dir };
      },
      ok: (run, what) => {
        const r = run.result;
        assert.ok(r.status === 0 && r.successful === 1 && r.failed === 0, `${what}: SIPp did not complete its call\n${report(r, run.dir, s)}`);
      },
    };
    await body(lab);
    await sipway.server.stop();
    rmSync(work, { recursive: true, force: true });
  } catch (e) {
    await sipway?.server.stop().catch(() => undefined);
    throw new Error(`${(e as Error).message}\n(SIPp traces and sipway's data kept in ${work})`, { cause: e });
  }
}

/** The one log line that starts with `prefix`, checked against `pattern`; its match. */
function logged(run: Run, prefix: string, pattern: RegExp): RegExpMatchArray {
  const lines = run.logs.filter((l) => l.startsWith(prefix));
  assert.equal(lines.length, 1, `one '${prefix}' line in SIPp's log:\n${run.logs.join('\n')}`);
  const m = pattern.exec(lines[0]!);
  assert.ok(m, `'${lines[0]}' matches ${pattern}`);
  return m;
}

test('RFC 3903 with SIPp: PUBLISH with PIDF is 200 with a SIP-ETag; a made-up SIP-If-Match is 412; a refresh with the tag is 200 with a new tag; Expires 0 removes it (200), after which the tag is 412', { timeout: 60000, skip: SKIP }, async () => {
  await withLab('publish', async (lab) => {
    const run = await lab.sipp('presence-publish.xml', 'bob', `bob@${DOMAIN}`).run;
    lab.ok(run, 'PUBLISH scenario');
    const [, etag1, expires1] = logged(run, 'publish:', /^publish: 200 SIP-ETag (\S+) Expires (\d+)$/);
    assert.equal(expires1, '600', 'the Expires asked for is granted (within 60..3600)');
    logged(run, 'made-up tag:', /^made-up tag: 412$/);
    const [, etag2, was] = logged(run, 'refresh:', /^refresh: 200 SIP-ETag (\S+) \(was (\S+)\)$/);
    assert.equal(was, etag1);
    assert.notEqual(etag2, etag1, 'every refresh gets a new entity tag (RFC 3903 §6 step 7)');
    logged(run, 'remove:', /^remove: 200 Expires 0$/);
    logged(run, 'removed tag:', /^removed tag: 412$/);
  });
});

test('RFC 6665 §8.2.2 with SIPp: SUBSCRIBE of an unknown event: to the server itself 489 with Allow-Events listing presence; to an offline user of ours 480 after the challenge; to an online user it reaches the phone, whose own 489 comes back', { timeout: 90000, skip: SKIP }, async () => {
  await withLab('unknown-event', async (lab) => {
    // The server's own URI: nothing to relay to, the presence server answers (today before any challenge: the
    // request does not go through the policy; with a challenge first the scenario answers it and the 489 follows).
    const server = await lab.sipp('presence-subscribe-refused.xml', 'alice', DOMAIN, { ruri: `sip:${DOMAIN}`, event: 'foo-unknown' }).run;
    lab.ok(server, 'SUBSCRIBE foo-unknown to sip:sipway.test');
    const finals = server.logs.filter((l) => /final: /.test(l));
    assert.equal(finals.length, 1, `one final answer logged:\n${server.logs.join('\n')}`);
    const m489 = /^(?:unchallenged )?final: 489 Allow-Events:(.*)$/.exec(finals[0]!);
    assert.ok(m489, `489 with Allow-Events: ${finals[0]}`);
    const allowEvents = m489[1];
    const events = allowEvents!.split(',').map((e) => e.trim());
    assert.ok(events.includes('presence') && events.includes('presence.winfo'), `Allow-Events lists presence and presence.winfo: ${allowEvents}`);

    // Bob offline: the default policy does not hand another event to the presence server but relays it to Bob's
    // phones; he has none, and an authenticated caller learns he exists: 480 (not 489).
    const offline = await lab.sipp('presence-subscribe-refused.xml', 'alice', `bob@${DOMAIN}`, { ruri: `sip:bob@${DOMAIN}`, event: 'foo-unknown' }).run;
    lab.ok(offline, 'SUBSCRIBE foo-unknown to bob (offline)');
    logged(offline, 'final:', /^final: 480$/);

    // Bob online: a SIPp phone registered from the port where it then answers the relayed SUBSCRIBE 489.
    const phonePort = await freePort();
    const registered = await lab.sipp('register-auth-uac.xml', 'bob', DOMAIN, {}, phonePort).run;
    lab.ok(registered, 'REGISTER of bob');
    const phone = lab.sipp('presence-uas-489.xml', 'bob', DOMAIN, {}, phonePort);
    // The phone's SIPp must listen before the SUBSCRIBE is relayed to it.
    assert.ok(await until(() => udpBound(phonePort), 5000, 20), `the phone's SIPp listens on 127.0.0.1:${phonePort}`);
    const online = await lab.sipp('presence-subscribe-refused.xml', 'alice', `bob@${DOMAIN}`, { ruri: `sip:bob@${DOMAIN}`, event: 'foo-unknown' }).run;
    const phoneRun = await phone.run;
    lab.ok(phoneRun, 'the phone answering 489');
    lab.ok(online, 'SUBSCRIBE foo-unknown to bob (online)');
    logged(phoneRun, 'phone got SUBSCRIBE', /^phone got SUBSCRIBE Event: *foo-unknown$/);
    const [, phoneEvents] = logged(online, 'final:', /^final: 489 Allow-Events:(.*)$/);
    assert.equal(phoneEvents!.trim(), 'dialog', "the phone's 489 and its Allow-Events reach the subscriber unchanged");
  });
});

test('RFC 6665 §4.4.3 with SIPp: a fetch (SUBSCRIBE presence, Expires 0) is 200 with Expires 0, then one NOTIFY terminated;reason=timeout with the PIDF document, answered 200', { timeout: 60000, skip: SKIP }, async () => {
  await withLab('fetch', async (lab) => {
    const run = await lab.sipp('presence-fetch.xml', 'alice', `bob@${DOMAIN}`, { presentity: 'bob' }).run;
    lab.ok(run, 'fetch scenario');
    logged(run, 'fetch:', /^fetch: 200 Expires 0$/);
    const [, state, root, basic] = logged(run, 'fetch NOTIFY:', /^fetch NOTIFY: Event presence; Subscription-State:(.*); Content-Type application\/pidf\+xml; (.*); (.*)$/);
    assert.equal(state!.trim(), 'terminated;reason=timeout');
    assert.match(root!, /entity="sip:bob@sipway\.test"/);
    assert.equal(basic, '<basic>closed</basic>', 'bob publishes nothing and is not registered');
  });
});

test('RFC 3857/3858 with SIPp: the presentity subscribes to its own presence.winfo (200, NOTIFY application/watcherinfo+xml with no watcher); a watcher subscribes to its presence and the winfo subscriber gets a NOTIFY listing it active', { timeout: 60000, skip: SKIP }, async () => {
  await withLab('winfo', async (lab) => {
    const winfo = lab.sipp('presence-winfo.xml', 'bob', `bob@${DOMAIN}`);
    // The watcher comes once the winfo subscriber has its first NOTIFY (SIPp's message trace is written as it goes).
    const trace = (): string => {
      const f = readdirSync(winfo.dir).find((n) => n.endsWith('_messages.log'));
      return f ? readFileSync(path.join(winfo.dir, f), 'utf8') : '';
    };
    const firstNotify = await until(() => /^NOTIFY sip:/m.test(trace()), 10000, 50);
    assert.ok(firstNotify, `the winfo subscriber got its first NOTIFY within 10 s\n${trace().slice(-4000)}`);
    const watch = await lab.sipp('presence-watch.xml', 'alice', `bob@${DOMAIN}`, { presentity: 'bob' }).run;
    const w = await winfo.run;
    lab.ok(w, 'presence.winfo subscriber (bob)');
    lab.ok(watch, 'presence watcher (alice)');

    logged(w, 'winfo: 200', /^winfo: 200 Expires 600$/);
    const [, wstate] = logged(w, 'winfo: first NOTIFY', /^winfo: first NOTIFY Event presence\.winfo; Subscription-State (.*); Content-Type application\/watcherinfo\+xml; <watcher-list resource="sip:bob@sipway\.test" package="presence"; no watcher yet/);
    assert.equal(wstate!.trim(), 'active');
    const [, status, who] = logged(w, 'winfo: NOTIFY lists', /^winfo: NOTIFY lists <watcher [^>]*status="(\w+)"[^>]*>([^<]+)<\/watcher>$/);
    assert.equal(status, 'active', 'a watcher of our own domain is allowed by default');
    assert.equal(who, `sip:alice@${DOMAIN}`);
    assert.match(logged(w, 'winfo: last NOTIFY', /Subscription-State: *(.*)$/)[1]!, /^terminated/);

    logged(watch, 'watch: 200', /^watch: 200 Expires 600$/);
    logged(watch, 'watch: NOTIFY', /^watch: NOTIFY Subscription-State +active; Content-Type application\/pidf\+xml; <basic>closed<\/basic>$/);
    assert.match(logged(watch, 'watch: last NOTIFY', /Subscription-State: *(.*)$/)[1]!, /^terminated;reason=timeout/);
  });
});

test("RFC 3857 with SIPp: nobody but the presentity may subscribe to its presence.winfo: alice's SUBSCRIBE to bob's is 403 after the challenge", { timeout: 60000, skip: SKIP }, async () => {
  await withLab('winfo-403', async (lab) => {
    const run = await lab.sipp('presence-subscribe-refused.xml', 'alice', `bob@${DOMAIN}`, { ruri: `sip:bob@${DOMAIN}`, event: 'presence.winfo' }).run;
    lab.ok(run, "SUBSCRIBE to bob's presence.winfo by alice");
    logged(run, 'final:', /^final: 403$/);
  });
});

test('RFC 4662 with SIPp: the owner subscribes once to its buddy list (Supported: eventlist): 200 with Require: eventlist, a multipart/related RLMI NOTIFY naming the list, full state, its member and the member\'s PIDF; unsubscribe ends it', { timeout: 60000, skip: SKIP }, async () => {
  await withLab('rls', async (lab) => {
    const added = runCli(['buddies', 'add', `alice@${DOMAIN}`, `bob@${DOMAIN}`, '--data', lab.sipway.data]);
    assert.equal(added.status, 0, added.stderr);
    const run = await lab.sipp('presence-rls.xml', 'alice', `alice-buddies@${DOMAIN}`).run;
    lab.ok(run, "SUBSCRIBE to alice's buddy list");
    logged(run, 'list: 200', /^list: 200 Require eventlist Expires 600$/);
    const [, list, resource, basic] = logged(run, 'list NOTIFY:', /^list NOTIFY: Require eventlist; *active[^;]*; multipart\/related[^;]*;[^;]*; (<list [^>]*); (<resource [^>]*); (<basic>\w+<\/basic>)$/);
    assert.match(list!, /uri="sip:alice-buddies@sipway\.test"/);
    assert.match(list!, /version="0"/);
    assert.match(resource!, /uri="sip:bob@sipway\.test"/);
    assert.equal(basic, '<basic>closed</basic>', 'bob is not registered');
    assert.match(logged(run, 'last NOTIFY:', /^last NOTIFY: *(.*)$/)[1]!, /^terminated/);
  });
});
