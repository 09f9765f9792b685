import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { Clock, TimerHandle } from '../util/clock.js';

/** 20 ms of G.711 at 8 kHz: the usual packetisation (RFC 3551 §4.5). */
const FRAME_SAMPLES = 160;
const FRAME_MS = 20;
const PT_PCMU = 0;
const SILENCE = 0xff; // µ-law code of 0

export interface RtpStats {
  sent: number;
  received: number;
  /** Received packets that were not RTP version 2 or not PCMU: ignored. */
  ignored: number;
}

/**
 * One PCMU audio stream of RFC 3550 on a UDP port pair's RTP port: sends 20 ms frames from the same socket it
 * receives on (symmetric RTP, so that a relay or a NAT latches onto it), paced on the injected clock, and keeps
 * what arrives, in sequence-number order, for recording. No RTCP, no jitter buffer: a test and CLI tool's stream.
 */
export class RtpStream {
  private readonly received = new Map<number, Buffer>();
  private readonly stats: RtpStats = { sent: 0, received: 0, ignored: 0 };
  private timer: TimerHandle | undefined;
  private firstSeq: number | undefined;

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
   * Sends `audio` (µ-law codes) to `remote` in 20 ms frames, then silence, until `stop`; the first frame goes at once.
   */
  start(remote: { address: string; port: number }, audio: Uint8Array, clock: Clock): void {
    const ssrc = randomInt(0, 2 ** 32);
    let seq = randomInt(0, 65536);
    let timestamp = randomInt(0, 2 ** 32);
    let offset = 0;
    const frame = (): void => {
      const packet = Buffer.alloc(12 + FRAME_SAMPLES, SILENCE);
      packet[0] = 0x80; // V=2
      packet[1] = PT_PCMU | (this.stats.sent === 0 ? 0x80 : 0); // marker on the first packet of a talkspurt
      packet.writeUInt16BE(seq, 2);
      packet.writeUInt32BE(timestamp >>> 0, 4);
      packet.writeUInt32BE(ssrc, 8);
      if (offset < audio.length) {
        packet.set(audio.subarray(offset, offset + FRAME_SAMPLES), 12);
        offset += FRAME_SAMPLES;
      }
      this.socket.send(packet, remote.port, remote.address);
      this.stats.sent++;
      seq = (seq + 1) & 0xffff;
      timestamp = (timestamp + FRAME_SAMPLES) >>> 0;
      this.timer = clock.setTimer(FRAME_MS, frame);
    };
    frame();
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

  private onPacket(packet: Buffer): void {
    if (packet.length < 12 || packet[0]! >> 6 !== 2 || (packet[1]! & 0x7f) !== PT_PCMU) {
      this.stats.ignored++;
      return;
    }
    const csrcCount = packet[0]! & 0x0f;
    const seq = packet.readUInt16BE(2);
    this.firstSeq ??= seq;
    // Sequence numbers wrap at 65536: order them from the first one seen.
    const index = (seq - this.firstSeq + 65536) % 65536;
    this.received.set(index, packet.subarray(12 + 4 * csrcCount));
    this.stats.received++;
  }
}
