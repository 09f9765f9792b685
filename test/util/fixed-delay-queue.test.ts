import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/util/clock.js';
import { FixedDelayQueue } from '../../src/util/fixed-delay-queue.js';

function recording(clock: FakeClock, delay: number) {
  const expired: Array<[string, number, number]> = [];
  const errors: unknown[] = [];
  const queue = new FixedDelayQueue<string>(clock, delay, (item, tag) => expired.push([item, tag, clock.now()]), (e) => errors.push(e));
  return { queue, expired, errors };
}

test('each entry expires exactly its delay after it was added, in order, with its tag', () => {
  const clock = new FakeClock(0);
  const { queue, expired } = recording(clock, 1000);
  queue.add('a', 1);
  clock.advance(10);
  queue.add('b', 2);
  queue.add('c', 3);
  clock.advance(989);
  assert.deepEqual(expired, []);
  clock.advance(1);
  assert.deepEqual(expired, [['a', 1, 1000]]);
  clock.advance(9);
  assert.equal(expired.length, 1);
  clock.advance(1);
  assert.deepEqual(expired, [['a', 1, 1000], ['b', 2, 1010], ['c', 3, 1010]]);
  assert.equal(queue.size, 0);
});

test('any number of waiting entries holds one clock timer, and none once the queue is empty', () => {
  const clock = new FakeClock(0);
  const { queue, expired } = recording(clock, 500);
  for (let i = 0; i < 10_000; i++) {
    queue.add(`t${i}`, i);
    if (i % 100 === 0) clock.advance(1);
  }
  assert.equal(clock.pending, 1);
  assert.equal(queue.size, 10_000);
  clock.advance(600);
  assert.equal(expired.length, 10_000);
  assert.equal(clock.pending, 0);
  assert.equal(queue.size, 0);
});

test('an entry added while others expire is armed once and expires on time', () => {
  const clock = new FakeClock(0);
  const expired: string[] = [];
  const queue: FixedDelayQueue<string> = new FixedDelayQueue<string>(
    clock,
    100,
    (item) => {
      expired.push(`${item}@${clock.now()}`);
      if (item === 'a') queue.add('from-a', 0);
    },
    () => {},
  );
  queue.add('a', 0);
  clock.advance(100);
  assert.equal(clock.pending, 1, 'one timer for the entry added during expiry');
  clock.advance(100);
  assert.deepEqual(expired, ['a@100', 'from-a@200']);
});

test('an expiry that throws is reported and the entries behind it still expire', () => {
  const clock = new FakeClock(0);
  const errors: unknown[] = [];
  const expired: string[] = [];
  const queue = new FixedDelayQueue<string>(
    clock,
    50,
    (item) => {
      if (item === 'bad') throw new Error('boom');
      expired.push(item);
    },
    (e) => errors.push(e),
  );
  queue.add('bad', 0);
  queue.add('good', 0);
  clock.advance(50);
  assert.deepEqual(expired, ['good']);
  assert.equal((errors[0] as Error).message, 'boom');
});

test('clear drops the entries and the clock timer', () => {
  const clock = new FakeClock(0);
  const { queue, expired } = recording(clock, 100);
  queue.add('a', 0);
  queue.clear();
  assert.equal(clock.pending, 0);
  clock.advance(1000);
  assert.deepEqual(expired, []);
  queue.add('b', 0);
  clock.advance(100);
  assert.deepEqual(expired, [['b', 0, 1100]]);
});
