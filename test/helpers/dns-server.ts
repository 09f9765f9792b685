import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { after } from 'node:test';
import {
  canonicalName,
  decodeMessage,
  encodeMessage,
  RCODE,
  type DnsMessage,
  type DnsRecord,
  type RecordOf,
  type RRType,
} from '../../src/transport/dns-message.js';

/**
 * A small authoritative DNS server on 127.0.0.1 (UDP and TCP on one ephemeral port) for resolver tests: zone data is a
 * plain object, every question is logged, and a test can make it drop or SERVFAIL queries. Tests never depend on the
 * machine's resolver configuration.
 */

/** A record as a test writes it: the owner is the zone key, the TTL defaults to DEFAULT_TTL. */
type Written<T> = T extends DnsRecord ? Omit<T, 'name' | 'ttl'> & { ttl?: number } : never;
export type ZoneRecord = Written<Exclude<DnsRecord, { type: 'SOA' }>>;
export type Zone = Record<string, ZoneRecord[]>;

export const DEFAULT_TTL = 300;
/** RFC 1035 §4.2.1: UDP answers above this are truncated (the client asked without EDNS). */
const UDP_LIMIT = 512;

/** handle()'s word for "reset the TCP connection". */
const RESET = Symbol('reset');

export interface LoggedQuery {
  name: string;
  type: RRType;
  transport: 'udp' | 'tcp';
}

/**
 * What the server does with a query: answer it; ignore it (the client times out); answer SERVFAIL or REFUSED; send
 * `garbage` (bytes that are no DNS message) or a `mismatch` (an answer with another id, as a spoofer would); over UDP
 * `truncate` the answer (TC bit, no records) so that the client asks again over TCP; over TCP `reset` the connection.
 */
export type Behaviour = 'answer' | 'drop' | 'servfail' | 'refused' | 'garbage' | 'mismatch' | 'truncate' | 'reset';

export interface DnsServerOptions {
  zone: Zone;
  /** TTL and MINIMUM of the SOA sent with negative answers (RFC 2308 §3); null sends no SOA. Default 60. */
  negativeTtl?: number | null;
  /** Put the A/AAAA records of SRV targets in the additional section. Default false. */
  additional?: boolean;
  /** What to do with a query (Behaviour); default: answer it. */
  behaviour?: (q: LoggedQuery) => Behaviour;
}

export class TestDnsServer {
  readonly queries: LoggedQuery[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  private connections = new Set<TcpSocket>();

  constructor(
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    readonly port: number,
    readonly options: DnsServerOptions,
  ) {
    udp.on('message', (bytes, peer) => {
      const out = this.handle(bytes, 'udp');
      if (out && out !== RESET) udp.send(out, peer.port, peer.address);
    });
    tcp.on('connection', (socket) => this.serveStream(socket));
  }

  /** `ip:port`, as DnsSipResolver's `servers` option takes it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** How many times a name and type were asked (any transport). */
  count(name: string, type: RRType): number {
    return this.queries.filter((q) => q.name === canonicalName(name) && q.type === type).length;
  }

  /** Resolves once `n` queries in all have arrived (bounded: a missing query fails the test). */
  waitForQueries(n: number, ms = 3000): Promise<void> {
    if (this.queries.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`DNS server saw ${this.queries.length} queries, not ${n}, within ${ms} ms`)), ms);
      this.waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    await Promise.all([new Promise<void>((r) => this.udp.close(() => r())), new Promise<void>((r) => this.tcp.close(() => r()))]);
  }

  private serveStream(socket: TcpSocket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const out = this.handle(buffered.subarray(2, 2 + buffered.readUInt16BE(0)), 'tcp');
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
        if (out === RESET) return void socket.resetAndDestroy();
        if (!out) continue;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(out.length);
        socket.write(Buffer.concat([length, out]));
      }
    });
  }

  private handle(bytes: Buffer, transport: 'udp' | 'tcp'): Buffer | typeof RESET | undefined {
    let query: DnsMessage;
    try {
      query = decodeMessage(bytes);
    } catch {
      return undefined;
    }
    const question = query.questions[0];
    const reply: DnsMessage = {
      id: query.id,
      response: true,
      authoritative: true,
      recursionDesired: query.recursionDesired ?? false,
      rcode: RCODE.NOERROR,
      questions: question ? [question] : [],
      answers: [],
      authorities: [],
      additionals: [],
    };
    if (!question) return encodeMessage({ ...reply, rcode: RCODE.NOTIMP });
    const logged: LoggedQuery = { name: canonicalName(question.name), type: question.type, transport };
    this.queries.push(logged);
    this.waiters = this.waiters.filter((w) => (this.queries.length >= w.n ? (w.resolve(), false) : true));
    const behaviour = this.options.behaviour?.(logged) ?? 'answer';
    switch (behaviour) {
      case 'drop':
        return undefined;
      case 'servfail':
        return encodeMessage({ ...reply, rcode: RCODE.SERVFAIL });
      case 'refused':
        return encodeMessage({ ...reply, rcode: RCODE.REFUSED });
      case 'garbage':
        // The query's id, then bytes no DNS message is made of: a header promising records that never come.
        return Buffer.concat([bytes.subarray(0, 2), Buffer.from([0x81, 0x80, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), Buffer.from('garbage'.repeat(9))]);
      case 'reset':
        return transport === 'tcp' ? RESET : undefined;
      default:
        break;
    }
    this.answer(logged, reply);
    if (behaviour === 'mismatch') reply.id = (reply.id + 1) & 0xffff;
    const encoded = encodeMessage(reply);
    if (transport === 'udp' && (encoded.length > UDP_LIMIT || behaviour === 'truncate')) {
      return encodeMessage({ ...reply, truncated: true, answers: [], authorities: [], additionals: [] });
    }
    return encoded;
  }

  private answer(q: LoggedQuery, reply: DnsMessage): void {
    let owner = q.name;
    // Follow CNAMEs inside the zone, as an authoritative server does (RFC 1034 §4.3.2), a few hops at most.
    for (let hop = 0; hop < 8; hop++) {
      const records = this.records(owner);
      const cname = records.find((r) => r.type === 'CNAME');
      if (!cname || q.type === 'CNAME') break;
      reply.answers.push(cname);
      owner = canonicalName((cname as RecordOf<'CNAME'>).target);
    }
    reply.answers.push(...this.records(owner).filter((r) => r.type === q.type));
    if (reply.answers.length === 0) {
      if (!this.exists(owner)) reply.rcode = RCODE.NXDOMAIN;
      const ttl = this.options.negativeTtl === undefined ? 60 : this.options.negativeTtl;
      if (ttl !== null) {
        reply.authorities.push({ name: 'test', ttl, type: 'SOA', mname: 'ns.test', rname: 'hostmaster.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: ttl });
      }
    }
    if (q.type === 'SRV' && this.options.additional) {
      for (const srv of reply.answers) {
        if (srv.type !== 'SRV') continue;
        reply.additionals.push(...this.records(canonicalName(srv.target)).filter((r) => r.type === 'A' || r.type === 'AAAA'));
      }
    }
  }

  private records(owner: string): DnsRecord[] {
    const entry = Object.entries(this.options.zone).find(([name]) => canonicalName(name) === owner);
    return (entry?.[1] ?? []).map((r) => ({ ttl: DEFAULT_TTL, ...r, name: owner }) as DnsRecord);
  }

  /** A name exists when it owns records or has names below it (an empty non-terminal, RFC 8020). */
  private exists(owner: string): boolean {
    return Object.keys(this.options.zone).some((name) => {
      const n = canonicalName(name);
      return n === owner || n.endsWith('.' + owner);
    });
  }
}

/** Starts a server on 127.0.0.1 (UDP and TCP on the same ephemeral port); it is closed after the test file. */
export async function startDnsServer(options: DnsServerOptions): Promise<TestDnsServer> {
  for (let attempt = 0; ; attempt++) {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    const tcp = createServer();
    try {
      await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(port, '127.0.0.1', resolve));
    } catch (err) {
      // The TCP side of this ephemeral port is taken by someone else: take another port.
      udp.close();
      if (attempt >= 5) throw err;
      continue;
    }
    const server = new TestDnsServer(udp, tcp, port, options);
    after(() => server.close());
    return server;
  }
}
