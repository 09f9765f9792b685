/**
 * Transaction lookup micro-benchmark, as TransactionLayer.receive() does it: a request is looked up by serverKey()
 * (RFC 3261 branch + sent-by + method) in the server Map, a response by clientKeyOfResponse() (branch + CSeq method)
 * in the client Map. Measured with layers holding 10,000 and 100,000 live transactions (non-INVITE, kept in Trying by
 * a clock whose timers never fire): the full receive() of a retransmitted request / a provisional response, and
 * the key function + Map.get alone. Messages are parsed beforehand (the parser pre-seeds the top Via and CSeq views,
 * as on a real receive). Prints ns/op; never asserts on time.
 * Run: npx tsc -p . && node dist/bench/tx-lookup.js   (BENCH_OPS sets lookups per case, default 1,000,000)
 */
import { parseMessage } from '../src/message/parser.js';
import type { AnyMessage, SipRequest, SipResponse } from '../src/message/message.js';
import { TransactionLayer, type TransactionUser } from '../src/transaction/transaction-layer.js';
import { clientKeyOfResponse, serverKey } from '../src/transaction/matching.js';
import type { Clock, TimerHandle } from '../src/util/clock.js';
import type { Destination, MessageSender } from '../src/transport/types.js';

const OPS = Number(process.env.BENCH_OPS ?? 1_000_000);
const SIZES = [10_000, 100_000];
/** Lookups cycle through this many distinct message objects, spread over the whole key range. */
const POOL = 8192;

const NEVER: TimerHandle = { cancel() {} };
const clock: Clock = { now: () => Date.now(), setTimer: () => NEVER };
const sender: MessageSender = {
  send: async () => {},
  resend: async () => {},
  isReliable: () => false,
  listenerFor: () => undefined,
};
const user: TransactionUser = { onRequest() {}, onAck() {}, onStrayResponse() {} };
const destination: Destination = { transport: 'udp', address: '192.0.2.50', port: 5060 };

function parse(text: string): AnyMessage {
  const r = parseMessage(Buffer.from(text));
  if (!r.ok) throw new Error(`the bench's message does not parse: ${r.error.code}`);
  return r.message;
}

/** The header fields an OPTIONS and its 100 Trying share: the dialog and transaction identifiers of call i. */
function shared(i: number): string[] {
  return [`From: <sip:user${i}@bench.test>;tag=f${i}`, 'To: <sip:bench.test>', `Call-ID: ${i}-c7d9e1@198.51.100.1`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''];
}

function options(i: number, side: 'in' | 'out'): SipRequest {
  const req = parse(
    [
      'OPTIONS sip:bench.test SIP/2.0',
      `Via: SIP/2.0/UDP 198.51.100.${i % 250}:5060;branch=z9hG4bK-${side}-${i}-a8f3c2;rport`,
      'Max-Forwards: 70',
      ...shared(i),
    ].join('\r\n'),
  ) as SipRequest;
  req.source = { transport: 'udp', address: `198.51.100.${i % 250}`, port: 5060, localAddress: '192.0.2.1', localPort: 5060, flowId: 'udp:1', receivedAt: 0 };
  return req;
}

function trying(i: number): SipResponse {
  return parse(
    ['SIP/2.0 100 Trying', `Via: SIP/2.0/UDP 198.51.100.${i % 250}:5060;branch=z9hG4bK-out-${i}-a8f3c2;rport`, ...shared(i)].join('\r\n'),
  ) as SipResponse;
}

let sink = 0;

function measure(label: string, fn: (i: number) => void): void {
  const warm = Math.min(OPS, 100_000);
  for (let i = 0; i < warm; i++) fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - start) / OPS;
  console.log(`${label.padEnd(58)} ${ns.toFixed(0).padStart(6)} ns/op`);
}

/** POOL indices spread evenly over 0..size-1, shuffled so that lookups do not walk the Map in insertion order. */
function spread(size: number): number[] {
  const out = Array.from({ length: POOL }, (_, k) => Math.floor((k * size) / POOL));
  for (let k = out.length - 1; k > 0; k--) {
    const j = Math.floor(Math.random() * (k + 1));
    [out[k], out[j]] = [out[j]!, out[k]!];
  }
  return out;
}

console.log(`${OPS.toLocaleString('en-US')} lookups per case over ${POOL} distinct messages, node ${process.version}`);
const mask = POOL - 1;
for (const size of SIZES) {
  console.log(`\n${size.toLocaleString('en-US')} live server transactions`);
  const servers = new TransactionLayer({ sender, clock, maxTransactions: 4 * size });
  servers.setUser(user);
  const keyed = new Map<string, object>();
  for (let i = 0; i < size; i++) {
    const req = options(i, 'in');
    servers.receive(req);
    keyed.set(serverKey(req), req);
  }
  if (servers.stats().serverTransactions !== size) throw new Error('server transactions were not all created');
  const retransmissions = spread(size).map((i) => options(i, 'in'));
  const strangers = spread(size).map((i) => options(size + i, 'in'));
  measure('receive() retransmitted request (key + Map hit + absorb)', (i) => servers.receive(retransmissions[i & mask]!));
  measure('serverKey() alone', (i) => {
    sink += serverKey(retransmissions[i & mask]!).length;
  });
  measure('serverKey() + Map.get, hit', (i) => {
    if (keyed.get(serverKey(retransmissions[i & mask]!))) sink++;
  });
  measure('serverKey() + Map.get, miss (a new request)', (i) => {
    if (keyed.get(serverKey(strangers[i & mask]!))) sink++;
  });
  servers.close();
  keyed.clear();

  console.log(`${size.toLocaleString('en-US')} live client transactions`);
  const clients = new TransactionLayer({ sender, clock, maxTransactions: 4 * size });
  clients.setUser(user);
  const clientKeyed = new Map<string, object>();
  const handlers = { onResponse() {}, onTimeout() {}, onTransportError() {} };
  for (let i = 0; i < size; i++) {
    const ct = clients.sendRequest(options(i, 'out'), destination, handlers);
    clientKeyed.set(ct.id, ct);
  }
  const responses = spread(size).map((i) => trying(i));
  measure('receive() 100 Trying (key + Map hit + state machine)', (i) => clients.receive(responses[i & mask]!));
  measure('clientKeyOfResponse() + Map.get, hit', (i) => {
    const key = clientKeyOfResponse(responses[i & mask]!);
    if (key !== undefined && clientKeyed.get(key)) sink++;
  });
  clients.close();
  clientKeyed.clear();
}
if (sink === 42) console.log('');
