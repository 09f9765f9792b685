/**
 * Redis stopped in the middle of service and started again: a call to a user, a REGISTER and a lookup while it is
 * away get a prompt 5xx whose reason says the store failed, never a hang; requests that need no store are still
 * answered; once Redis is back the same calls go through, with no restart of sipway.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SipRequest } from '../../src/message/index.js';
import { skipWithout } from '../helpers/process.js';
import { startRedisServer } from '../store/redis-server.js';
import { startProxy } from '../proxy/harness.js';
import { invite, outOfDialog, register } from '../proxy/ua.js';
import { assertAnswers, assertReleased, registerOnce, since } from './faults.js';

test('Redis away: calls and REGISTERs get a prompt 5xx naming the store, and succeed again once it is back', { timeout: 60000, skip: skipWithout('redis-server') }, async () => {
  const redis = await startRedisServer({ appendfsync: 'always' });
  const h = await startProxy({}, { store: redis.url });
  try {
    const alice = await h.ua('alice');
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    await redis.kill();
    const timed = async (what: string, answer: () => Promise<string>): Promise<string> => {
      const start = performance.now();
      return `${what}: ${await answer()} in ${since(start)} ms`;
    };
    const final = async (req: SipRequest): Promise<string> => {
      alice.send(req, h.port);
      const res = await alice.response(req.callId, undefined, 10000);
      return `${res.status} ${res.reason}`;
    };
    const answers = [
      await timed('INVITE', () => final(invite(alice, { to: 'sip:bob@sipway.test' }))),
      await timed('MESSAGE', () => final(outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test'))),
      await timed('REGISTER', async () => registerOnce(await h.ua('carol'), h.port, 'carol')),
    ];
    for (const a of answers) assert.match(a, /^(INVITE|MESSAGE|REGISTER): 500 Server Internal Error - store unavailable \(Redis\) in \d+ ms$/);
    // Prompt: ioredis gives up a command after two reconnection attempts.
    for (const a of answers) assert.ok(Number(/in (\d+) ms/.exec(a)![1]) < 3000, a);
    await assertAnswers(h.port, 'while Redis is away');
    await assertReleased(h.ts.server);
    await redis.restart();
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    assert.equal((await alice.response(inv.callId, undefined, 10000)).status, 200, 'the call goes through once Redis is back');
  } finally {
    await h.stop();
    await redis.stop();
  }
});
