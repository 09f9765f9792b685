import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryLocationStore } from '../../src/store/memory-location-store.js';
import { MemorySubscriberStore } from '../../src/store/subscriber-store.js';
import { FakeClock } from '../../src/util/clock.js';
import { binding, locationStoreSuite, subscriberStoreSuite, upsert } from './suites.js';

locationStoreSuite('memory', async (clock) => {
  const store = new MemoryLocationStore(clock);
  return { store, close: () => store.close() };
});

subscriberStoreSuite('memory', async () => {
  const store = new MemorySubscriberStore();
  return { store, close: () => store.close() };
});

it('memory: the periodic sweep purges expired bindings and only those', async () => {
  const clock = new FakeClock();
  const store = new MemoryLocationStore(clock, { sweepIntervalMs: 30_000 });
  await upsert(store, binding('sip:a@example.com', 1, clock.now(), { expiresAt: clock.now() + 10_000 }));
  await upsert(store, binding('sip:a@example.com', 2, clock.now(), { expiresAt: clock.now() + 60_000 }));
  await upsert(store, binding('sip:b@example.com', 3, clock.now(), { expiresAt: clock.now() + 20_000 }));
  clock.advance(29_999);
  assert.equal(await store.sweep(), 2, 'an explicit sweep purges what has expired');
  assert.equal(await store.sweep(), 0);
  clock.advance(31_000); // past binding 2's expiry and the second period: the timer sweeps it
  assert.equal(await store.sweep(), 0);
  assert.equal(await store.count(), 0);
  await store.close();
});
