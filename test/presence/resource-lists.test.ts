import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SipRequest, SipResponse } from '../../src/message/index.js';
import { basicStatuses, buddyListOwner, buddyListUri, PresenceService, ResourceLists } from '../../src/presence/index.js';
import { MemoryBuddyListStore, MemoryWatcherRulesStore, type BuddyListRecord } from '../../src/store/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { FakeClock, LoopTransport, parseText } from '../../src/testing/index.js';
import { readList as readRlmi } from './rlmi-reader.js';
import { answerNotify, sentNotifies } from './notify-helpers.js';

const DOMAIN = 'example.com';
const ALICE = `sip:alice@${DOMAIN}`;
const LIST = `sip:alice-buddies@${DOMAIN}`;
const BOB = `sip:bob@${DOMAIN}`;
const CAROL = `sip:carol@${DOMAIN}`;

/** A list NOTIFY taken apart (rlmi-reader.ts). */
function readList(notify: SipRequest) {
  return readRlmi(notify.headers.get('content-type')!, notify.body.toString());
}

/** A presence service with a resource-list server on a loop transport and a fake clock. */
function rls(lists: BuddyListRecord[] = [{ username: 'alice', domain: DOMAIN, members: [{ uri: BOB, name: 'Bob' }, { uri: CAROL }] }]) {
  const clock = new FakeClock(0);
  const sender = new LoopTransport({ clock, address: '192.0.2.5' });
  const transactions = new TransactionLayer({ sender, clock });
  const registered = new Set<string>();
  const store = new MemoryBuddyListStore();
  const rules = new MemoryWatcherRulesStore();
  for (const l of lists) void store.put(l);
  let server!: ResourceLists;
  const presence = new PresenceService({
    transactions,
    sender,
    clock,
    contact: '<sip:192.0.2.5:5060>',
    registered: async (aor) => registered.has(aor),
    watcherRules: rules,
    packages: (service) => {
      server = new ResourceLists(service, { lists: store, watcherRules: rules, isServedDomain: (host) => host === DOMAIN, hasUser: async (user, domain) => domain === DOMAIN && ['alice', 'bob', 'carol'].includes(user) });
      return [server.package];
    },
  });
  transactions.setUser({ onRequest: (r, st) => void presence.handle(r, st), onAck: () => undefined, onStrayResponse: () => undefined });
  sender.deliverTo({ receive: (m) => m.isRequest && m.method === 'NOTIFY' && answer(m as SipRequest, 200) });
  let n = 0;
  const request = (lines: string[], options: { uri?: string; from?: string; toTag?: string; cseq?: number; callId?: string } = {}): SipRequest => {
    const uri = options.uri ?? LIST;
    const r = parseText<SipRequest>(
      [
        `SUBSCRIBE ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKr${++n}`,
        'Max-Forwards: 70',
        `From: <${options.from ?? ALICE}>;tag=w1`,
        `To: <${uri}>${options.toTag ? `;tag=${options.toTag}` : ''}`,
        `Call-ID: ${options.callId ?? 'list1'}@192.0.2.1`,
        `CSeq: ${options.cseq ?? 1} SUBSCRIBE`,
        'Contact: <sip:alice@192.0.2.1:5060>',
        'Event: presence',
        ...lines,
        'Content-Length: 0',
        '',
        '',
      ].join('\n'),
    );
    r.source = { transport: 'udp', address: '192.0.2.1', port: 5060, localAddress: '192.0.2.5', localPort: 5060, flowId: 'udp:x', receivedAt: 0 };
    return r;
  };
  /** Lets the store reads and the state's composition finish (they are promises, not timers). */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  const send = async (r: SipRequest): Promise<SipResponse> => {
    const before = sender.sent.length;
    transactions.receive(r);
    await settle();
    return sender.sent.slice(before).find((s) => !s.message.isRequest)!.message as SipResponse;
  };
  const subscribe = (extra: string[] = [], options: Parameters<typeof request>[1] = {}) =>
    send(request(['Supported: eventlist', 'Accept: application/pidf+xml, application/rlmi+xml, multipart/related', 'Expires: 600', ...extra], options));
  const notifies = (): SipRequest[] => sentNotifies(sender);
  /** The watcher answers a NOTIFY with `status`. */
  const answer = (notify: SipRequest, status: number): void => answerNotify(transactions, notify, status);
  /** Moves the clock (NOTIFYs are answered on its ticks) and lets what that started finish. */
  const advance = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await settle();
  };
  return { clock, sender, presence, server: () => server, store, rules, registered, request, send, subscribe, notifies, answer, settle, advance };
}

test('RFC 4662: the buddy-list URI convention, both ways', () => {
  assert.equal(buddyListUri('alice', 'Example.COM'), LIST);
  assert.deepEqual(buddyListOwner(LIST), { username: 'alice', domain: DOMAIN, aor: ALICE });
  assert.equal(buddyListOwner(BOB), undefined);
  assert.equal(buddyListOwner(`sip:-buddies@${DOMAIN}`), undefined, 'a bare suffix names nobody');
});

test('RFC 4662 §4-§5: the owner subscribes to the list with eventlist: 200 with Require, then a multipart/related NOTIFY with the full RLMI and one PIDF per member', async () => {
  const s = rls();
  const ok = await s.subscribe();
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('require'), 'eventlist');
  const [notify] = s.notifies();
  assert.equal(notify!.headers.get('event'), 'presence');
  assert.equal(notify!.headers.get('require'), 'eventlist', 'list NOTIFYs require eventlist (RFC 4662 §5.2)');
  assert.equal(notify!.headers.get('subscription-state'), 'active;expires=600');
  const got = readList(notify!);
  assert.match(got.contentType, /^multipart\/related;type="application\/rlmi\+xml";start="<[^>]+>";boundary="[^"]+"$/);
  assert.equal(got.params.start, `<${got.root.headers['content-id']!.replace(/^<|>$/g, '')}>`, 'start names the RLMI part');
  assert.equal(got.root.headers['content-type'], 'application/rlmi+xml;charset="UTF-8"');
  assert.equal(got.root.headers['content-transfer-encoding'], 'binary');
  assert.deepEqual(got.list, { xmlns: 'urn:ietf:params:xml:ns:rlmi', uri: LIST, version: '0', fullState: 'true' });
  assert.deepEqual(
    got.resources.map((r) => [r.uri, r.name, r.instance.state]),
    [
      [BOB, 'Bob', 'active'],
      [CAROL, undefined, 'active'],
    ],
  );
  assert.equal(got.parts.length, 3, 'the RLMI and two PIDF documents');
  for (const r of got.resources) {
    const part = got.byCid.get(r.instance.cid!)!;
    assert.equal(part.headers['content-type'], 'application/pidf+xml;charset="UTF-8"');
    assert.match(part.body, new RegExp(`entity="${r.uri}"`));
  }
  assert.deepEqual(basicStatuses(got.pidf(BOB)!), { 'sipway-registration': 'closed' });
  assert.match(got.resources[0]!.instance.id!, /^\w+$/);
  assert.notEqual(got.resources[0]!.instance.id, got.resources[1]!.instance.id);
});

test('RFC 4662 §5.2: after the full state, a NOTIFY carries only the members that changed (fullState false), versions counting up by one; a refresh sends the full state again', async () => {
  const s = rls();
  const ok = await s.subscribe();
  await s.advance(5000);
  s.registered.add(BOB);
  s.presence.registrationChanged(BOB);
  await s.settle();
  const second = readList(s.notifies()[1]!);
  assert.deepEqual(second.list, { xmlns: 'urn:ietf:params:xml:ns:rlmi', uri: LIST, version: '1', fullState: 'false' });
  assert.deepEqual(second.resources.map((r) => r.uri), [BOB], 'only Bob changed');
  assert.deepEqual(basicStatuses(second.pidf(BOB)!), { 'sipway-registration': 'open' });
  assert.equal(second.resources[0]!.instance.id, readList(s.notifies()[0]!).resources[0]!.instance.id, 'the same instance id as before');

  await s.advance(5000);
  s.registered.add(CAROL);
  s.presence.registrationChanged(CAROL);
  await s.settle();
  const third = readList(s.notifies()[2]!);
  assert.equal(third.list.version, '2');
  assert.deepEqual(third.resources.map((r) => r.uri), [CAROL]);

  await s.advance(5000);
  const refreshed = await s.send(s.request(['Supported: eventlist', 'Expires: 600'], { toTag: ok.toTag, cseq: 2 }));
  assert.equal(refreshed.status, 200);
  const fourth = readList(s.notifies()[3]!);
  assert.deepEqual([fourth.list.version, fourth.list.fullState], ['3', 'true']);
  assert.deepEqual(fourth.resources.map((r) => [r.uri, r.instance.state]), [
    [BOB, 'active'],
    [CAROL, 'active'],
  ]);
  assert.deepEqual(basicStatuses(fourth.pidf(CAROL)!), { 'sipway-registration': 'open' });
});

test('RFC 3856 §6.10: members\' changes are paced like any NOTIFY: changes within the interval go together in one partial NOTIFY', async () => {
  const s = rls();
  await s.subscribe();
  await s.advance(1000);
  s.registered.add(BOB);
  s.presence.registrationChanged(BOB);
  await s.advance(1000);
  s.registered.add(CAROL);
  s.presence.registrationChanged(CAROL);
  await s.advance(2999);
  assert.equal(s.notifies().length, 1, 'the interval (5 s) since the first NOTIFY is not over');
  await s.advance(1);
  assert.equal(s.notifies().length, 2);
  const paced = readList(s.notifies()[1]!);
  assert.deepEqual([paced.list.version, paced.list.fullState], ['1', 'false']);
  assert.deepEqual(paced.resources.map((r) => r.uri), [BOB, CAROL]);
  await s.advance(10_000);
  assert.equal(s.notifies().length, 2, 'nothing else changed');
});

test('RFC 4662 §4.1: a list asked for without Supported: eventlist is 421 with Require: eventlist; anyone but the owner gets 403; other resources are plain presence', async () => {
  const s = rls();
  const without = await s.send(s.request(['Expires: 600']));
  assert.equal(without.status, 421);
  assert.equal(without.headers.get('require'), 'eventlist');
  const stranger = await s.subscribe([], { from: BOB, callId: 'bob1' });
  assert.equal(stranger.status, 403);
  assert.match(stranger.reason, /only the owner/);
  const multipartless = await s.send(s.request(['Supported: eventlist', 'Accept: application/pidf+xml'], { callId: 'a2' }));
  assert.equal(multipartless.status, 406, 'an owner that cannot read multipart/related');
  assert.equal(s.presence.notifier.size, 0);
  assert.equal(s.notifies().length, 0);

  const plain = await s.send(s.request(['Expires: 600'], { uri: BOB, callId: 'plain' }));
  assert.equal(plain.status, 200);
  assert.equal(plain.headers.get('require'), undefined);
  assert.equal(s.notifies()[0]!.headers.get('content-type'), 'application/pidf+xml');
  assert.deepEqual(basicStatuses(s.notifies()[0]!.body.toString()), { 'sipway-registration': 'closed' });
});

test('members are shown as the owner would see them: their rules for the owner (pending, rejected, polite-block offline), other domains pending; a rule change reaches the list', async () => {
  const DAVE = `sip:dave@${DOMAIN}`;
  const EVE = `sip:eve@${DOMAIN}`;
  const FRANK = `sip:frank@${DOMAIN}`;
  const ZED = 'sip:zed@elsewhere.net';
  const s = rls([{ username: 'alice', domain: DOMAIN, members: [{ uri: BOB }, { uri: DAVE }, { uri: EVE }, { uri: FRANK }, { uri: ZED }] }]);
  await s.rules.put({ username: 'dave', domain: DOMAIN, rules: { [ALICE]: 'block' } });
  await s.rules.put({ username: 'eve', domain: DOMAIN, rules: { [`*@${DOMAIN}`]: 'confirm' } });
  await s.rules.put({ username: 'frank', domain: DOMAIN, rules: { [ALICE]: 'polite-block' } });
  s.registered.add(FRANK);
  await s.subscribe();
  const got = readList(s.notifies()[0]!);
  assert.deepEqual(
    got.resources.map((r) => [r.uri, r.instance.state, r.instance.reason, r.instance.cid === undefined ? 'no part' : 'part']),
    [
      [BOB, 'active', undefined, 'part'],
      [DAVE, 'terminated', 'rejected', 'no part'],
      [EVE, 'pending', undefined, 'no part'],
      [FRANK, 'active', undefined, 'part'],
      [ZED, 'pending', undefined, 'no part'],
    ],
  );
  assert.deepEqual(basicStatuses(got.pidf(FRANK)!), { 'sipway-registration': 'closed' }, 'politely blocked: offline although registered');
  assert.equal(got.parts.length, 3);

  await s.advance(5000);
  await s.rules.put({ username: 'bob', domain: DOMAIN, rules: { [ALICE]: 'block' } });
  await s.presence.watcherRulesChanged(BOB);
  await s.settle();
  const after = readList(s.notifies().at(-1)!);
  assert.deepEqual([after.list.version, after.list.fullState], ['1', 'false']);
  assert.deepEqual(after.resources.map((r) => [r.uri, r.instance.state, r.instance.reason]), [[BOB, 'terminated', 'rejected']]);

  // A watcher coming to Eve, or Eve, Dave or Zed changing, changes nothing Alice sees: no NOTIFY for it.
  const ofList = () => s.notifies().filter((n) => n.headers.get('from')!.includes('alice-buddies')).length;
  await s.advance(5000);
  const before = ofList();
  assert.equal((await s.send(s.request(['Expires: 600'], { uri: EVE, from: BOB, callId: 'bob-eve' }))).status, 200);
  for (const member of [EVE, DAVE, ZED]) {
    s.registered.add(member);
    s.presence.registrationChanged(member);
  }
  await s.advance(5000);
  assert.equal(ofList(), before);
});

test('a list edited in the store (listChanged) sends the whole list again, version going on; a user with no list yet has an empty one', async () => {
  const s = rls([]);
  const lists = s.server();
  await s.subscribe();
  const empty = readList(s.notifies()[0]!);
  assert.equal(empty.resources.length, 0);
  assert.equal(empty.list.fullState, 'true');
  await s.store.put({ username: 'alice', domain: DOMAIN, members: [{ uri: CAROL, name: 'Carol' }] });
  lists.listChanged(ALICE);
  await s.advance(5000);
  const edited = readList(s.notifies()[1]!);
  assert.deepEqual([edited.list.version, edited.list.fullState], ['1', 'true']);
  assert.deepEqual(edited.resources.map((r) => [r.uri, r.name]), [[CAROL, 'Carol']]);
});

test('ended(): an unsubscribe, or a NOTIFY answered 481, forgets the subscription\'s memory; members\' changes then send nothing', async () => {
  const s = rls();
  const ok = await s.subscribe();
  assert.equal(s.server().size, 1);
  await s.send(s.request(['Supported: eventlist', 'Expires: 0'], { toTag: ok.toTag, cseq: 2 }));
  const last = s.notifies().at(-1)!;
  assert.equal(last.headers.get('subscription-state'), 'terminated;reason=timeout');
  assert.equal(readList(last).list.fullState, 'true', 'the last NOTIFY carries the full state');
  assert.equal(s.server().size, 0);
  const sent = s.notifies().length;
  s.presence.registrationChanged(BOB);
  await s.advance(10_000);
  assert.equal(s.notifies().length, sent);

  s.sender.deliverTo({ receive: () => undefined });
  await s.subscribe([], { callId: 'list2' });
  assert.equal(s.server().size, 1);
  s.answer(s.notifies().at(-1)!, 481);
  await s.settle();
  assert.equal(s.server().size, 0);
  assert.equal(s.presence.notifier.size, 0);
});

test('a store that fails: the SUBSCRIBE is answered 500 with a reason; a failing NOTIFY is dropped and the change told with the next one', async () => {
  const s = rls();
  const get = s.store.get.bind(s.store);
  let failing = true;
  s.store.get = async (u, d) => {
    if (failing) throw new Error('disk on fire');
    return get(u, d);
  };
  const refused = await s.subscribe();
  assert.equal(refused.status, 500);
  assert.match(refused.reason, /could not be looked up/);
  failing = false;
  await s.subscribe([], { callId: 'list2' });
  assert.equal(s.notifies().length, 1);
  await s.advance(5000);
  failing = true;
  s.registered.add(BOB);
  s.presence.registrationChanged(BOB);
  await s.settle();
  assert.equal(s.notifies().length, 1, 'no state, no NOTIFY');
  failing = false;
  s.registered.add(CAROL);
  s.presence.registrationChanged(CAROL);
  await s.advance(5000);
  const next = readList(s.notifies().at(-1)!);
  assert.deepEqual([next.list.version, next.list.fullState], ['1', 'false']);
  assert.deepEqual(next.resources.map((r) => r.uri), [BOB, CAROL], 'Bob\'s change was kept for this one');
});
