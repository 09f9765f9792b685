/**
 * A running server under the fuzzer (seeded, bounded): 8,000 mutants over UDP from one peer, which also plays the
 * callee of what the server forwards to it, and 640 pipelined mutants on 160 TCP connections cut at random offsets.
 * Afterwards: nothing escaped as an uncaught exception or unhandled rejection (the server runs in this process), a
 * valid OPTIONS and REGISTER are still answered at once over UDP and an OPTIONS over TCP, every server transaction
 * ends once the server's (fake) clock has passed its longest timer, connections close, and the heap did not grow
 * beyond a bound. The peer sends from 127.8.7.6 and the server may send nowhere else.
 * The long run is `npm run bench:fuzz` (bench/fuzz.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { FakeClock } from '../../src/util/clock.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FuzzPeer } from './driver.js';

const SEED = 5118;
const UDP_MUTANTS = 8000;
const TCP_CONNECTIONS = 160;
const PEER = '127.8.7.6';
const DOMAIN = 'sipway.test';

const escaped = { exceptions: [] as unknown[], rejections: [] as unknown[] };
const onException = (e: unknown): void => void escaped.exceptions.push(e);
const onRejection = (e: unknown): void => void escaped.rejections.push(e);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const heapAfterGc = (): number => {
  gc();
  return process.memoryUsage().heapUsed;
};

let ts: TestServer;
let peer: FuzzPeer;
/** The server's time: it moves with real time during the fuzz, then jumps past every timer for the drain. */
const clock = new FakeClock(Date.now());
let ticker: NodeJS.Timeout;

before(async () => {
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  // No authentication: the fuzz is about syntax, and unauthenticated requests go deeper (registrar, proxy, callee).
  ts = await startTestServer(
    { domains: [DOMAIN], auth: { register: false }, proxy: { authenticateCallers: false } },
    { clock, destinationFilter: (address) => address === PEER },
  );
  ticker = setInterval(() => clock.advance(20), 20);
  peer = new FuzzPeer({ seed: SEED, domain: DOMAIN, host: '127.0.0.1', udpPort: ts.port, tcpPort: ts.tcpPort, peerHost: PEER });
  await peer.bind();
});

after(async () => {
  clearInterval(ticker);
  peer.close();
  await ts.stop();
  process.off('uncaughtException', onException);
  process.off('unhandledRejection', onRejection);
});

/** Moves the server's clock `seconds` ahead, a second at a time, letting the I/O each step starts finish. */
async function pass(seconds: number): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    clock.advance(1000);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the server survives the fuzzer and keeps serving', async () => {
  // Warm up so the baseline heap holds the server's steady state, not its first allocations.
  assert.ok((await peer.probe(2000)) !== undefined, 'the server answers before the fuzz');
  const heapBefore = heapAfterGc();

  const missedProbes = await peer.fuzzUdp(UDP_MUTANTS, { burst: 16, window: 200, probeMs: 5000 });
  await peer.fuzzTcp(TCP_CONNECTIONS, 4, 6);
  const c = peer.counters;

  assert.deepEqual(escaped.exceptions, [], 'uncaught exceptions');
  assert.deepEqual(escaped.rejections, [], 'unhandled rejections');
  assert.equal(missedProbes, 0, `${missedProbes} of ${c.probesSent} OPTIONS probes went unanswered during the fuzz`);
  // The mutants must reach the server's logic, not only its parser: answers, and calls forwarded to the peer.
  assert.ok(c.responses > UDP_MUTANTS / 4, `only ${c.responses} answers to ${c.udpSent + c.tcpSent} mutants`);
  assert.ok(c.requestsFromServer > 0, 'no mutant reached the proxy (nothing forwarded to the peer)');

  const live = await peer.liveness(1000);
  assert.ok(live.optionsUdpMs !== undefined, 'OPTIONS over UDP after the fuzz');
  assert.equal(live.registerUdp, 200, 'REGISTER after the fuzz');
  assert.equal(live.optionsTcp, 200, 'OPTIONS over TCP after the fuzz');

  // What the fuzz opened ends: proxied INVITEs by Timer C (180 s), the others by Timer B/F/H/J (32 s) or D (32 s).
  clearInterval(ticker);
  await pass(200);
  // A request may still wait on real-time I/O (a DNS query, a connect) when the clock has run out: give it a round
  // more. A transaction without a timer would stay through every round.
  for (let round = 0; round < 2 && ts.server.transactions.stats().serverTransactions > 0; round++) await pass(200);
  const left = ts.server.transactions.stats();
  assert.equal(left.serverTransactions, 0, 'server transactions left after every timer');
  // Only NAT keep-alive OPTIONS to the bindings the fuzz registered may be under way (one per binding, each ≤ 32 s).
  assert.ok(left.clientTransactions < 64, `${left.clientTransactions} client transactions left after every timer`);
  assert.equal(ts.server.transport.stats().connectionsOpen, 0, 'connections left open');
  const heapGrowth = heapAfterGc() - heapBefore;
  assert.ok(heapGrowth < 48 * 1024 * 1024, `heap grew by ${(heapGrowth / 1048576).toFixed(1)} MB`);
  assert.deepEqual(escaped.exceptions, [], 'uncaught exceptions after the fuzz');
  assert.deepEqual(escaped.rejections, [], 'unhandled rejections after the fuzz');
});
