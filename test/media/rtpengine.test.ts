import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { MediaRelayError, RtpEngineRelay, type RelayCallStats } from '../../src/media/index.js';
import { decodeBencodeDict, encodeBencode, bencodeText, type BencodeDict, type BencodeInput } from '../../src/util/bencode.js';
import { FakeClock } from '../../src/util/clock.js';
import { closedUdpPort } from '../helpers/process.js';
import { rtpengineMissing, startRtpEngine, type RunningRtpEngine } from '../helpers/rtpengine.js';
import { until } from '../helpers/waits.js';

const LOOPBACK = '127.0.0.1';

// --- a scripted ng server ------------------------------------------------------------------------------------------

interface NgRequest {
  cookie: string;
  dict: BencodeDict;
  command: string;
  from: dgram.RemoteInfo;
}

/** A dgram socket that speaks the ng protocol as scripted: `answer` decides per request what goes back, if anything. */
class FakeNg {
  readonly requests: NgRequest[] = [];
  answer: (req: NgRequest, fake: FakeNg) => void = (req) => this.reply(req, { result: 'ok' });

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (msg, from) => {
      const space = msg.indexOf(0x20);
      const req: NgRequest = { cookie: msg.toString('latin1', 0, space), dict: decodeBencodeDict(msg.subarray(space + 1), { strings: 'utf8' }), command: '', from };
      req.command = bencodeText(req.dict.command) ?? '';
      this.requests.push(req);
      this.answer(req, this);
    });
  }

  static async start(): Promise<FakeNg> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
    return new FakeNg(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  reply(req: NgRequest, dict: BencodeInput, cookie = req.cookie): void {
    this.raw(req, Buffer.concat([Buffer.from(`${cookie} `), encodeBencode(dict)]));
  }

  raw(req: NgRequest, bytes: Buffer | string): void {
    this.socket.send(bytes, req.from.port, req.from.address);
  }

  commands(): string[] {
    return this.requests.map((r) => r.command);
  }

  close(): void {
    this.socket.close();
  }
}

async function fixture(t: { after(fn: () => unknown): void }, options: Partial<ConstructorParameters<typeof RtpEngineRelay>[0]> = {}): Promise<{ fake: FakeNg; relay: RtpEngineRelay }> {
  const fake = await FakeNg.start();
  const relay = new RtpEngineRelay({ address: LOOPBACK, port: fake.port, timeoutMs: 2000, ...options });
  t.after(async () => {
    await relay.close();
    fake.close();
  });
  return { fake, relay };
}

const sdpFor = (port: number, formats = '0 8 101', host = LOOPBACK): string =>
  ['v=0', `o=- 1 1 IN IP4 ${host}`, 's=-', `c=IN IP4 ${host}`, 't=0 0', `m=audio ${port} RTP/AVP ${formats}`, 'a=rtpmap:101 telephone-event/8000', 'a=sendrecv', ''].join('\r\n');

async function rejection(p: Promise<unknown>): Promise<MediaRelayError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MediaRelayError, `a MediaRelayError, not ${String(err)}`);
    return err;
  }
  assert.fail('resolved');
}

/** Lets loopback datagrams arrive (bounded). */
async function settleUntil(done: () => boolean, what: string): Promise<void> {
  assert.ok(await until(done, 2000, 2), `still waiting for ${what}`);
}

// --- the control protocol against the scripted server ----------------------------------------------------------------

test('replies are matched by cookie: requests answered in reverse order each get their own; cookies are unique', async (t) => {
  const { fake, relay } = await fixture(t);
  const held: NgRequest[] = [];
  fake.answer = (req, f) => {
    held.push(req);
    if (held.length < 3) return;
    // A reply nobody asked for first, then the three in reverse order.
    f.reply(req, { result: 'ok', sdp: 'nobody' }, 'unknown_1');
    for (const r of [...held].reverse()) f.reply(r, { result: 'ok', sdp: `sdp of ${bencodeText(r.dict['call-id'])}` });
  };
  const results = await Promise.all(['A', 'B', 'C'].map((id) => relay.offer({ callId: id, fromTag: 'f' }, sdpFor(4000))));
  assert.deepEqual(results, ['sdp of A', 'sdp of B', 'sdp of C']);
  assert.equal(new Set(fake.requests.map((r) => r.cookie)).size, 3);
  for (const r of fake.requests) assert.match(r.cookie, /^[a-z0-9]+_\d+$/);
  await settleUntil(() => relay.stats.lateReplies === 1, 'the stray reply to be counted');
  assert.deepEqual({ ...relay.stats, lateReplies: 1 }, { requests: 3, retransmissions: 0, replies: 3, errors: 0, timeouts: 0, lateReplies: 1, garbageReplies: 0, foreignReplies: 0 });
});

test('a request without a reply is sent again with the same cookie on the clock, and the late reply completes it', async (t) => {
  const clock = new FakeClock();
  const { fake, relay } = await fixture(t, { clock, timeoutMs: 1000, retries: 2 });
  fake.answer = (req, f) => {
    if (fake.requests.length === 2) f.reply(req, { result: 'pong' });
  };
  let rtt: number | undefined;
  const ping = relay.ping().then((ms) => (rtt = ms));
  await settleUntil(() => fake.requests.length === 1, 'the first try');
  clock.advance(999);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fake.requests.length, 1, 'no retransmission before the timeout');
  clock.advance(1);
  await settleUntil(() => fake.requests.length === 2, 'the retransmission');
  await ping;
  assert.equal(rtt, 1000);
  assert.equal(fake.requests[0]!.cookie, fake.requests[1]!.cookie);
  assert.equal(relay.stats.retransmissions, 1);
  assert.equal(relay.stats.replies, 1);
  clock.advance(10_000);
  assert.equal(fake.requests.length, 2, 'answered: no more tries');
});

test('no answer after the retries is a 503 naming the engine; a reply after that is late and ignored', async (t) => {
  const { fake, relay } = await fixture(t, { timeoutMs: 40, retries: 2 });
  fake.answer = () => {};
  const err = await rejection(relay.offer({ callId: 'c', fromTag: 'f' }, sdpFor(4000)));
  assert.equal(err.status, 503);
  assert.match(err.message, new RegExp(`rtpengine at 127\\.0\\.0\\.1:${fake.port} did not answer 'offer' \\(3 tries, 40 ms each\\)`));
  assert.equal(fake.requests.length, 3);
  assert.equal(new Set(fake.requests.map((r) => r.cookie)).size, 1);
  assert.equal(relay.stats.timeouts, 1);
  fake.reply(fake.requests[0]!, { result: 'ok', sdp: 'v=0' });
  await settleUntil(() => relay.stats.lateReplies === 1, 'the late reply to be counted');
});

test('a daemon that is not there: 503 naming its address, and nothing reaches the event loop', async (t) => {
  const port = await closedUdpPort();
  const relay = new RtpEngineRelay({ address: LOOPBACK, port, timeoutMs: 30, retries: 1 });
  t.after(() => relay.close());
  const err = await rejection(relay.ping());
  assert.equal(err.status, 503);
  assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port} did not answer 'ping' \\(2 tries`));
});

test("result: error is a MediaRelayError: 488 when rtpengine's reason is the SDP, 503 otherwise (and for load limit)", async (t) => {
  const { fake, relay } = await fixture(t);
  const reasons: Record<string, BencodeInput> = {
    parse: { result: 'error', 'error-reason': 'Failed to parse SDP' },
    incomplete: { result: 'error', 'error-reason': 'Incomplete SDP specification' },
    ports: { result: 'error', 'error-reason': 'Ran out of ports' },
    unknown: { result: 'error', 'error-reason': 'Unknown call-id' },
    load: { result: 'load limit', message: 'Parallel session limit reached' },
    odd: { result: 'maybe' },
  };
  fake.answer = (req, f) => f.reply(req, reasons[bencodeText(req.dict['call-id'])!]!);
  const expected: Array<[string, number, RegExp]> = [
    ['parse', 488, /refused 'offer': Failed to parse SDP/],
    ['incomplete', 488, /Incomplete SDP specification/],
    ['ports', 503, /Ran out of ports/],
    ['unknown', 503, /Unknown call-id/],
    ['load', 503, /Parallel session limit reached/],
    ['odd', 503, /maybe/],
  ];
  for (const [callId, status, message] of expected) {
    const err = await rejection(relay.offer({ callId, fromTag: 'f' }, sdpFor(4000)));
    assert.equal(err.status, status, callId);
    assert.match(err.message, message);
  }
  assert.equal(relay.stats.errors, expected.length);
});

test('garbage replies (no cookie, not bencode, not a dictionary, too deep, from elsewhere) are counted and ignored', async (t) => {
  const { fake, relay } = await fixture(t);
  const stranger = dgram.createSocket('udp4');
  t.after(() => stranger.close());
  fake.answer = (req, f) => {
    f.raw(req, 'no-space-at-all');
    f.raw(req, ' d6:result4:ponge'); // an empty cookie
    f.raw(req, `${req.cookie} d6:result4:pong`); // cut short
    f.raw(req, `${req.cookie} l6:resulte`);
    f.raw(req, `${req.cookie} d1:a${'l'.repeat(5000)}${'e'.repeat(5000)}e`);
    f.raw(req, Buffer.concat([Buffer.from(`${req.cookie} `), Buffer.from([0xff, 0x00, 0x13])]));
    stranger.send(`${req.cookie} d6:result5:errore`, req.from.port, req.from.address);
    setTimeout(() => f.reply(req, { result: 'pong' }), 30);
  };
  await relay.ping();
  assert.equal(relay.stats.garbageReplies, 6);
  assert.equal(relay.stats.foreignReplies, 1);
  assert.equal(relay.stats.errors, 0);
  fake.answer = (req, f) => f.reply(req, { result: 'pong' });
  await relay.ping();
});

test('offer and answer: the keys rtpengine gets from RelayOptions; the answer names the offerer in from-tag', async (t) => {
  const { fake, relay } = await fixture(t, { flags: ['trust address'], extra: { direction: ['priv', 'pub'] }, rtcpMux: ['demux'] });
  fake.answer = (req, f) => f.reply(req, { result: 'ok', sdp: 'v=0\r\n' });
  await relay.offer({ callId: 'call-1', fromTag: 'alice' }, sdpFor(4000));
  await relay.answer({ callId: 'call-1', fromTag: 'bob', toTag: 'alice' }, sdpFor(5000), { latch: false, strictSource: true, ice: 'keep' });
  await relay.offer({ callId: 'call-1', fromTag: 'bob', toTag: 'alice' }, sdpFor(5002), { codecs: ['pcmu', 'telephone-event'] });
  const [offer, answer, reoffer] = fake.requests.map((r) => r.dict);
  const plain = (d: unknown): unknown => JSON.parse(JSON.stringify(d));
  assert.deepEqual(plain(offer), {
    command: 'offer',
    'call-id': 'call-1',
    'from-tag': 'alice',
    sdp: sdpFor(4000),
    flags: ['symmetric', 'port latching', 'trust address'],
    replace: ['origin', 'session-connection'],
    ICE: 'remove',
    'rtcp-mux': ['demux'],
    direction: ['priv', 'pub'],
  });
  assert.equal(bencodeText(answer!.command), 'answer');
  assert.equal(bencodeText(answer!['from-tag']), 'alice', "the offerer's tag");
  assert.equal(bencodeText(answer!['to-tag']), 'bob', "the answerer's tag");
  assert.deepEqual(plain(answer!.flags), ['asymmetric', 'port latching', 'strict source', 'trust address']);
  assert.equal(bencodeText(answer!.ICE), 'optional');
  assert.equal(bencodeText(reoffer!['from-tag']), 'bob');
  assert.equal(bencodeText(reoffer!['to-tag']), 'alice');
  // Names as given and as the SDP spells them (rtpengine compares them case-sensitively); PCMU is payload type 0.
  assert.deepEqual(plain(reoffer!.codec), { strip: ['all'], except: ['pcmu', 'telephone-event', 'PCMU'] });
});

test('codecs with nothing in common: 488 before rtpengine is asked (it would keep the whole list)', async (t) => {
  const { fake, relay } = await fixture(t);
  const err = await rejection(relay.offer({ callId: 'c', fromTag: 'f' }, sdpFor(4000, '8 101'), { codecs: ['PCMU', 'G722'] }));
  assert.equal(err.status, 488);
  assert.match(err.message, /no offered codec is one of PCMU, G722/);
  assert.equal(fake.requests.length, 0);
  // A rejected stream (port 0) has nothing to keep; an SDP with no active stream goes to rtpengine as it is.
  fake.answer = (req, f) => f.reply(req, { result: 'ok', sdp: 'v=0\r\n' });
  await relay.offer({ callId: 'c', fromTag: 'f' }, sdpFor(0, '8'), { codecs: ['PCMU'] });
  assert.equal(fake.requests.length, 1);
});

test("advertise: rtpengine's address in c=, o= and a=rtcp becomes the advertised one; a held stream's 0.0.0.0 stays", async (t) => {
  const { fake, relay } = await fixture(t);
  const fromEngine = [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    'm=audio 40000 RTP/AVP 0',
    'a=rtcp:40001 IN IP4 127.0.0.1',
    'm=audio 40002 RTP/AVP 0',
    'c=IN IP4 0.0.0.0',
    '',
  ].join('\r\n');
  fake.answer = (req, f) => f.reply(req, { result: 'ok', sdp: fromEngine });
  const out = await relay.offer({ callId: 'c', fromTag: 'f' }, sdpFor(4000), { advertise: '203.0.113.7' });
  assert.equal(out, fromEngine.replace(/127\.0\.0\.1/g, '203.0.113.7'));
  const v6 = await relay.offer({ callId: 'c', fromTag: 'f' }, sdpFor(4000), { advertise: '2001:db8::7' });
  assert.match(v6, /^c=IN IP6 2001:db8::7\r$/m);
  assert.match(v6, /^o=- 1 1 IN IP6 2001:db8::7\r$/m);
  assert.match(v6, /^c=IN IP4 0\.0\.0\.0\r$/m);
});

/** A query reply as rtpengine 10.5 gives it (trimmed from a real one): the offerer 'ft' and the answerer 'tt'. */
function queryReply(o: { created: number; lastPacket: number; packets?: number }): BencodeInput {
  const packets = o.packets ?? 5;
  const stream = (localPort: number, peerPort: number, kind: 'RTP' | 'RTCP', count: number, confirmed: boolean): BencodeInput => ({
    'local port': localPort,
    'local address': '127.0.0.1',
    family: 'IPv4',
    endpoint: { family: 'IPv4', address: '127.0.0.1', port: peerPort },
    'advertised endpoint': { family: 'IPv4', address: '127.0.0.1', port: peerPort },
    'last packet': o.lastPacket,
    flags: confirmed ? [kind, 'filled', 'confirmed'] : [kind, 'filled'],
    ...(kind === 'RTP' ? { SSRC: 1234 } : {}),
    stats: { packets: count, bytes: count * 172, errors: kind === 'RTP' ? 1 : 0 },
  });
  const tag = (name: string, other: string, localPort: number, peerPort: number, confirmed: boolean): BencodeInput => ({
    tag: name,
    created: o.created,
    subscriptions: [{ tag: other, type: 'offer/answer' }],
    medias: [
      {
        index: 1,
        type: 'audio',
        protocol: 'RTP/AVP',
        codec: 'PCMU/8000',
        streams: [stream(localPort, peerPort, 'RTP', packets, confirmed), stream(localPort + 1, peerPort + 1, 'RTCP', 0, false)],
        flags: ['initialized', 'send', 'recv'],
      },
    ],
  });
  return {
    created: o.created,
    created_us: 716055,
    'last signal': o.created,
    SSRC: { 1234: { 'cumulative loss': 3, 'average MOS': { MOS: 43, jitter: 2, 'packet loss': 1 } } },
    tags: { ft: tag('ft', 'tt', 40014, 51719, true), tt: tag('tt', 'ft', 40000, 52600, false) },
    totals: { RTP: { packets: 2 * packets, bytes: 2 * packets * 172, errors: 0 }, RTCP: { packets: 0, bytes: 0, errors: 0 } },
    result: 'ok',
  };
}

test("query: rtpengine's tags, medias and packet streams as RelayCallStats; an unknown call is undefined", async (t) => {
  const { fake, relay } = await fixture(t);
  fake.answer = (req, f) =>
    f.reply(req, bencodeText(req.dict['call-id']) === 'known' ? queryReply({ created: 1796655930, lastPacket: 1796655935 }) : { result: 'error', 'error-reason': 'Unknown call-id' });
  const stats = await relay.query('known');
  const side = (tag: string, localPort: number, peerPort: number, latched: boolean) => ({
    tag,
    localPort,
    latched,
    peer: { address: '127.0.0.1', port: peerPort },
    rtp: { packets: 5, bytes: 860, dropped: 1 },
    rtcp: { packets: 0, bytes: 0, dropped: 0 },
    lost: 3,
    jitterMs: 2,
  });
  assert.deepEqual(stats, {
    callId: 'known',
    engine: 'rtpengine',
    createdAt: 1796655930716,
    lastPacketAt: 1796655935000,
    streams: [{ media: 'audio', sides: [side('ft', 40014, 51719, true), side('tt', 40000, 52600, false)] }],
  } satisfies RelayCallStats);
  assert.equal(await relay.query('gone'), undefined);
  // No packet yet: no lastPacketAt (rtpengine stamps 'last packet' at creation).
  fake.answer = (req, f) => f.reply(req, queryReply({ created: 1796655930, lastPacket: 1796655930, packets: 0 }));
  assert.equal((await relay.query('known'))?.lastPacketAt, undefined);
});

test('calls(): list, then a query of each; a call gone in between is left out', async (t) => {
  const { fake, relay } = await fixture(t, { listLimit: 50 });
  fake.answer = (req, f) => {
    if (req.command === 'list') return f.reply(req, { result: 'ok', calls: ['one', 'two', 'gone'] });
    const id = bencodeText(req.dict['call-id']);
    f.reply(req, id === 'gone' ? { result: 'error', 'error-reason': 'Unknown call-id' } : queryReply({ created: 1796655930, lastPacket: 1796655931 }));
  };
  const calls = await relay.calls();
  assert.deepEqual(
    calls.map((c) => c.callId),
    ['one', 'two'],
  );
  assert.equal(fake.requests[0]!.dict.limit, 50);
  assert.deepEqual(fake.commands(), ['list', 'query', 'query', 'query']);
});

test('delete: the last counters, then delete with no delay; an unknown call is undefined', async (t) => {
  const { fake, relay } = await fixture(t, { deleteDelaySeconds: 0 });
  fake.answer = (req, f) => {
    const known = bencodeText(req.dict['call-id']) === 'known';
    if (req.command === 'query') f.reply(req, known ? queryReply({ created: 1796655930, lastPacket: 1796655935 }) : { result: 'error', 'error-reason': 'Unknown call-id' });
    else f.reply(req, known ? { result: 'ok' } : { result: 'ok', warning: "Call-ID not found or tags didn't match" });
  };
  const stats = await relay.delete('known');
  assert.equal(stats?.streams[0]?.sides[0]?.rtp.packets, 5);
  assert.deepEqual(fake.commands(), ['query', 'delete']);
  assert.equal(fake.requests[1]!.dict['delete delay'], 0);
  assert.equal(await relay.delete('gone'), undefined);
});

test('onTimeout: polled on the clock, the calls without media for inactivityMs and those rtpengine dropped are told once', async (t) => {
  const clock = new FakeClock(1_800_000_000_000);
  const { fake, relay } = await fixture(t, { clock, pollMs: 5000, inactivityMs: 30_000, timeoutMs: 1000 });
  const nowSeconds = (): number => Math.floor(clock.now() / 1000);
  let engineDown = false;
  fake.answer = (req, f) => {
    if (req.command === 'offer') return f.reply(req, { result: 'ok', sdp: 'v=0\r\n' });
    if (engineDown) return;
    const id = bencodeText(req.dict['call-id']);
    if (id === 'vanished') return f.reply(req, { result: 'error', 'error-reason': 'Unknown call-id' });
    const created = nowSeconds() - 100;
    f.reply(req, queryReply({ created, lastPacket: id === 'idle' ? nowSeconds() - 31 : nowSeconds() }));
  };
  for (const callId of ['idle', 'active', 'vanished']) await relay.offer({ callId, fromTag: 'f' }, sdpFor(4000));
  const told: string[] = [];
  relay.onTimeout((id) => told.push(id));
  relay.onTimeout(() => {
    throw new Error('a listener that fails does not stop the others');
  });
  clock.advance(4999);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(fake.requests.length, 3, 'no poll before pollMs');
  clock.advance(1);
  await settleUntil(() => told.length === 2, 'the idle and the vanished call');
  assert.deepEqual(told.sort(), ['idle', 'vanished']);
  // The next poll asks only about the call still watched, and the engine not answering it tells nothing.
  engineDown = true;
  const before = fake.requests.length;
  clock.advance(5000);
  await settleUntil(() => fake.requests.length === before + 1, 'the second poll');
  assert.equal(bencodeText(fake.requests.at(-1)!.dict['call-id']), 'active');
  for (let i = 0; i < 2; i++) {
    clock.advance(1000);
    await settleUntil(() => fake.requests.length === before + 2 + i, 'a retransmission');
  }
  clock.advance(1000); // the query gives up
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(told.sort(), ['idle', 'vanished']);
  // A deleted call is not watched any more.
  engineDown = false;
  await relay.delete('active');
  const afterDelete = fake.requests.length;
  clock.advance(5000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(fake.requests.length, afterDelete, 'nothing left to poll');
});

test('close(): requests waiting are rejected with 503, later ones too', async (t) => {
  const { fake, relay } = await fixture(t);
  fake.answer = () => {};
  const waiting = rejection(relay.ping());
  await settleUntil(() => fake.requests.length === 1, 'the ping');
  await relay.close();
  assert.match((await waiting).message, /is closed/);
  assert.equal((await rejection(relay.offer({ callId: 'c', fromTag: 'f' }, sdpFor(4000)))).status, 503);
  await relay.close();
});

// --- against the real daemon -----------------------------------------------------------------------------------------

/** An RTP packet: PCMU, the given sequence number, a payload that names it. */
function rtpPacket(seq: number, ssrc: number, marker: string): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = 0;
  header.writeUInt16BE(seq, 2);
  header.writeUInt32BE(seq * 160, 4);
  header.writeUInt32BE(ssrc, 8);
  const payload = Buffer.alloc(160, 0xff);
  payload.write(`${marker}#${seq}`, 'latin1');
  return Buffer.concat([header, payload]);
}

interface Phone {
  socket: dgram.Socket;
  port: number;
  received: Buffer[];
}

async function phone(): Promise<Phone> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  return { socket, port: socket.address().port, received };
}

function audioPort(sdp: string): number {
  const m = /^m=audio (\d+) /m.exec(sdp);
  assert.ok(m, `an audio stream in\n${sdp}`);
  return Number(m[1]);
}

describe('against rtpengine', { skip: rtpengineMissing() }, () => {
  let engine: RunningRtpEngine;
  let relay: RtpEngineRelay;
  const phones: Phone[] = [];

  before(async () => {
    engine = await startRtpEngine();
    relay = new RtpEngineRelay({ address: LOOPBACK, port: engine.ngPort });
  });

  after(async () => {
    for (const p of phones) p.socket.close();
    await relay?.close();
    await engine?.stop();
  });

  test('rtpengine (userspace only) answers ping', async () => {
    const rtt = await relay.ping();
    assert.ok(rtt >= 0 && rtt < 1000);
  });

  test('a G.711 call between two loopback phones: SDPs name its ports, RTP goes both ways intact, query counts it, delete ends it', async () => {
    const alice = await phone();
    const bob = await phone();
    phones.push(alice, bob);
    const callId = `rtpengine-call-${Date.now()}@127.0.0.1`;
    const toBob = await relay.offer({ callId, fromTag: 'alice-tag' }, sdpFor(alice.port), { codecs: ['PCMU', 'PCMA', 'telephone-event'] });
    const toAlice = await relay.answer({ callId, fromTag: 'bob-tag', toTag: 'alice-tag' }, sdpFor(bob.port, '0 101'));
    for (const sdp of [toBob, toAlice]) {
      assert.match(sdp, /^c=IN IP4 127\.0\.0\.1\r$/m);
      const port = audioPort(sdp);
      assert.ok(port >= engine.portMin && port <= engine.portMax, `${port} is one of rtpengine's ports`);
    }
    const relayForBob = audioPort(toBob); // where Bob sends to reach Alice
    const relayForAlice = audioPort(toAlice);
    assert.notEqual(relayForAlice, relayForBob);

    const N = 10;
    for (let seq = 1; seq <= N; seq++) {
      alice.socket.send(rtpPacket(seq, 0xa11ce, 'from alice'), relayForAlice, LOOPBACK);
      bob.socket.send(rtpPacket(seq, 0xb0b, 'from bob'), relayForBob, LOOPBACK);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(await until(() => alice.received.length >= N && bob.received.length >= N, 3000), `RTP arrived: alice ${alice.received.length}, bob ${bob.received.length}\n${engine.output().slice(-2000)}`);
    const payloads = (packets: Buffer[]): string[] => packets.map((p) => p.subarray(12).toString('hex'));
    assert.deepEqual(payloads(bob.received.slice(0, N)), payloads(Array.from({ length: N }, (_, i) => rtpPacket(i + 1, 0xa11ce, 'from alice'))));
    assert.deepEqual(payloads(alice.received.slice(0, N)), payloads(Array.from({ length: N }, (_, i) => rtpPacket(i + 1, 0xb0b, 'from bob'))));
    assert.deepEqual(
      bob.received.map((p) => p.readUInt16BE(2)),
      Array.from({ length: N }, (_, i) => i + 1),
      'in order, sequence numbers kept',
    );

    const stats = await relay.query(callId);
    assert.ok(stats);
    assert.equal(stats.engine, 'rtpengine');
    assert.ok(Math.abs(stats.createdAt - Date.now()) < 10_000);
    assert.ok(stats.lastPacketAt !== undefined && Math.abs(stats.lastPacketAt - Date.now()) < 10_000);
    assert.equal(stats.streams.length, 1);
    assert.equal(stats.streams[0]!.media, 'audio');
    const sides = new Map(stats.streams[0]!.sides.map((s) => [s.tag, s]));
    assert.deepEqual([...sides.keys()].sort(), ['alice-tag', 'bob-tag']);
    assert.equal(sides.get('alice-tag')!.localPort, relayForAlice);
    assert.equal(sides.get('bob-tag')!.localPort, relayForBob);
    assert.deepEqual(sides.get('alice-tag')!.peer, { address: LOOPBACK, port: alice.port });
    assert.deepEqual(sides.get('bob-tag')!.peer, { address: LOOPBACK, port: bob.port });
    assert.equal(sides.get('alice-tag')!.rtp.packets, N);
    assert.equal(sides.get('bob-tag')!.rtp.packets, N);
    assert.equal(sides.get('alice-tag')!.rtp.bytes, N * 172);
    assert.ok((await relay.calls()).some((c) => c.callId === callId));

    // A re-offer from Bob (a re-INVITE) keeps the call's ports: its SDP goes to Alice, the answer to Bob.
    const reoffer = await relay.offer({ callId, fromTag: 'bob-tag', toTag: 'alice-tag' }, sdpFor(bob.port, '0 101'));
    assert.equal(audioPort(reoffer), relayForAlice);
    const reanswer = await relay.answer({ callId, fromTag: 'alice-tag', toTag: 'bob-tag' }, sdpFor(alice.port));
    assert.equal(audioPort(reanswer), relayForBob);

    const final = await relay.delete(callId);
    assert.equal(final?.streams[0]?.sides.find((s) => s.tag === 'alice-tag')?.rtp.packets, N);
    assert.equal(await relay.query(callId), undefined);
    assert.ok(!(await relay.calls()).some((c) => c.callId === callId));
    const bobHad = bob.received.length;
    const aliceHad = alice.received.length;
    for (let seq = N + 1; seq <= N + 5; seq++) {
      alice.socket.send(rtpPacket(seq, 0xa11ce, 'after delete'), relayForAlice, LOOPBACK);
      bob.socket.send(rtpPacket(seq, 0xb0b, 'after delete'), relayForBob, LOOPBACK);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bob.received.length, bobHad, 'the ports no longer forward');
    assert.equal(alice.received.length, aliceHad, 'the ports no longer forward');
  });

  test("rtpengine's refusals: a broken SDP is 488, an answer to a call it does not know 503", async () => {
    const bad = await rejection(relay.offer({ callId: `bad-${Date.now()}`, fromTag: 'x' }, 'this is not SDP'));
    assert.equal(bad.status, 488);
    assert.match(bad.message, /Failed to parse SDP/);
    const unknown = await rejection(relay.answer({ callId: `unknown-${Date.now()}`, fromTag: 'b', toTag: 'a' }, sdpFor(4000)));
    assert.equal(unknown.status, 503);
    assert.match(unknown.message, /Unknown call-id/);
  });

  test('onTimeout: a call without media is told after inactivityMs', async (t) => {
    const watcher = new RtpEngineRelay({ address: LOOPBACK, port: engine.ngPort, pollMs: 200, inactivityMs: 1500 });
    t.after(() => watcher.close());
    const callId = `silent-${Date.now()}`;
    await watcher.offer({ callId, fromTag: 'a' }, sdpFor(4000));
    await watcher.answer({ callId, fromTag: 'b', toTag: 'a' }, sdpFor(4002));
    const started = Date.now();
    const told: string[] = [];
    watcher.onTimeout((id) => told.push(id));
    assert.ok(await until(() => told.length > 0, 5000), 'told of the silent call');
    assert.deepEqual(told, [callId]);
    assert.ok(Date.now() - started >= 400, 'not before it was idle');
    await watcher.delete(callId);
  });

  test('nothing was lost or garbled on the control socket', () => {
    assert.equal(relay.stats.timeouts, 0);
    assert.equal(relay.stats.retransmissions, 0);
    assert.equal(relay.stats.garbageReplies, 0);
    assert.equal(relay.stats.lateReplies, 0);
  });
});
