import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SipRequest, SipResponse } from '../../src/message/index.js';
import { dialogInfo, dialogPackage, DialogStates, isDialogUpdate, PresenceService, type DialogEntry, type DialogObserver, type DialogStatesOptions, type DialogUpdate } from '../../src/presence/index.js';
import { MemoryWatcherRulesStore } from '../../src/store/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { FakeClock, LoopTransport, parseText } from '../../src/testing/index.js';
import { answerNotify, sentNotifies } from './notify-helpers.js';

const BOB = 'sip:bob@example.com';
const ALICE = 'sip:alice@example.com';
const INTERVAL = 1000;

/** One dialog element of a dialog-info document, its attributes and what it says. */
interface Shown {
  id: string;
  attrs: Record<string, string>;
  state: string;
  event?: string;
  code?: string;
  duration: number;
  body: string;
}

function parseInfo(xml: string): { version: number; state: string; entity: string; dialogs: Shown[] } {
  const root = /<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="(\d+)" state="(full|partial)" entity="([^"]+)">/.exec(xml);
  assert.ok(root, `a dialog-info document: ${xml}`);
  const dialogs = [...xml.matchAll(/<dialog ([^>]*)>([\s\S]*?)<\/dialog>/g)].map((m) => {
    const attrs = Object.fromEntries([...m[1]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]));
    const state = /<state([^>]*)>(\w+)<\/state>/.exec(m[2]!)!;
    const stateAttrs = Object.fromEntries([...state[1]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]));
    return { id: attrs.id!, attrs, state: state[2]!, event: stateAttrs.event, code: stateAttrs.code, duration: Number(/<duration>(\d+)<\/duration>/.exec(m[2]!)![1]), body: m[2]! };
  });
  return { version: Number(root[1]), state: root[2]!, entity: root[3]!, dialogs };
}

/**
 * A presence service with the dialog package on a loop transport and a fake clock, the proxy's observer feeding it
 * as the server wires it (each update announced per AOR), and a watcher (carol) that answers NOTIFYs 200.
 */
function service(tracker: Partial<DialogStatesOptions> = {}, rules?: MemoryWatcherRulesStore) {
  const clock = new FakeClock(0);
  const sender = new LoopTransport({ clock, address: '192.0.2.5' });
  const transactions = new TransactionLayer({ sender, clock });
  const states = new DialogStates({ clock, isOurs: (host) => host.toLowerCase() === 'example.com', ...tracker });
  const updates: DialogUpdate[] = [];
  const presence: PresenceService = new PresenceService({
    transactions,
    sender,
    clock,
    contact: '<sip:192.0.2.5:5060>',
    registered: async () => false,
    notifyIntervalMs: INTERVAL,
    watcherRules: rules,
    packages: () => [dialogPackage({ states, clock, watcherRules: rules, changed: (aor) => presence.notifier.changed('dialog', aor) })],
  });
  const observer: DialogObserver = states.observer((u) => {
    updates.push(u);
    for (const aor of u.aors) presence.announce({ event: 'dialog', resource: aor, update: u });
  });
  transactions.setUser({ onRequest: (r, st) => void presence.handle(r, st), onAck: () => undefined, onStrayResponse: () => undefined });
  sender.deliverTo({ receive: (m) => m.isRequest && m.method === 'NOTIFY' && answer(m as SipRequest, 200) });
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  let n = 0;
  /** A SUBSCRIBE from `from` for `resource`'s dialogs (in its own dialog `callId`). */
  const subscribe = async (resource: string, lines: string[] = [], opts: { from?: string; callId?: string; toTag?: string; cseq?: number } = {}): Promise<SipResponse> => {
    const r = parseText<SipRequest>(
      [
        `SUBSCRIBE ${resource} SIP/2.0`,
        `Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKs${++n}`,
        'Max-Forwards: 70',
        `From: <${opts.from ?? 'sip:carol@example.com'}>;tag=w${opts.callId ?? 'sub1'}`,
        `To: <${resource}>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
        `Call-ID: ${opts.callId ?? 'sub1'}@192.0.2.1`,
        `CSeq: ${opts.cseq ?? 1} SUBSCRIBE`,
        'Contact: <sip:carol@192.0.2.1:5060>',
        'Event: dialog',
        ...lines,
        'Content-Length: 0',
        '',
        '',
      ].join('\n'),
    );
    r.source = { transport: 'udp', address: '192.0.2.1', port: 5060, localAddress: '192.0.2.5', localPort: 5060, flowId: 'udp:x', receivedAt: 0 };
    const before = sender.sent.length;
    transactions.receive(r);
    // Watcher rules are read asynchronously before the answer.
    await settle();
    return sender.sent.slice(before).find((s) => !s.message.isRequest)!.message as SipResponse;
  };
  /** The NOTIFYs sent for the subscription `callId`, each once (Timer E's retransmissions left out). */
  const notifies = (callId = 'sub1'): SipRequest[] => sentNotifies(sender, (m) => m.callId === `${callId}@192.0.2.1`);
  const docs = (callId = 'sub1') => notifies(callId).map((m) => parseInfo(m.body.toString()));
  /** The watcher answers a NOTIFY with `status`. */
  const answer = (notify: SipRequest, status: number): void => answerNotify(transactions, notify, status);
  /** Time passes beyond the pacing interval: what changed meanwhile goes out. */
  const later = async (ms = INTERVAL): Promise<void> => {
    await settle();
    clock.advance(ms);
    await settle();
  };
  return { clock, sender, presence, states, observer, updates, subscribe, notifies, docs, settle, later };
}

/** An INVITE as the proxy received it: from `from` (tag `fromTag`) to the Request-URI `to`. */
function invite(callId: string, opts: { from?: string; to?: string; fromTag?: string; display?: string } = {}): SipRequest {
  const from = opts.from ?? ALICE;
  const to = opts.to ?? BOB;
  return parseText<SipRequest>(
    [
      `INVITE ${to} SIP/2.0`,
      'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKi' + callId,
      'Max-Forwards: 70',
      `From: ${opts.display ?? '"Alice A."'} <${from}>;tag=${opts.fromTag ?? 'a1'}`,
      `To: <${to}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      'Contact: <sip:alice@192.0.2.10:5060>',
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

/** A response to `inv` with a To tag (a dialog) and the callee's Contact. */
function response(inv: SipRequest, status: number, toTag?: string, contact = 'sip:bob@192.0.2.20:5060'): SipResponse {
  return parseText<SipResponse>(
    [
      `SIP/2.0 ${status} X`,
      `Via: ${inv.headers.get('via')}`,
      `From: ${inv.headers.get('from')}`,
      `To: ${inv.headers.get('to')}${toTag ? `;tag=${toTag}` : ''}`,
      `Call-ID: ${inv.callId}`,
      'CSeq: 1 INVITE',
      `Contact: <${contact}>`,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

/** A BYE of the dialog `inv` made with `toTag`, sent by the caller or the callee. */
function bye(inv: SipRequest, toTag: string, by: 'caller' | 'callee'): SipRequest {
  const caller = `${inv.headers.get('from')}`;
  const callee = `${inv.headers.get('to')};tag=${toTag}`;
  return parseText<SipRequest>(
    [
      `BYE sip:someone@192.0.2.30 SIP/2.0`,
      'Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bKb' + inv.callId,
      'Max-Forwards: 70',
      `From: ${by === 'caller' ? caller : callee}`,
      `To: ${by === 'caller' ? callee : caller}`,
      `Call-ID: ${inv.callId}`,
      'CSeq: 2 BYE',
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

test('RFC 4235: a watcher of Bob sees his call go trying, early, confirmed, terminated (remote-bye) in partial NOTIFYs with versions 0, 1, 2 ...', async () => {
  const s = service();
  const ok = await s.subscribe(BOB, ['Expires: 600', 'Accept: application/dialog-info+xml']);
  assert.equal(ok.status, 200);
  await s.settle();
  const first = s.notifies()[0]!;
  assert.equal(first.headers.get('content-type'), 'application/dialog-info+xml');
  assert.equal(first.headers.get('event'), 'dialog');
  assert.deepEqual(s.docs()[0], { version: 0, state: 'full', entity: BOB, dialogs: [] }, 'at first: the full state, no dialogs');

  const inv = invite('call-1');
  s.observer.trying(inv);
  await s.later();
  const trying = s.docs()[1]!;
  assert.equal(trying.version, 1);
  assert.equal(trying.state, 'partial');
  assert.equal(trying.dialogs.length, 1);
  const id = trying.dialogs[0]!.id;
  assert.deepEqual(trying.dialogs[0]!.attrs, { id, 'call-id': 'call-1', 'remote-tag': 'a1', direction: 'recipient' }, 'no local tag before the callee answers');
  assert.equal(trying.dialogs[0]!.state, 'trying');

  s.clock.advance(2000);
  s.observer.early(inv, response(inv, 180, 'b1'));
  await s.later();
  const early = s.docs()[2]!;
  assert.equal(early.version, 2);
  assert.deepEqual(early.dialogs[0]!.attrs, { id, 'call-id': 'call-1', 'local-tag': 'b1', 'remote-tag': 'a1', direction: 'recipient' }, 'the same dialog, now with its tag');
  assert.equal(early.dialogs[0]!.state, 'early');
  assert.equal(early.dialogs[0]!.duration, 3);
  assert.match(early.dialogs[0]!.body, /<local>\s*<identity>sip:bob@example\.com<\/identity>\s*<target uri="sip:bob@192\.0\.2\.20:5060"\/>\s*<\/local>/);
  assert.match(early.dialogs[0]!.body, /<remote>\s*<identity display="Alice A\.">sip:alice@example\.com<\/identity>\s*<target uri="sip:alice@192\.0\.2\.10:5060"\/>\s*<\/remote>/);

  s.observer.early(inv, response(inv, 180, 'b1'));
  await s.later();
  assert.equal(s.docs().length, 3, 'a second 180 changes nothing a watcher sees: no NOTIFY');

  s.observer.confirmed(inv, response(inv, 200, 'b1'));
  await s.later();
  const confirmed = s.docs()[3]!;
  assert.deepEqual([confirmed.version, confirmed.state, confirmed.dialogs[0]!.state, confirmed.dialogs[0]!.id], [3, 'partial', 'confirmed', id]);

  s.clock.advance(30_000);
  s.observer.terminated(bye(inv, 'b1', 'caller'), 'bye', response(inv, 200, 'b1'));
  await s.later();
  const ended = s.docs()[4]!;
  assert.equal(ended.version, 4);
  assert.deepEqual([ended.dialogs[0]!.state, ended.dialogs[0]!.event, ended.dialogs[0]!.duration], ['terminated', 'remote-bye', 36], 'alice hung up: the remote side for Bob');
  assert.deepEqual(s.states.dialogs(BOB), []);

  // Reported once, then forgotten: a refresh's full state no longer has it.
  const refreshed = await s.subscribe(BOB, ['Expires: 600'], { toTag: ok.toTag, cseq: 2 });
  assert.equal(refreshed.status, 200);
  await s.settle();
  assert.deepEqual(s.docs()[5], { version: 5, state: 'full', entity: BOB, dialogs: [] });
  s.clock.advance(60_000);
  s.observer.trying(invite('call-2', { from: 'sip:dave@elsewhere.net', to: 'sip:erin@example.com' }));
  assert.equal(s.states.stats.ended, 0, 'an ended dialog is forgotten once its report time is over');
});

test('RFC 4235 §4.1: both directions: Alice\'s document shows her side (initiator, her tags local), Bob\'s his; a caller from elsewhere is not tracked', async () => {
  const s = service();
  await s.subscribe(BOB, [], { callId: 'w-bob' });
  await s.subscribe(ALICE, [], { callId: 'w-alice' });
  await s.settle();
  const inv = invite('call-1');
  s.observer.trying(inv);
  s.observer.early(inv, response(inv, 183, 'b1'));
  s.observer.confirmed(inv, response(inv, 200, 'b1'));
  await s.later();
  const alice = s.docs('w-alice').at(-1)!;
  const bob = s.docs('w-bob').at(-1)!;
  assert.equal(alice.entity, ALICE);
  assert.deepEqual(alice.dialogs.map((d) => [d.attrs.direction, d.attrs['local-tag'], d.attrs['remote-tag'], d.state]), [['initiator', 'a1', 'b1', 'confirmed']]);
  assert.deepEqual(bob.dialogs.map((d) => [d.attrs.direction, d.attrs['local-tag'], d.attrs['remote-tag'], d.state]), [['recipient', 'b1', 'a1', 'confirmed']]);
  assert.notEqual(alice.dialogs[0]!.id, bob.dialogs[0]!.id);
  assert.match(alice.dialogs[0]!.body, /<remote>\s*<identity>sip:bob@example\.com<\/identity>\s*<target uri="sip:bob@192\.0\.2\.20:5060"\/>/, 'her remote target: the Contact of the 200');

  s.observer.terminated(bye(inv, 'b1', 'callee'), 'bye', response(inv, 200, 'b1'));
  await s.later();
  assert.equal(s.docs('w-alice').at(-1)!.dialogs[0]!.event, 'remote-bye', 'Bob hung up: remote for Alice');
  assert.equal(s.docs('w-bob').at(-1)!.dialogs[0]!.event, 'local-bye', 'and local for Bob');

  const updates = s.updates.length;
  s.observer.trying(invite('call-3', { from: 'sip:dave@elsewhere.net', to: 'sip:frank@elsewhere.org' }));
  assert.equal(s.updates.length, updates, 'nobody of ours: no update at all');
  s.observer.trying(invite('call-4', { from: 'sip:dave@elsewhere.net' }));
  assert.deepEqual(s.updates.at(-1)!.aors, [BOB], 'only our user is tracked');
  assert.deepEqual(s.states.dialogs('sip:dave@elsewhere.net'), []);
});

test('RFC 4235 §4.1: versions count per subscription; a refresh is full with every live dialog, partial again after it, only what changed', async () => {
  const s = service();
  const first = await s.subscribe(BOB, [], { callId: 'one' });
  await s.settle();
  const inv1 = invite('call-1');
  s.observer.trying(inv1);
  s.observer.confirmed(inv1, response(inv1, 200, 'b1'));
  await s.later();
  await s.subscribe(BOB, [], { callId: 'two' });
  await s.settle();
  assert.deepEqual(s.docs('two').map((d) => [d.version, d.state, d.dialogs.map((x) => x.state)]), [[0, 'full', ['confirmed']]], 'a new watcher: version 0, the full state');
  assert.deepEqual(s.docs('one').map((d) => [d.version, d.state]), [[0, 'full'], [1, 'partial']]);

  const inv2 = invite('call-2', { from: 'sip:carol@example.com', fromTag: 'c1' });
  s.observer.trying(inv2);
  await s.later();
  const partial = s.docs('one').at(-1)!;
  assert.deepEqual([partial.version, partial.state, partial.dialogs.map((d) => d.attrs['call-id'])], [2, 'partial', ['call-2']], 'only the dialog that changed');
  assert.deepEqual(s.docs('two').map((d) => d.version), [0, 1]);

  await s.subscribe(BOB, ['Expires: 600'], { callId: 'one', toTag: first.toTag, cseq: 2 });
  await s.settle();
  const full = s.docs('one').at(-1)!;
  assert.deepEqual([full.version, full.state, full.dialogs.map((d) => `${d.attrs['call-id']}:${d.state}`)], [3, 'full', ['call-1:confirmed', 'call-2:trying']]);
  s.observer.terminated(inv2, 'rejected', response(inv2, 486, 'b2'));
  await s.later();
  const rejected = s.docs('one').at(-1)!;
  assert.deepEqual([rejected.version, rejected.state], [4, 'partial']);
  assert.deepEqual(rejected.dialogs.map((d) => [d.attrs['call-id'], d.state, d.event, d.code]), [['call-2', 'terminated', 'rejected', '486']]);
});

test('RFC 4235 §3.7.1: forked early dialogs; the one answered is confirmed, the others end cancelled; a CANCEL ends a call cancelled (487)', async () => {
  const s = service();
  await s.subscribe(BOB);
  const inv = invite('call-1');
  s.observer.trying(inv);
  s.observer.early(inv, response(inv, 180, 'desk', 'sip:bob@192.0.2.21'));
  s.observer.early(inv, response(inv, 180, 'mobile', 'sip:bob@192.0.2.22'));
  await s.later();
  assert.deepEqual(s.docs().at(-1)!.dialogs.map((d) => [d.attrs['local-tag'], d.state]), [['desk', 'early'], ['mobile', 'early']], 'the first fork takes the trying dialog, the second is a dialog of its own');
  s.observer.confirmed(inv, response(inv, 200, 'mobile', 'sip:bob@192.0.2.22'));
  s.observer.early(inv, response(inv, 180, 'late'));
  await s.later();
  assert.deepEqual(
    s.docs().at(-1)!.dialogs.map((d) => [d.attrs['local-tag'], d.state, d.event]),
    [['mobile', 'confirmed', undefined], ['desk', 'terminated', 'cancelled']],
    'a fork\'s provisional response after the answer adds nothing',
  );

  const cancelled = invite('call-2');
  s.observer.trying(cancelled);
  s.observer.early(cancelled, response(cancelled, 180, 'x1'));
  await s.later();
  s.observer.terminated(cancelled, 'cancelled', response(cancelled, 487, 'x1'));
  await s.later();
  assert.deepEqual(s.docs().at(-1)!.dialogs.map((d) => [d.attrs['call-id'], d.state, d.event, d.code]), [['call-2', 'terminated', 'cancelled', '487']]);
  const timedOut = invite('call-3');
  s.observer.trying(timedOut);
  s.observer.early(timedOut, response(timedOut, 183));
  await s.later();
  assert.equal(s.docs().at(-1)!.dialogs[0]!.state, 'proceeding', 'a provisional response without a To tag: proceeding, no early dialog');
  s.observer.terminated(timedOut, 'timeout', response(timedOut, 408));
  await s.later();
  assert.deepEqual(s.docs().at(-1)!.dialogs.map((d) => [d.state, d.event, d.code]), [['terminated', 'timeout', '408']]);
});

test('bounded: beyond the cap per AOR (and in all) the oldest dialog is dropped and counted; a watcher that saw it is told it is gone', async () => {
  const s = service({ maxPerAor: 2, maxDialogs: 3 });
  await s.subscribe(BOB);
  for (const n of [1, 2]) {
    const inv = invite(`call-${n}`, { from: `sip:u${n}@elsewhere.net` });
    s.observer.trying(inv);
    s.observer.confirmed(inv, response(inv, 200, `b${n}`));
  }
  await s.later();
  assert.deepEqual(s.docs().at(-1)!.dialogs.map((d) => d.attrs['call-id']), ['call-1', 'call-2']);
  const third = invite('call-3', { from: 'sip:u3@elsewhere.net' });
  s.observer.trying(third);
  await s.later();
  assert.deepEqual(s.states.stats, { dialogs: 2, ended: 0, dropped: 1, expired: 0 });
  assert.deepEqual(s.states.dialogs(BOB).map((d) => d.callId), ['call-2', 'call-3']);
  const doc = s.docs().at(-1)!;
  assert.deepEqual(doc.dialogs.map((d) => [d.attrs['call-id'], d.state, d.event]), [['call-3', 'trying', undefined], ['call-1', 'terminated', undefined]], 'dropped: terminated with no event');

  // In all: two of Alice's calls to elsewhere push the oldest of everyone's out.
  for (const n of [4, 5]) s.observer.trying(invite(`call-${n}`, { to: `sip:x${n}@elsewhere.net` }));
  assert.deepEqual(s.states.stats, { dialogs: 3, ended: 0, dropped: 2, expired: 0 });
  assert.deepEqual(s.states.dialogs(BOB).map((d) => d.callId), ['call-3']);
});

test('a dialog whose BYE never passes here ends by itself after maxDurationMs (timeout), seen at the next update', async () => {
  const s = service({ maxDurationMs: 1800_000 });
  await s.subscribe(BOB);
  const inv = invite('call-1');
  s.observer.trying(inv);
  s.observer.confirmed(inv, response(inv, 200, 'b1'));
  await s.later();
  s.clock.advance(1800_000);
  s.observer.trying(invite('call-2', { to: 'sip:erin@example.com' }));
  await s.later();
  assert.deepEqual(s.docs().at(-1)!.dialogs.map((d) => [d.state, d.event, d.duration]), [['terminated', 'timeout', 1801]], 'Erin\'s call made Bob\'s old one run out');
  assert.equal(s.states.stats.expired, 2, 'both sides of the call: Alice\'s and Bob\'s');
  assert.deepEqual(s.states.dialogs(ALICE).map((d) => d.callId), ['call-2']);
});

test('watchers are decided by the presence rules: another domain waits (pending, no document), a blocked one is refused, a politely blocked one sees no dialogs', async () => {
  const rules = new MemoryWatcherRulesStore();
  await rules.put({ username: 'bob', domain: 'example.com', rules: { 'sip:eve@example.com': 'block', 'sip:mallory@example.com': 'polite-block' } });
  const s = service({}, rules);
  assert.equal((await s.subscribe(BOB, [], { from: 'sip:eve@example.com', callId: 'eve' })).status, 403);
  await s.subscribe(BOB, [], { from: 'sip:stranger@elsewhere.net', callId: 'stranger' });
  await s.subscribe(BOB, [], { from: 'sip:mallory@example.com', callId: 'mallory' });
  const inv = invite('call-1');
  s.observer.trying(inv);
  s.observer.confirmed(inv, response(inv, 200, 'b1'));
  await s.later();
  assert.deepEqual(s.notifies('stranger').map((n) => [n.headers.get('subscription-state'), n.body.length]), [['pending;expires=3600', 0]]);
  assert.ok(s.docs('mallory').length >= 1);
  assert.ok(s.docs('mallory').every((d) => d.dialogs.length === 0 && d.state === 'full'));
  const versions = s.docs('mallory').map((d) => d.version);
  assert.deepEqual([...versions].sort((a, b) => a - b), versions, 'versions never go back');
});

test('updates are plain JSON: applied in another tracker they give the same dialogs with the same ids; bad ones are refused', () => {
  const clock = new FakeClock(1000);
  const here = new DialogStates({ clock, isOurs: () => true });
  const there = new DialogStates({ clock, isOurs: () => true });
  const inv = invite('call-1');
  const updates = [here.record('trying', inv)!, here.record('early', inv, response(inv, 180, 'b1'))!, here.record('confirmed', inv, response(inv, 200, 'b1'))!];
  for (const u of updates) {
    here.apply(u);
    const copy: unknown = JSON.parse(JSON.stringify(u));
    assert.ok(isDialogUpdate(copy));
    for (const aor of copy.aors) there.apply(copy, aor);
  }
  // The same dialogs but for the change counter (each process counts its own applications).
  const unsequenced = (dialogs: DialogEntry[]) => dialogs.map(({ seq: _seq, ...rest }) => rest);
  assert.deepEqual(unsequenced(there.dialogs(BOB)), unsequenced(here.dialogs(BOB)));
  assert.deepEqual(unsequenced(there.dialogs(ALICE)), unsequenced(here.dialogs(ALICE)));
  assert.equal(here.dialogs(BOB)[0]!.state, 'confirmed');
  assert.equal(updates[0]!.type, 'trying');
  assert.deepEqual(updates[0]!.aors, [ALICE, BOB]);
  for (const bad of [null, 'x', {}, { ...updates[0], type: 'exploded' }, { ...updates[0], aors: [1] }, { type: 'bye', at: 1, aors: [], callId: 'c', tags: ['a'], by: 'a' }]) {
    assert.equal(isDialogUpdate(bad), false, JSON.stringify(bad));
  }
  // A malformed header never throws into the proxy: no update.
  const broken = invite('call-2');
  broken.headers.set('From', '<<not a uri');
  assert.equal(here.record('trying', broken), undefined);
  assert.doesNotThrow(() => here.observer(() => { throw new Error('bus down'); }).trying(inv));
});

test('dialogInfo escapes what it quotes and omits what is not known', () => {
  const xml = dialogInfo('sip:a&b@example.com', 7, 'full', [
    { id: 'x', aor: 'sip:a&b@example.com', callId: 'c<1>"', direction: 'initiator', fromTag: 't&', toTag: undefined, state: 'trying', createdAt: 0, local: { identity: 'sip:a&b@example.com' }, remote: { identity: '', display: 'ignored' }, seq: 1 },
  ], 2500);
  assert.match(xml, /entity="sip:a&amp;b@example\.com"/);
  assert.match(xml, /<dialog id="x" call-id="c&lt;1&gt;&quot;" local-tag="t&amp;" direction="initiator">/);
  assert.match(xml, /<duration>3<\/duration>/);
  assert.doesNotMatch(xml, /<remote>/);
});
