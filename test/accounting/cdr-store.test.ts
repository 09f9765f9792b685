import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidCdrError, MemoryCdrStore, openCdrStore, type CdrRecord, type CdrStore } from '../../src/store/index.js';

const T0 = 1_700_000_000_000;

function record(over: Partial<CdrRecord> = {}): CdrRecord {
  return {
    type: 'attempt',
    time: T0,
    callId: 'c@h',
    caller: 'sip:alice@example.com',
    callee: 'sip:bob@example.com',
    requestUri: 'sip:bob@example.com',
    status: 200,
    reason: 'OK',
    ...over,
  };
}

const SAMPLE: CdrRecord[] = [
  record({ callId: 'a1', time: T0 }),
  record({ callId: 'a2', time: T0 + 1000, caller: 'sip:carol@example.com', status: 486, reason: 'Busy Here' }),
  record({ callId: 'm1', time: T0 + 2000, type: 'missed', callee: 'sip:dave@example.com', status: 480, reason: 'Temporarily Unavailable', cause: 'not-registered' }),
  record({ callId: 'c1', time: T0 + 500, type: 'call', toTag: 't', fromTag: 'f', stopTime: T0 + 9000, durationMs: 8500, durationS: 9, endedBy: 'callee' }),
];

function suite(name: string, open: () => { store: CdrStore; close(): void }): void {
  test(`${name}: query filters by type, time, user and limit, most recent first`, async () => {
    const { store, close } = open();
    try {
      for (const r of SAMPLE) await store.add(r);
      assert.equal(await store.count(), 4);
      const ids = async (q: Parameters<CdrStore['query']>[0]): Promise<string[]> => (await store.query(q)).map((r) => r.callId);
      assert.deepEqual(await ids({ limit: 10 }), ['m1', 'a2', 'c1', 'a1']);
      assert.deepEqual(await ids({ limit: 2 }), ['m1', 'a2']);
      assert.deepEqual(await ids({ type: 'call', limit: 10 }), ['c1']);
      assert.deepEqual(await ids({ since: T0 + 500, until: T0 + 2000, limit: 10 }), ['a2', 'c1'], 'since inclusive, until exclusive');
      assert.deepEqual(await ids({ user: 'sip:carol@example.com', limit: 10 }), ['a2'], 'as caller');
      assert.deepEqual(await ids({ user: 'sip:dave@example.com', limit: 10 }), ['m1'], 'as callee');
      assert.deepEqual(await ids({ user: 'sip:bob@example.com', type: 'attempt', limit: 10 }), ['a2', 'a1']);
      assert.deepEqual((await store.query({ type: 'call', limit: 1 }))[0], SAMPLE[3], 'every field round-trips');
      assert.deepEqual((await store.query({ type: 'missed', limit: 1 }))[0], SAMPLE[2], 'the cause of a missed call too');
    } finally {
      close();
    }
  });

  test(`${name}: malformed records and limits are refused`, async () => {
    const { store, close } = open();
    try {
      await assert.rejects(store.add(record({ type: 'bogus' as CdrRecord['type'] })), InvalidCdrError);
      await assert.rejects(store.add(record({ status: 99 })), InvalidCdrError);
      await assert.rejects(store.add(record({ time: 1.5 })), InvalidCdrError);
      await assert.rejects(store.add(record({ endedBy: 'nobody' as CdrRecord['endedBy'] })), InvalidCdrError);
      await assert.rejects(store.add(record({ type: 'missed', cause: 'bored' as CdrRecord['cause'] })), /cause must be one of not-registered, busy/);
      await assert.rejects(store.query({ limit: 0 }), InvalidCdrError);
      assert.equal(await store.count(), 0);
    } finally {
      close();
    }
  });
}

suite('memory', () => ({ store: new MemoryCdrStore(), close: () => {} }));

suite('sqlite', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cdr-'));
  const opened = openCdrStore(dir);
  return {
    store: opened.cdrs,
    close: () => {
      opened.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('memory: bounded, the oldest records go first', async () => {
  const store = new MemoryCdrStore({ maxRecords: 2 });
  for (const r of SAMPLE.slice(0, 3)) await store.add(r);
  assert.equal(await store.count(), 2);
  assert.deepEqual((await store.query({ limit: 5 })).map((r) => r.callId), ['m1', 'a2']);
});

test('sqlite: records survive reopening', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-cdr-'));
  try {
    let opened = openCdrStore(data);
    for (const r of SAMPLE) await opened.cdrs.add(r);
    opened.close();
    opened = openCdrStore(data);
    try {
      assert.equal(await opened.cdrs.count(), 4);
    } finally {
      opened.close();
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
