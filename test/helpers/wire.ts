/**
 * What really crosses the wire in a lab host: tshark captures UDP on every interface of the host's namespace (`-i
 * any`, loopback included) and prints, per datagram, its source and destination and its payload in hex, which the
 * test parses with sipway's own parser. A test then checks each message against the socket it left from.
 */
import { requireTool } from './process.js';
import type { NetHost } from './netns.js';
import { parseMessage, type AnyMessage } from '../../src/message/index.js';

export interface Datagram {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Buffer;
  /** The SIP message, when the payload parses as one. */
  sip?: AnyMessage;
}

export class UdpCapture {
  readonly datagrams: Datagram[] = [];
  private stderr = '';
  private partial = '';

  private constructor(private readonly child: import('node:child_process').ChildProcess) {
    child.stdout!.on('data', (c: Buffer) => this.receive(c.toString()));
    child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
  }

  /** Starts capturing UDP to or from `port` in `host`'s namespace; resolves once tshark captures (bounded). */
  static async start(host: NetHost, port: number, timeoutMs = 15000): Promise<UdpCapture> {
    const tshark = requireTool('tshark', 'tshark');
    const fields = ['ip.src', 'udp.srcport', 'ip.dst', 'udp.dstport', 'udp.payload'].flatMap((f) => ['-e', f]);
    const child = host.spawn(tshark, ['-i', 'any', '-l', '-n', '-Q', '-f', `udp port ${port}`, '-T', 'fields', ...fields, '-E', 'separator=/t'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const capture = new UdpCapture(child);
    // -Q hides the "Capturing on" banner; an empty stderr and a living process after dumpcap started is the sign.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`tshark exited with ${child.exitCode}: ${capture.stderr}`);
      const dumpcapUp = host.run('sh', ['-c', `pgrep -f 'dumpcap.*udp port ${port}' || true`]).trim() !== '';
      if (dumpcapUp) break;
      if (Date.now() > deadline) throw new Error(`tshark did not start capturing within ${timeoutMs} ms: ${capture.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // dumpcap runs before its filter is attached: give it a moment.
    await new Promise((r) => setTimeout(r, 700));
    return capture;
  }

  /** The SIP messages captured so far, in order. */
  messages(): Array<Datagram & { sip: AnyMessage }> {
    return this.datagrams.filter((d): d is Datagram & { sip: AnyMessage } => d.sip !== undefined);
  }

  /** Stops tshark (it flushes what it holds on SIGINT), bounded. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGINT');
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(kill);
  }

  private receive(text: string): void {
    this.partial += text;
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const [src, srcPort, dst, dstPort, hex] = line.split('\t');
      if (!src || !hex) continue;
      const payload = Buffer.from(hex.replace(/:/g, ''), 'hex');
      const parsed = parseMessage(payload);
      this.datagrams.push({ src, srcPort: Number(srcPort), dst: dst ?? '', dstPort: Number(dstPort), payload, sip: parsed.message ?? undefined });
    }
  }
}
