/**
 * Twinkle (Debian 12: twinkle-console 1.10.2; test/helpers/twinkle.ts) against sipway's presence server, message
 * waiting and MESSAGE handling, through `sipway serve` as a child process (users made with `sipway user add`, its
 * default policy: SUBSCRIBE, PUBLISH and MESSAGE from users of our domain answered 407 first, which Twinkle answers),
 * with sipway's own UserAgent at the other end:
 * - presence, Twinkle publishing: with pres_publish_startup=yes Twinkle PUBLISHes `open` (PIDF, one tuple of its own)
 *   right after its first REGISTER succeeds; `presence -b offline` / `presence -b online` re-publish with SIP-If-Match;
 *   quitting removes the publication (PUBLISH Expires 0) and unregisters. A UA watching it sees each state.
 * - presence, Twinkle watching: a buddy list (~/.twinkle/PROFILE.bud) makes Twinkle SUBSCRIBE to each buddy after
 *   registering. twinkle-console prints no buddy state at all (its CLI has no buddy command and its observers are the
 *   GUI's), so what is asserted is Twinkle's own reading of each NOTIFY from its log ("Presence state changed to:
 *   open" for the buddy, written at DEBUG level: log_show_debug=yes), the NOTIFYs sipway sent (in Twinkle's SIP log)
 *   and Twinkle's 200 to each of them (its presence subscription answers 415 to a body that is not PIDF).
 * - message waiting: with mwi_sollicited=yes (sic) Twinkle SUBSCRIBEs to message-summary for mwi_user@mwi_server
 *   after registering. twinkle-console shows no MWI state either (t_userintf::cb_update_mwi is empty in CLI mode), so
 *   the NOTIFY bodies in its SIP log and its 200 to each (parsed as application/simple-message-summary, or 415) are
 *   what is asserted after each `sipway mwi set|clear` (admin endpoint).
 * - MESSAGE: `message URI "text"` sends one (text/plain; the console prints nothing on success, "Failed to send
 *   MESSAGE." and the status on failure); a MESSAGE received is printed as "Received message", From, To, a blank
 *   line and the text. A MESSAGE for Twinkle's user while it is not registered is kept (202) and delivered when it
 *   registers (console command `register`), once.
 *
 * One worker (`--workers 1`) keeps sipway's log, which some assertions read, in one order. NOTIFYs paced at 100 ms instead of 5 s so that each state shows at once. Each test has a Twinkle
 * user of its own (and presence and MWI state of its own), so that none depends on another's leftovers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SipRequest } from '../../src/message/index.js';
import { basicStatuses } from '../../src/presence/index.js';
import { UserAgent, type ClientSubscription } from '../../src/ua/index.js';
import { freePort, runCli, runCliAsync, skipWithout, startCliServer, type RunningServer } from '../helpers/process.js';
import { buddyStates, headerOf, responseTo, startTwinkle, statusOf, writeBuddyList, type Twinkle, type TwinkleOptions, type TwinkleSipMessage } from '../helpers/twinkle.js';
import { until as pollUntil } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
/**
 * Twinkle's users: bob (publishes), carol (watches dan), erin (message waiting), frank (messages both ways), heidi
 * (offline messages). sipway's UAs: alice (watches bob), dan (carol's buddy), grace (messages).
 */
const USERS = ['alice', 'bob', 'carol', 'dan', 'erin', 'frank', 'grace', 'heidi'] as const;
type User = (typeof USERS)[number];
const password = (user: User): string => `${user}-secret`;
/** Each single wait: an answer, a line Twinkle prints or logs, a NOTIFY. */
const STEP_MS = 8000;

/** Polls `condition` every 25 ms until it holds; false when STEP_MS (or `ms`) passed first. */
const until = (condition: () => boolean | Promise<boolean>, ms = STEP_MS): Promise<boolean> => pollUntil(condition, ms, 25);

/** One request line of sipway's log (--log-level info: one JSON line per request when its final response went). */
interface RequestLine {
  method: string;
  ruri: string;
  from: string;
  to: string;
  status: number;
  reason: string;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const pidf = (user: User, tuple: string, basic: 'open' | 'closed', note: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${user}@${DOMAIN}"><tuple id="${tuple}"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`;

describe('Twinkle (twinkle-console 1.10.2) with sipway\'s presence server, message waiting and MESSAGE, through sipway serve', { skip: skipWithout('twinkle-console') }, () => {
  let work = '';
  let data = '';
  let port = 0;
  let admin = 0;
  let server: RunningServer | undefined;
  const twinkles: Twinkle[] = [];
  const uas: UserAgent[] = [];

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'sipway-presence-twinkle-'));
    data = path.join(work, 'data');
    for (const user of USERS) {
      const r = runCli(['user', 'add', `${user}@${DOMAIN}`, '--password', password(user), '--data', data]);
      assert.equal(r.status, 0, r.stderr);
    }
    const config = path.join(work, 'sipway.json');
    writeFileSync(config, JSON.stringify({ presence: { notifyIntervalMs: 100 }, accounting: { enabled: false } }));
    port = await freePort();
    admin = await freePort();
    server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', data, '--config', config, '--log-level', 'info', '--workers', '1', '--admin', `127.0.0.1:${admin}`]);
  });

  after(async () => {
    // Twinkles first: quitting unregisters at the server.
    await Promise.all(twinkles.map((t) => t.stop()));
    await Promise.all(uas.map((u) => u.stop()));
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** sipway's request log so far, parsed. */
  function requestLog(): RequestLine[] {
    return (server?.output() ?? '')
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes('"msg":"request"'))
      .map((l) => JSON.parse(l) as RequestLine);
  }

  /** Waits until sipway's log has a `method` request from `from` to `to` answered `status` (the log is batched). */
  async function logged(method: string, from: User, to: User, status: number): Promise<void> {
    const match = (r: RequestLine): boolean => r.method === method && r.from === `sip:${from}@${DOMAIN}` && r.to === `sip:${to}@${DOMAIN}` && r.status === status;
    assert.ok(await until(() => requestLog().some(match)), `sipway logged ${method} ${from} → ${to} ${status}`);
  }

  /** Twinkle for `user` in a directory of its own under the work directory (kept for buddy lists and its log). */
  async function twinkleFor(user: User, options: Partial<TwinkleOptions> = {}, prepare?: (home: string) => void): Promise<Twinkle> {
    const home = path.join(work, `twinkle-${user}`);
    mkdirSync(home, { recursive: true });
    prepare?.(home);
    const t = await startTwinkle({ user, password: password(user), domain: DOMAIN, proxyPort: port, dir: home, ...options });
    twinkles.push(t);
    return t;
  }

  async function ua(user: User, onMessage?: (m: SipRequest) => void): Promise<UserAgent> {
    const u = await UserAgent.start({ aor: `sip:${user}@${DOMAIN}`, credentials: { username: user, password: password(user) }, proxy: { transport: 'udp', address: '127.0.0.1', port }, onMessage });
    uas.push(u);
    return u;
  }

  /** Stops `t` now (quit: it unregisters) and forgets it for after(). */
  async function quit(t: Twinkle): Promise<void> {
    await t.stop();
    twinkles.splice(twinkles.indexOf(t), 1);
  }

  /** Runs `body`; a failure comes back with the Twinkles' output and SIP logs and sipway's log tail. */
  async function explained(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (e) {
      const twinkleText = twinkles.map((t) => t.transcript(8000)).join('\n');
      throw new Error(`${(e as Error).message}\n${twinkleText}\n--- sipway (tail) ---\n${server?.output().slice(-4000) ?? ''}`, { cause: e });
    }
  }

  /** Requests of `method` Twinkle sent (out) or received (in) whose message matches `re` (all when omitted). */
  function requests(t: Twinkle, direction: 'in' | 'out', method: string, re?: RegExp): TwinkleSipMessage[] {
    return t.sipTrace().filter((m) => m.direction === direction && m.text.startsWith(`${method} `) && (re === undefined || re.test(m.text)));
  }

  /**
   * Waits for a request of Twinkle's like that (from its SIP trace, at index `since` or later) with a final response
   * other than a challenge, and returns the last such pair.
   */
  async function exchange(t: Twinkle, direction: 'in' | 'out', method: string, re: RegExp, what: string, since = 0): Promise<{ request: TwinkleSipMessage; response: TwinkleSipMessage }> {
    let found: { request: TwinkleSipMessage; response: TwinkleSipMessage } | undefined;
    const ok = await until(() => {
      const trace = t.sipTrace();
      for (const request of trace.slice(since).filter((m) => m.direction === direction && m.text.startsWith(`${method} `) && re.test(m.text))) {
        const response = responseTo(trace, request);
        // A 407 is answered with credentials in a new transaction: wait for the one that is not challenged.
        if (response && statusOf(response) !== 407 && statusOf(response) !== 401) found = { request, response };
      }
      return found !== undefined;
    });
    assert.ok(ok && found, `${what}: no ${direction === 'out' ? 'request sent by' : 'request received by'} Twinkle ${t.name} with a final answer within ${STEP_MS} ms`);
    return found;
  }

  /** Waits until the watcher's last NOTIFY says `expected` (tuple id → basic). */
  async function sees(sub: ClientSubscription, expected: Record<string, string>, what: string): Promise<void> {
    const last = (): Record<string, string> => basicStatuses(sub.notifications.at(-1)?.body ?? '');
    const ok = await until(() => JSON.stringify(last()) === JSON.stringify(expected));
    assert.ok(ok, `${what}: the watcher's last NOTIFY says ${JSON.stringify(last())}, not ${JSON.stringify(expected)} (${sub.notifications.length} NOTIFYs)`);
    assert.equal(sub.notifications.at(-1)!.state, 'active');
  }

  test('Twinkle publishes: open at start-up (PUBLISH 200 with SIP-ETag), closed and open on `presence -b offline|online` (SIP-If-Match), removed when it quits; sipway\'s UA watching it sees each state', { timeout: 60000 }, () =>
    explained(async () => {
      const alice = await ua('alice');
      const answer = await alice.subscribe(`sip:bob@${DOMAIN}`, 'presence', { expires: 600 });
      assert.equal(answer.status, 200, answer.reason);
      const sub = answer.subscription!;
      await sees(sub, { 'sipway-registration': 'closed' }, 'bob has neither a registration nor a publication yet');

      const bob = await twinkleFor('bob', { profile: { pres_publish_startup: 'yes', pres_publication_time: '600' } });
      // Its first PUBLISH: challenged (407), then sent again with credentials and taken (200, SIP-ETag, Expires).
      const first = await exchange(bob, 'out', 'PUBLISH', /<basic>open<\/basic>/, 'the PUBLISH at start-up');
      assert.equal(statusOf(first.response), 200, first.response.text);
      assert.equal(headerOf(first.request, 'Event'), 'presence');
      assert.equal(headerOf(first.request, 'Content-Type'), 'application/pidf+xml');
      assert.equal(headerOf(first.request, 'SIP-If-Match'), undefined, 'an initial publication');
      assert.match(first.request.text, /^Proxy-Authorization: Digest [^\n]*username="bob"/m);
      const etag = headerOf(first.response, 'SIP-ETag');
      assert.ok(etag, 'the 200 carries SIP-ETag');
      assert.equal(headerOf(first.response, 'Expires'), '600');
      assert.ok(await until(() => /^Publication successful\./m.test(bob.log())), 'Twinkle took the 200 as a publication');
      await logged('PUBLISH', 'bob', 'bob', 200);
      const tuple = /<tuple id="([^"]+)"/.exec(first.request.text)?.[1];
      assert.ok(tuple, `the tuple id of Twinkle's PIDF: ${first.request.text}`);
      await sees(sub, { [tuple]: 'open' }, 'Twinkle published open');

      let mark = bob.sipTrace().length;
      bob.send('presence -b offline');
      const offline = await exchange(bob, 'out', 'PUBLISH', /<basic>closed<\/basic>/, '`presence -b offline`', mark);
      assert.equal(statusOf(offline.response), 200, offline.response.text);
      assert.equal(headerOf(offline.request, 'SIP-If-Match'), etag, 'a change of its publication');
      await sees(sub, { [tuple]: 'closed' }, '`presence -b offline`');

      mark = bob.sipTrace().length;
      bob.send('presence -b online');
      const online = await exchange(bob, 'out', 'PUBLISH', /<basic>open<\/basic>/, '`presence -b online`', mark);
      assert.equal(statusOf(online.response), 200, online.response.text);
      assert.equal(headerOf(online.request, 'SIP-If-Match'), headerOf(offline.response, 'SIP-ETag'), 'a change again, with the newest tag');
      await sees(sub, { [tuple]: 'open' }, '`presence -b online`');

      // Quitting: PUBLISH Expires 0 (the removal, 407 answered first), then REGISTER Expires 0.
      mark = bob.sipTrace().length;
      await quit(bob);
      const removal = await exchange(bob, 'out', 'PUBLISH', /^Expires: 0$/m, 'the removal when quitting', mark);
      assert.equal(statusOf(removal.response), 200, removal.response.text);
      assert.ok(headerOf(removal.request, 'SIP-If-Match'), 'the removal names its publication');
      assert.equal(headerOf(removal.response, 'SIP-ETag'), headerOf(removal.request, 'SIP-If-Match'), 'its 200 carries the tag removed (Twinkle warns without one)');
      await sees(sub, { 'sipway-registration': 'closed' }, 'Twinkle quit: no publication, no registration');
      assert.equal(await sub.unsubscribe(), 200);
    }));

  test('Twinkle watches a buddy (carol.bud: dan, sipway\'s UA): SUBSCRIBE 200, NOTIFYs answered 200, its state of dan closed → open (registers) → closed → open (PUBLISH); unsubscribes when it quits', { timeout: 60000 }, () =>
    explained(async () => {
      const danUri = `sip:dan@${DOMAIN}`;
      const dan = await ua('dan');
      const carol = await twinkleFor('carol', { system: { log_show_debug: 'yes' }, profile: { pres_subscription_time: '600' } }, (home) =>
        writeBuddyList(home, 'carol', [{ name: 'dan', uri: danUri }]),
      );
      assert.match(carol.log(), /^carol: buddy list loaded\.\r?$/m);
      const subscribed = await exchange(carol, 'out', 'SUBSCRIBE', new RegExp(`^SUBSCRIBE ${esc(danUri)} SIP/2\\.0\\n[\\s\\S]*^Event: presence$`, 'm'), 'Twinkle\'s SUBSCRIBE to its buddy');
      assert.equal(statusOf(subscribed.response), 200, subscribed.response.text);
      assert.equal(headerOf(subscribed.response, 'Expires'), '600');
      assert.match(headerOf(subscribed.request, 'Accept') ?? '', /application\/pidf\+xml/);
      await logged('SUBSCRIBE', 'carol', 'dan', 200);

      const notifies = (): TwinkleSipMessage[] => requests(carol, 'in', 'NOTIFY', /^Event: presence\r?$/m);
      /** Twinkle's state of dan becomes `state`, from a NOTIFY saying `basic`, which Twinkle answered 200. */
      const becomes = async (state: 'open' | 'closed', what: string): Promise<void> => {
        const ok = await until(() => buddyStates(carol, danUri).at(-1) === state);
        assert.ok(ok, `${what}: Twinkle's states of dan are ${JSON.stringify(buddyStates(carol, danUri))}, the last not '${state}'`);
        const last = notifies().at(-1)!;
        assert.match(headerOf(last, 'Subscription-State') ?? '', /^active;expires=\d+$/);
        assert.equal(headerOf(last, 'Content-Type'), 'application/pidf+xml');
        assert.match(last.text, new RegExp(`<basic>${state}</basic>`));
        assert.ok(await until(() => statusOf(responseTo(carol.sipTrace(), last)) === 200), `${what}: Twinkle answered the NOTIFY 200`);
      };
      await becomes('closed', 'dan is neither registered nor published');

      const registration = dan.registration({ expires: 600 });
      assert.equal((await registration.register()).status, 200);
      await becomes('open', 'dan registered');

      const closed = await dan.request('PUBLISH', danUri, { headers: [['Event', 'presence'], ['Expires', '600']], body: Buffer.from(pidf('dan', 'dan-ua', 'closed', 'in a meeting')), contentType: 'application/pidf+xml' });
      assert.equal(closed.status, 200, closed.reason);
      await becomes('closed', 'dan published closed');
      const open = await dan.request('PUBLISH', danUri, {
        headers: [['Event', 'presence'], ['Expires', '600'], ['SIP-If-Match', closed.response!.headers.get('sip-etag')!]],
        body: Buffer.from(pidf('dan', 'dan-ua', 'open', 'back')),
        contentType: 'application/pidf+xml',
      });
      assert.equal(open.status, 200, open.reason);
      await becomes('open', 'dan published open');
      for (const n of notifies()) assert.equal(statusOf(responseTo(carol.sipTrace(), n)), 200, `every NOTIFY answered 200: ${n.text}`);

      const mark = carol.sipTrace().length;
      await quit(carol);
      const unsubscribed = await exchange(carol, 'out', 'SUBSCRIBE', /^Expires: 0$/m, 'the unsubscription when quitting', mark);
      assert.equal(statusOf(unsubscribed.response), 200, unsubscribed.response.text);
      assert.equal(buddyStates(carol, danUri).at(-1), 'unknown', 'Twinkle forgets the state when it unsubscribes');
      await registration.unregister();
    }));

  test('Twinkle with solicited MWI: SUBSCRIBE message-summary 200, NOTIFY 0/0 at once; sipway mwi set → NOTIFY 3/1 (1/0), mwi clear → 0/0, each answered 200', { timeout: 60000 }, () =>
    explained(async () => {
      const erin = await twinkleFor('erin', { profile: { mwi_sollicited: 'yes', mwi_user: 'erin', mwi_server: DOMAIN, mwi_via_proxy: 'yes', mwi_subscription_time: '600' } });
      const subscribed = await exchange(erin, 'out', 'SUBSCRIBE', /^Event: message-summary\r?$/m, 'Twinkle\'s MWI SUBSCRIBE');
      assert.match(subscribed.request.text, new RegExp(`^SUBSCRIBE sip:erin@${esc(DOMAIN)} SIP/2\\.0`));
      assert.match(headerOf(subscribed.request, 'Accept') ?? '', /application\/simple-message-summary/);
      assert.equal(statusOf(subscribed.response), 200, subscribed.response.text);
      await logged('SUBSCRIBE', 'erin', 'erin', 200);

      const mwiNotifies = (): TwinkleSipMessage[] => requests(erin, 'in', 'NOTIFY', /^Event: message-summary\r?$/m);
      /** Waits for a message-summary NOTIFY (the `since`-th or a later one) whose body matches `body`, and Twinkle's 200 to it. */
      const told = async (body: RegExp, what: string, since = 0): Promise<void> => {
        let notify: TwinkleSipMessage | undefined;
        assert.ok(await until(() => (notify = mwiNotifies().slice(since).find((n) => body.test(n.text))) !== undefined), `${what}: no NOTIFY with ${body}`);
        assert.equal(headerOf(notify!, 'Content-Type'), 'application/simple-message-summary');
        assert.match(headerOf(notify!, 'Subscription-State') ?? '', /^active;expires=\d+$/);
        assert.ok(await until(() => statusOf(responseTo(erin.sipTrace(), notify!)) === 200), `${what}: Twinkle answered 200 (${statusOf(responseTo(erin.sipTrace(), notify!))})`);
      };
      await told(/\n\nMessages-Waiting: no\nMessage-Account: sip:erin@sipway\.test\nVoice-Message: 0\/0 \(0\/0\)$/, 'the NOTIFY after the SUBSCRIBE');

      let since = mwiNotifies().length;
      const set = await runCliAsync(['mwi', 'set', `erin@${DOMAIN}`, '--new', '3', '--old', '1', '--urgent-new', '1', '--data', data, '--admin', `127.0.0.1:${admin}`], 15000);
      assert.equal(set.status, 0, `${set.stdout}${set.stderr}`);
      assert.match(set.stdout, /^sip:erin@sipway\.test: message-waiting set to 3\/1 \(1\/0\); watchers told/);
      await told(/\n\nMessages-Waiting: yes\nMessage-Account: sip:erin@sipway\.test\nVoice-Message: 3\/1 \(1\/0\)$/, 'sipway mwi set 3/1 (1/0)', since);

      since = mwiNotifies().length;
      const cleared = await runCliAsync(['mwi', 'clear', `erin@${DOMAIN}`, '--data', data, '--admin', `127.0.0.1:${admin}`], 15000);
      assert.equal(cleared.status, 0, `${cleared.stdout}${cleared.stderr}`);
      await told(/\n\nMessages-Waiting: no\nMessage-Account: sip:erin@sipway\.test\nVoice-Message: 0\/0 \(0\/0\)$/, 'sipway mwi clear', since);
      assert.doesNotMatch(erin.output(), /MWI subscription (failed|terminated)/);
    }));

  test('MESSAGE both ways: Twinkle\'s `message` reaches sipway\'s UA (200 to Twinkle), the UA\'s reaches Twinkle\'s console (200 to the UA)', { timeout: 45000 }, () =>
    explained(async () => {
      const received: SipRequest[] = [];
      const grace = await ua('grace', (m) => void received.push(m));
      const registration = grace.registration({ expires: 600 });
      assert.equal((await registration.register()).status, 200);
      const frank = await twinkleFor('frank');

      frank.send(`message sip:grace@${DOMAIN} "hello grace, from Twinkle"`);
      assert.ok(await until(() => received.length >= 1), 'the UA got Twinkle\'s MESSAGE');
      assert.equal(received[0]!.body.toString('utf8'), 'hello grace, from Twinkle');
      assert.equal(received[0]!.from.uri.toString(), `sip:frank@${DOMAIN}`);
      assert.match(received[0]!.headers.get('content-type') ?? '', /^text\/plain/);
      const sent = await exchange(frank, 'out', 'MESSAGE', new RegExp(`^MESSAGE sip:grace@${esc(DOMAIN)} SIP/2\\.0`), 'Twinkle\'s MESSAGE');
      assert.equal(statusOf(sent.response), 200, sent.response.text);
      assert.doesNotMatch(frank.output(), /Failed to send MESSAGE/);
      await logged('MESSAGE', 'frank', 'grace', 200);

      const since = frank.mark();
      const reply = await grace.request('MESSAGE', `sip:frank@${DOMAIN}`, { body: Buffer.from('hello frank, from sipway\'s UA'), contentType: 'text/plain;charset=utf-8' });
      assert.equal(reply.status, 200, reply.reason);
      await frank.waitFor(/Received message\r?\nFrom:\t+sip:grace@sipway\.test\r?\nTo:\t+sip:frank@sipway\.test\r?\n\r?\nhello frank, from sipway's UA\r?\n/, STEP_MS, since);
      await registration.unregister();
    }));

  test('MESSAGE to Twinkle\'s user while it is not registered: 202 to the sender, delivered when Twinkle registers (`register`), exactly once (not again on a refresh)', { timeout: 45000 }, () =>
    explained(async () => {
      const grace = await ua('grace');
      const heidi = await twinkleFor('heidi', { register: false });
      const texts = ['first while you were away', 'second while you were away'];
      for (const text of texts) {
        const stored = await grace.request('MESSAGE', `sip:heidi@${DOMAIN}`, { body: Buffer.from(text), contentType: 'text/plain;charset=utf-8' });
        assert.equal(stored.status, 202, stored.reason);
        assert.match(stored.reason, /stored for delivery when the user registers/);
      }
      await logged('MESSAGE', 'grace', 'heidi', 202);
      assert.equal(requests(heidi, 'in', 'MESSAGE').length, 0, 'nothing reaches an unregistered Twinkle');

      heidi.send('register');
      await heidi.waitFor(/heidi: registration succeeded/, STEP_MS);
      for (const text of texts) {
        await heidi.waitFor(new RegExp(`Received message\\r?\\nFrom:\\t+sip:grace@sipway\\.test\\r?\\nTo:\\t+sip:heidi@sipway\\.test\\r?\\n\\r?\\n${text}\\r?\\n`), STEP_MS);
      }
      const delivered = requests(heidi, 'in', 'MESSAGE');
      assert.deepEqual(delivered.map((m) => m.text.split('\n\n').slice(1).join('\n\n')), texts, 'in the order sent');
      for (const m of delivered) {
        assert.ok(headerOf(m, 'Date'), `the delivery says when it was sent: ${m.text}`);
        assert.ok(await until(() => statusOf(responseTo(heidi.sipTrace(), m)) === 200), 'Twinkle answered the delivery 200');
      }

      // A refresh of its registration must not deliver them again. It is followed by a MESSAGE sent after the refresh
      // was answered: once that one is printed, a second delivery caused by the refresh would have come before it.
      const registered = (): number => heidi.sipTrace().filter((m) => m.direction === 'in' && /^SIP\/2\.0 200 /.test(m.text) && / REGISTER$/.test(headerOf(m, 'CSeq') ?? '')).length;
      const before = registered();
      heidi.send('register');
      assert.ok(await until(() => registered() > before), 'the refresh was answered 200');
      const online = await grace.request('MESSAGE', `sip:heidi@${DOMAIN}`, { body: Buffer.from('now you are here'), contentType: 'text/plain;charset=utf-8' });
      assert.equal(online.status, 200, `an online user gets it at once: ${online.reason}`);
      await heidi.waitFor(/\r?\n\r?\nnow you are here\r?\n/, STEP_MS);
      for (const text of texts) {
        assert.equal(heidi.output().split(text).length - 1, 1, `'${text}' printed once`);
        assert.equal(requests(heidi, 'in', 'MESSAGE', new RegExp(`\\n\\n${text}$`)).length, 1, `'${text}' delivered once`);
      }
    }));
});
