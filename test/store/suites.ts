import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Binding, bindingKey } from '../../src/store/binding.js';
import { InvalidBindingError, type LocationStore } from '../../src/store/location-store.js';
import { InvalidSubscriberError, type Subscriber, type SubscriberStore } from '../../src/store/subscriber-store.js';
import { FakeClock } from '../../src/util/clock.js';

/**
 * The behaviour every backend must share, run by memory-store, sqlite-store and redis-store tests. A backend
 * supplies a factory that opens a fresh, empty store on the given clock.
 */
export interface Opened<S> {
  store: S;
  close(): Promise<void>;
}

const HOUR = 3_600_000;
const ALICE = 'sip:alice@example.com';

export function binding(aor: string, n: number, now: number, overrides: Partial<Binding> = {}): Binding {
  return {
    aor,
    contact: `sip:ua${n}@192.0.2.10:${5060 + n};transport=tcp`,
    contactParams: {},
    expiresAt: now + HOUR,
    q: 1,
    callId: `call-${n}@192.0.2.10`,
    cseq: 1,
    path: [],
    source: { transport: 'tcp', address: '192.0.2.10', port: 5060 + n },
    registeredAt: now,
    ...overrides,
  };
}

/** What a registrar does for one Contact: replace the binding with the same key, or add it. */
export function upsert(store: LocationStore, b: Binding): Promise<void> {
  return store.modify(b.aor, (current) => ({
    next: [...current.filter((x) => bindingKey(x) !== bindingKey(b)), b],
    result: undefined,
  }));
}

export function locationStoreSuite(name: string, open: (clock: FakeClock) => Promise<Opened<LocationStore>>): void {
  describe(`LocationStore contract: ${name}`, () => {
    async function withStore(fn: (store: LocationStore, clock: FakeClock) => Promise<void>): Promise<void> {
      // Real "now" as the start: Redis expires keys on its own clock, so fake time must not start in the past.
      const clock = new FakeClock(Date.now());
      const opened = await open(clock);
      try {
        await fn(opened.store, clock);
      } finally {
        await opened.close();
      }
    }

    it('starts empty', () =>
      withStore(async (store) => {
        assert.deepEqual(await store.lookup(ALICE), []);
        assert.deepEqual(await store.listAors(), []);
        assert.equal(await store.count(), 0);
      }));

    it('adds a binding with every field intact and returns the mutate result', () =>
      withStore(async (store, clock) => {
        const b = binding(ALICE, 1, clock.now(), {
          contactParams: { '+sip.instance': '"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"', 'reg-id': '1', audio: null },
          path: ['<sip:edge1.example.net;lr>', '<sip:edge2.example.net;lr>'],
          instanceId: '<urn:uuid:00000000-0000-1000-8000-000a95a0e128>',
          regId: 1,
          source: { transport: 'tls', address: '198.51.100.7', port: 49152, localAddress: '203.0.113.1', localPort: 5061 },
          flowId: 'tls:198.51.100.7:49152#3',
          userAgent: 'Phone/1.0',
          node: 'node-a',
          q: 0.5,
        });
        const result = await store.modify(ALICE, (current) => {
          assert.deepEqual(current, []);
          return { next: [b], result: 'created' };
        });
        assert.equal(result, 'created');
        assert.deepEqual(await store.lookup(ALICE), [b]);
        assert.deepEqual(await store.listAors(), [ALICE]);
        assert.equal(await store.count(), 1);
      }));

    it('refreshes a binding in place', () =>
      withStore(async (store, clock) => {
        const first = binding(ALICE, 1, clock.now());
        await upsert(store, first);
        clock.advance(60_000);
        const refreshed = { ...first, expiresAt: clock.now() + HOUR, cseq: 2 };
        await store.modify(ALICE, (current) => {
          assert.equal(current.length, 1);
          assert.equal(current[0]!.cseq, 1);
          return { next: [refreshed], result: undefined };
        });
        const [only, ...rest] = await store.lookup(ALICE);
        assert.deepEqual(rest, []);
        assert.equal(only?.cseq, 2);
        assert.equal(only?.expiresAt, refreshed.expiresAt);
        assert.equal(only?.registeredAt, first.registeredAt);
      }));

    it('removes one binding, then the whole AOR', () =>
      withStore(async (store, clock) => {
        const [a, b, c] = [1, 2, 3].map((n) => binding(ALICE, n, clock.now()));
        await store.modify(ALICE, () => ({ next: [a!, b!, c!], result: undefined }));
        await store.modify(ALICE, (current) => ({ next: current.filter((x) => x.contact !== b!.contact), result: undefined }));
        assert.deepEqual((await store.lookup(ALICE)).map((x) => x.contact).sort(), [a!.contact, c!.contact].sort());
        await store.removeAor(ALICE);
        assert.deepEqual(await store.lookup(ALICE), []);
        assert.deepEqual(await store.listAors(), []);
        await store.removeAor(ALICE);
      }));

    it('an empty next set removes the AOR', () =>
      withStore(async (store, clock) => {
        await upsert(store, binding(ALICE, 1, clock.now()));
        await store.modify(ALICE, () => ({ next: [], result: undefined }));
        assert.deepEqual(await store.listAors(), []);
        assert.equal(await store.count(), 0);
      }));

    it('orders by q descending, then most recently registered first', () =>
      withStore(async (store, clock) => {
        const t = clock.now();
        const low = binding(ALICE, 1, t, { q: 0.1, registeredAt: t - 10 });
        const oldHigh = binding(ALICE, 2, t, { q: 0.9, registeredAt: t - 5 });
        const newHigh = binding(ALICE, 3, t, { q: 0.9, registeredAt: t - 1 });
        const plain = binding(ALICE, 4, t, { registeredAt: t - 20 });
        await store.modify(ALICE, () => ({ next: [low, oldHigh, plain, newHigh], result: undefined }));
        assert.deepEqual(
          (await store.lookup(ALICE)).map((x) => x.contact),
          [plain, newHigh, oldHigh, low].map((x) => x.contact),
        );
      }));

    it('a throwing mutate aborts with no change', () =>
      withStore(async (store, clock) => {
        const b = binding(ALICE, 1, clock.now());
        await upsert(store, b);
        await assert.rejects(
          store.modify(ALICE, (current) => {
            current[0]!.expiresAt = 0;
            current[0]!.path.push('<sip:evil.example>');
            current.length = 0;
            throw new Error('423 Interval Too Brief');
          }),
          /423 Interval Too Brief/,
        );
        assert.deepEqual(await store.lookup(ALICE), [b]);
      }));

    it('refuses malformed next sets with InvalidBindingError and changes nothing', () =>
      withStore(async (store, clock) => {
        const b = binding(ALICE, 1, clock.now());
        await upsert(store, b);
        const bad: Array<[string, Binding[]]> = [
          ['other AOR', [binding('sip:bob@example.com', 2, clock.now())]],
          ['q out of range', [{ ...b, q: 2 }]],
          ['negative cseq', [{ ...b, cseq: -1 }]],
          ['bad port', [{ ...b, source: { ...b.source, port: 70000 } }]],
          ['same contact twice, differing in the case of the scheme', [b, { ...b, contact: b.contact.replace('sip:', 'SIP:') }]],
          ['same outbound flow twice', [
            { ...b, instanceId: '<urn:uuid:1>', regId: 1 },
            { ...binding(ALICE, 2, clock.now()), instanceId: '<urn:uuid:1>', regId: 1 },
          ]],
        ];
        for (const [why, next] of bad) {
          await assert.rejects(store.modify(ALICE, () => ({ next, result: undefined })), InvalidBindingError, why);
        }
        await assert.rejects(
          store.modify(ALICE, () => ({ next: 'nope' as unknown as Binding[], result: undefined })),
          InvalidBindingError,
        );
        assert.deepEqual(await store.lookup(ALICE), [b]);
      }));

    it('hands out copies: editing what it returned changes nothing stored', () =>
      withStore(async (store, clock) => {
        const b = binding(ALICE, 1, clock.now(), { path: ['<sip:edge.example.net;lr>'] });
        const mine = structuredClone(b);
        await upsert(store, mine);
        mine.path.push('<sip:other.example>');
        mine.source.port = 1;
        const [looked] = await store.lookup(ALICE);
        looked!.contactParams.x = 'y';
        looked!.path.length = 0;
        assert.deepEqual(await store.lookup(ALICE), [b]);
      }));

    it('expiry is exact to the ms: returned at T-1, gone at T', () =>
      withStore(async (store, clock) => {
        const expiresAt = clock.now() + 10_000;
        await upsert(store, binding(ALICE, 1, clock.now(), { expiresAt }));
        await upsert(store, binding(ALICE, 2, clock.now(), { expiresAt: expiresAt + 1 }));
        clock.advance(expiresAt - 1 - clock.now());
        assert.equal((await store.lookup(ALICE)).length, 2);
        assert.equal(await store.count(), 2);
        clock.advance(1);
        assert.deepEqual(
          (await store.lookup(ALICE)).map((x) => x.expiresAt),
          [expiresAt + 1],
        );
        assert.equal(await store.count(), 1);
        assert.deepEqual(await store.listAors(), [ALICE]);
        clock.advance(1);
        assert.deepEqual(await store.lookup(ALICE), []);
        assert.equal(await store.count(), 0);
        assert.deepEqual(await store.listAors(), []);
      }));

    it('mutate sees only live bindings, and expired ones in next are dropped', () =>
      withStore(async (store, clock) => {
        const t = clock.now();
        await store.modify(ALICE, () => ({
          next: [binding(ALICE, 1, t, { expiresAt: t + 1000 }), binding(ALICE, 2, t, { expiresAt: t + 5000 })],
          result: undefined,
        }));
        clock.advance(1000);
        const seen = await store.modify(ALICE, (current) => ({
          next: [...current, binding(ALICE, 3, t, { expiresAt: t + 1000 }), binding(ALICE, 4, t, { expiresAt: t })],
          result: current.map((x) => x.contact),
        }));
        assert.deepEqual(seen, [binding(ALICE, 2, t).contact]);
        assert.deepEqual(
          (await store.lookup(ALICE)).map((x) => x.contact),
          [binding(ALICE, 2, t).contact],
        );
      }));

    it('keeps AORs apart and counts across them', () =>
      withStore(async (store, clock) => {
        const aors = ['sip:a@example.com', 'sip:b@example.com', 'sip:c@example.org'];
        for (const [i, aor] of aors.entries()) {
          for (let n = 0; n <= i; n++) await upsert(store, binding(aor, n, clock.now()));
        }
        assert.deepEqual((await store.listAors()).sort(), aors);
        assert.equal(await store.count(), 6);
        assert.equal((await store.lookup('sip:b@example.com')).length, 2);
        assert.deepEqual(await store.lookup('sip:d@example.com'), []);
      }));

    it('concurrent modifies of one AOR lose no update', () =>
      withStore(async (store, clock) => {
        await Promise.all(Array.from({ length: 20 }, (_, n) => upsert(store, binding(ALICE, n, clock.now()))));
        assert.equal((await store.lookup(ALICE)).length, 20);
      }));

    it('runs a single sweep timer, however many bindings, and stops it on close', async () => {
      const clock = new FakeClock(Date.now());
      const opened = await open(clock);
      for (let n = 0; n < 50; n++) await upsert(opened.store, binding(`sip:u${n}@example.com`, n, clock.now()));
      assert.equal(clock.pending, 1);
      await opened.close();
      assert.equal(clock.pending, 0);
    });
  });
}

export function subscriber(username: string, domain: string, overrides: Partial<Subscriber> = {}): Subscriber {
  return {
    username,
    domain,
    ha1Md5: '939e7578ed9e3c518a452acee763bce9',
    ha1Sha256: '7a6ae4f0d5f2e8b5dc4b0f4f9f0e0f5e3ab9d0d1e1b6c2c7d6e6a4a7f8e9d0c1',
    groups: ['staff'],
    createdAt: 1_700_000_000_000,
    ...overrides,
  };
}

export function subscriberStoreSuite(name: string, open: () => Promise<Opened<SubscriberStore>>): void {
  describe(`SubscriberStore contract: ${name}`, () => {
    async function withStore(fn: (store: SubscriberStore) => Promise<void>): Promise<void> {
      const opened = await open();
      try {
        await fn(opened.store);
      } finally {
        await opened.close();
      }
    }

    it('puts, gets, replaces and removes', () =>
      withStore(async (store) => {
        const alice = subscriber('alice', 'example.com');
        assert.equal(await store.get('alice', 'example.com'), undefined);
        await store.put(alice);
        assert.deepEqual(await store.get('alice', 'example.com'), alice);
        const replaced = { ...alice, groups: ['admin', 'staff'], ha1Md5: 'A'.repeat(32) };
        await store.put(replaced);
        assert.deepEqual(await store.get('alice', 'example.com'), replaced);
        assert.equal(await store.remove('alice', 'example.com'), true);
        assert.equal(await store.remove('alice', 'example.com'), false);
        assert.equal(await store.get('alice', 'example.com'), undefined);
        assert.deepEqual(await store.list(), []);
      }));

    it('matches the domain case-insensitively and the username case-sensitively', () =>
      withStore(async (store) => {
        await store.put(subscriber('Alice', 'Example.COM'));
        assert.equal((await store.get('Alice', 'example.com'))?.domain, 'example.com');
        assert.ok(await store.get('Alice', 'EXAMPLE.com'));
        assert.equal(await store.get('alice', 'example.com'), undefined);
        await store.put(subscriber('alice', 'example.com', { groups: [] }));
        assert.deepEqual((await store.get('alice', 'example.com'))?.groups, []);
        assert.deepEqual((await store.get('Alice', 'example.com'))?.groups, ['staff']);
        assert.equal(await store.remove('ALICE', 'example.com'), false);
        assert.equal(await store.remove('Alice', 'EXAMPLE.COM'), true);
      }));

    it('lists all subscribers or one domain, ordered by domain then username', () =>
      withStore(async (store) => {
        for (const [u, d] of [['carol', 'b.example'], ['bob', 'a.example'], ['alice', 'b.example'], ['dave', 'A.example']]) {
          await store.put(subscriber(u!, d!));
        }
        assert.deepEqual(
          (await store.list()).map((s) => `${s.username}@${s.domain}`),
          ['bob@a.example', 'dave@a.example', 'alice@b.example', 'carol@b.example'],
        );
        assert.deepEqual(
          (await store.list('B.example')).map((s) => s.username),
          ['alice', 'carol'],
        );
        assert.deepEqual(await store.list('nowhere.example'), []);
      }));

    it('refuses anything that is not an HA1, so no password is ever stored', () =>
      withStore(async (store) => {
        const bad: Array<[string, Subscriber]> = [
          ['plain password', subscriber('alice', 'example.com', { ha1Md5: 'secret' })],
          ['short sha-256', subscriber('alice', 'example.com', { ha1Sha256: 'ab'.repeat(16) })],
          ['empty username', subscriber('', 'example.com')],
          ['empty domain', subscriber('alice', '')],
          ['groups not strings', subscriber('alice', 'example.com', { groups: [1] as unknown as string[] })],
        ];
        for (const [why, s] of bad) await assert.rejects(store.put(s), InvalidSubscriberError, why);
        assert.deepEqual(await store.list(), []);
      }));

    it('hands out copies', () =>
      withStore(async (store) => {
        const mine = subscriber('alice', 'example.com');
        await store.put(mine);
        mine.groups.push('admin');
        const got = await store.get('alice', 'example.com');
        got!.groups.push('root');
        assert.deepEqual((await store.get('alice', 'example.com'))?.groups, ['staff']);
      }));
  });
}
