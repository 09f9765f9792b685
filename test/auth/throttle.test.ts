import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthFailureThrottle } from '../../src/auth/throttle.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';

const SRC = '192.0.2.10:5060';

function failTimes(throttle: AuthFailureThrottle, n: number, source: string, user?: string): boolean[] {
  return Array.from({ length: n }, () => throttle.recordFailure(source, user));
}

test('defaults: delays grow after 3 failures, 10 failures in 60 s block for 300 s', () => {
  const clock = new FakeClock();
  const throttle = new AuthFailureThrottle({ clock });
  assert.deepEqual(throttle.check(SRC, 'alice'), { blocked: false, delayMs: 0 });
  const delays: number[] = [];
  for (let i = 0; i < 9; i++) {
    assert.equal(throttle.recordFailure(SRC, 'alice'), false);
    delays.push(throttle.check(SRC, 'alice').delayMs);
  }
  assert.deepEqual(delays, [0, 0, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  assert.equal(throttle.recordFailure(SRC, 'alice'), true, 'the 10th failure starts a block');
  assert.deepEqual(throttle.check(SRC), { blocked: true, delayMs: 0 });
  assert.equal(throttle.recordFailure(SRC, 'alice'), false, 'a block is reported once');
  clock.advance(300_000 - 1);
  assert.equal(throttle.check(SRC).blocked, true);
  clock.advance(1);
  assert.deepEqual(throttle.check(SRC, 'alice'), { blocked: false, delayMs: 0 });
  assert.equal(throttle.recordFailure(SRC, 'alice'), false, 'counting starts afresh after a block');
});

test('failures older than the window are forgotten', () => {
  const clock = new FakeClock();
  const throttle = new AuthFailureThrottle({ clock });
  failTimes(throttle, 9, SRC);
  clock.advance(59_999);
  assert.equal(throttle.check(SRC).delayMs, 5000);
  clock.advance(1);
  assert.deepEqual(throttle.check(SRC), { blocked: false, delayMs: 0 });
  assert.deepEqual(failTimes(throttle, 10, SRC).indexOf(true), 9);
});

test('a user guessed at from many sources: the guessers are refused, a new source is slowed but not locked out', () => {
  const clock = new FakeClock();
  const throttle = new AuthFailureThrottle({ clock, maxFailuresPerUser: 5 });
  throttle.recordSuccess('198.51.100.7', 'alice');
  const results = Array.from({ length: 5 }, (_, i) => throttle.recordFailure(`203.0.113.${i}`, 'alice'));
  assert.deepEqual(results, [false, false, false, false, true]);
  // The sources that guessed are refused for alice (not for others);
  assert.equal(throttle.check('203.0.113.0', 'alice').blocked, true);
  assert.equal(throttle.check('203.0.113.0', 'bob').blocked, false);
  // a source that never failed (alice on a new network) has her password checked, after the longest delay;
  assert.deepEqual(throttle.check('192.0.2.200', 'alice'), { blocked: false, delayMs: 5000 });
  assert.equal(throttle.check('192.0.2.200', 'bob').delayMs, 0);
  // one where she has logged in before is not even slowed.
  assert.deepEqual(throttle.check('198.51.100.7', 'alice'), { blocked: false, delayMs: 0 });
});

test('success clears the user count but not the source count', () => {
  const clock = new FakeClock();
  const throttle = new AuthFailureThrottle({ clock });
  failTimes(throttle, 4, SRC, 'alice');
  throttle.recordSuccess(SRC, 'alice');
  assert.equal(throttle.check('192.0.2.99:5060', 'alice').delayMs, 0);
  assert.equal(throttle.check(SRC, 'bob').delayMs, 1000);
});

test('memory is bounded per table; flooding usernames cannot evict a source block', () => {
  const clock = new FakeClock();
  const throttle = new AuthFailureThrottle({ clock, maxTrackedKeys: 3, maxFailuresPerSource: 2 });
  failTimes(throttle, 2, SRC, 'x');
  for (let i = 0; i < 50; i++) throttle.recordFailure('198.51.100.1:5060', `user${i}`);
  for (let i = 0; i < 50; i++) throttle.recordSuccess(`198.51.100.${i}:5060`, 'alice');
  assert.deepEqual(throttle.trackedKeys, { sources: 2, users: 3, trusted: 3 });
  assert.equal(throttle.check(SRC).blocked, true);
  // A full source table forgets the least recently failed source first.
  failTimes(throttle, 1, '192.0.2.77:5060');
  failTimes(throttle, 1, '192.0.2.78:5060');
  assert.equal(throttle.trackedKeys.sources, 3);
  assert.equal(throttle.check(SRC).blocked, false);
});

test('entries that no longer matter are dropped as new failures arrive', () => {
  const clock = new FakeClock();
  const throttle = new AuthFailureThrottle({ clock });
  failTimes(throttle, 1, '192.0.2.1:5060', 'a');
  failTimes(throttle, 1, '192.0.2.2:5060', 'b');
  clock.advance(60_000);
  failTimes(throttle, 1, '192.0.2.3:5060', 'c');
  assert.deepEqual(throttle.trackedKeys, { sources: 1, users: 1, trusted: 0 });
});

test('configuration is checked', () => {
  const clock = new FakeClock();
  assert.throws(() => new AuthFailureThrottle({ clock, windowMs: 0 }), ConfigError);
  assert.throws(() => new AuthFailureThrottle({ clock, maxFailuresPerSource: -1 }), ConfigError);
  assert.throws(() => new AuthFailureThrottle({ clock, maxDelayMs: Number.NaN }), ConfigError);
});
