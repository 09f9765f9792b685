/**
 * Parser micro-benchmark: messages/s for a typical INVITE (with SDP) and a 200 OK, parse only and parse +
 * serialise after proxy edits. Prints figures; never asserts on time.  Run: npm run bench:parser
 */
import { parseMessage, serialize, prependVia, decrementMaxForwards, type SipRequest } from '../src/message/index.js';
import { wire, INVITE_LINES, OK_LINES, SDP_BODY } from '../test/helpers/messages.js';

const invite = wire(
  [...INVITE_LINES, 'Supported: replaces, timer', 'User-Agent: Example-Phone/1.0', 'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS'],
  SDP_BODY,
);
const ok = wire([...OK_LINES, 'Record-Route: <sip:proxy.example.com;lr>', 'Server: Example/1.0'], SDP_BODY);

function measure(label: string, fn: () => void, ms = 1500): void {
  for (let i = 0; i < 20000; i++) fn(); // warm-up for the JIT
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 1000; i++) fn();
    n += 1000;
    now = process.hrtime.bigint();
  }
  const seconds = Number(now - start) / 1e9;
  const rate = n / seconds;
  console.log(`${label.padEnd(44)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} msg/s   ${(1e6 / rate).toFixed(2)} µs/msg`);
}

let sink = 0;
console.log(`INVITE ${invite.length} bytes, 200 OK ${ok.length} bytes, node ${process.version}`);
measure('parse INVITE (hot headers)', () => {
  const r = parseMessage(invite);
  if (r.ok) sink += r.message.headers.length;
});
measure('parse 200 OK (hot headers)', () => {
  const r = parseMessage(ok);
  if (r.ok) sink += r.message.headers.length;
});
measure('parse INVITE + read Contact/Route lazily', () => {
  const r = parseMessage(invite);
  if (r.ok) sink += r.message.contacts.length + r.message.routes.length;
});
measure('parse INVITE + proxy edits + serialise', () => {
  const r = parseMessage(invite);
  if (!r.ok) return;
  const m = r.message as SipRequest;
  prependVia(m, 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbench1');
  decrementMaxForwards(m);
  sink += serialize(m).length;
});
if (sink === 42) console.log('');
