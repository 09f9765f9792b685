import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Accounting, missedCause } from '../../src/accounting/index.js';
import { Headers, SipRequest, SipResponse, parseUri } from '../../src/message/index.js';
import { MemoryCdrStore, openCdrStore, type CdrRecord, type CdrStore, type MissedCause } from '../../src/store/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { bye, capturingLogger, invite, response } from './helpers.js';

const T0 = 1_700_000_000_000;

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'sipway-acct-'));
}

/** One answered call, ended after `seconds` by `by`; returns the accounting for more checks. */
async function oneCall(acct: Accounting, clock: FakeClock, seconds: number, by: 'caller' | 'callee'): Promise<void> {
  const inv = invite();
  const ok = response(inv, 200, 'OK');
  acct.attempt(inv, ok);
  acct.answered(inv, ok);
  clock.advance(seconds * 1000);
  acct.ended(bye(by), response(bye(by), 200, 'OK'));
}

for (const backend of ['memory', 'sqlite'] as const) {
  test(`${backend}: an answered call gives an attempt and, at its BYE, a call record with duration and who hung up`, async () => {
    const dir = tempDir();
    const opened = backend === 'sqlite' ? openCdrStore(dir) : undefined;
    const store: CdrStore = opened?.cdrs ?? new MemoryCdrStore();
    const clock = new FakeClock(T0);
    const acct = new Accounting({ store, clock, logger: silentLogger() });
    try {
      await oneCall(acct, clock, 61.5, 'callee');
      await acct.close();
      const [call, attempt, ...rest] = await store.query({ limit: 10 });
      assert.equal(rest.length, 0);
      assert.deepEqual(attempt, {
        type: 'attempt',
        time: T0,
        callId: 'call-1@192.0.2.1',
        caller: 'sip:alice@example.com',
        callee: 'sip:bob@example.com',
        requestUri: 'sip:bob@example.com;transport=udp',
        status: 200,
        reason: 'OK',
        source: 'udp:198.51.100.7:5062',
        fromTag: 'ftag',
        toTag: 'ttag',
      } satisfies CdrRecord);
      assert.deepEqual(call, {
        ...attempt,
        type: 'call',
        stopTime: T0 + 61_500,
        durationMs: 61_500,
        durationS: 62,
        endedBy: 'callee',
      } satisfies CdrRecord);
      assert.equal(await store.count(), 2);
      assert.equal(acct.openCalls, 0);
    } finally {
      opened?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a BYE from the caller, with the tags in INVITE order, closes the call as ended by the caller', async () => {
  const store = new MemoryCdrStore();
  const clock = new FakeClock(T0);
  const acct = new Accounting({ store, clock, logger: silentLogger() });
  await oneCall(acct, clock, 3, 'caller');
  const [call] = await store.query({ type: 'call', limit: 5 });
  assert.equal(call?.endedBy, 'caller');
  assert.equal(call?.durationS, 3);
  await acct.close();
});

test('re-INVITEs, 2xx retransmissions and BYEs of unknown calls add nothing; a failed BYE still ends the call (§15.1.2)', async () => {
  const store = new MemoryCdrStore();
  const clock = new FakeClock(T0);
  const acct = new Accounting({ store, clock, logger: silentLogger() });
  const inv = invite();
  const ok = response(inv, 200, 'OK');
  acct.answered(inv, ok);
  clock.advance(1000);
  acct.answered(inv, ok);
  const reinvite = invite({ toTag: 'ttag' });
  acct.attempt(reinvite, response(reinvite, 200, 'OK'));
  acct.answered(reinvite, response(reinvite, 200, 'OK'));
  assert.equal(acct.openCalls, 1);
  acct.ended(bye('caller', { callId: 'other-call' }), response(bye('caller'), 200, 'OK'));
  assert.equal(await store.count(), 0);
  acct.ended(bye('callee'), response(bye('callee'), 481, 'Call/Transaction Does Not Exist'));
  const calls = await store.query({ limit: 5 });
  assert.equal(calls.length, 1);
  assert.equal(calls[0]?.time, T0, 'the start is the first 2xx, not its retransmission');
  assert.equal(calls[0]?.durationMs, 1000);
  await acct.close();
});

test('rejected and cancelled attempts, and missed calls', async () => {
  const store = new MemoryCdrStore();
  const clock = new FakeClock(T0);
  const acct = new Accounting({ store, clock, logger: silentLogger() });
  const busy = invite({ callId: 'busy' });
  acct.attempt(busy, response(busy, 486, 'Busy Here'));
  clock.advance(10);
  const offline = invite({ callId: 'offline', to: 'sip:carol@example.com', ruri: 'sip:carol@example.com' });
  const unavailable = response(offline, 480, 'Temporarily Unavailable');
  acct.missed(offline, unavailable, 'not-registered');
  acct.attempt(offline, unavailable);
  const missed = await store.query({ type: 'missed', limit: 5 });
  assert.equal(missed.length, 1);
  assert.equal(missed[0]?.callee, 'sip:carol@example.com');
  assert.equal(missed[0]?.status, 480);
  assert.equal(missed[0]?.reason, 'Temporarily Unavailable');
  assert.equal(missed[0]?.cause, 'not-registered');
  assert.equal(missed[0]?.time, T0 + 10);
  assert.equal(missed[0]?.toTag, undefined);
  const attempts = await store.query({ type: 'attempt', limit: 5 });
  assert.deepEqual(attempts.map((a) => [a.callId, a.status]), [['offline', 480], ['busy', 486]]);
  assert.equal(acct.openCalls, 0, 'only 2xx opens a call');
  await acct.close();
});

test('a missed call names its cause from the final response; redirects and re-INVITEs are not missed calls', async () => {
  const store = new MemoryCdrStore();
  const acct = new Accounting({ store, clock: new FakeClock(T0), logger: silentLogger() });
  const finals: Array<[number, string, MissedCause | undefined]> = [
    [486, 'Busy Here', 'busy'],
    [600, 'Busy Everywhere', 'busy'],
    [408, 'Request Timeout', 'no-answer'],
    [480, 'Temporarily Unavailable', 'no-answer'],
    [487, 'Request Terminated', 'cancelled'],
    [603, 'Decline', 'declined'],
    [503, 'Service Unavailable', 'failed'],
    [488, 'Not Acceptable Here', 'failed'],
    [302, 'Moved Temporarily', undefined],
  ];
  for (const [status, reason] of finals) {
    const inv = invite({ callId: `c${status}` });
    acct.missed(inv, response(inv, status, reason), 'registered');
  }
  const reinvite = invite({ callId: 'c-re', toTag: 'ttag' });
  acct.missed(reinvite, response(reinvite, 486, 'Busy Here'), 'registered');
  const missed = await store.query({ type: 'missed', limit: 20 });
  assert.deepEqual(
    missed.map((r) => [r.status, r.reason, r.cause]).sort(([a], [b]) => Number(a) - Number(b)),
    finals.filter(([, , cause]) => cause !== undefined).sort(([a], [b]) => a - b),
  );
  assert.deepEqual(
    Object.fromEntries(finals.map(([status]) => [status, missedCause(status, 'not-registered')])),
    Object.fromEntries(finals.map(([status]) => [status, 'not-registered'])),
    'nobody registered is the cause whatever the caller got',
  );
  await acct.close();
});

test('every record is appended to the JSON-lines file, one object per line', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'cdr.jsonl');
    const clock = new FakeClock(T0);
    const first = new Accounting({ store: new MemoryCdrStore(), jsonlFile: file, clock, logger: silentLogger() });
    await oneCall(first, clock, 2, 'caller');
    const m1 = invite({ callId: 'm1' });
    first.missed(m1, response(m1, 404, 'Not Found'), 'not-registered');
    await first.close();
    // A second run appends rather than truncates.
    const second = new Accounting({ store: new MemoryCdrStore(), jsonlFile: file, clock, logger: silentLogger() });
    const m2 = invite({ callId: 'm2' });
    second.missed(m2, response(m2, 480, 'Temporarily Unavailable'), 'not-registered');
    await second.close();
    const text = readFileSync(file, 'utf8');
    assert.ok(text.endsWith('\n'));
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as CdrRecord);
    assert.deepEqual(lines.map((r) => [r.type, r.callId]), [['attempt', 'call-1@192.0.2.1'], ['call', 'call-1@192.0.2.1'], ['missed', 'm1'], ['missed', 'm2']]);
    assert.equal(lines[1]?.durationMs, 2000);
    assert.equal(lines[1]?.endedBy, 'caller');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a JSON-lines file that cannot be opened is a ConfigError at construction', () => {
  assert.throws(
    () => new Accounting({ store: new MemoryCdrStore(), jsonlFile: '/nonexistent-dir/x/cdr.jsonl', clock: new FakeClock(), logger: silentLogger() }),
    (e: unknown) => e instanceof ConfigError && /accounting\.jsonlFile: cannot open/.test(e.message),
  );
  assert.throws(() => new Accounting({ store: new MemoryCdrStore(), clock: new FakeClock(), logger: silentLogger(), maxOpenCalls: 0 }), ConfigError);
});

test('open calls are bounded: the oldest is dropped with a warning and never written', async () => {
  const store = new MemoryCdrStore();
  const clock = new FakeClock(T0);
  const { logger, lines } = capturingLogger();
  const acct = new Accounting({ store, clock, logger, maxOpenCalls: 2 });
  for (const id of ['c1', 'c2', 'c3']) {
    const inv = invite({ callId: id });
    acct.answered(inv, response(inv, 200, 'OK'));
    clock.advance(1000);
  }
  assert.equal(acct.openCalls, 2);
  const warning = lines().find((l) => l.msg.includes('too many open calls'));
  assert.equal(warning?.callId, 'c1');
  acct.ended(bye('caller', { callId: 'c1' }), response(bye('caller'), 200, 'OK'));
  acct.ended(bye('caller', { callId: 'c3' }), response(bye('caller'), 200, 'OK'));
  assert.deepEqual((await store.query({ limit: 5 })).map((r) => r.callId), ['c3']);
  await acct.close();
});

test('calls with no BYE within maxCallDurationMs are closed as timeout by the periodic sweep', async () => {
  const store = new MemoryCdrStore();
  const clock = new FakeClock(T0);
  const acct = new Accounting({ store, clock, logger: silentLogger() });
  const early = invite({ callId: 'early' });
  acct.answered(early, response(early, 200, 'OK'));
  clock.advance(3600_000);
  const late = invite({ callId: 'late' });
  acct.answered(late, response(late, 200, 'OK'));
  assert.equal(clock.pending, 1, 'one sweep timer, none per call');
  clock.advance(5 * 3600_000 - 60_000);
  assert.equal(await store.count(), 0, 'not yet 6 h');
  clock.advance(60_000);
  const [call] = await store.query({ limit: 5 });
  assert.equal(call?.callId, 'early');
  assert.equal(call?.endedBy, 'timeout');
  assert.equal(call?.durationMs, 6 * 3600_000);
  assert.equal(acct.openCalls, 1);
  clock.advance(3600_000);
  assert.deepEqual((await store.query({ limit: 5 })).map((r) => [r.callId, r.endedBy]), [['late', 'timeout'], ['early', 'timeout']]);
  await acct.close();
  assert.equal(clock.pending, 0, 'close stops the sweep');
});

test('a malformed INVITE is logged, never thrown into the proxy', async () => {
  const store = new MemoryCdrStore();
  const { logger, lines } = capturingLogger();
  const acct = new Accounting({ store, clock: new FakeClock(), logger });
  const bad = new SipRequest('INVITE', parseUri('sip:bob@example.com'), new Headers().append('From', '<<<').append('To', '<sip:bob@example.com>').append('Call-ID', 'x'));
  assert.doesNotThrow(() => acct.attempt(bad, new SipResponse(486, 'Busy Here')));
  assert.doesNotThrow(() => acct.missed(bad, new SipResponse(404, 'Not Found'), 'not-registered'));
  assert.equal(await store.count(), 0);
  assert.equal(lines().filter((l) => l.msg === 'accounting: event not recorded').length, 2);
  await acct.close();
});

test('a store that fails is logged; accounting goes on', async () => {
  const failing: CdrStore = {
    add: async () => {
      throw new Error('disk full');
    },
    query: async () => [],
    count: async () => 0,
  };
  const { logger, lines } = capturingLogger();
  const acct = new Accounting({ store: failing, clock: new FakeClock(), logger });
  const inv = invite();
  acct.missed(inv, response(inv, 404, 'Not Found'), 'not-registered');
  await acct.close();
  assert.ok(lines().some((l) => l.msg === 'accounting: CDR not stored'));
});

test('an open call costs what its record needs, not what the caller wrote: long header values are capped', async () => {
  const store = new MemoryCdrStore();
  const acct = new Accounting({ store, clock: new FakeClock(T0), logger: silentLogger() });
  const callId = `${'x'.repeat(12_000)}@192.0.2.1`;
  const inv = invite({ callId, to: `sip:${'b'.repeat(12_000)}@example.com`, ruri: `sip:bob@example.com;${'p'.repeat(12_000)}` });
  acct.answered(inv, response(inv, 200, 'OK'));
  acct.ended(bye('caller', { callId }), response(bye('caller', { callId }), 200, 'OK'));
  const [record] = await store.query({ limit: 1 });
  assert.ok(record, 'the long call is still matched by its BYE and recorded');
  for (const field of ['callId', 'callee', 'requestUri'] as const) assert.ok(record[field]!.length <= 256, `${field}: ${record[field]!.length}`);
  assert.ok(record.callId.startsWith('xxxx'));
  await acct.close();
});

for (const backend of ['memory', 'sqlite'] as const) {
  test(`${backend}: a call through the SBC's relay: its record waits for the relay's counters after the BYE (2 s at most) and keeps them`, async () => {
    const dir = tempDir();
    const opened = backend === 'sqlite' ? openCdrStore(dir) : undefined;
    const store: CdrStore = opened?.cdrs ?? new MemoryCdrStore();
    const clock = new FakeClock(T0);
    const acct = new Accounting({ store, clock, logger: silentLogger() });
    const media = { caller: { packets: 250, bytes: 43000, lost: 1, jitterMs: 0.8 }, callee: { packets: 249, bytes: 42828, lost: 0, jitterMs: 1.25 } };
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) await Promise.resolve();
    };
    const calls = async (): Promise<CdrRecord[]> => (await store.query({ limit: 10, type: 'call' })).filter((r) => r.type === 'call');
    try {
      // The counters come after the BYE (the usual order): the record waits for them.
      const inv = invite();
      acct.answered(inv, response(inv, 200, 'OK'));
      acct.expectMedia('call-1@192.0.2.1');
      clock.advance(5000);
      acct.ended(bye('caller'), response(bye('caller'), 200, 'OK'));
      await settle();
      assert.equal((await calls()).length, 0, 'held for the counters');
      clock.advance(300);
      acct.media('call-1@192.0.2.1', media);
      await settle();
      const [first] = await calls();
      assert.deepEqual(first?.media, media);
      assert.equal(first?.durationMs, 5000, 'the duration is the BYE\'s, not the counters\'');

      // They never come: written without them after 2 s.
      const inv2 = invite({ callId: 'call-2@192.0.2.1' });
      acct.answered(inv2, response(inv2, 200, 'OK'));
      acct.expectMedia('call-2@192.0.2.1');
      acct.ended(bye('callee', { callId: 'call-2@192.0.2.1' }), response(bye('callee'), 200, 'OK'));
      clock.advance(1999);
      await settle();
      assert.equal((await calls()).length, 1);
      clock.advance(1);
      await settle();
      const second = (await calls()).find((r) => r.callId === 'call-2@192.0.2.1');
      assert.ok(second);
      assert.equal(second.media, undefined);

      // They come first (media told before the BYE): written at once with them.
      const inv3 = invite({ callId: 'call-3@192.0.2.1' });
      acct.answered(inv3, response(inv3, 200, 'OK'));
      acct.expectMedia('call-3@192.0.2.1');
      acct.media('call-3@192.0.2.1', media);
      acct.ended(bye('caller', { callId: 'call-3@192.0.2.1' }), response(bye('caller'), 200, 'OK'));
      await acct.close();
      assert.deepEqual((await calls()).find((r) => r.callId === 'call-3@192.0.2.1')?.media, media);
    } finally {
      opened?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
