/**
 * Call-ID steering micro-benchmark (`serve --workers N`): what ownerWorker() costs on the raw bytes of a typical
 * INVITE and 200 OK, beside a full parseMessage() of the same bytes, i.e. what steering a misdirected datagram
 * saves over parsing it. Prints ns/op; never asserts on time.
 * Run: npx tsc -p . && node dist/bench/steering.js   (BENCH_OPS sets the operations per case, default 1,000,000)
 */
import { parseMessage } from '../src/message/parser.js';
import { callIdSpan, ownerWorker } from '../src/message/steering.js';
import { wire, INVITE_LINES, OK_LINES, SDP_BODY } from '../test/helpers/messages.js';

const OPS = Number(process.env.BENCH_OPS ?? 1_000_000);
const WORKERS = 4;

const invite = wire(
  [...INVITE_LINES, 'Supported: replaces, timer', 'User-Agent: Example-Phone/1.0', 'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS'],
  SDP_BODY,
);
const ok = wire([...OK_LINES, 'Record-Route: <sip:proxy.example.com;lr>', 'Server: Example/1.0'], SDP_BODY);
// The worst realistic case for the scan: Call-ID as the last of many headers.
const lateCallId = wire(
  [
    ...INVITE_LINES.filter((l) => !l.startsWith('Call-ID')),
    'Supported: replaces, timer',
    'User-Agent: Example-Phone/1.0',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, SUBSCRIBE, NOTIFY, REFER, INFO, MESSAGE',
    'Record-Route: <sip:p1.example.com;lr>',
    'Record-Route: <sip:p2.example.com;lr>',
    'P-Asserted-Identity: "Alice" <sip:alice@atlanta.example.com>',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  ],
  SDP_BODY,
);

let sink = 0;

/** Runs `fn` OPS times after a warm-up and returns ns per call. */
function measure(label: string, fn: () => void): number {
  const warm = Math.min(OPS, 50_000);
  for (let i = 0; i < warm; i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) fn();
  const ns = Number(process.hrtime.bigint() - start) / OPS;
  console.log(`${label.padEnd(46)} ${ns.toFixed(0).padStart(8)} ns/op ${Math.round(1e9 / ns).toLocaleString('en-US').padStart(14)} op/s`);
  return ns;
}

console.log(`INVITE ${invite.length} bytes, 200 OK ${ok.length} bytes, late-Call-ID INVITE ${lateCallId.length} bytes; ${OPS.toLocaleString('en-US')} ops per case, node ${process.version}`);
for (const [name, bytes] of [
  ['INVITE', invite],
  ['200 OK', ok],
  ['INVITE, Call-ID last header', lateCallId],
] as const) {
  const steer = measure(`ownerWorker ${name}`, () => {
    sink += ownerWorker(bytes, WORKERS) ?? 0;
  });
  measure(`callIdSpan only ${name}`, () => {
    sink += callIdSpan(bytes)?.end ?? 0;
  });
  const parse = measure(`parseMessage ${name}`, () => {
    const r = parseMessage(bytes);
    if (r.ok) sink += r.message.headers.length;
  });
  console.log(`  -> steering costs ${((100 * steer) / parse).toFixed(1)} % of a parse`);
}
if (sink === 42) console.log('');
