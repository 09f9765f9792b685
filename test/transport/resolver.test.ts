import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { parseUri, SipUri } from '../../src/message/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { decodeMessage, DnsFormatError } from '../../src/transport/dns-message.js';
import { DnsSipResolver, type DnsSipResolverOptions, type ResolvedTarget } from '../../src/transport/resolver.js';
import { startDnsServer, type DnsServerOptions, type TestDnsServer, type Zone } from '../helpers/dns-server.js';
import { seededRandom } from '../helpers/random.js';

const TIMEOUT_MS = 500;

function sip(text: string): SipUri {
  const uri = parseUri(text);
  assert.ok(uri instanceof SipUri, text);
  return uri;
}

function resolverFor(servers: TestDnsServer[], options: DnsSipResolverOptions = {}): { resolver: DnsSipResolver; clock: FakeClock } {
  const clock = new FakeClock();
  const resolver = new DnsSipResolver({ servers: servers.map((s) => s.address), clock, timeoutMs: TIMEOUT_MS, ...options });
  return { resolver, clock };
}

async function setup(options: DnsServerOptions, resolverOptions: DnsSipResolverOptions = {}) {
  const dns = await startDnsServer(options);
  return { dns, ...resolverFor([dns], resolverOptions) };
}

/** `transport address:port host`, one line per target: the order is the point of most assertions. */
const brief = (targets: ResolvedTarget[]): string[] =>
  targets.map((t) => `${t.transport} ${t.address}:${t.port}${t.host === undefined ? '' : ' ' + t.host}`);

/** A zone with the three RFC 3263 §4.1 NAPTR records, one SRV server for each, and their addresses. */
const EXAMPLE: Zone = {
  'example.com': [
    { type: 'NAPTR', order: 20, preference: 10, flags: 'S', services: 'SIP+D2U', regexp: '', replacement: '_sip._udp.example.com' },
    { type: 'NAPTR', order: 10, preference: 20, flags: 'S', services: 'SIP+D2T', regexp: '', replacement: '_sip._tcp.example.com' },
    { type: 'NAPTR', order: 10, preference: 10, flags: 's', services: 'SIPS+D2T', regexp: '', replacement: '_sips._tcp.example.com' },
    // Neither SCTP nor (by default) WebSocket is supported: both are ignored although they come first.
    { type: 'NAPTR', order: 1, preference: 1, flags: 's', services: 'SIP+D2S', regexp: '', replacement: '_sip._sctp.example.com' },
    { type: 'NAPTR', order: 1, preference: 2, flags: 's', services: 'SIP+D2W', regexp: '', replacement: '_sip._ws.example.com' },
    { type: 'A', address: '192.0.2.100' },
  ],
  '_sip._udp.example.com': [{ type: 'SRV', priority: 10, weight: 0, port: 5060, target: 'udp1.example.com' }],
  '_sip._tcp.example.com': [{ type: 'SRV', priority: 10, weight: 0, port: 5060, target: 'tcp1.example.com' }],
  '_sips._tcp.example.com': [{ type: 'SRV', priority: 10, weight: 0, port: 5061, target: 'tls1.example.com' }],
  '_sip._sctp.example.com': [{ type: 'SRV', priority: 10, weight: 0, port: 5060, target: 'sctp1.example.com' }],
  '_sip._ws.example.com': [{ type: 'SRV', priority: 10, weight: 0, port: 80, target: 'ws1.example.com' }],
  'udp1.example.com': [{ type: 'A', address: '192.0.2.1' }],
  'tcp1.example.com': [{ type: 'A', address: '192.0.2.2' }],
  'tls1.example.com': [{ type: 'A', address: '192.0.2.3' }, { type: 'AAAA', address: '2001:db8::3' }],
  'sctp1.example.com': [{ type: 'A', address: '192.0.2.4' }],
  'ws1.example.com': [{ type: 'A', address: '192.0.2.5' }],
  'plain.example.com': [{ type: 'A', address: '192.0.2.50' }],
  'v6.example.com': [{ type: 'AAAA', address: '2001:DB8:0:0:0:0:0:10' }],
};

test('the test DNS server speaks DNS: node:dns reads its A (with TTL), AAAA, SRV, NAPTR and NXDOMAIN answers', async () => {
  const dns = await startDnsServer({ zone: { ...EXAMPLE, 'ttl.example.com': [{ type: 'A', address: '192.0.2.9', ttl: 42 }] } });
  const stub = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
  stub.setServers([dns.address]);
  assert.deepEqual(await stub.resolve4('ttl.example.com', { ttl: true }), [{ address: '192.0.2.9', ttl: 42 }]);
  assert.deepEqual(await stub.resolve6('v6.example.com'), ['2001:db8::10']);
  assert.deepEqual(await stub.resolveSrv('_sips._tcp.example.com'), [{ name: 'tls1.example.com', port: 5061, priority: 10, weight: 0 }]);
  const naptr = await stub.resolveNaptr('example.com');
  assert.equal(naptr.length, 5);
  assert.deepEqual(naptr.find((r) => r.service === 'SIPS+D2T'), {
    flags: 's',
    service: 'SIPS+D2T',
    regexp: '',
    replacement: '_sips._tcp.example.com',
    order: 10,
    preference: 10,
  });
  await assert.rejects(stub.resolve4('nowhere.example.com'), { code: 'ENOTFOUND' });
  await assert.rejects(stub.resolve4('v6.example.com'), { code: 'ENODATA' });
});

test('the decoder follows compression pointers and rejects pointer loops and truncation', () => {
  const header = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
  const question = [3, ...Buffer.from('sip'), 7, ...Buffer.from('example'), 3, ...Buffer.from('com'), 0, 0, 1, 0, 1];
  const answer = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];
  const m = decodeMessage(Buffer.from([...header, ...question, ...answer]));
  assert.equal(m.id, 0x1234);
  assert.deepEqual(m.questions, [{ name: 'sip.example.com', type: 'A' }]);
  assert.deepEqual(m.answers, [{ name: 'sip.example.com', ttl: 60, type: 'A', address: '192.0.2.1' }]);
  // A name that points at itself, and one cut short.
  assert.throws(() => decodeMessage(Buffer.from([...header.slice(0, 5), 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1])), DnsFormatError);
  assert.throws(() => decodeMessage(Buffer.from([...header, ...question, ...answer.slice(0, -2)])), DnsFormatError);
});

test('a numeric IP needs no DNS: port and transport from the URI, else 5060 UDP for sip and 5061 TLS for sips (§4.1)', async () => {
  const { dns, resolver } = await setup({ zone: EXAMPLE });
  const cases: Array<[string, string]> = [
    ['sip:192.0.2.1', 'udp 192.0.2.1:5060'],
    ['sip:alice@192.0.2.1:5070;transport=TCP', 'tcp 192.0.2.1:5070'],
    ['sips:192.0.2.1', 'tls 192.0.2.1:5061'],
    ['sips:192.0.2.1;transport=tcp', 'tls 192.0.2.1:5061'],
    ['sip:[2001:DB8::1]:5062', 'udp 2001:db8::1:5062'],
    ['sip:192.0.2.1;transport=ws', ''],
    ['sip:example.com;maddr=192.0.2.9', 'udp 192.0.2.9:5060'],
  ];
  for (const [uri, expected] of cases) {
    assert.deepEqual(brief(await resolver.resolve(sip(uri))), expected ? [expected] : [], uri);
  }
  assert.equal(dns.queries.length, 0);
});

test('an explicit port means A/AAAA only, no NAPTR or SRV (§4.2); IPv4 first, then IPv6', async () => {
  const { dns, resolver } = await setup({ zone: EXAMPLE });
  assert.deepEqual(brief(await resolver.resolve(sip('sip:tls1.example.com:5080'))), [
    'udp 192.0.2.3:5080 tls1.example.com',
    'udp 2001:db8::3:5080 tls1.example.com',
  ]);
  assert.deepEqual(brief(await resolver.resolve(sip('sips:v6.example.com:5071'))), ['tls 2001:db8::10:5071 v6.example.com']);
  assert.deepEqual(
    dns.queries.map((q) => `${q.type} ${q.name}`).sort(),
    ['A tls1.example.com', 'A v6.example.com', 'AAAA tls1.example.com', 'AAAA v6.example.com'],
  );
});

test('a transport parameter without a port: SRV for that transport, else the host at the default port (§4.2)', async () => {
  const { dns, resolver } = await setup({ zone: EXAMPLE });
  assert.deepEqual(brief(await resolver.resolve(sip('sip:example.com;transport=tcp'))), ['tcp 192.0.2.2:5060 tcp1.example.com']);
  assert.deepEqual(brief(await resolver.resolve(sip('sip:example.com;transport=tls'))), [
    'tls 192.0.2.3:5061 tls1.example.com',
    'tls 2001:db8::3:5061 tls1.example.com',
  ]);
  assert.deepEqual(brief(await resolver.resolve(sip('sip:plain.example.com;transport=tcp'))), ['tcp 192.0.2.50:5060 plain.example.com']);
  assert.equal(dns.count('example.com', 'NAPTR'), 0);
  assert.equal(dns.count('_sip._tcp.example.com', 'SRV'), 1);
  assert.equal(dns.count('_sips._tcp.example.com', 'SRV'), 1);
  assert.equal(dns.count('_sip._tcp.plain.example.com', 'SRV'), 1);
});

test('NAPTR -> SRV -> A: supported services in order/preference, each followed by its SRV targets (§4.1)', async () => {
  const { dns, resolver } = await setup({ zone: EXAMPLE });
  assert.deepEqual(brief(await resolver.resolve(sip('sip:bob@example.com'))), [
    'tls 192.0.2.3:5061 tls1.example.com',
    'tls 2001:db8::3:5061 tls1.example.com',
    'tcp 192.0.2.2:5060 tcp1.example.com',
    'udp 192.0.2.1:5060 udp1.example.com',
  ]);
  assert.equal(dns.count('_sip._sctp.example.com', 'SRV'), 0);
  assert.equal(dns.count('_sip._ws.example.com', 'SRV'), 0);

  // A sips URI keeps only SIPS services; a WebSocket-capable element also gets the D2W service.
  assert.deepEqual(brief(await resolver.resolve(sip('sips:bob@example.com'))), [
    'tls 192.0.2.3:5061 tls1.example.com',
    'tls 2001:db8::3:5061 tls1.example.com',
  ]);
  const ws = resolverFor([dns], { supportedTransports: ['ws', 'udp'] }).resolver;
  assert.deepEqual(brief(await ws.resolve(sip('sip:example.com'))), ['ws 192.0.2.5:80 ws1.example.com', 'udp 192.0.2.1:5060 udp1.example.com']);
});

test('without NAPTR: SRV for each supported transport in order udp, tcp, tls; sips asks only _sips._tcp', async () => {
  const zone: Zone = {
    'srv.example.com': [],
    '_sip._tcp.srv.example.com': [{ type: 'SRV', priority: 1, weight: 0, port: 5070, target: 'tcp1.example.com' }],
    '_sips._tcp.srv.example.com': [{ type: 'SRV', priority: 1, weight: 0, port: 5071, target: 'tls1.example.com' }],
    ...EXAMPLE,
  };
  const { dns, resolver } = await setup({ zone });
  assert.deepEqual(brief(await resolver.resolve(sip('sip:srv.example.com'))), [
    'tcp 192.0.2.2:5070 tcp1.example.com',
    'tls 192.0.2.3:5071 tls1.example.com',
    'tls 2001:db8::3:5071 tls1.example.com',
  ]);
  assert.equal(dns.count('_sip._udp.srv.example.com', 'SRV'), 1);
  const before = dns.queries.length;
  assert.deepEqual(brief(await resolver.resolve(sip('sips:srv.example.com'))), [
    'tls 192.0.2.3:5071 tls1.example.com',
    'tls 2001:db8::3:5071 tls1.example.com',
  ]);
  assert.equal(dns.queries.length, before, 'everything came from the cache');
});

test('no NAPTR and no SRV: the A/AAAA records at 5060 UDP (sip) or 5061 TLS (sips); an unknown name gives nothing', async () => {
  const { dns, resolver } = await setup({ zone: EXAMPLE });
  assert.deepEqual(brief(await resolver.resolve(sip('sip:plain.example.com'))), ['udp 192.0.2.50:5060 plain.example.com']);
  assert.deepEqual(brief(await resolver.resolve(sip('sips:plain.example.com'))), ['tls 192.0.2.50:5061 plain.example.com']);
  assert.deepEqual(brief(await resolver.resolve(sip('sip:v6.example.com'))), ['udp 2001:db8::10:5060 v6.example.com']);
  assert.deepEqual(await resolver.resolve(sip('sip:nowhere.example.com')), []);
  const asked = dns.queries.filter((q) => q.name.endsWith('plain.example.com')).map((q) => `${q.type} ${q.name}`);
  assert.equal(asked[0], 'NAPTR plain.example.com');
  assert.deepEqual(asked.slice(1, 4).sort(), ['SRV _sip._tcp.plain.example.com', 'SRV _sip._udp.plain.example.com', 'SRV _sips._tcp.plain.example.com']);
  assert.deepEqual(asked.slice(4, 6).sort(), ['A plain.example.com', 'AAAA plain.example.com']);
  assert.equal(asked.length, 6, 'the sips resolution reused every cached answer');
  // A CNAME is followed to the addresses.
  const alias = await setup({ zone: { ...EXAMPLE, 'alias.example.com': [{ type: 'CNAME', target: 'plain.example.com' }] } });
  assert.deepEqual(brief(await alias.resolver.resolve(sip('sip:alias.example.com:5060'))), ['udp 192.0.2.50:5060 alias.example.com']);
});

test('SRV: lowest priority first, RFC 2782 weighted selection within a priority (seeded random)', async () => {
  const zone: Zone = {
    '_sip._udp.weighted.example.com': [
      { type: 'SRV', priority: 10, weight: 60, port: 5060, target: 'a.example.com' },
      { type: 'SRV', priority: 20, weight: 0, port: 5060, target: 'backup.example.com' },
      { type: 'SRV', priority: 10, weight: 20, port: 5060, target: 'b.example.com' },
      { type: 'SRV', priority: 10, weight: 0, port: 5060, target: 'c.example.com' },
    ],
    'a.example.com': [{ type: 'A', address: '192.0.2.10' }],
    'b.example.com': [{ type: 'A', address: '192.0.2.11' }],
    'c.example.com': [{ type: 'A', address: '192.0.2.12' }],
    'backup.example.com': [{ type: 'A', address: '192.0.2.13' }],
  };
  const uri = sip('sip:weighted.example.com;transport=udp');
  // Running sums over [c 0, a 60, b 80]: 0.99 * 81 -> 80 picks b; then over [c 0, a 60]: 0 picks c; then a; then backup.
  const script = [0.99, 0];
  const { dns, resolver } = await setup({ zone }, { random: () => script.shift() ?? 0.5 });
  assert.deepEqual(
    (await resolver.resolve(uri)).map((t) => t.host),
    ['b.example.com', 'c.example.com', 'a.example.com', 'backup.example.com'],
  );

  const counts = new Map<string, number>();
  const spread = resolverFor([dns], { random: seededRandom(7) }).resolver;
  for (let i = 0; i < 4000; i++) {
    const first = (await spread.resolve(uri))[0]!.host!;
    counts.set(first, (counts.get(first) ?? 0) + 1);
  }
  // Expected shares of the first pick: a 60/81, b 20/81, c 1/81; the backup is never first.
  assert.ok(Math.abs(counts.get('a.example.com')! / 4000 - 60 / 81) < 0.03, JSON.stringify([...counts]));
  assert.ok(Math.abs(counts.get('b.example.com')! / 4000 - 20 / 81) < 0.03, JSON.stringify([...counts]));
  assert.ok((counts.get('c.example.com') ?? 0) < 120);
  assert.equal(counts.get('backup.example.com'), undefined);
  assert.equal(dns.count('_sip._udp.weighted.example.com', 'SRV'), 2, 'one query per resolver, then the cache');
});

test('SRV targets come from the additional section when the server sends them (no A/AAAA queries)', async () => {
  const { dns, resolver } = await setup({ zone: EXAMPLE, additional: true });
  assert.deepEqual(brief(await resolver.resolve(sip('sips:example.com'))), [
    'tls 192.0.2.3:5061 tls1.example.com',
    'tls 2001:db8::3:5061 tls1.example.com',
  ]);
  assert.deepEqual(
    dns.queries.map((q) => `${q.type} ${q.name}`),
    ['NAPTR example.com', 'SRV _sips._tcp.example.com'],
  );
});

test('answers are cached for the minimum TTL of their RRset, then asked again', async () => {
  const zone: Zone = {
    'short.example.com': [
      { type: 'A', address: '192.0.2.20', ttl: 90 },
      { type: 'A', address: '192.0.2.21', ttl: 30 },
    ],
  };
  const { dns, clock, resolver } = await setup({ zone, negativeTtl: 120 });
  const uri = sip('sip:short.example.com:5060');
  const expected = ['udp 192.0.2.20:5060 short.example.com', 'udp 192.0.2.21:5060 short.example.com'];
  assert.deepEqual(brief(await resolver.resolve(uri)), expected);
  assert.deepEqual(brief(await resolver.resolve(uri)), expected);
  assert.equal(dns.count('short.example.com', 'A'), 1);
  clock.advance(29_000);
  await resolver.resolve(uri);
  assert.equal(dns.count('short.example.com', 'A'), 1);
  clock.advance(2_000);
  assert.deepEqual(brief(await resolver.resolve(uri)), expected);
  assert.equal(dns.count('short.example.com', 'A'), 2, 'asked again after 30 s');
  // The no-data answer for AAAA is cached for the SOA's 120 s (RFC 2308 §5).
  assert.equal(dns.count('short.example.com', 'AAAA'), 1);
  clock.advance(88_000);
  await resolver.resolve(uri);
  assert.equal(dns.count('short.example.com', 'AAAA'), 1);
  clock.advance(2_000);
  await resolver.resolve(uri);
  assert.equal(dns.count('short.example.com', 'AAAA'), 2);
});

test('negative answers without an SOA are cached 30 s; the cache holds at most cacheMaxEntries answers', async () => {
  const { dns, clock, resolver } = await setup({ zone: EXAMPLE, negativeTtl: null });
  await resolver.resolve(sip('sip:nowhere.example.com:5060'));
  clock.advance(29_000);
  await resolver.resolve(sip('sip:nowhere.example.com:5060'));
  assert.equal(dns.count('nowhere.example.com', 'A'), 1);
  clock.advance(2_000);
  await resolver.resolve(sip('sip:nowhere.example.com:5060'));
  assert.equal(dns.count('nowhere.example.com', 'A'), 2);

  // Two entries: one host's A and AAAA. A second host pushes them out.
  const small = resolverFor([dns], { cacheMaxEntries: 2 }).resolver;
  const before = dns.count('plain.example.com', 'A');
  await small.resolve(sip('sip:plain.example.com:5060'));
  await small.resolve(sip('sip:plain.example.com:5060'));
  assert.equal(dns.count('plain.example.com', 'A'), before + 1);
  await small.resolve(sip('sip:v6.example.com:5060'));
  await small.resolve(sip('sip:plain.example.com:5060'));
  assert.equal(dns.count('plain.example.com', 'A'), before + 2);
});

test('markFailed blocklists a target for blocklistMs; when all are blocklisted all are returned (§4.3)', async () => {
  const zone: Zone = {
    '_sip._udp.pair.example.com': [
      { type: 'SRV', priority: 1, weight: 0, port: 5060, target: 'a.pair.example.com' },
      { type: 'SRV', priority: 2, weight: 0, port: 5060, target: 'b.pair.example.com' },
    ],
    'a.pair.example.com': [{ type: 'A', address: '192.0.2.30', ttl: 3600 }],
    'b.pair.example.com': [{ type: 'A', address: '192.0.2.31', ttl: 3600 }],
  };
  const { clock, resolver } = await setup({ zone, negativeTtl: 3600 }, { blocklistMs: 5_000 });
  const uri = sip('sip:pair.example.com;transport=udp');
  const [first, second] = await resolver.resolve(uri);
  assert.equal(first?.address, '192.0.2.30');
  resolver.markFailed(first!);
  assert.deepEqual(brief(await resolver.resolve(uri)), ['udp 192.0.2.31:5060 b.pair.example.com']);
  resolver.markFailed(second!);
  assert.deepEqual(brief(await resolver.resolve(uri)), ['udp 192.0.2.30:5060 a.pair.example.com', 'udp 192.0.2.31:5060 b.pair.example.com']);
  clock.advance(4_999);
  assert.equal((await resolver.resolve(uri)).length, 2);
  clock.advance(1);
  assert.deepEqual(brief(await resolver.resolve(uri)), ['udp 192.0.2.30:5060 a.pair.example.com', 'udp 192.0.2.31:5060 b.pair.example.com']);
  // Keyed by transport, address and port: a TCP failure says nothing about UDP to the same server.
  resolver.markFailed({ transport: 'tcp', address: '192.0.2.30', port: 5060 });
  assert.equal((await resolver.resolve(uri))[0]?.address, '192.0.2.30');
  // A numeric target is blocklisted the same way, and being the only one, still returned.
  resolver.markFailed({ transport: 'udp', address: '192.0.2.40', port: 5060 });
  assert.deepEqual(brief(await resolver.resolve(sip('sip:192.0.2.40'))), ['udp 192.0.2.40:5060']);
});

test('a DNS server that does not answer is given up after timeoutMs and the next one asked', async () => {
  const dead = await startDnsServer({ zone: {}, behaviour: () => 'drop' });
  const live = await startDnsServer({ zone: EXAMPLE });
  const { resolver, clock } = resolverFor([dead, live]);
  const pending = resolver.resolve(sip('sip:plain.example.com:5060'));
  await dead.waitForQueries(2); // A and AAAA, in parallel
  clock.advance(TIMEOUT_MS);
  assert.deepEqual(brief(await pending), ['udp 192.0.2.50:5060 plain.example.com']);
  assert.equal(live.queries.length, 2);
});

test('a NAPTR query that times out counts as no NAPTR: SRV is still tried', async () => {
  const { dns, clock, resolver } = await setup({ zone: EXAMPLE, behaviour: (q) => (q.type === 'NAPTR' ? 'drop' : 'answer') });
  const pending = resolver.resolve(sip('sip:example.com'));
  for (let round = 1; round <= 2; round++) {
    await dns.waitForQueries(round);
    clock.advance(TIMEOUT_MS);
  }
  assert.deepEqual(brief(await pending), [
    'udp 192.0.2.1:5060 udp1.example.com',
    'tcp 192.0.2.2:5060 tcp1.example.com',
    'tls 192.0.2.3:5061 tls1.example.com',
    'tls 2001:db8::3:5061 tls1.example.com',
  ]);
  // A failure is not cached: the next resolution asks again.
  const again = resolver.resolve(sip('sip:example.com'));
  await dns.waitForQueries(dns.queries.length + 1);
  assert.equal(dns.count('example.com', 'NAPTR'), 3);
  clock.advance(TIMEOUT_MS);
  await dns.waitForQueries(dns.queries.length + 1);
  clock.advance(TIMEOUT_MS);
  assert.equal((await again).length, 4);
});

test('when DNS never answers, resolution ends empty after a bounded time: two rounds per query, stages in parallel', async () => {
  const { dns, clock, resolver } = await setup({ zone: EXAMPLE, behaviour: () => 'drop' });
  const started = clock.now();
  const pending = resolver.resolve(sip('sip:example.com'));
  // NAPTR twice, the three SRV queries twice, A and AAAA twice.
  let expected = 0;
  for (const batch of [1, 1, 3, 3, 2, 2]) {
    expected += batch;
    await dns.waitForQueries(expected);
    clock.advance(TIMEOUT_MS);
  }
  assert.deepEqual(await pending, []);
  assert.equal(dns.queries.length, 12);
  assert.equal(clock.now() - started, 6 * TIMEOUT_MS);
});

test('SERVFAIL and a refused port move on to the next server at once', async () => {
  const failing = await startDnsServer({ zone: EXAMPLE, behaviour: () => 'servfail' });
  const live = await startDnsServer({ zone: EXAMPLE });
  const closed = createSocket('udp4');
  await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
  const closedPort = closed.address().port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const clock = new FakeClock();
  const resolver = new DnsSipResolver({ servers: [`127.0.0.1:${closedPort}`, failing.address, live.address], clock, timeoutMs: TIMEOUT_MS });
  assert.deepEqual(brief(await resolver.resolve(sip('sip:plain.example.com:5060'))), ['udp 192.0.2.50:5060 plain.example.com']);
  assert.equal(failing.queries.length, 2);
});

test('a server the socket cannot even connect to (no route, bad address) moves on to the next, it does not crash', async () => {
  const live = await startDnsServer({ zone: EXAMPLE });
  const clock = new FakeClock();
  // A link-local address without a zone: connect() fails with EINVAL, as it fails with ENETUNREACH on a host
  // with no route to its resolver.
  const resolver = new DnsSipResolver({ servers: ['[fe80::1]:53', live.address], clock, timeoutMs: TIMEOUT_MS });
  assert.deepEqual(brief(await resolver.resolve(sip('sip:plain.example.com:5060'))), ['udp 192.0.2.50:5060 plain.example.com']);
});

test('a truncated UDP answer is asked again over TCP; a large SRV set is bounded', async () => {
  const zone: Zone = {
    '_sip._tcp.big.example.com': Array.from({ length: 24 }, (_, i) => ({
      type: 'SRV' as const,
      priority: i,
      weight: 0,
      port: 5060,
      target: `a-rather-long-host-name-to-fill-the-datagram-${i}.example.com`,
    })),
    ...Object.fromEntries(
      Array.from({ length: 24 }, (_, i) => [`a-rather-long-host-name-to-fill-the-datagram-${i}.example.com`, [{ type: 'A' as const, address: `192.0.2.${100 + i}` }]]),
    ),
  };
  const { dns, resolver } = await setup({ zone });
  const targets = await resolver.resolve(sip('sip:big.example.com;transport=tcp'));
  assert.deepEqual(
    dns.queries.filter((q) => q.type === 'SRV').map((q) => q.transport),
    ['udp', 'tcp'],
  );
  assert.equal(targets.length, 16);
  assert.deepEqual(targets.slice(0, 2).map((t) => t.address), ['192.0.2.100', '192.0.2.101']);
});

test('what cannot be resolved gives no targets and asks nothing', async () => {
  const { dns, resolver } = await setup({ zone: EXAMPLE });
  for (const uri of [
    'sip:example.com;transport=sctp',
    'sips:example.com;transport=udp',
    'sip:example.com;transport=ws',
    `sip:${'x'.repeat(64)}.example.com`,
  ]) {
    assert.deepEqual(await resolver.resolve(sip(uri)), [], uri);
  }
  assert.deepEqual(await resolver.resolve(parseUri('tel:+15551234567')), []);
  assert.equal(dns.queries.length, 0);
  assert.throws(() => new DnsSipResolver({ servers: ['dns.example.com'] }), ConfigError);
  assert.throws(() => new DnsSipResolver({ servers: [] }), /dns.servers/);
  assert.throws(() => new DnsSipResolver({ servers: ['127.0.0.1'], timeoutMs: 0 }), /dns.timeoutMs/);
});
