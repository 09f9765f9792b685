/**
 * The message layer under the fuzzer (seeded, so a failure replays): 50,000 mutants of the torture corpora and of
 * our call flows through parseMessage, the typed views the layers above read, the 400 a server builds for a bad
 * request, SDP, and the stream framer. Nothing may throw except the documented HeaderSyntaxError of a typed view,
 * and no single input may take more than 50 ms (a catastrophic regular expression would).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createResponse,
  HeaderSyntaxError,
  parseMessage,
  serialize,
  SipRequest,
  StreamFramer,
  validateRequest,
  type AnyMessage,
} from '../../src/message/index.js';
import { parseSdp } from '../../src/sdp/index.js';
import { Mutator, type Mutant } from './mutator.js';
import { callFlowSeeds, corpusSeeds } from './seeds.js';

const SEED = 4475;
const MUTANTS = 50_000;
const SLOW_MS = 50;

function seeds(): Buffer[] {
  const flow = (transport: 'UDP' | 'TCP') =>
    callFlowSeeds({ domain: 'sipway.test', serverHost: '127.0.0.1', serverPort: 5060, peerHost: '127.8.7.6', peerPort: 40000, transport }).map((s) => s.bytes);
  return [...corpusSeeds().map((s) => s.bytes), ...flow('UDP'), ...flow('TCP')];
}

/**
 * What the layers above read of an accepted message; only HeaderSyntaxError may come out (it means "answer 400").
 * For a rejected request the transport builds the 400 alone, which must work whatever the fault.
 */
function readLikeTheServer(m: AnyMessage, accepted: boolean): void {
  if (!accepted) {
    if (m instanceof SipRequest) serialize(createResponse(m, 400, { reason: 'Bad Request' }));
    return;
  }
  const views: Array<() => unknown> = [
    () => m.vias,
    () => m.via,
    () => m.cseq,
    () => m.from,
    () => m.to,
    () => m.contacts,
    () => m.routes,
    () => m.recordRoutes,
    () => m.maxForwards,
    () => (m instanceof SipRequest ? m.uri.toString() : m.status),
    () => (m instanceof SipRequest ? validateRequest(m) : undefined),
    () => (m.body.length > 0 ? parseSdp(m.body) : undefined),
  ];
  for (const read of views) {
    try {
      read();
    } catch (e) {
      if (!(e instanceof HeaderSyntaxError)) throw e;
    }
  }
  if (m instanceof SipRequest) serialize(createResponse(m, 400, { reason: 'Bad Request' }));
}

function describe(i: number, mutant: Mutant): string {
  const head = mutant.bytes.subarray(0, 300).toString('latin1');
  return `mutant #${i} of seed ${SEED} (operators ${mutant.operators.join(', ')}): ${JSON.stringify(head)}`;
}

/**
 * The least of three timings of `run`: a catastrophic pattern is slow every time, a pause of a shared machine (GC,
 * another process, a cold JIT) is not. Only inputs whose first run was slow are run again.
 */
function steadyMs(run: () => void, first: number): number {
  if (first < SLOW_MS) return first;
  let least = first;
  for (let i = 0; i < 2; i++) {
    const started = performance.now();
    run();
    least = Math.min(least, performance.now() - started);
  }
  return least;
}

/** Parses one mutant as the transport would and reads it as the layers above would; throws what escapes. */
function parseAndRead(bytes: Buffer, stream: boolean, what: () => string): boolean {
  const r = parseMessage(bytes, { stream });
  if (r.ok) {
    // A proxy forwards what it accepted: our own serialisation of it must parse again.
    const again = parseMessage(serialize(r.message));
    assert.ok(again.ok, `re-serialised message does not parse (${again.ok ? '' : again.error.toString()}): ${what()}`);
  }
  if (r.message) readLikeTheServer(r.message, r.ok);
  return r.ok;
}

test(`parseMessage, the typed views and the 400 answer survive ${MUTANTS} mutants, each within ${SLOW_MS} ms`, () => {
  const mutator = new Mutator(SEED, seeds());
  let accepted = 0;
  for (let i = 0; i < MUTANTS; i++) {
    const mutant = mutator.mutate();
    const what = (): string => describe(i, mutant);
    const run = (): boolean => parseAndRead(mutant.bytes, i % 2 === 1, what);
    const started = performance.now();
    try {
      if (run()) accepted++;
    } catch (e) {
      assert.fail(`${(e as Error).stack}\n${what()}`);
    }
    const took = steadyMs(run, performance.now() - started);
    assert.ok(took < SLOW_MS, `${took.toFixed(1)} ms for ${what()}`);
  }
  // The mutants must not all be rejected at the start line: some get through to the checks behind it.
  assert.ok(accepted > MUTANTS * 0.05, `only ${accepted} of ${MUTANTS} mutants parsed: the mutator no longer reaches past the first checks`);
});

test('the stream framer frames pipelined mutants cut at random offsets without throwing, each piece parseable', () => {
  const mutator = new Mutator(SEED + 1, seeds());
  for (let connection = 0; connection < 2000; connection++) {
    const mutants = Array.from({ length: mutator.rng.range(1, 6) }, () => mutator.mutate().bytes);
    const chunks = mutator.streamChunks(mutants);
    const run = (): void => {
      const framed: Buffer[] = [];
      let failed = false;
      const framer = new StreamFramer({ message: (b) => framed.push(b), ping: () => {}, error: () => (failed = true) });
      for (const chunk of chunks) framer.push(chunk);
      for (const bytes of framed) parseAndRead(bytes, true, () => `connection ${connection}`);
      assert.ok(failed || framer.pendingBytes <= 65535, 'the framer holds more than a message');
    };
    const started = performance.now();
    run();
    const took = steadyMs(run, performance.now() - started);
    assert.ok(took < SLOW_MS * mutants.length, `connection ${connection}: ${took.toFixed(1)} ms for ${mutants.length} messages`);
  }
});

test('valid messages cut at any offsets come out of the framer exactly as written', () => {
  const mutator = new Mutator(SEED + 2, []);
  const valid = callFlowSeeds({ domain: 'sipway.test', serverHost: '127.0.0.1', serverPort: 5060, peerHost: '127.8.7.6', peerPort: 40000, transport: 'TCP' }).map((s) => s.bytes);
  for (let round = 0; round < 500; round++) {
    const messages = Array.from({ length: mutator.rng.range(1, 8) }, () => mutator.rng.pick(valid));
    const framed: Buffer[] = [];
    const framer = new StreamFramer({ message: (b) => framed.push(Buffer.from(b)), ping: () => {}, error: (e) => assert.fail(e.toString()) });
    for (const chunk of mutator.streamChunks(messages)) framer.push(chunk);
    assert.deepEqual(framed, messages, `round ${round}`);
  }
});
