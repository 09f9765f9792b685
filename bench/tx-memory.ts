/**
 * Memory (V8 heap and buffers) retained per live non-INVITE server transaction in the Completed state (a REGISTER answered 200, waiting for
 * Timer J): what a REGISTER flood keeps alive for 32 s over UDP. Prints bytes per transaction; asserts nothing.
 * Run: npm run build && node --expose-gc dist/bench/tx-memory.js
 */
import { createResponse, parseMessage, type SipRequest } from '../src/message/index.js';
import { NonInviteServerTransaction, resolveTimerConfig, type AnyTransaction, type TransactionEnv } from '../src/transaction/index.js';
import { SystemClock } from '../src/util/clock.js';
import { FixedDelayQueue } from '../src/util/fixed-delay-queue.js';
import { silentLogger } from '../src/util/logger.js';

const COUNT = Number(process.env.BENCH_TRANSACTIONS ?? 50000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const clock = new SystemClock();
const timers = resolveTimerConfig();
const waits = new FixedDelayQueue<AnyTransaction>(clock, 64 * timers.T1, (t, tag) => t.waitExpired(tag), () => {});
const env: TransactionEnv = {
  sender: { isReliable: () => false, send: async () => {}, resend: async () => {}, listenerFor: () => undefined },
  clock,
  timers,
  logger: silentLogger(),
  waits: { add: (_ms, t, tag) => waits.add(t, tag) },
  observer: { stateChanged() {}, retransmitted() {}, timedOut() {}, serverFailed() {}, answered() {} },
};

function register(i: number): SipRequest {
  const text = [
    `REGISTER sip:bench.test SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-${i}-bench;rport`,
    'Max-Forwards: 70',
    `From: <sip:user${i}@bench.test>;tag=${i}`,
    `To: <sip:user${i}@bench.test>`,
    `Call-ID: ${i}-reg@127.0.0.1`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:user${i}@127.0.0.1:5070>`,
    'Expires: 3600',
    'User-Agent: SIPp',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const r = parseMessage(Buffer.from(text));
  if (!r.ok) throw new Error(`the bench's REGISTER does not parse: ${r.error.code}`);
  const req = r.message as SipRequest;
  req.source = { transport: 'udp', address: '127.0.0.1', port: 5070, localAddress: '127.0.0.1', localPort: 5060, flowId: 'udp:1', receivedAt: 0 };
  return req;
}

const live: NonInviteServerTransaction[] = [];
gc();
// Buffers live outside the V8 heap (arrayBuffers): a kept slice of a pooled buffer costs its whole pool there.
const before = process.memoryUsage();
for (let i = 0; i < COUNT; i++) {
  const req = register(i);
  const st = new NonInviteServerTransaction(env, `z9hG4bK-${i}-bench`, req);
  const res = createResponse(req, 200, { headers: [['Contact', `<sip:user${i}@127.0.0.1:5070>;expires=3600`], ['Date', new Date().toUTCString()]] });
  st.respond(res);
  live.push(st);
}
gc();
const after = process.memoryUsage();
const each = (key: 'heapUsed' | 'arrayBuffers'): number => Math.round((after[key] - before[key]) / COUNT);
console.log(`${COUNT} non-INVITE server transactions in Completed (REGISTER + 200): ${each('heapUsed')} bytes of heap and ${each('arrayBuffers')} bytes of buffers each`);
for (const st of live) st.terminate();
waits.clear();
