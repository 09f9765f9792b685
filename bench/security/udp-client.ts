/**
 * The legitimate UDP client of the security benches: OPTIONS and REGISTER with digest, from one local address,
 * retransmitted as a UA does (RFC 3261 Timer E: 0.5 s, then doubling) and counted as answered when the final
 * response arrives within `timeoutMs`. Responses are matched by Call-ID and CSeq number.
 */
import dgram from 'node:dgram';
import { buildAuthorization, parseDigestChallenge } from '../../src/auth/digest.js';

export interface Outcome {
  /** The final status, undefined when none arrived in time. */
  status?: number;
  /** From the first send to the final response (or the timeout). */
  ms: number;
}

interface Waiter {
  resolve: (r: { status: number; text: string }) => void;
}

let sequence = 0;

export class UdpSipClient {
  private readonly waiters = new Map<string, Waiter>();

  private constructor(
    private readonly socket: dgram.Socket,
    readonly address: string,
    readonly port: number,
    private readonly server: { host: string; port: number },
  ) {
    socket.on('message', (m: Buffer) => {
      const text = m.toString('latin1');
      const status = Number(text.slice(8, 11));
      if (!text.startsWith('SIP/2.0 ') || status < 200) return;
      const callId = /^(?:Call-ID|i):\s*(\S+)/im.exec(text)?.[1];
      const cseq = /^CSeq:\s*(\d+)/im.exec(text)?.[1];
      const waiter = this.waiters.get(`${callId} ${cseq}`);
      if (!waiter) return;
      this.waiters.delete(`${callId} ${cseq}`);
      waiter.resolve({ status, text });
    });
  }

  static async open(address: string, server: { host: string; port: number }): Promise<UdpSipClient> {
    const socket = dgram.createSocket('udp4');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.bind(0, address, resolve));
    return new UdpSipClient(socket, address, socket.address().port, server);
  }

  close(): void {
    this.socket.close();
  }

  async options(domain: string, timeoutMs: number): Promise<Outcome> {
    const n = ++sequence;
    const callId = `legit-options-${n}-${this.port}@${this.address}`;
    const started = performance.now();
    const r = await this.exchange(this.request('OPTIONS', `sip:${domain}`, `<sip:legit@${domain}>`, callId, n), callId, n, timeoutMs);
    return { status: r?.status, ms: performance.now() - started };
  }

  /** REGISTER, its 401 answered with digest credentials, the final status; `ms` covers both transactions. */
  async register(user: string, domain: string, password: string, timeoutMs: number): Promise<Outcome> {
    const started = performance.now();
    const left = (): number => Math.max(1, timeoutMs - (performance.now() - started));
    const callId = `legit-register-${this.port}@${this.address}`;
    const contact = [`Contact: <sip:${user}@${this.address}:${this.port}>`, 'Expires: 600'];
    const aor = `<sip:${user}@${domain}>`;
    const first = ++sequence;
    const challengeAnswer = await this.exchange(this.request('REGISTER', `sip:${domain}`, aor, callId, first, contact), callId, first, left());
    if (challengeAnswer?.status !== 401) return { status: challengeAnswer?.status, ms: performance.now() - started };
    const header = /^WWW-Authenticate:\s*(.*)$/im.exec(challengeAnswer.text)?.[1] ?? '';
    const challenge = parseDigestChallenge(header.trim());
    if (!challenge.ok) return { status: 401, ms: performance.now() - started };
    const authorization = buildAuthorization({ challenge: challenge.value, username: user, password, method: 'REGISTER', uri: `sip:${domain}` });
    const second = ++sequence;
    const final = await this.exchange(this.request('REGISTER', `sip:${domain}`, aor, callId, second, [...contact, `Authorization: ${authorization}`]), callId, second, left());
    return { status: final?.status, ms: performance.now() - started };
  }

  private request(method: string, uri: string, aor: string, callId: string, cseq: number, extra: string[] = []): Buffer {
    const lines = [
      `${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.address}:${this.port};branch=z9hG4bKlegit${cseq}x${this.port};rport`,
      'Max-Forwards: 70',
      `From: ${aor};tag=l${cseq}`,
      `To: ${method === 'REGISTER' ? aor : `<${uri}>`}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      ...extra,
      'Content-Length: 0',
      '',
      '',
    ];
    return Buffer.from(lines.join('\r\n'));
  }

  /** Sends `bytes` and retransmits it (0.5 s, 1 s, 2 s, ...) until its final response or `timeoutMs`. */
  private exchange(bytes: Buffer, callId: string, cseq: number, timeoutMs: number): Promise<{ status: number; text: string } | undefined> {
    return new Promise((resolve) => {
      const key = `${callId} ${cseq}`;
      let interval = 500;
      let retransmit: NodeJS.Timeout;
      const send = (): void => {
        this.socket.send(bytes, this.server.port, this.server.host);
        retransmit = setTimeout(send, interval);
        interval = Math.min(interval * 2, 4000);
      };
      const deadline = setTimeout(() => {
        clearTimeout(retransmit);
        this.waiters.delete(key);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(key, {
        resolve: (r) => {
          clearTimeout(retransmit);
          clearTimeout(deadline);
          resolve(r);
        },
      });
      send();
    });
  }
}
