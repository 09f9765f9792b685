import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { MediaRelayError, RtpSourceStats, UdpMediaRelay, type RelayCallStats, type RelaySide } from '../../src/media/index.js';
import { parseSdp, type SessionDescription } from '../../src/sdp/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { until } from '../helpers/waits.js';

const LOOPBACK = '127.0.0.1';
const crlf = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

interface Received {
  data: Buffer;
  address: string;
  port: number;
}

/** A UDP socket on loopback playing a phone's RTP or RTCP port: keeps what arrives and where it came from. */
interface Port {
  socket: dgram.Socket;
  port: number;
  got: Received[];
  send(data: Buffer, port: number): void;
  close(): Promise<void>;
}

const opened: Port[] = [];
after(async () => {
  await Promise.all(opened.map((p) => p.close()));
});

async function bindPort(port = 0): Promise<Port | undefined> {
  const socket = dgram.createSocket('udp4');
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, LOOPBACK, () => resolve(true));
  });
  if (!ok) {
    socket.close();
    return undefined;
  }
  const got: Received[] = [];
  socket.on('message', (data, rinfo) => got.push({ data, address: rinfo.address, port: rinfo.port }));
  let closed = false;
  const p: Port = {
    socket,
    port: socket.address().port,
    got,
    send: (data, to) => socket.send(data, to, LOOPBACK),
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        socket.close(() => resolve());
      }),
  };
  opened.push(p);
  return p;
}

async function phonePort(): Promise<Port> {
  return (await bindPort())!;
}

/** An RTP port and the RTCP port above it (RFC 3550 §11), both bound. */
async function phonePair(): Promise<{ rtp: Port; rtcp: Port }> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 20000 + 2 * Math.floor(Math.random() * 6000);
    const rtp = await bindPort(base);
    if (!rtp) continue;
    const rtcp = await bindPort(base + 1);
    if (rtcp) return { rtp, rtcp };
    await rtp.close();
  }
  throw new Error('no free port pair on loopback');
}

/** `count` consecutive ports starting at an even one, free right now (checked by binding them). */
async function freeRange(count: number): Promise<{ portMin: number; portMax: number }> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 33000 + 2 * Math.floor(Math.random() * 12000);
    const held: Port[] = [];
    for (let p = base; p < base + count; p++) {
      const port = await bindPort(p);
      if (!port) break;
      held.push(port);
    }
    await Promise.all(held.map((p) => p.close()));
    if (held.length === count) return { portMin: base, portMax: base + count - 1 };
  }
  throw new Error(`no ${count} free consecutive ports`);
}

function rtp(seq: number, timestamp: number, payload: Buffer | string, options: { pt?: number; ssrc?: number; marker?: boolean } = {}): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = (options.marker ? 0x80 : 0) | (options.pt ?? 0);
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE(timestamp >>> 0, 4);
  header.writeUInt32BE(options.ssrc ?? 0x1234abcd, 8);
  return Buffer.concat([header, body]);
}

/** An RTCP receiver report with no blocks (RFC 3550 §6.4.2): packet type 201. */
function rtcpRr(ssrc = 0x1234abcd): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 0x80;
  b[1] = 201;
  b.writeUInt16BE(1, 2);
  b.writeUInt32BE(ssrc, 4);
  return b;
}

function sdp(port: number, extra: string[] = [], options: { address?: string; version?: number; formats?: string } = {}): string {
  return crlf(
    'v=0',
    `o=phone 4242 ${options.version ?? 1} IN IP4 ${LOOPBACK}`,
    's=-',
    `c=IN IP4 ${options.address ?? LOOPBACK}`,
    't=0 0',
    `m=audio ${port} RTP/AVP ${options.formats ?? '0 101'}`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    ...extra,
  );
}

function parsed(text: string): SessionDescription {
  const r = parseSdp(text);
  assert.ok(r.ok, 'the relay’s SDP parses');
  return r.sdp;
}

function relayPort(text: string, index = 0): number {
  return parsed(text).media[index]!.port;
}

async function arrives(port: Port, count: number, what: string): Promise<void> {
  assert.ok(await until(() => port.got.length >= count, 2000, 2), `${what}: ${port.got.length} of ${count} datagrams arrived`);
}

/** Lets datagrams in flight land (what must not arrive has had its chance). */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
}

function side(stats: RelayCallStats | undefined, index: 0 | 1, stream = 0): RelaySide {
  const s = stats?.streams[stream]?.sides[index];
  assert.ok(s, `stream ${stream} side ${index}`);
  return s;
}

async function newRelay(options: { ports?: number; inactivityMs?: number; clock?: FakeClock } = {}): Promise<{ relay: UdpMediaRelay; clock: FakeClock; range: { portMin: number; portMax: number } }> {
  const clock = options.clock ?? new FakeClock();
  const range = await freeRange(options.ports ?? 40);
  const relay = new UdpMediaRelay({ address: LOOPBACK, advertise: '192.0.2.99', ...range, clock, inactivityMs: options.inactivityMs ?? 60_000 });
  return { relay, clock, range };
}

/** A call set up through the relay: A offered from `a`, B answered from `b`; the relay's ports facing each. */
async function call(relay: UdpMediaRelay, a: Port, b: Port, options: { callId?: string; strictSource?: boolean; aSdp?: string; bSdp?: string } = {}) {
  const callId = options.callId ?? `call-${Math.random()}`;
  const offer = await relay.offer({ callId, fromTag: 'A' }, options.aSdp ?? sdp(a.port), { strictSource: options.strictSource });
  const answer = await relay.answer({ callId, fromTag: 'B', toTag: 'A' }, options.bSdp ?? sdp(b.port));
  return { callId, offer, answer, towardB: relayPort(offer), towardA: relayPort(answer) };
}

describe('UdpMediaRelay: offer and answer', () => {
  it('rewrites the offer to the ports facing B and the answer to the ports facing A, at the advertised address', async (t) => {
    const { relay, range } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const { callId, offer, answer, towardA, towardB } = await call(relay, a, b);
    const o = parsed(offer);
    assert.equal(o.connection?.address, '192.0.2.99');
    assert.equal(o.origin.unicastAddress, LOOPBACK, 'o= kept');
    assert.equal(o.origin.sessVersion, '1');
    assert.equal(parsed(answer).connection?.address, '192.0.2.99');
    for (const port of [towardA, towardB]) {
      assert.ok(port >= range.portMin && port <= range.portMax && port % 2 === 0, `${port}: an even port of the range`);
    }
    assert.notEqual(towardA, towardB);
    const stats = await relay.query(callId);
    assert.equal(stats?.engine, 'embedded');
    assert.equal(side(stats, 0).tag, 'A');
    assert.equal(side(stats, 0).localPort, towardA);
    assert.deepEqual(side(stats, 0).peer, { address: LOOPBACK, port: a.port });
    assert.equal(side(stats, 1).tag, 'B');
    assert.equal(side(stats, 1).localPort, towardB);
    assert.equal(side(stats, 0).latched, false);
    assert.deepEqual((await relay.calls()).map((c) => c.callId), [callId]);
  });

  it('answers 488 for an SDP it cannot parse, and for a codec filter that leaves no stream', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    await assert.rejects(relay.offer({ callId: 'x', fromTag: 'A' }, 'this is not SDP'), (e: unknown) => e instanceof MediaRelayError && e.status === 488);
    await assert.rejects(
      relay.offer({ callId: 'y', fromTag: 'A' }, sdp(4000), { codecs: ['G729'] }),
      (e: unknown) => e instanceof MediaRelayError && e.status === 488,
    );
    assert.deepEqual(await relay.calls(), []);
    await assert.rejects(
      relay.answer({ callId: 'never-offered', fromTag: 'B', toTag: 'A' }, sdp(4000)),
      (e: unknown) => e instanceof MediaRelayError && e.status === 503,
    );
  });

  it('filters codecs by name and keeps a rejected stream at port 0 without ports for it', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const offer = await relay.offer(
      { callId: 'f', fromTag: 'A' },
      crlf(...sdp(4000).trimEnd().split('\r\n'), 'm=video 0 RTP/AVP 31'),
      { codecs: ['PCMU'] },
    );
    const o = parsed(offer);
    assert.deepEqual(o.media[0]!.formats, ['0']);
    assert.equal(o.media[1]!.port, 0);
    assert.equal((await relay.query('f'))?.streams.length, 1);
  });

  it('keeps its ports on a re-offer, and the o= version grows only when the description does', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const { callId, towardB } = await call(relay, a, b);
    const same = await relay.offer({ callId, fromTag: 'A', toTag: 'B' }, sdp(a.port));
    assert.equal(relayPort(same), towardB);
    assert.equal(parsed(same).origin.sessVersion, '1');
    const held = await relay.offer({ callId, fromTag: 'A', toTag: 'B' }, sdp(a.port, ['a=sendonly'], { version: 2, address: '0.0.0.0' }));
    const h = parsed(held);
    assert.equal(h.origin.sessVersion, '2');
    assert.equal(h.connection?.address, '0.0.0.0', 'the hold passes through');
    assert.ok(h.media[0]!.attributes.some((x) => x.name === 'sendonly'));
    assert.equal(h.media[0]!.port, towardB);
    const inactive = await relay.offer({ callId, fromTag: 'A', toTag: 'B' }, sdp(a.port, ['a=inactive'], { version: 3 }));
    assert.ok(parsed(inactive).media[0]!.attributes.some((x) => x.name === 'inactive'));
    assert.equal(parsed(inactive).origin.sessVersion, '3');
    assert.equal(relayPort(inactive), towardB);
    // The relay's own rewrite changes (a narrower codec filter) under the same version: the version still grows.
    const narrower = await relay.offer({ callId, fromTag: 'A', toTag: 'B' }, sdp(a.port, ['a=inactive'], { version: 3 }), { codecs: ['PCMU'] });
    assert.equal(parsed(narrower).origin.sessVersion, '4');
    assert.deepEqual(parsed(narrower).media[0]!.formats, ['0']);
    await assert.rejects(
      relay.offer({ callId, fromTag: 'C', toTag: 'D' }, sdp(a.port)),
      (e: unknown) => e instanceof MediaRelayError && e.status === 488,
      'an offer from a tag that is neither side',
    );
    // B re-offers (a re-INVITE from the callee): the ports facing A, kept.
    const fromB = await relay.offer({ callId, fromTag: 'B', toTag: 'A' }, sdp(b.port, [], { version: 2 }));
    assert.equal(relayPort(fromB), side(await relay.query(callId), 0).localPort);
  });
});

describe('UdpMediaRelay: forwarding', () => {
  it('forwards RTP both ways with the same bytes, from the port facing the receiver', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const { callId, towardA, towardB } = await call(relay, a, b);
    const fromA = rtp(1, 160, 'hello from A');
    const fromB = rtp(7, 960, 'hello from B', { pt: 8 });
    a.send(fromA, towardA);
    b.send(fromB, towardB);
    await arrives(b, 1, 'A to B');
    await arrives(a, 1, 'B to A');
    assert.deepEqual(b.got[0]!.data, fromA);
    assert.equal(b.got[0]!.port, towardB);
    assert.deepEqual(a.got[0]!.data, fromB);
    assert.equal(a.got[0]!.port, towardA);
    // RFC 4733 events are RTP like any other.
    const digit = rtp(2, 320, Buffer.from([5, 0x0a, 0, 160]), { pt: 101, marker: true });
    a.send(digit, towardA);
    await arrives(b, 2, 'the DTMF event');
    assert.deepEqual(b.got[1]!.data, digit);
    const stats = await relay.query(callId);
    assert.deepEqual(side(stats, 0).rtp, { packets: 2, bytes: fromA.length + digit.length, dropped: 0 });
    assert.deepEqual(side(stats, 1).rtp, { packets: 1, bytes: fromB.length, dropped: 0 });
    assert.ok(stats?.lastPacketAt !== undefined);
  });

  it('latches to where A really sends from, not to the port its SDP names (NAT)', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const announced = await phonePort(); // what A's SDP says: nobody sends from there
    const a = await phonePort();
    const b = await phonePort();
    const { callId, towardA, towardB } = await call(relay, announced, b);
    b.send(rtp(1, 0, 'early'), towardB);
    await arrives(announced, 1, 'before latching: to the SDP address');
    a.send(rtp(1, 0, 'from behind the NAT'), towardA);
    await arrives(b, 1, 'A to B');
    b.send(rtp(2, 160, 'to the latched port'), towardB);
    await arrives(a, 1, 'B to where A sent from');
    assert.equal(a.got[0]!.data.subarray(12).toString(), 'to the latched port');
    assert.equal(announced.got.length, 1);
    const s = side(await relay.query(callId), 0);
    assert.equal(s.latched, true);
    assert.deepEqual(s.peer, { address: LOOPBACK, port: a.port });
  });

  it('a private SDP address behind another signalling source (a NAT\'s inside) is never sent to: the first packet tells where the phone is', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const callId = 'nat-inside';
    const offer = await relay.offer({ callId, fromTag: 'ta' }, sdp(40000, [], { address: '192.168.10.10' }), { sourceAddress: '203.0.113.7' });
    const answer = await relay.answer({ callId, fromTag: 'tb', toTag: 'ta' }, sdp(b.port));
    const towardB = relayPort(offer);
    const towardA = relayPort(answer);
    b.send(rtp(1, 0, 'early'), towardB);
    await settle();
    let s = side(await relay.query(callId), 0);
    assert.equal(s.peer, undefined, 'no peer before the first packet: nothing goes to 192.168.10.10');
    assert.equal(side(await relay.query(callId), 1).rtp.dropped, 1, 'B\'s early packet is dropped, counted');
    a.send(rtp(1, 0, 'from behind the NAT'), towardA);
    await arrives(b, 1, 'A to B');
    b.send(rtp(2, 160, 'now to A'), towardB);
    await arrives(a, 1, 'B to the latched A');
    s = side(await relay.query(callId), 0);
    assert.deepEqual(s.peer, { address: LOOPBACK, port: a.port });
    // A private address that is where the signalling came from (a phone on the server's own LAN) is sent to.
    await relay.offer({ callId: 'lan', fromTag: 'ta' }, sdp(40000, [], { address: '10.1.2.3' }), { sourceAddress: '10.1.2.3' });
    assert.deepEqual(side(await relay.query('lan'), 0).peer, { address: '10.1.2.3', port: 40000 });
  });

  it('with strictSource drops and counts an intruder once latched; without, forwards it but keeps the peer', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const intruder = await phonePort();
    const strict = await call(relay, a, b, { strictSource: true });
    a.send(rtp(1, 0, 'A'), strict.towardA);
    await arrives(b, 1, 'A to B');
    intruder.send(rtp(900, 0, 'injected'), strict.towardA);
    await settle();
    assert.equal(b.got.length, 1, 'the injected packet did not reach B');
    const s = side(await relay.query(strict.callId), 0);
    assert.equal(s.rtp.dropped, 1);
    assert.equal(s.rtp.packets, 1);
    assert.deepEqual(s.peer, { address: LOOPBACK, port: a.port });

    const a2 = await phonePort();
    const b2 = await phonePort();
    const loose = await call(relay, a2, b2);
    a2.send(rtp(1, 0, 'A'), loose.towardA);
    await arrives(b2, 1, 'A to B');
    intruder.send(rtp(900, 0, 'other source'), loose.towardA);
    await arrives(b2, 2, 'the other source forwarded');
    b2.send(rtp(1, 0, 'B'), loose.towardB);
    await arrives(a2, 1, 'B to the latched A');
    await settle();
    assert.equal(intruder.got.length, 0, 'the peer did not move to the other source');
  });

  it('without latching sends to the SDP’s address, and with strictSource takes packets from there only', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const elsewhere = await phonePort();
    const callId = 'no-latch';
    const offer = await relay.offer({ callId, fromTag: 'A' }, sdp(a.port), { latch: false, strictSource: true });
    const answer = await relay.answer({ callId, fromTag: 'B', toTag: 'A' }, sdp(b.port));
    const towardA = relayPort(answer);
    const towardB = relayPort(offer);
    elsewhere.send(rtp(1, 0, 'not from the SDP address'), towardA);
    a.send(rtp(2, 160, 'from the SDP address'), towardA);
    await arrives(b, 1, 'A to B');
    await settle();
    assert.equal(b.got.length, 1);
    assert.equal(b.got[0]!.data.subarray(12).toString(), 'from the SDP address');
    b.send(rtp(1, 0, 'B'), towardB);
    await arrives(a, 1, 'B to A');
    const s = side(await relay.query(callId), 0);
    assert.equal(s.latched, false);
    assert.equal(s.rtp.dropped, 1);
    assert.equal(side(await relay.query(callId), 1).latched, false, 'the answer set no options: the offer’s apply to B’s side too');
  });

  it('forwards RTCP between the odd ports, to the peer’s port + 1 or its a=rtcp', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePair();
    const b = await phonePort();
    const bRtcp = await phonePort();
    const { callId, towardA, towardB, answer } = await call(relay, a.rtp, b, {
      bSdp: sdp(b.port, [`a=rtcp:${bRtcp.port}`]),
    });
    assert.equal(parsed(answer).media[0]!.attributes.find((x) => x.name === 'rtcp')?.value, String(towardA + 1), 'a=rtcp rewritten');
    a.rtcp.send(rtcpRr(1), towardA + 1);
    await arrives(bRtcp, 1, 'A’s RTCP at B’s a=rtcp port');
    assert.equal(bRtcp.got[0]!.port, towardB + 1);
    assert.deepEqual(bRtcp.got[0]!.data, rtcpRr(1));
    bRtcp.send(rtcpRr(2), towardB + 1);
    await arrives(a.rtcp, 1, 'B’s RTCP at A’s RTP port + 1');
    assert.equal(a.rtcp.got[0]!.port, towardA + 1);
    const stats = await relay.query(callId);
    assert.equal(side(stats, 0).rtcp.packets, 1);
    assert.equal(side(stats, 1).rtcp.packets, 1);
    assert.equal(b.got.length + a.rtp.got.length, 0, 'no RTCP on the RTP ports');
  });

  it('with rtcp-mux on both sides uses one port per side and tells RTCP from RTP by packet type', async (t) => {
    const { relay, range } = await newRelay({ ports: 4 });
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const { callId, towardA, towardB, offer } = await call(relay, a, b, {
      aSdp: sdp(a.port, ['a=rtcp-mux']),
      bSdp: sdp(b.port, ['a=rtcp-mux']),
    });
    const o = parsed(offer);
    assert.ok(o.media[0]!.attributes.some((x) => x.name === 'rtcp-mux'));
    assert.equal(o.media[0]!.attributes.find((x) => x.name === 'rtcp')?.value, String(towardB));
    // Two sides in a four-port range: one port each (the odd ones stay free).
    assert.deepEqual([towardA, towardB].sort(), [range.portMin, range.portMin + 2]);
    a.send(rtcpRr(1), towardA);
    a.send(rtp(1, 0, 'voice'), towardA);
    await arrives(b, 2, 'RTCP and RTP on B’s one port');
    b.send(rtcpRr(2), towardB);
    await arrives(a, 1, 'RTCP on A’s one port');
    const s = side(await relay.query(callId), 0);
    assert.equal(s.rtcp.packets, 1);
    assert.equal(s.rtp.packets, 1);
  });

  it('gives RTCP its odd port again when the answer turns rtcp-mux down', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePair();
    const b = await phonePair();
    const { towardA, towardB, answer } = await call(relay, a.rtp, b.rtp, { aSdp: sdp(a.rtp.port, ['a=rtcp-mux']) });
    assert.equal(parsed(answer).media[0]!.attributes.find((x) => x.name === 'rtcp'), undefined, 'RTCP at the RTP port + 1 again');
    a.rtcp.send(rtcpRr(1), towardA + 1);
    await arrives(b.rtcp, 1, 'A’s RTCP at B’s port + 1');
    // B, offered mux, may have sent RTCP to the one port the offer named: told from RTP, it goes to A's RTCP port.
    b.rtp.send(rtcpRr(2), towardB);
    await arrives(a.rtcp, 1, 'B’s RTCP at A’s port + 1 (A does not mux: the answer said no)');
    assert.equal(a.rtp.got.length, 0);
  });

  it('re-learns the peer when a re-offer names a new endpoint, and keeps the latch when it does not', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const moved = await phonePort();
    const b = await phonePort();
    const { callId, towardA, towardB } = await call(relay, a, b);
    a.send(rtp(1, 0, 'A'), towardA);
    await arrives(b, 1, 'A to B');
    await relay.offer({ callId, fromTag: 'A', toTag: 'B' }, sdp(a.port));
    assert.equal(side(await relay.query(callId), 0).latched, true, 'same endpoint: still latched');

    const reoffer = await relay.offer({ callId, fromTag: 'A', toTag: 'B' }, sdp(moved.port, [], { version: 2 }));
    assert.equal(relayPort(reoffer), towardB);
    const s = side(await relay.query(callId), 0);
    assert.equal(s.latched, false);
    assert.deepEqual(s.peer, { address: LOOPBACK, port: moved.port });
    b.send(rtp(1, 0, 'to the new endpoint'), towardB);
    await arrives(moved, 1, 'B to A’s new endpoint');
    moved.send(rtp(2, 160, 'A again'), towardA);
    await arrives(b, 2, 'A from its new endpoint');
    assert.equal(side(await relay.query(callId), 0).latched, true);
  });

  it('counts loss from sequence numbers and interarrival jitter on the payload clock (RFC 3550 A.3, A.8)', async (t) => {
    const { relay, clock } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const { callId, towardA } = await call(relay, a, b);
    let received = 0;
    const deliver = async (seq: number, advanceMs: number): Promise<void> => {
      clock.advance(advanceMs);
      a.send(rtp(seq, (seq - 100) * 160, 'x'.repeat(160)), towardA);
      received++;
      assert.ok(await until(async () => side(await relay.query(callId), 0).rtp.packets === received, 2000, 2), `packet ${seq} through`);
    };
    // 100-104 on time, 105 and 106 lost, 107-110 on time: jitter 0, 2 lost.
    for (const seq of [100, 101, 102, 103, 104]) await deliver(seq, 20);
    await deliver(107, 60);
    for (const seq of [108, 109, 110]) await deliver(seq, 20);
    let s = side(await relay.query(callId), 0);
    assert.equal(s.lost, 2);
    assert.equal(s.jitterMs, 0);
    // 111 arrives 10 ms late, 112 on time again: |D| = 80 then 80 timestamp units at 8 kHz.
    await deliver(111, 30);
    await deliver(112, 10);
    s = side(await relay.query(callId), 0);
    const expected = (80 / 16 + (80 - 80 / 16) / 16) / 8;
    assert.ok(Math.abs(s.jitterMs - expected) < 1e-9, `jitter ${s.jitterMs} ms, expected ${expected}`);
    assert.equal(s.lost, 2);
  });

  it('drops and counts what comes before the other side has a peer, and survives garbage and unsendable peers', async (t) => {
    const { relay } = await newRelay();
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    await relay.offer({ callId: 'early', fromTag: 'A' }, sdp(a.port));
    // A sends before B answered (its port is in the query already): nowhere to send it yet.
    const towardA = side(await relay.query('early'), 0).localPort;
    a.send(rtp(1, 0, 'before any answer'), towardA);
    await until(async () => side(await relay.query('early'), 0).rtp.dropped === 1, 2000, 2);
    assert.deepEqual(side(await relay.query('early'), 0).rtp, { packets: 0, bytes: 0, dropped: 1 });

    const answer = await relay.answer({ callId: 'early', fromTag: 'B', toTag: 'A' }, sdp(b.port));
    assert.equal(relayPort(answer), towardA);
    a.send(Buffer.from([0xff]), towardA);
    a.send(Buffer.from([0x80]), towardA);
    a.send(Buffer.alloc(0), towardA);
    a.send(Buffer.from([0x80, 0xc8]), towardA + 1);
    await arrives(b, 3, 'garbage is forwarded as bytes');
    assert.deepEqual(b.got[0]!.data, Buffer.from([0xff]));

    // B's SDP names an address no datagram may go to from here (broadcast without SO_BROADCAST): sends fail.
    await relay.offer({ callId: 'bad', fromTag: 'A' }, sdp(a.port), { latch: false });
    await relay.answer({ callId: 'bad', fromTag: 'B', toTag: 'A' }, sdp(9, [], { address: '255.255.255.255' }), { latch: false });
    const badTowardA = side(await relay.query('bad'), 0).localPort;
    for (let i = 0; i < 3; i++) a.send(rtp(i, 0, 'into the void'), badTowardA);
    assert.ok(await until(() => relay.socketErrors > 0, 2000, 2), 'the failed sends were counted');
    a.send(rtp(2, 320, 'still alive'), towardA);
    await arrives(b, 4, 'the relay still forwards');
  });
});

describe('UdpMediaRelay: timers and ports', () => {
  it('tells onTimeout listeners after inactivityMs without a packet, on the injected clock, and not before', async (t) => {
    const { relay, clock } = await newRelay({ inactivityMs: 30_000 });
    t.after(() => relay.close());
    const timedOut: string[] = [];
    relay.onTimeout((id) => timedOut.push(id));
    relay.onTimeout(() => {
      throw new Error('a listener that throws does not stop the others or the relay');
    });
    const a = await phonePort();
    const b = await phonePort();
    const { callId, towardA } = await call(relay, a, b);
    clock.advance(29_999);
    assert.deepEqual(timedOut, []);
    a.send(rtp(1, 0, 'media'), towardA);
    await arrives(b, 1, 'A to B');
    clock.advance(29_999);
    assert.deepEqual(timedOut, [], 'the packet at 29.999 s moved the deadline');
    clock.advance(1);
    assert.deepEqual(timedOut, [callId]);
    clock.advance(120_000);
    assert.deepEqual(timedOut, [callId], 'told once');
    assert.ok(await relay.query(callId), 'the relay does not delete the call itself');
    a.send(rtp(2, 160, 'media again'), towardA);
    await arrives(b, 2, 'A to B again');
    clock.advance(30_000);
    assert.deepEqual(timedOut, [callId, callId], 'a new silence is told again');
  });

  it('answers 503 when the range is exhausted, and delete frees the ports for the next call', async (t) => {
    const { relay, range } = await newRelay({ ports: 4 });
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const first = await call(relay, a, b, { callId: 'first' });
    await assert.rejects(relay.offer({ callId: 'second', fromTag: 'A' }, sdp(a.port)), (e: unknown) => e instanceof MediaRelayError && e.status === 503);
    assert.equal(await relay.query('second'), undefined);
    a.send(rtp(1, 0, 'A'), first.towardA);
    await arrives(b, 1, 'A to B');
    const final = await relay.delete('first');
    assert.equal(side(final, 0).rtp.packets, 1, 'delete returns the last counters');
    assert.equal(await relay.query('first'), undefined);
    assert.equal(await relay.delete('first'), undefined);
    const again = await call(relay, a, b, { callId: 'second' });
    assert.deepEqual([again.towardA, again.towardB].sort(), [range.portMin, range.portMin + 2]);
  });

  it('gives back what a failed allocation bound', async (t) => {
    const { relay, range } = await newRelay({ ports: 6 });
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    await call(relay, a, b, { callId: 'first' });
    // Two pairs wanted, one left: the first side binds it, the second finds none.
    await assert.rejects(relay.offer({ callId: 'second', fromTag: 'A' }, sdp(a.port)), (e: unknown) => e instanceof MediaRelayError && e.status === 503);
    const port = await bindPort(range.portMin + 4);
    assert.ok(port, 'the pair bound for the failed call is closed again');
    await port.close();
    await call(relay, a, b, { callId: 'mux', aSdp: sdp(a.port, ['a=rtcp-mux']) }).then(
      () => assert.fail('one even port left: a muxed call needs two'),
      (e: unknown) => assert.ok(e instanceof MediaRelayError && e.status === 503),
    );
  });

  it('skips a port of the range that another socket holds', async (t) => {
    const range = await freeRange(8);
    const squatter = (await bindPort(range.portMin))!;
    const relay = new UdpMediaRelay({ address: LOOPBACK, ...range, clock: new FakeClock() });
    t.after(() => relay.close());
    const a = await phonePort();
    const b = await phonePort();
    const { towardA, towardB } = await call(relay, a, b);
    assert.ok(![towardA, towardB].includes(squatter.port));
    assert.deepEqual([towardA, towardB].sort(), [range.portMin + 2, range.portMin + 4]);
  });

  it('close() closes every socket and refuses further offers', async () => {
    const { relay } = await newRelay();
    const a = await phonePort();
    const b = await phonePort();
    const { towardA } = await call(relay, a, b);
    await relay.close();
    a.send(rtp(1, 0, 'after close'), towardA);
    await settle();
    assert.equal(b.got.length, 0);
    await assert.rejects(relay.offer({ callId: 'late', fromTag: 'A' }, sdp(a.port)), (e: unknown) => e instanceof MediaRelayError && e.status === 503);
    // The ports are free again.
    const port = await bindPort(towardA);
    assert.ok(port, 'the relay’s port can be bound again');
  });
});

describe('RtpSourceStats (RFC 3550 A.1, A.3, A.8)', () => {
  it('counts across the sequence number wrap; a duplicate counts as received, as A.3 has it', () => {
    const stats = new RtpSourceStats();
    for (const seq of [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 5]) stats.packet(seq, 0, 7, 0, 0);
    assert.equal(stats.lost, 2, '3 and 4 missing');
    stats.packet(5, 0, 7, 0, 0);
    assert.equal(stats.lost, 1, 'expected - received: a duplicate offsets a loss');
    stats.packet(6, 0, 7, 0, 0);
    stats.packet(6, 0, 7, 0, 0);
    stats.packet(6, 0, 7, 0, 0);
    assert.equal(stats.lost, 0, 'never negative');
  });

  it('starts afresh on a new SSRC, keeping the loss counted so far', () => {
    const stats = new RtpSourceStats();
    for (const seq of [10, 11, 12, 15]) stats.packet(seq, 0, 1, 0, 0);
    assert.equal(stats.lost, 2);
    for (const seq of [500, 501, 502, 503]) stats.packet(seq, 0, 2, 0, 0);
    assert.equal(stats.lost, 2);
    assert.equal(stats.ssrc, 2);
  });

  it('takes a large jump for a restart only when the next packet follows it', () => {
    const stats = new RtpSourceStats();
    for (const seq of [1, 2, 3, 4]) stats.packet(seq, 0, 1, 0, 0);
    stats.packet(40000, 0, 1, 0, 0);
    assert.equal(stats.lost, 0, 'one stray packet far ahead is not 39,995 lost');
    stats.packet(40001, 0, 1, 0, 0);
    stats.packet(40002, 0, 1, 0, 0);
    assert.equal(stats.lost, 0);
  });

  it('computes jitter across the RTP timestamp wrap', () => {
    const stats = new RtpSourceStats();
    let ts = 2 ** 32 - 320;
    for (let i = 0; i < 6; i++) {
      stats.packet(i, ts >>> 0, 1, i * 20, 8000);
      ts += 160;
    }
    assert.equal(stats.jitterMs, 0);
  });
});
