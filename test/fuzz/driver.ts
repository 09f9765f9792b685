/**
 * Sends mutants to a running server and watches that it keeps serving. One UDP peer socket sends mutated messages
 * in small bursts; after every window of them a valid OPTIONS probe must be answered (this paces the sender to the
 * server: a datagram queue is first in, first out, so the probe's answer means the window was read). The same socket
 * plays the callee: requests the server forwards to it are answered with responses, some of them mutated. TCP
 * connections write pipelined mutants cut at random offsets, then end, reset or just close.
 * The mutants depend on the seed alone (the callee and the TCP connections draw from mutators of their own), so a
 * seed and a count name the messages of a run, whatever the timing.
 * Used by the seeded run in `npm test` (test/fuzz/server.test.ts) and by `npm run bench:fuzz`.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { createResponse, parseMessage, serialize, SipRequest, SipResponse } from '../../src/message/index.js';
import { Mutator } from './mutator.js';
import { callFlowSeeds, corpusSeeds } from './seeds.js';

export interface FuzzSetup {
  seed: number;
  /** The server's domain: the call flows register and call users there. */
  domain: string;
  /** Where the server listens (one address; UDP, and TCP when tcpPort is given). */
  host: string;
  udpPort: number;
  tcpPort?: number;
  /** The peer's own address (default 127.8.7.6, which nothing else on the machine uses). */
  peerHost?: string;
}

export interface FuzzCounters {
  udpSent: number;
  tcpSent: number;
  tcpConnections: number;
  /** Responses that came back from the server (UDP and TCP). */
  responses: number;
  /** Requests the server forwarded to the peer, which answered them as a callee. */
  requestsFromServer: number;
  probesSent: number;
  probesAnswered: number;
  probeMaxMs: number;
  /** Connections the server closed before we did (it may: a stream it cannot frame is closed). */
  tcpClosedByServer: number;
}

/** How one TCP fuzz connection goes, drawn before it starts so that the draws do not depend on timing. */
interface ConnectionPlan {
  chunks: Buffer[];
  /** Chunks after which the writer waits a turn of the event loop (a trickle the server reads piece by piece). */
  pauses: Set<number>;
  lingerMs: number;
  ending: 'end' | 'destroy' | 'reset';
  messages: number;
}

/** What a server must still do after a fuzz: the status of each valid request, undefined when unanswered. */
export interface Liveness {
  optionsUdpMs: number | undefined;
  registerUdp: number | undefined;
  optionsTcp: number | undefined;
}

/**
 * Call flows weigh as much as the two corpora together (five copies of their dozen messages against ~75 files):
 * they are what gets past the parser into the registrar, the proxy and the transactions.
 */
const FLOW_WEIGHT = 5;

export class FuzzPeer {
  /**
   * A large receive buffer: the server answers most mutants, and a peer starved of CPU on a shared machine would
   * otherwise drop answers (the probes' among them) in its own socket and blame the server.
   */
  readonly socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  readonly host: string;
  readonly counters: FuzzCounters = {
    udpSent: 0,
    tcpSent: 0,
    tcpConnections: 0,
    responses: 0,
    requestsFromServer: 0,
    probesSent: 0,
    probesAnswered: 0,
    probeMaxMs: 0,
    tcpClosedByServer: 0,
  };
  private readonly probes = new Map<string, (status: number) => void>();
  private probeSeq = 0;
  private udp: Mutator | undefined;
  private tcp: Mutator | undefined;
  private callee: Mutator | undefined;

  constructor(private readonly setup: FuzzSetup) {
    this.host = setup.peerHost ?? '127.8.7.6';
  }

  /** Binds the peer's socket; the call-flow seeds are made then, since they carry its port. */
  async bind(): Promise<void> {
    // Send errors (a datagram too large, a full buffer) are part of fuzzing, not faults of the server.
    this.socket.on('error', () => {});
    await new Promise<void>((resolve) => this.socket.bind(0, this.host, resolve));
    const { seed, domain, host, udpPort, tcpPort } = this.setup;
    const corpus = corpusSeeds().map((s) => s.bytes);
    const flows = (transport: 'UDP' | 'TCP'): Buffer[] => {
      const serverPort = transport === 'UDP' ? udpPort : (tcpPort ?? udpPort);
      const flow = callFlowSeeds({ domain, serverHost: host, serverPort, peerHost: this.host, peerPort: this.port, transport }).map((s) => s.bytes);
      return Array.from({ length: FLOW_WEIGHT }, () => flow).flat();
    };
    this.udp = new Mutator(seed, [...corpus, ...flows('UDP')]);
    this.tcp = new Mutator(seed + 1, [...corpus, ...flows('TCP')]);
    this.callee = new Mutator(seed + 2, corpus);
    this.socket.on('message', (buf) => this.received(buf));
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): void {
    this.socket.close();
  }

  private mutators(): { udp: Mutator; tcp: Mutator; callee: Mutator } {
    if (!this.udp || !this.tcp || !this.callee) throw new Error('FuzzPeer: bind() first');
    return { udp: this.udp, tcp: this.tcp, callee: this.callee };
  }

  private received(buf: Buffer): void {
    const r = parseMessage(buf);
    const m = r.message;
    if (m instanceof SipResponse) {
      this.counters.responses++;
      const done = this.probes.get(m.headers.get('call-id') ?? '');
      if (done && m.status >= 200) done(m.status);
    } else if (m instanceof SipRequest && r.ok) {
      this.counters.requestsFromServer++;
      this.answer(m);
    }
  }

  /** Plays the callee of a forwarded request: a provisional and a final answer, either of them possibly mutated. */
  private answer(req: SipRequest): void {
    if (req.method === 'ACK') return;
    const callee = this.mutators().callee;
    const rng = callee.rng;
    const statuses = req.method === 'INVITE' ? [rng.pick([100, 180, 183]), rng.pick([200, 486, 487, 503, 603, 302])] : [rng.pick([200, 202, 404, 481])];
    for (const status of statuses) {
      let bytes: Buffer;
      try {
        bytes = serialize(createResponse(req, status, status === 302 ? { headers: [['contact', `<sip:carol@${this.host}:${this.port}>`]] } : {}));
      } catch {
        continue; // a request the parser accepted but whose fields cannot be echoed: nothing to answer with
      }
      if (rng.chance(0.3)) bytes = callee.mutate(bytes).bytes;
      this.send(bytes, req.source?.port ?? this.setup.udpPort);
    }
  }

  private send(bytes: Buffer, port: number): void {
    this.socket.send(bytes, port, this.setup.host, () => {});
  }

  /** A valid OPTIONS; resolves with its round trip in ms, or undefined when no final answer came within `ms`. */
  async probe(ms = 2000): Promise<number | undefined> {
    const started = performance.now();
    this.counters.probesSent++;
    const { host, udpPort } = this.setup;
    const status = await this.request(ms, (via) => [`OPTIONS sip:${host}:${udpPort} SIP/2.0`, via, 'Max-Forwards: 70', `To: <sip:${host}:${udpPort}>`, 'CSeq: 1 OPTIONS']);
    if (status === undefined) return undefined;
    const took = performance.now() - started;
    this.counters.probesAnswered++;
    this.counters.probeMaxMs = Math.max(this.counters.probeMaxMs, took);
    return took;
  }

  /**
   * Sends a valid request over UDP from this peer and resolves with the status of its final answer (undefined
   * after `ms`). `lines` gets our Via and returns the start line and fields; From, Call-ID and Content-Length are added.
   */
  request(ms: number, lines: (via: string) => string[]): Promise<number | undefined> {
    const tag = `${++this.probeSeq}x${this.setup.seed}`;
    const callId = `probe-${tag}@${this.host}`;
    const via = `Via: SIP/2.0/UDP ${this.host}:${this.port};branch=z9hG4bKprobe${tag};rport`;
    const bytes = Buffer.from([...lines(via), `From: <sip:probe@${this.host}>;tag=p${tag}`, `Call-ID: ${callId}`, 'Content-Length: 0', '', ''].join('\r\n'));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.probes.delete(callId);
        resolve(undefined);
      }, ms);
      this.probes.set(callId, (status) => {
        clearTimeout(timer);
        this.probes.delete(callId);
        resolve(status);
      });
      this.send(bytes, this.setup.udpPort);
    });
  }

  /** A valid OPTIONS on a fresh TCP connection from this peer's address: the status of the answer, if any. */
  tcpOptions(ms = 2000): Promise<number | undefined> {
    const { host, tcpPort } = this.setup;
    const tag = `${++this.probeSeq}x${this.setup.seed}`;
    const bytes = Buffer.from(
      [
        `OPTIONS sip:${host}:${tcpPort};transport=tcp SIP/2.0`,
        `Via: SIP/2.0/TCP ${this.host}:5060;branch=z9hG4bKtcp${tag}`,
        'Max-Forwards: 70',
        `From: <sip:probe@${this.host}>;tag=t${tag}`,
        `To: <sip:${host}:${tcpPort}>`,
        `Call-ID: tcp-${tag}@${this.host}`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    return new Promise((resolve) => {
      let data = '';
      const sock = net.connect({ port: tcpPort!, host, localAddress: this.host }, () => sock.write(bytes));
      const timer = setTimeout(() => sock.destroy(), ms);
      sock.on('data', (d) => {
        data += d.toString('latin1');
        if (data.includes('\r\n\r\n')) sock.end();
      });
      sock.on('error', () => {});
      sock.on('close', () => {
        clearTimeout(timer);
        const status = /^SIP\/2\.0 (\d{3}) /.exec(data)?.[1];
        resolve(status === undefined ? undefined : Number(status));
      });
    });
  }

  /** Valid requests after a fuzz: OPTIONS and a REGISTER (of carol, to this peer) over UDP, OPTIONS over TCP. */
  async liveness(ms = 2000): Promise<Liveness> {
    const { domain } = this.setup;
    const optionsUdpMs = await this.probe(ms);
    const registerUdp = await this.request(ms, (via) => [
      `REGISTER sip:${domain} SIP/2.0`,
      via,
      'Max-Forwards: 70',
      `To: <sip:carol@${domain}>`,
      'CSeq: 1 REGISTER',
      `Contact: <sip:carol@${this.host}:${this.port}>`,
      'Expires: 600',
    ]);
    const optionsTcp = this.setup.tcpPort === undefined ? undefined : await this.tcpOptions(ms);
    return { optionsUdpMs, registerUdp, optionsTcp };
  }

  /**
   * Sends `count` mutants over UDP in bursts of `burst`, yielding to the event loop between bursts, and probes after
   * every `window` of them. Stops early when `keepGoing` says so (a deadline, a server that died). Returns the
   * probes missed.
   */
  async fuzzUdp(count: number, options: { burst?: number; window?: number; probeMs?: number; keepGoing?: () => boolean } = {}): Promise<number> {
    const { udp } = this.mutators();
    const burst = options.burst ?? 16;
    const window = options.window ?? 256;
    let missed = 0;
    for (let sent = 0; sent < count; ) {
      if (options.keepGoing && !options.keepGoing()) break;
      const n = Math.min(burst, count - sent);
      for (let i = 0; i < n; i++) this.send(udp.mutate().bytes, this.setup.udpPort);
      sent += n;
      this.counters.udpSent += n;
      if (sent % window < burst || sent === count) {
        if ((await this.probe(options.probeMs)) === undefined) missed++;
      } else {
        await new Promise((r) => setImmediate(r));
      }
    }
    return missed;
  }

  /** Runs `connections` TCP fuzz connections, `parallel` at a time, `messages` mutants on each, while `keepGoing`. */
  async fuzzTcp(connections: number, messages: number, parallel = 8, keepGoing: () => boolean = () => true): Promise<void> {
    if (this.setup.tcpPort === undefined) return;
    let started = 0;
    const lane = async (): Promise<void> => {
      while (started < connections && keepGoing()) {
        started++;
        await this.runConnection(this.planConnection(messages));
      }
    };
    await Promise.all(Array.from({ length: parallel }, lane));
  }

  private planConnection(messages: number): ConnectionPlan {
    const { tcp } = this.mutators();
    const rng = tcp.rng;
    const chunks = tcp.streamChunks(Array.from({ length: messages }, () => tcp.mutate().bytes));
    const pauses = new Set<number>();
    chunks.forEach((c, i) => c.length < 4 && rng.chance(0.5) && pauses.add(i));
    return { chunks, pauses, messages, lingerMs: rng.int(50), ending: rng.pick(['end', 'end', 'destroy', 'reset'] as const) };
  }

  /** Writes the plan's chunks, lingers, then ends, resets or closes. Resolves when the connection is gone. */
  private runConnection(plan: ConnectionPlan): Promise<void> {
    this.counters.tcpConnections++;
    this.counters.tcpSent += plan.messages;
    return new Promise((resolve) => {
      const sock = net.connect({ port: this.setup.tcpPort!, host: this.setup.host, localAddress: this.host });
      let closedByUs = false;
      const finish = (): void => {
        closedByUs = true;
        if (plan.ending === 'reset') sock.resetAndDestroy();
        else if (plan.ending === 'destroy') sock.destroy();
        else sock.end();
      };
      const guard = setTimeout(() => {
        closedByUs = true;
        sock.destroy();
      }, 10000);
      sock.on('data', (d) => (this.counters.responses += countStatusLines(d)));
      sock.on('error', () => {});
      sock.on('close', () => {
        clearTimeout(guard);
        if (!closedByUs) this.counters.tcpClosedByServer++;
        resolve();
      });
      sock.on('connect', () => void this.write(sock, plan).then(() => setTimeout(finish, plan.lingerMs)));
    });
  }

  private async write(sock: net.Socket, plan: ConnectionPlan): Promise<void> {
    for (let i = 0; i < plan.chunks.length; i++) {
      if (sock.destroyed) return;
      if (!sock.write(plan.chunks[i]!)) await new Promise((r) => (sock.once('drain', r), sock.once('close', r)));
      if (plan.pauses.has(i)) await new Promise((r) => setImmediate(r));
    }
  }
}

function countStatusLines(d: Buffer): number {
  let n = 0;
  for (let i = d.indexOf('SIP/2.0 '); i >= 0; i = d.indexOf('SIP/2.0 ', i + 8)) n++;
  return n;
}
