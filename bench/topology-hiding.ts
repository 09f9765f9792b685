/**
 * Topology hiding micro-benchmark (src/proxy/topology-hiding.ts): the proxy's work on the messages of one call
 * (INVITE out, 180 and 200 back, ACK out, BYE from the callee in, its 200 back) with the mode on and off: each
 * message parsed off the wire, routed (§16.4, one branch built) and serialised as the proxy does, timed apart from
 * the phones' side (which the bench plays too). Also the hiding's own calls alone (encode + decode: arrived, hide,
 * response), and the encoding alone. Prints figures; never asserts on time.
 * Run: npx tsc -p tsconfig.json && node dist/bench/topology-hiding.js
 */
import { createResponse, parseMessage, serialize, type AnyMessage, type SipRequest, type SipResponse, type SipUri } from '../src/message/index.js';
import { Forwarder, ProxyIdentity, routedCopy, TopologyCodec, TopologyHiding, type ProxySender } from '../src/proxy/index.js';
import { FlowTokens, type BoundListener, type Destination, type SipResolver } from '../src/transport/index.js';

const US: BoundListener = { transport: 'udp', host: '10.0.0.1', port: 5060, advertised: '10.0.0.1:5060' };
const identity = new ProxyIdentity({ domains: ['example.com'], isLocalHost: (h, p) => h === US.host && (p === undefined || p === US.port), listeners: () => [US] });
const sender: ProxySender = { listeners: () => [US], listenerFor: () => US, send: async () => undefined, resend: async () => undefined, isReliable: (t) => t !== 'udp' };
const resolver: SipResolver = { resolve: async () => [], markFailed: () => undefined };
const tokens = new FlowTokens('bench-flow-token-secret-000000000');
const TO_BOB: Destination = { transport: 'udp', address: '203.0.113.5', port: 5070 };
const TO_ALICE: Destination = { transport: 'udp', address: '10.1.0.9', port: 5062 };
const ALICE = { address: '10.1.0.9', port: 5062 };
const BOB = { address: '203.0.113.5', port: 5070 };
const SDP = 'v=0\r\no=- 1 1 IN IP4 10.1.0.9\r\ns=-\r\nc=IN IP4 10.1.0.9\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n';

function bytes(lines: string[], body = ''): Buffer {
  return Buffer.from([...lines, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n'));
}

function parse<T extends AnyMessage>(b: Buffer, from?: { address: string; port: number }): T {
  const r = parseMessage(b);
  if (!r.ok) throw new Error(r.error.toString());
  if (from) r.message.source = { transport: 'udp', ...from, localAddress: US.host, localPort: US.port, flowId: 'udp', receivedAt: 0 };
  return r.message as T;
}

interface Proxy {
  hiding: TopologyHiding | undefined;
  forwarder: Forwarder;
}

function proxy(hide: boolean): Proxy {
  const hiding = hide ? new TopologyHiding({ secret: 'bench-topology-hiding-secret-0000', outside: ['203.0.113.0/24'] }) : undefined;
  hiding?.attach({ identity, sender, tokens });
  if (hiding) instrument(hiding);
  const options = { sender, resolver, tokens };
  return { hiding, forwarder: hiding?.forwarder(options) ?? new Forwarder(options) };
}

let n = 0;
/** Nanoseconds spent in the proxy's steps (not the phones'), and in the hiding's own calls. */
const spent = { proxy: 0n, hiding: 0n };

function timed<T>(bucket: 'proxy' | 'hiding', fn: () => T): T {
  const start = process.hrtime.bigint();
  try {
    return fn();
  } finally {
    spent[bucket] += process.hrtime.bigint() - start;
  }
}

/** Times every call into the hiding (they run inside the proxy's timed steps). */
function instrument(h: TopologyHiding): void {
  for (const name of ['arrived', 'adopt', 'hide', 'response'] as const) {
    const original = h[name].bind(h) as (...args: unknown[]) => unknown;
    (h as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => timed('hiding', () => original(...args));
  }
}

/** A request as the proxy handles it: parsed, arrival, §16.4, one branch to `hop`, serialised. */
async function forward(p: Proxy, b: Buffer, from: { address: string; port: number }, hop: Destination, branch: string, recordRoute: boolean): Promise<Buffer> {
  const work = timed('proxy', () => {
    const req = parse<SipRequest>(b, from);
    const arrival = p.hiding?.arrived(req);
    const copy = routedCopy(req, identity, tokens).work;
    if (arrival) p.hiding!.adopt(copy, arrival);
    return copy;
  });
  // No DNS: the target has its destination, so prepare is the copy for the branch.
  const start = process.hrtime.bigint();
  const prepared = await p.forwarder.prepare(work, { uri: work.uri as SipUri, routeSet: [], q: 1, destination: hop });
  spent.proxy += process.hrtime.bigint() - start;
  return timed('proxy', () => serialize(p.forwarder.build(prepared, hop, branch, recordRoute ? { inbound: US, inboundFlow: undefined } : undefined)));
}

/** A response as the proxy handles it: parsed, the hiding's entry point, our Via off, serialised. */
function answer(p: Proxy, b: Buffer): Buffer {
  return timed('proxy', () => {
    const res = parse<SipResponse>(b);
    if (p.hiding && !p.hiding.response(res)) throw new Error('dropped');
    res.headers.removeFirstValue('via');
    return serialize(res);
  });
}

/** One call through the proxy; returns the bytes it sent (to keep the work alive). */
async function call(p: Proxy): Promise<number> {
  const id = ++n;
  const callId = `${id.toString(36)}a84b4c76e66710@10.1.0.9`;
  let sent = 0;
  const invite = bytes(
      [
        'INVITE sip:bob@example.com SIP/2.0',
        `Via: SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bK${id}a;rport=5062;received=10.1.0.9`,
        'Max-Forwards: 70',
        'From: "Alice" <sip:alice@example.com>;tag=1928301774',
        'To: <sip:bob@example.com>',
        `Call-ID: ${callId}`,
        'CSeq: 1 INVITE',
        'Contact: <sip:alice@10.1.0.9:5062;ob>',
        'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY',
        'Supported: 100rel, timer, replaces',
        'Content-Type: application/sdp',
      ],
      SDP,
    );
  const outInvite = await forward(p, invite, ALICE, TO_BOB, `z9hG4bKsw${id.toString(16).padStart(16, '0')}.i`, true);
  sent += outInvite.length;
  const atBob = parse<SipRequest>(outInvite);
  const ringing = serialize(createResponse(atBob, 180, { toTag: 'b1', headers: [['Contact', '<sip:bob@203.0.113.5:5070>']] }));
  sent += answer(p, ringing).length;
  const okBytes = serialize(createResponse(atBob, 200, { toTag: 'b1', headers: [['Contact', '<sip:bob@203.0.113.5:5070>'], ['Content-Type', 'application/sdp']], body: Buffer.from(SDP) }));
  const ok = parse<SipResponse>(Buffer.from(answer(p, okBytes)));
  sent += ok.headers.length;
  // Alice's ACK along her route set (the 200's Record-Route reversed), to Bob's Contact as she got it.
  const aliceRoute = ok.headers.list('record-route').reverse();
  const ack = bytes([
      `ACK ${ok.contacts[0]!.uri.toString()} SIP/2.0`,
      `Via: SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bK${id}ack;rport=5062;received=10.1.0.9`,
      ...aliceRoute.map((r) => `Route: ${r}`),
      'Max-Forwards: 70',
      'From: "Alice" <sip:alice@example.com>;tag=1928301774',
      'To: <sip:bob@example.com>;tag=b1',
      `Call-ID: ${callId}`,
      'CSeq: 1 ACK',
    ]);
  sent += (await forward(p, ack, ALICE, TO_BOB, `z9hG4bKsw${id.toString(16).padStart(16, '0')}.sl`, false)).length;
  // Bob's BYE along his route set (the INVITE's Record-Route), to Alice's Contact as he got it.
  const bye = bytes([
      `BYE ${atBob.contacts[0]!.uri.toString()} SIP/2.0`,
      `Via: SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bK${id}bye;rport=5070;received=203.0.113.5`,
      ...atBob.headers.list('record-route').map((r) => `Route: ${r}`),
      'Max-Forwards: 70',
      'From: <sip:bob@example.com>;tag=b1',
      'To: "Alice" <sip:alice@example.com>;tag=1928301774',
      `Call-ID: ${atBob.callId}`,
      'CSeq: 2 BYE',
    ]);
  const outBye = await forward(p, bye, BOB, TO_ALICE, `z9hG4bKsw${id.toString(16).padStart(16, '0')}.b`, true);
  sent += outBye.length;
  sent += answer(p, serialize(createResponse(parse<SipRequest>(outBye), 200))).length;
  return sent;
}

/**
 * Runs calls for `ms`; returns µs per call of the proxy's steps and of the hiding's own calls (wall clock, timed
 * around them), and the process's CPU time per call for everything (the phones' side included): on a busy machine
 * the CPU time is the steadier figure.
 */
async function measure(label: string, p: Proxy, ms: number): Promise<{ proxy: number; hiding: number; cpu: number }> {
  let calls = 0;
  let sink = 0;
  spent.proxy = spent.hiding = 0n;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 200; i++) sink += await call(p);
    calls += 200;
    now = process.hrtime.bigint();
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = (cpu.user + cpu.system) / calls;
  const proxyUs = Number(spent.proxy) / 1e3 / calls;
  const hidingUs = Number(spent.hiding) / 1e3 / calls;
  const detail = p.hiding ? `, of which the hiding's own calls ${hidingUs.toFixed(1)} µs` : '';
  console.log(`${label.padEnd(34)} CPU ${cpuUs.toFixed(1).padStart(6)} µs/call; proxy steps ${proxyUs.toFixed(1).padStart(6)} µs/call${detail}   [${sink > 0 ? calls : 0} calls]`);
  return { proxy: proxyUs, hiding: hidingUs, cpu: cpuUs };
}

function micro(label: string, fn: () => unknown, ms = 800): void {
  for (let i = 0; i < 20000; i++) fn();
  let count = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 1000; i++) fn();
    count += 1000;
    now = process.hrtime.bigint();
  }
  console.log(`${label.padEnd(52)} ${(Number(now - start) / 1e3 / count).toFixed(2).padStart(7)} µs`);
}

const off = proxy(false);
const on = proxy(true);
console.log(`node ${process.version}; one call = INVITE out, 180 and 200 back, ACK out, BYE in (from the callee), its 200 back`);
// Warm-up, then alternate so that both see the same machine.
for (let i = 0; i < 3000; i++) {
  await call(off);
  await call(on);
}
const offs: number[] = [];
const ons: number[] = [];
const own: number[] = [];
const cpuOff: number[] = [];
const cpuOn: number[] = [];
for (let round = 0; round < 5; round++) {
  const a = await measure(`hiding off (round ${round + 1})`, off, 1000);
  offs.push(a.proxy);
  cpuOff.push(a.cpu);
  const r = await measure(`hiding on  (round ${round + 1})`, on, 1000);
  ons.push(r.proxy);
  own.push(r.hiding);
  cpuOn.push(r.cpu);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const added = median(ons) - median(offs);
const addedCpu = median(cpuOn) - median(cpuOff);
console.log(`medians of 5 rounds, per call (6 messages): ${on.hiding!.stats().hidden} requests hidden in all`);
console.log(`  the hiding's own calls (encode + decode: arrived, hide, response): ${median(own).toFixed(1)} µs (${(median(own) / 6).toFixed(2)} µs/message)`);
console.log(`  the proxy's steps: ${median(offs).toFixed(1)} -> ${median(ons).toFixed(1)} µs (+${added.toFixed(1)} µs: the hiding and the longer messages)`);
console.log(`  CPU time, phones' side included: ${median(cpuOff).toFixed(1)} -> ${median(cpuOn).toFixed(1)} µs (+${addedCpu.toFixed(1)} µs)`);

const codec = new TopologyCodec('bench-topology-hiding-secret-0000');
const via = 'SIP/2.0/UDP 10.1.0.9:5062;branch=z9hG4bK776asdhds;rport=5062;received=10.1.0.9';
const viaEncoded = codec.seal('via', via);
let k = 0;
micro('encode a Via value (AES-256-CTR + HMAC-SHA256)', () => codec.seal('via', via + (k++ & 1023)));
micro('decode a Via value', () => codec.open('via', viaEncoded));
micro('encode a Call-ID, not seen before', () => codec.seal('call-id', `${k++}a84b4c76e66710@10.1.0.9`));
micro('encode a Call-ID again (cached: the rest of the dialog)', () => codec.seal('call-id', 'a84b4c76e66710@10.1.0.9'));
