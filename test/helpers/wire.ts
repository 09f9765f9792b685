/**
 * What really crosses the wire in a lab host: tcpdump captures UDP on every interface of the host's namespace (`-i
 * any`, loopback included) into a file; once stopped, tshark reads the file and prints, per datagram, its source and
 * destination and its payload in hex, which the test parses with sipway's own parser. A test then checks each message
 * against the socket it left from.
 *
 * tcpdump runs in immediate mode, where libpcap reads packets one by one (TPACKET_V2). Without it (dumpcap, tshark)
 * libpcap takes them from the kernel in blocks (TPACKET_V3) that a timer should hand over when not full; on Linux 6.18
 * that timer stops firing, and whatever waits in the last block is lost when the capture stops: a whole call.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTool } from './process.js';
import type { NetHost } from './netns.js';
import { parseMessage, type AnyMessage } from '../../src/message/index.js';

export interface Datagram {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  /** Capture time, seconds since the epoch. */
  time: number;
  payload: Buffer;
  /** The SIP message, when the payload parses as one. */
  sip?: AnyMessage;
}

export class UdpCapture {
  /** Every datagram captured, in order; filled by `stop`. */
  readonly datagrams: Datagram[] = [];
  private stderr = '';
  private stopped = false;
  /** Resolves once tcpdump exited and its output was read to the end. */
  private readonly closed: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly file: string,
  ) {
    child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
  }

  /**
   * Starts capturing UDP to or from `port` (or whatever a BPF `filter` says) in `host`'s namespace; resolves once
   * tcpdump captures (bounded).
   */
  static async start(host: NetHost, port: number | string, timeoutMs = 15000): Promise<UdpCapture> {
    const tcpdump = requireTool('tcpdump', 'tcpdump');
    requireTool('tshark', 'tshark');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-wire-'));
    const file = path.join(dir, 'capture.pcap');
    // -Z root: tcpdump would otherwise write the file as user tcpdump, in a directory only root may write to.
    const args = ['-i', 'any', '-n', '--immediate-mode', '-U', '-Z', 'root', '-w', file, typeof port === 'number' ? `udp port ${port}` : port];
    const child = host.spawn(tcpdump, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const capture = new UdpCapture(child, dir, file);
    const deadline = Date.now() + timeoutMs;
    // tcpdump says "listening on any" once its filter is attached.
    while (!capture.stderr.includes('listening on')) {
      if (child.exitCode !== null) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`tcpdump exited with ${child.exitCode}: ${capture.stderr}`);
      }
      if (Date.now() > deadline) {
        await capture.stop();
        throw new Error(`tcpdump did not start capturing within ${timeoutMs} ms: ${capture.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return capture;
  }

  /** The SIP messages captured, in order (after `stop`). */
  messages(): Array<Datagram & { sip: AnyMessage }> {
    return this.datagrams.filter((d): d is Datagram & { sip: AnyMessage } => d.sip !== undefined);
  }

  /** RTP version-2 datagrams (not SIP, not RTCP: payload type below 72 or above 76 after the marker bit). */
  rtp(): Datagram[] {
    return this.datagrams.filter((d) => d.sip === undefined && d.payload.length >= 12 && d.payload[0]! >> 6 === 2 && !((d.payload[1]! & 0x7f) >= 72 && (d.payload[1]! & 0x7f) <= 76));
  }

  /** Stops tcpdump (it closes its file on SIGINT), bounded, and reads the file; idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 8000).unref())]);
    clearTimeout(kill);
    try {
      this.read();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private read(): void {
    const fields = ['frame.time_epoch', 'ip.src', 'udp.srcport', 'ip.dst', 'udp.dstport', 'udp.payload'].flatMap((f) => ['-e', f]);
    const r = spawnSync('tshark', ['-r', this.file, '-n', '-T', 'fields', ...fields, '-E', 'separator=/t'], { encoding: 'utf8', timeout: 60000, maxBuffer: 256 << 20 });
    if (r.error || r.status !== 0) throw new Error(`tshark could not read the capture: ${r.error?.message ?? r.stderr} (tcpdump: ${this.stderr.trim()})`);
    for (const line of r.stdout.split('\n')) {
      const [time, src, srcPort, dst, dstPort, hex] = line.split('\t');
      if (!src || !hex) continue;
      const payload = Buffer.from(hex.replace(/:/g, ''), 'hex');
      // Media is most of a call's datagrams: only what starts like SIP is parsed.
      const looksSip = /^(SIP\/2\.0 |[A-Z]+ sips?:)/.test(payload.toString('latin1', 0, 16));
      const sip = looksSip ? (parseMessage(payload).message ?? undefined) : undefined;
      this.datagrams.push({ time: Number(time), src, srcPort: Number(srcPort), dst: dst ?? '', dstPort: Number(dstPort), payload, sip });
    }
  }
}
