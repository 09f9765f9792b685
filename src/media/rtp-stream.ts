import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { Clock, TimerHandle } from '../util/clock.js';
import { g711Codec, type G711Law } from './g711.js';

/** 20 ms of G.711 at 8 kHz: the usual packetisation (RFC 3551 §4.5). */
const FRAME_SAMPLES = 160;
const FRAME_MS = 20;

/** RFC 4733 event codes 0-15 are the DTMF digits, in this order (§3.2). */
const DTMF_DIGITS = '0123456789*#ABCD';
/** 100 ms of tone: above the 40 ms that receivers are asked to recognise (ITU-T Q.24) with room for a lost packet. */
const EVENT_FRAMES = 5;
/** RFC 4733 §2.5.1.4: the final packet goes three times so that one loss does not lose the end of the event. */
const END_REPEATS = 3;
/** Audio between two digits, so that a receiver that regenerates tones hears two presses, not one long one. */
const GAP_FRAMES = 3;
/** -10 dBm0 (the field is the attenuation below 0 dBm0): a usual level for a keypad. */
const EVENT_VOLUME = 10;

export interface RtpStats {
  /** RTP packets sent: audio frames and telephone-event packets. */
  sent: number;
  /** Audio packets received and recorded. */
  received: number;
  /** Received packets that were not RTP version 2 or of neither the audio nor the telephone-event payload type. */
  ignored: number;
  /** Telephone events received, each counted once however many packets carried it. */
  events: number;
  /** Telephone events (digits) whose sending has begun. */
  eventsSent: number;
}

export interface RtpStartOptions {
  /** The law of `audio` and of what is recorded. Default 'pcmu'. */
  law?: G711Law;
  /** The payload type to send and to record; default the law's static one (0 or 8). */
  payloadType?: number;
}

interface SendingEvent {
  code: number;
  payloadType: number;
  /** The RTP timestamp of the event's first packet, which every packet of the event carries (RFC 4733 §2.5.1.2). */
  timestamp: number;
  packets: number;
}

/**
 * One G.711 audio stream of RFC 3550 on a UDP port pair's RTP port: sends 20 ms frames from the same socket it
 * receives on (symmetric RTP, so that a relay or a NAT latches onto it), paced on the injected clock, and keeps
 * what arrives, in sequence-number order, for recording. DTMF goes and comes as RFC 4733 telephone events when
 * `dtmfPayloadType` is set. No RTCP, no jitter buffer: a test and CLI tool's stream.
 */
export class RtpStream {
  /** The payload type of RFC 4733 telephone-event in both directions (as negotiated, often 101); undefined: none. */
  dtmfPayloadType: number | undefined;
  /** Called once for each DTMF digit received as a telephone event. */
  onDigit: ((digit: string) => void) | undefined;

  private readonly received = new Map<number, Buffer>();
  private readonly stats: RtpStats = { sent: 0, received: 0, ignored: 0, events: 0, eventsSent: 0 };
  private timer: TimerHandle | undefined;
  private firstSeq: number | undefined;
  private audioPayloadType = g711Codec('pcmu').payloadType;
  private readonly digitQueue: number[] = [];
  private sending: SendingEvent | undefined;
  private gapFrames = 0;
  private lastEventTimestamp: number | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    readonly port: number,
  ) {
    socket.on('message', (packet) => this.onPacket(packet));
    socket.on('error', () => undefined);
  }

  /** Binds an even port (RFC 3550 §11) on `host` between 20000 and 39998. */
  static async open(host: string): Promise<RtpStream> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = 20000 + 2 * randomInt(0, 10000);
      const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      const bound = await new Promise<boolean>((resolve) => {
        socket.once('error', () => resolve(false));
        socket.bind(port, host, () => resolve(true));
      });
      if (bound) return new RtpStream(socket, host, port);
      socket.close();
    }
    throw new Error(`no free even UDP port for RTP on ${host}`);
  }

  /**
   * Sends `audio` (G.711 codes of `options.law`, µ-law by default) to `remote` in 20 ms frames, then silence, until
   * `stop`; the first frame goes at once. From now on only packets of that payload type are recorded.
   */
  start(remote: { address: string; port: number }, audio: Uint8Array, clock: Clock, options: RtpStartOptions = {}): void {
    this.stop();
    const codec = g711Codec(options.law ?? 'pcmu');
    const payloadType = options.payloadType ?? codec.payloadType;
    this.audioPayloadType = payloadType;
    // An event cut short by an earlier stop is not resumed under a new timestamp; queued digits still go.
    this.sending = undefined;
    this.gapFrames = 0;
    const ssrc = randomInt(0, 2 ** 32);
    let seq = randomInt(0, 65536);
    let timestamp = randomInt(0, 2 ** 32);
    let offset = 0;
    let first = true;
    const frame = (): void => {
      const event = this.nextEvent(timestamp);
      let packet: Buffer;
      if (event) {
        packet = rtpPacket(event.payloadType, event.marker, seq, event.timestamp, ssrc, event.payload);
      } else {
        const payload = Buffer.alloc(FRAME_SAMPLES, codec.silence);
        payload.set(audio.subarray(offset, offset + FRAME_SAMPLES));
        packet = rtpPacket(payloadType, first, seq, timestamp, ssrc, payload); // marker: the first packet of a talkspurt
        first = false;
      }
      // An event takes its frames' place: that slice of the audio is dropped, not sent late, as under a keypad's tone.
      offset += FRAME_SAMPLES;
      this.socket.send(packet, remote.port, remote.address);
      this.stats.sent++;
      seq = (seq + 1) & 0xffff;
      timestamp = (timestamp + FRAME_SAMPLES) >>> 0;
      this.timer = clock.setTimer(FRAME_MS, frame);
    };
    frame();
  }

  /**
   * Queues DTMF digits (0-9, *, #, A-D) to go as RFC 4733 telephone events in place of audio frames, one after the
   * other with a short gap, once the stream is started. Throws, queueing none, if a digit is not one of those or if
   * no `dtmfPayloadType` is set.
   */
  sendDigits(digits: string): void {
    const payloadType = this.dtmfPayloadType;
    if (payloadType === undefined) throw new Error('cannot send DTMF: no telephone-event payload type (set dtmfPayloadType)');
    if (!Number.isInteger(payloadType) || payloadType < 0 || payloadType > 127 || payloadType === this.audioPayloadType) {
      throw new Error(`cannot send DTMF: telephone-event payload type ${payloadType} must be 0-127 and not the audio's`);
    }
    const codes = [...digits].map((d) => {
      if (!/^[0-9*#A-D]$/i.test(d)) throw new Error(`invalid DTMF digit ${JSON.stringify(d)} in ${JSON.stringify(digits)}: use 0-9, *, #, A-D`);
      return DTMF_DIGITS.indexOf(d.toUpperCase());
    });
    this.digitQueue.push(...codes);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  get counters(): RtpStats {
    return { ...this.stats };
  }

  /** The received payloads joined in sequence order (a gap is left out, not filled). */
  recorded(): Buffer {
    const keys = [...this.received.keys()].sort((a, b) => a - b);
    return Buffer.concat(keys.map((k) => this.received.get(k)!));
  }

  close(): void {
    this.stop();
    this.socket.close();
  }

  /**
   * The telephone event to send in the frame at `timestamp`, or undefined when this frame is audio. Each event:
   * EVENT_FRAMES packets whose duration grows by a frame, then the end packet END_REPEATS times with the final
   * duration, then GAP_FRAMES of audio before the next digit.
   */
  private nextEvent(timestamp: number): { payloadType: number; marker: boolean; timestamp: number; payload: Buffer } | undefined {
    if (!this.sending) {
      if (this.gapFrames > 0) {
        this.gapFrames--;
        return undefined;
      }
      // Digits queued before the payload type was unset wait for it rather than go under an unknown type.
      if (this.dtmfPayloadType === undefined) return undefined;
      const code = this.digitQueue.shift();
      if (code === undefined) return undefined;
      this.sending = { code, payloadType: this.dtmfPayloadType, timestamp, packets: 0 };
      this.stats.eventsSent++;
    }
    const e = this.sending;
    e.packets++;
    const end = e.packets > EVENT_FRAMES;
    const duration = Math.min(e.packets, EVENT_FRAMES) * FRAME_SAMPLES;
    const payload = Buffer.from([e.code, (end ? 0x80 : 0) | EVENT_VOLUME, duration >> 8, duration & 0xff]);
    if (e.packets === EVENT_FRAMES + END_REPEATS) {
      this.sending = undefined;
      this.gapFrames = GAP_FRAMES;
    }
    // The marker starts an event (RFC 4733 §2.5.1.3); every packet of it carries its first timestamp (§2.5.1.2).
    return { payloadType: e.payloadType, marker: e.packets === 1, timestamp: e.timestamp, payload };
  }

  private onPacket(packet: Buffer): void {
    if (packet.length < 12 || packet[0]! >> 6 !== 2) {
      this.stats.ignored++;
      return;
    }
    const payloadType = packet[1]! & 0x7f;
    const payload = packet.subarray(12 + 4 * (packet[0]! & 0x0f));
    if (payloadType === this.dtmfPayloadType && payload.length >= 4) {
      this.onEvent(packet.readUInt32BE(4), payload);
      return;
    }
    if (payloadType !== this.audioPayloadType) {
      this.stats.ignored++;
      return;
    }
    const seq = packet.readUInt16BE(2);
    this.firstSeq ??= seq;
    // Sequence numbers wrap at 65536: order them from the first one seen.
    const index = (seq - this.firstSeq + 65536) % 65536;
    this.received.set(index, payload);
    this.stats.received++;
  }

  /**
   * Every packet of one event carries the event's start timestamp, and its end packet comes three times: an event is
   * new when its timestamp is. It is reported on the first packet seen, not on the first with the E bit: the digit is
   * known at once, and still known when all three end packets are lost (the duration, unused here, is not).
   */
  private onEvent(timestamp: number, payload: Buffer): void {
    if (timestamp === this.lastEventTimestamp) return;
    this.lastEventTimestamp = timestamp;
    this.stats.events++;
    const digit = DTMF_DIGITS[payload[0]!];
    if (digit !== undefined) this.onDigit?.(digit);
  }
}

/** An RTP fixed header (RFC 3550 §5.1: version 2, no padding, extension or CSRC) followed by `payload`. */
function rtpPacket(payloadType: number, marker: boolean, seq: number, timestamp: number, ssrc: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  header.writeUInt16BE(seq, 2);
  header.writeUInt32BE(timestamp >>> 0, 4);
  header.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([header, payload]);
}
