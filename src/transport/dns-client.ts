import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { getServers } from 'node:dns';
import { connect, isIP } from 'node:net';
import type { Clock } from '../util/clock.js';
import { ConfigError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { hostPort } from './address.js';
import { canonicalName, decodeMessage, encodeMessage, RCODE, type DnsMessage, type RRType } from './dns-message.js';

/**
 * A stub resolver client (RFC 1035 §7): one question per query to a recursive server, over UDP, repeated over TCP when
 * the answer is truncated (RFC 7766 §5). node:dns hides TTLs of SRV and NAPTR answers, additional records and the SOA
 * of negative answers, all of which RFC 3263 server location wants; and its timers cannot follow an injected clock.
 */

export interface DnsServerAddress {
  address: string;
  port: number;
}

/** Why a query got no usable answer: every server timed out, refused, or answered with a server error. */
export class DnsQueryError extends Error {
  override name = 'DnsQueryError';
}

export interface DnsClientOptions {
  servers: DnsServerAddress[];
  /** How long to wait for one server's answer before asking the next. */
  timeoutMs: number;
  clock: Clock;
  logger: Logger;
}

/** A query goes round the server list this many times before it is given up (a lost datagram is not an outage). */
const QUERY_ROUNDS = 2;

/** `ip`, `ip:port` or `[ipv6]:port` (port 53 by default); a bare IPv6 address as node:dns lists it is accepted too. */
export function parseDnsServer(text: string): DnsServerAddress {
  const t = text.trim();
  if (isIP(t) === 6) return { address: t, port: 53 };
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(t) ?? /^([^:[\]]+)(?::(\d{1,5}))?$/.exec(t);
  const address = m?.[1];
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (address === undefined || isIP(address) === 0 || port < 1 || port > 65535) {
    throw new ConfigError('dns.servers', `'${text}' is not ip[:port] (IPv6 in brackets when a port is given)`);
  }
  return { address, port };
}

/** The machine's resolvers (/etc/resolv.conf as node:dns read it at startup); loopback when there are none. */
export function systemDnsServers(): DnsServerAddress[] {
  const servers = getServers().map(parseDnsServer);
  return servers.length > 0 ? servers : [{ address: '127.0.0.1', port: 53 }];
}

type Settle = (result: DnsMessage | Error) => void;
type Accept = (bytes: Buffer) => DnsMessage | undefined;

export class DnsClient {
  constructor(private readonly options: DnsClientOptions) {
    if (options.servers.length === 0) throw new ConfigError('dns.servers', 'no DNS server to ask');
  }

  /**
   * Asks the servers in turn until one gives a NOERROR or NXDOMAIN answer; SERVFAIL, REFUSED and the like, timeouts
   * and refused connections move on to the next. Bounded: at most QUERY_ROUNDS × servers × timeoutMs (twice that
   * for an attempt that falls back to TCP). Rejects with DnsQueryError.
   */
  async query(name: string, type: RRType): Promise<DnsMessage> {
    const { servers } = this.options;
    const failures: string[] = [];
    for (let attempt = 0; attempt < servers.length * QUERY_ROUNDS; attempt++) {
      const server = servers[attempt % servers.length]!;
      const where = hostPort(server.address, server.port);
      try {
        let answer = await this.exchange(server, name, type, 'udp');
        if (answer.truncated) answer = await this.exchange(server, name, type, 'tcp');
        if (answer.rcode === RCODE.NOERROR || answer.rcode === RCODE.NXDOMAIN) return answer;
        failures.push(`${where}: rcode ${answer.rcode}`);
      } catch (err) {
        failures.push(`${where}: ${(err as Error).message}`);
      }
      this.options.logger.debug({ name, type, server: where, problem: failures.at(-1) }, 'dns query attempt failed');
    }
    throw new DnsQueryError(`${type} ${name}: ${failures.join('; ')}`);
  }

  /** One question to one server. The timer is armed synchronously, so parallel queries share one clock tick. */
  private exchange(server: DnsServerAddress, name: string, type: RRType, transport: 'udp' | 'tcp'): Promise<DnsMessage> {
    // A random ID (and a fresh socket, hence a random source port) makes forged answers hard to land (RFC 5452).
    const id = randomInt(0x10000);
    const query = encodeMessage({
      id,
      response: false,
      recursionDesired: true,
      rcode: RCODE.NOERROR,
      questions: [{ name, type }],
      answers: [],
      authorities: [],
      additionals: [],
    });
    const accept: Accept = (bytes) => {
      let m: DnsMessage;
      try {
        m = decodeMessage(bytes);
      } catch {
        return undefined;
      }
      const q = m.questions[0];
      const matches = m.response && m.id === id && m.questions.length === 1 && q?.type === type && canonicalName(q.name) === canonicalName(name);
      return matches ? m : undefined;
    };
    return new Promise((resolve, reject) => {
      let done = false;
      let close = (): void => {};
      const settle: Settle = (result) => {
        if (done) return;
        done = true;
        timer.cancel();
        close();
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const timer = this.options.clock.setTimer(this.options.timeoutMs, () =>
        settle(new DnsQueryError(`no ${transport.toUpperCase()} answer within ${this.options.timeoutMs} ms`)),
      );
      close = transport === 'udp' ? udpExchange(server, query, accept, settle) : tcpExchange(server, query, accept, settle);
    });
  }
}

/** Returns the function that releases the socket. */
function udpExchange(server: DnsServerAddress, query: Buffer, accept: Accept, settle: Settle): () => void {
  const socket = createSocket(isIP(server.address) === 6 ? 'udp6' : 'udp4');
  socket.on('error', settle);
  // Datagrams that are not the answer (late answers to an earlier attempt, forgeries) are ignored, not fatal.
  socket.on('message', (bytes) => {
    const m = accept(bytes);
    if (m) settle(m);
  });
  let closed = false;
  // A connected socket only hears from the server and learns of ICMP port unreachable (ECONNREFUSED) at once.
  // A connect that fails (no route, a bad address) hands its error to the callback, not to the 'error' event.
  socket.connect(server.port, server.address, ((err?: Error) => {
    if (err) settle(err);
    else if (!closed) socket.send(query);
  }) as () => void);
  return () => {
    closed = true;
    socket.close();
  };
}

/** RFC 1035 §4.2.2: each message is preceded by its length in two octets. */
function tcpExchange(server: DnsServerAddress, query: Buffer, accept: Accept, settle: Settle): () => void {
  const socket = connect({ host: server.address, port: server.port });
  let received = Buffer.alloc(0);
  socket.on('connect', () => {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(query.length);
    socket.write(Buffer.concat([length, query]));
  });
  socket.on('data', (chunk) => {
    received = Buffer.concat([received, chunk]);
    if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
    const m = accept(received.subarray(2, 2 + received.readUInt16BE(0)));
    settle(m ?? new DnsQueryError('TCP answer does not match the question'));
  });
  socket.on('error', settle);
  socket.on('close', () => settle(new DnsQueryError('TCP connection closed before the answer')));
  return () => socket.destroy();
}
