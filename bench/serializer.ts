/**
 * Serialiser micro-benchmark: serialize() of (a) a parsed INVITE left as received (every field a byte copy), (b) the
 * same INVITE after a proxy's edits (Via prepended, Max-Forwards decremented, Record-Route added), (c) a response
 * made by createResponse() (copied fields plus a new To with tag). Prints ns/op and MB/s of output; never asserts on time.
 * Run: npx tsc -p . && node dist/bench/serializer.js   (BENCH_OPS sets the operations per case, default 500,000)
 */
import { parseMessage } from '../src/message/parser.js';
import { serialize } from '../src/message/serializer.js';
import { addRecordRoute, decrementMaxForwards, prependVia } from '../src/message/edits.js';
import { createResponse } from '../src/message/response.js';
import type { SipRequest } from '../src/message/message.js';
import { wire, INVITE_LINES, SDP_BODY } from '../test/helpers/messages.js';

const OPS = Number(process.env.BENCH_OPS ?? 500_000);

const inviteBytes = wire(
  [...INVITE_LINES, 'Supported: replaces, timer', 'User-Agent: Example-Phone/1.0', 'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS'],
  SDP_BODY,
);

function parseInvite(): SipRequest {
  const r = parseMessage(inviteBytes);
  if (!r.ok) throw new Error(`the bench's INVITE does not parse: ${r.error.code}`);
  return r.message as SipRequest;
}

let sink = 0;

/** Runs `fn` OPS times after a warm-up; `fn` returns the bytes it produced, for MB/s. */
function measure(label: string, fn: () => number): void {
  const warm = Math.min(OPS, 20_000);
  for (let i = 0; i < warm; i++) sink += fn();
  let bytes = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) bytes += fn();
  const elapsed = Number(process.hrtime.bigint() - start);
  const ns = elapsed / OPS;
  const mbps = bytes / 1e6 / (elapsed / 1e9);
  sink += bytes;
  console.log(`${label.padEnd(54)} ${ns.toFixed(0).padStart(7)} ns/op ${mbps.toFixed(0).padStart(7)} MB/s  (${Math.round(bytes / OPS)} B/msg)`);
}

const untouched = parseInvite();

const edited = parseInvite();
prependVia(edited, 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-proxy-1;rport');
decrementMaxForwards(edited);
addRecordRoute(edited, '<sip:192.0.2.10:5060;lr>');

const response = createResponse(untouched, 200, {
  toTag: 'bench-tag-1',
  headers: [['Contact', '<sip:bob@192.0.2.4>']],
  body: Buffer.from(SDP_BODY),
  contentType: 'application/sdp',
});
const ringing = createResponse(untouched, 180, { toTag: 'bench-tag-1' });

console.log(`INVITE ${inviteBytes.length} bytes; ${OPS.toLocaleString('en-US')} ops per case, node ${process.version}`);
measure('(a) serialize parsed INVITE, unmodified', () => serialize(untouched).length);
measure('(b) serialize INVITE after Via/Max-Forwards/RR edits', () => serialize(edited).length);
measure('(c) serialize created 200 OK (SDP body)', () => serialize(response).length);
measure('(c) serialize created 180 Ringing', () => serialize(ringing).length);
measure('(c) createResponse 180 + serialize', () => serialize(createResponse(untouched, 180, { toTag: 'bench-tag-1' })).length);
measure('    for scale: copy the INVITE bytes (Buffer.from)', () => Buffer.from(inviteBytes).length);
if (sink === 42) console.log('');
