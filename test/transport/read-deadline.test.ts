import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadDeadline } from '../../src/transport/read-deadline.js';
import { FakeClock } from '../../src/util/clock.js';

test('each message gets the whole deadline from its own first byte, with one timer re-armed for the remainder', () => {
  const clock = new FakeClock();
  let expired = 0;
  const deadline = new ReadDeadline(clock, 1000, () => expired++);
  deadline.begin();
  clock.advance(500);
  deadline.complete();
  clock.advance(200);
  deadline.begin();
  deadline.begin();
  assert.equal(clock.pending, 1, 'no second timer');
  clock.advance(999);
  assert.equal(expired, 0, 'the second message began 700 ms in: due at 1700');
  clock.advance(1);
  assert.equal(expired, 1);
});

test('no deadline between messages, and none once stopped', () => {
  const clock = new FakeClock();
  let expired = 0;
  const deadline = new ReadDeadline(clock, 1000, () => expired++);
  deadline.begin();
  deadline.complete();
  clock.advance(5000);
  assert.equal(expired, 0);
  assert.equal(clock.pending, 0, 'the timer is not re-armed while no message is under way');
  deadline.begin();
  deadline.stop();
  deadline.begin();
  clock.advance(5000);
  assert.equal(expired, 0);
  assert.equal(deadline.running, false);
});
