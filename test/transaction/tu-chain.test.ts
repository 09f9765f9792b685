import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createResponse, type SipRequest } from '../../src/message/index.js';
import { TransactionUserChain, type ServerTransaction, type TransactionUserModule } from '../../src/transaction/index.js';
import { incomingRequest, responseTo, outgoingRequest, setup } from './helpers.js';

function chainOn(modules: TransactionUserModule[]) {
  const env = setup();
  const logs: Array<{ msg: string; module?: string }> = [];
  const chain = new TransactionUserChain(modules, pino({ level: 'debug' }, { write: (l: string) => logs.push(JSON.parse(l)) }));
  env.layer.setUser(chain);
  return { ...env, chain, logs };
}

test('the first module that claims a request has it; the ones after it never see it', () => {
  const seen: string[] = [];
  const passes: TransactionUserModule = { name: 'passes', claimRequest: (r) => (seen.push(`passes ${r.method}`), false) };
  const options: TransactionUserModule = {
    name: 'options',
    claimRequest: (r, st) => {
      seen.push(`options ${r.method}`);
      if (r.method !== 'OPTIONS') return false;
      st.respond(createResponse(r, 200));
      return true;
    },
  };
  const rest: TransactionUserModule = { name: 'rest', claimRequest: (r, st) => (seen.push(`rest ${r.method}`), st.respond(createResponse(r, 404)), true) };
  const { layer, sender } = chainOn([passes, options, rest]);
  layer.receive(incomingRequest('OPTIONS', { branch: 'z9hG4bKc1' }));
  layer.receive(incomingRequest('MESSAGE', { branch: 'z9hG4bKc2' }));
  assert.deepEqual(seen, ['passes OPTIONS', 'options OPTIONS', 'passes MESSAGE', 'options MESSAGE', 'rest MESSAGE']);
  assert.deepEqual(sender.responses().map((s) => (s.message as { status: number }).status), [200, 404]);
});

test('a request no module claims is answered 500 with a reason and counted; ACKs and strays are counted and dropped', () => {
  const { layer, sender, chain, logs } = chainOn([{ name: 'nothing', claimRequest: () => false }]);
  layer.receive(incomingRequest('INFO', { branch: 'z9hG4bKc3' }));
  const answer = sender.responses(500)[0]?.message as { reason: string } | undefined;
  assert.match(answer?.reason ?? '', /no service for this request/);
  layer.receive(incomingRequest('ACK', { branch: 'z9hG4bKc4', toTag: 'x' }));
  const stray = responseTo(outgoingRequest('OPTIONS', { via: 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnone' }), 200);
  layer.receive(stray);
  assert.deepEqual(chain.stats(), { unclaimedRequests: 1, unclaimedAcks: 1, unclaimedResponses: 1 });
  assert.ok(logs.some((l) => l.msg === 'no module of the transaction user took the request'));
});

test('a module that throws is logged by name and the next one still gets the message', () => {
  const broken: TransactionUserModule = {
    name: 'broken',
    claimRequest: () => {
      throw new Error('bug');
    },
    claimAck: () => {
      throw new Error('bug');
    },
  };
  const acks: SipRequest[] = [];
  const fine: TransactionUserModule = { name: 'fine', claimRequest: (r, st) => (st.respond(createResponse(r, 202)), true), claimAck: (a) => (acks.push(a), true) };
  const { layer, sender, logs } = chainOn([broken, fine]);
  layer.receive(incomingRequest('MESSAGE', { branch: 'z9hG4bKc5' }));
  layer.receive(incomingRequest('ACK', { branch: 'z9hG4bKc6', toTag: 'x' }));
  assert.equal(sender.responses(202).length, 1);
  assert.equal(acks.length, 1);
  assert.deepEqual(logs.filter((l) => l.msg === 'transaction user module threw').map((l) => l.module), ['broken', 'broken']);
});

test('every watching module hears of each final response; without watchers the layer is not asked to tell', () => {
  const heard: string[] = [];
  const answer: TransactionUserModule = { name: 'answer', claimRequest: (r, st) => (st.respond(createResponse(r, 100)), st.respond(createResponse(r, 486)), true) };
  const log1: TransactionUserModule = { name: 'log1', answered: (req, res) => heard.push(`log1 ${req.method} ${res.status}`) };
  const log2: TransactionUserModule = { name: 'log2', answered: (req, res) => heard.push(`log2 ${req.method} ${res.status}`) };
  const { layer } = chainOn([answer, log1, log2]);
  layer.receive(incomingRequest('INVITE', { branch: 'z9hG4bKc7' }));
  assert.deepEqual(heard, ['log1 INVITE 486', 'log2 INVITE 486']);
  assert.equal(new TransactionUserChain([answer]).onAnswered, undefined);
});

test('a failed server transaction is told to every watcher, and logged when none watches', async () => {
  const failed: Array<[string, ServerTransaction]> = [];
  const watcher: TransactionUserModule = { name: 'watch', serverTransactionFailed: (st, err) => failed.push([err.message, st]) };
  const answer: TransactionUserModule = { name: 'answer', claimRequest: (r, st) => (st.respond(createResponse(r, 486)), true) };
  const { layer, clock } = chainOn([answer, watcher]);
  layer.receive(incomingRequest('INVITE', { branch: 'z9hG4bKc8' }));
  clock.advance(32_000); // Timer H: no ACK for the 486
  assert.equal(failed.length, 1);
  assert.match(failed[0]![0], /Timer H/);

  const quiet = chainOn([answer]);
  quiet.layer.receive(incomingRequest('INVITE', { branch: 'z9hG4bKc9' }));
  quiet.clock.advance(32_000);
  assert.ok(quiet.logs.some((l) => l.msg === 'server transaction failed'));
});
