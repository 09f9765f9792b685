import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { decodeAlaw, encodeAlaw, RtpStream } from '../../src/media/index.js';
import { FakeClock } from '../../src/testing/index.js';

const LOOPBACK = '127.0.0.1';
const DTMF_PT = 101;

/** Lets the event loop run (datagrams on loopback arrive in its poll phase) until `done`, for a bounded number of turns. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 5000 && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(done(), `still waiting for ${what}`);
}

/** Moves the fake clock `frames` RTP frames on, letting each frame's datagrams go before the next. */
async function runFrames(clock: FakeClock, frames: number): Promise<void> {
  for (let i = 0; i < frames; i++) {
    clock.advance(20);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A plain UDP socket on loopback that keeps what it receives: the wire as a peer sees it. */
async function capture(): Promise<{ socket: dgram.Socket; port: number; packets: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  const packets: Buffer[] = [];
  socket.on('message', (m) => packets.push(m));
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  return { socket, port: socket.address().port, packets };
}

interface Rtp {
  marker: boolean;
  payloadType: number;
  seq: number;
  timestamp: number;
  payload: Buffer;
}

function parse(packet: Buffer): Rtp {
  return {
    marker: (packet[1]! & 0x80) !== 0,
    payloadType: packet[1]! & 0x7f,
    seq: packet.readUInt16BE(2),
    timestamp: packet.readUInt32BE(4),
    payload: packet.subarray(12),
  };
}

test('digits "1#9" sent as telephone events arrive as exactly 1, #, 9, in order, and are not recorded as audio', async (t) => {
  const clock = new FakeClock();
  const a = await RtpStream.open(LOOPBACK);
  const b = await RtpStream.open(LOOPBACK);
  t.after(() => {
    a.close();
    b.close();
  });
  a.dtmfPayloadType = DTMF_PT;
  b.dtmfPayloadType = DTMF_PT;
  const heard: string[] = [];
  b.onDigit = (digit) => heard.push(digit);

  a.start({ address: b.address, port: b.port }, new Uint8Array(0), clock);
  b.start({ address: a.address, port: a.port }, new Uint8Array(0), clock);
  a.sendDigits('1#9');
  await runFrames(clock, 40);
  // 41 packets: 3 events of 8 packets, the rest audio.
  await until(() => b.counters.received + 3 * 8 >= 41 && heard.length >= 3, 'the packets at b');

  assert.deepEqual(heard, ['1', '#', '9']);
  assert.equal(a.counters.sent, 41);
  assert.equal(a.counters.eventsSent, 3);
  assert.deepEqual({ ...b.counters, sent: 0 }, { sent: 0, received: 41 - 24, ignored: 0, events: 3, eventsSent: 0 });
  assert.equal(b.recorded().length, (41 - 24) * 160);
  assert.equal(a.counters.events, 0);
});

test('on the wire: marker on the first packet of an event, its start timestamp on all, growing duration, E bit on the last three, then audio again', async (t) => {
  const clock = new FakeClock();
  const peer = await capture();
  const a = await RtpStream.open(LOOPBACK);
  t.after(() => {
    a.close();
    peer.socket.close();
  });
  a.dtmfPayloadType = DTMF_PT;
  // Frame k of the audio is all k, so that the wire shows which slice of it each audio packet carries.
  const audio = Buffer.alloc(160 * 30);
  for (let k = 0; k < 30; k++) audio.fill(k, 160 * k, 160 * (k + 1));

  a.start({ address: LOOPBACK, port: peer.port }, audio, clock);
  a.sendDigits('5');
  await runFrames(clock, 14);
  await until(() => peer.packets.length >= 15, '15 packets at the capture socket');

  const packets = peer.packets.map(parse);
  assert.equal(packets.length, 15);
  const first = packets[0]!;
  packets.forEach((p, i) => assert.equal(p.seq, (first.seq + i) & 0xffff, 'sequence numbers continue through the event'));
  assert.equal(first.payloadType, 0);
  assert.equal(first.marker, true);

  const events = packets.slice(1, 9);
  assert.ok(events.every((p) => p.payloadType === DTMF_PT && p.payload.length === 4));
  assert.deepEqual(events.map((p) => p.marker), [true, false, false, false, false, false, false, false]);
  // The event starts in frame 1: its timestamp is that frame's, on every packet of it.
  assert.ok(events.every((p) => p.timestamp === ((first.timestamp + 160) >>> 0)));
  assert.ok(events.every((p) => p.payload[0] === 5));
  assert.ok(events.every((p) => (p.payload[1]! & 0x3f) === 10 && (p.payload[1]! & 0x40) === 0), 'volume 10, R bit clear');
  assert.deepEqual(events.map((p) => p.payload[1]! >> 7), [0, 0, 0, 0, 0, 1, 1, 1]);
  assert.deepEqual(events.map((p) => p.payload.readUInt16BE(2)), [160, 320, 480, 640, 800, 800, 800, 800]);

  const after = packets.slice(9);
  assert.ok(after.every((p) => p.payloadType === 0 && !p.marker && p.payload.length === 160));
  after.forEach((p, i) => {
    assert.equal(p.timestamp, (first.timestamp + 160 * (9 + i)) >>> 0, 'audio keeps its own timeline');
    // The event replaced frames 1 to 8 of the audio: it resumes at frame 9, not where it was cut.
    assert.ok(p.payload.every((byte) => byte === 9 + i));
  });
  assert.deepEqual({ sent: a.counters.sent, eventsSent: a.counters.eventsSent }, { sent: 15, eventsSent: 1 });
});

test('a PCMA stream sends payload type 8, records PCMA and ignores PCMU', async (t) => {
  const clock = new FakeClock();
  const a = await RtpStream.open(LOOPBACK);
  const b = await RtpStream.open(LOOPBACK);
  const raw = dgram.createSocket('udp4');
  t.after(() => {
    a.close();
    b.close();
    raw.close();
  });
  const pcm = Int16Array.from({ length: 320 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)));
  const alaw = encodeAlaw(pcm);

  a.start({ address: b.address, port: b.port }, alaw, clock, { law: 'pcma' });
  b.start({ address: a.address, port: a.port }, new Uint8Array(0), clock, { law: 'pcma' });
  const pcmu = Buffer.alloc(12 + 160, 0xff);
  pcmu[0] = 0x80;
  pcmu[1] = 0; // PCMU
  raw.send(pcmu, b.port, LOOPBACK);
  await runFrames(clock, 2);
  await until(() => b.counters.received >= 3 && b.counters.ignored >= 1 && a.counters.received >= 3, 'the packets');

  assert.deepEqual({ received: b.counters.received, ignored: b.counters.ignored }, { received: 3, ignored: 1 });
  const recorded = b.recorded();
  assert.deepEqual(recorded.subarray(0, 320), alaw);
  assert.ok(recorded.subarray(320).every((code) => code === 0xd5), 'then A-law silence');
  const back = decodeAlaw(recorded.subarray(0, 320));
  assert.ok(back.every((v, i) => Math.abs(v - pcm[i]!) <= Math.abs(pcm[i]!) / 32 + 9));
  // b sends A-law silence, recorded by a as such.
  assert.ok(a.recorded().every((code) => code === 0xd5));
});

test('sendDigits refuses an invalid digit and a stream without a telephone-event payload type, queueing nothing', async (t) => {
  const clock = new FakeClock();
  const peer = await capture();
  const a = await RtpStream.open(LOOPBACK);
  t.after(() => {
    a.close();
    peer.socket.close();
  });
  assert.throws(() => a.sendDigits('1'), /no telephone-event payload type/);
  a.dtmfPayloadType = DTMF_PT;
  assert.throws(() => a.sendDigits('12x'), /invalid DTMF digit "x" in "12x"/);
  assert.throws(() => a.sendDigits('E'), /invalid DTMF digit "E"/);
  assert.throws(() => a.sendDigits('1 2'), /invalid DTMF digit " "/);
  a.dtmfPayloadType = 0;
  assert.throws(() => a.sendDigits('1'), /not the audio's/);
  a.dtmfPayloadType = DTMF_PT;

  a.start({ address: LOOPBACK, port: peer.port }, new Uint8Array(0), clock);
  await runFrames(clock, 10);
  assert.equal(a.counters.eventsSent, 0, 'nothing was queued by the calls that threw');
  a.sendDigits('d');
  await runFrames(clock, 10);
  await until(() => peer.packets.length >= 21, 'the packets at the capture socket');
  const events = peer.packets.map(parse).filter((p) => p.payloadType === DTMF_PT);
  assert.equal(events.length, 8);
  assert.ok(events.every((p) => p.payload[0] === 15), 'a lower-case d is D, event 15');
});
