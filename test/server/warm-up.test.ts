import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmUp } from '../../src/server/warm-up.js';

test('warm-up runs its synthetic calls through parser, transactions and serializer and leaves nothing running', () => {
  const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  // Every synthetic message must parse and every transaction must take its response: warmUp throws otherwise.
  assert.equal(warmUp(60_000, 200), 200, 'stops at maxCalls');
  const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  assert.equal(timersAfter, timersBefore, 'the transactions it made are closed with their timers');
});

test('warm-up stops at its time budget', () => {
  assert.equal(warmUp(0, 1000), 0);
});
