/**
 * Redis stopped in the middle of service and started again: a call to a user, a REGISTER and a lookup while it is
 * away get a prompt 5xx whose reason says the store failed, never a hang; requests that need no store are still
 * answered; once Redis is back the same calls go through, with no restart of sipway.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { skipWithout } from '../helpers/process.js';
import { startRedisServer } from '../store/redis-server.js';
import { startProxy } from '../proxy/harness.js';
import { invite, outOfDialog, register } from '../proxy/ua.js';
import { assertAnswers, assertReleased, since } from './faults.js';

test('Redis away: calls and REGISTERs get a prompt 5xx naming the store, and succeed again once it is back', { timeout: 60000, skip: skipWithout('redis-server') }, async () => {
  const redis = await startRedisServer({ appendfsync: 'always' });
  const h = await startProxy({}, { store: redis.url });
  try {
    const alice = await h.ua('alice');
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    await redis.kill();
    const answers: string[] = [];
    for (const what of ['INVITE', 'MESSAGE', 'REGISTER'] as const) {
      const start = performance.now();
      let res;
      if (what === 'INVITE') {
        const inv = invite(alice, { to: 'sip:bob@sipway.test' });
        alice.send(inv, h.port);
        res = await alice.response(inv.callId, undefined, 10000);
      } else if (what === 'MESSAGE') {
        const msg = outOfDialog(alice, 'MESSAGE', 'sip:bob@sipway.test');
        alice.send(msg, h.port);
        res = await alice.response(msg.callId, undefined, 10000);
      } else {
        const carol = await h.ua('carol');
        const reg = outOfDialog(carol, 'REGISTER', 'sip:sipway.test', [`Contact: <${carol.contact()}>`, 'Expires: 600'], 'sip:carol@sipway.test');
        carol.send(reg, h.port);
        res = await carol.response(reg.callId, undefined, 10000);
      }
      answers.push(`${what}: ${res.status} ${res.reason} in ${since(start)} ms`);
    }
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
