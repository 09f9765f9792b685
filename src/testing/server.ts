import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SipwayServer, type ServerOverrides } from '../server/server.js';
import { applyConfigObject, defaultConfig, finishConfig, loadConfigFile, type ServerConfig } from '../server/config.js';
import { parseMessage, SipResponse } from '../message/index.js';
import { newBranch, newCallId, newTag } from '../util/ids.js';
import { silentLogger } from '../util/logger.js';

/** Only loopback destinations: a server fed foreign messages must never send off this machine. */
export function loopbackOnly(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === 'localhost';
}

export interface TestServer {
  server: SipwayServer;
  /** The UDP listener's port on 127.0.0.1. */
  port: number;
  tcpPort: number | undefined;
  /** The temporary store directory, removed by stop(). */
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Starts an in-process server on ephemeral loopback ports with a temp data dir, serving `sipway.test`, silent, with
 * no admin endpoint and sending only to loopback. `config` holds config-file keys (docs/configuration.md) laid over
 * those settings; `config.configFile` names a JSON config file read on top of them, as `sipway serve --config` does.
 */
export async function startTestServer(config: Record<string, unknown> = {}, overrides: ServerOverrides = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipway-test-'));
  let server: SipwayServer;
  try {
    server = await startIn(dataDir, config, overrides);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const udp = server.listeners().find((l) => l.transport === 'udp');
  const tcp = server.listeners().find((l) => l.transport === 'tcp');
  return {
    server,
    port: udp?.port ?? 0,
    tcpPort: tcp?.port,
    dataDir,
    stop: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function startIn(dataDir: string, config: Record<string, unknown>, overrides: ServerOverrides): Promise<SipwayServer> {
  const { configFile, ...settings } = config;
  let base: ServerConfig = applyConfigObject(defaultConfig(), {
    listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'],
    domains: ['sipway.test'],
    data: dataDir,
    log: { level: 'silent' },
    // Never the machine's resolver: nothing listens on the discard port, so a lookup fails at once.
    dns: { servers: ['127.0.0.1:9'], timeoutMs: 200 },
    // Many servers run at once in tests: none takes the default admin port unless the test asks for it.
    admin: false,
    ...settings,
  });
  if (typeof configFile === 'string') base = loadConfigFile(configFile, base);
  const server = new SipwayServer(finishConfig(base), { logger: silentLogger(), destinationFilter: loopbackOnly, ...overrides });
  await server.start();
  return server;
}

/** A UDP client socket that collects parsed responses. */
export class UdpClient {
  readonly socket = dgram.createSocket('udp4');
  private waiters: Array<(r: SipResponse) => void> = [];
  readonly received: SipResponse[] = [];

  async bind(): Promise<number> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    this.socket.on('message', (buf) => {
      // A 400 echoes the faulty headers of the request it answers, so take what could be read even if not valid.
      const r = parseMessage(buf);
      if (r.message instanceof SipResponse) {
        this.received.push(r.message);
        const w = this.waiters.shift();
        w?.(r.message);
      }
    });
    return this.socket.address().port;
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(bytes: Buffer, port: number): void {
    this.socket.send(bytes, port, '127.0.0.1');
  }

  /** The next response, or undefined after `ms`. */
  next(ms = 1000): Promise<SipResponse | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      }, ms);
      const waiter = (r: SipResponse): void => {
        clearTimeout(timer);
        resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Sends and waits for the first final (>= 200) response to this request: same Call-ID (or none, when the request has
   * none), skipping provisionals and late retransmissions of answers to earlier requests.
   */
  async request(bytes: Buffer, port: number, ms = 1000): Promise<SipResponse | undefined> {
    const callId = callIdOf(bytes);
    this.send(bytes, port);
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await this.next(Math.max(1, deadline - Date.now()));
      if (!r) return undefined;
      if (r.status >= 200 && (r.headers.get('call-id') ?? undefined) === callId) return r;
    }
  }

  close(): void {
    this.socket.close();
  }
}

/** Writes bytes on a fresh TCP connection and collects what comes back until the peer closes or `ms` pass. */
export function tcpExchange(port: number, bytes: Buffer, ms = 1000): Promise<{ data: Buffer; closedByPeer: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ data: Buffer.concat(chunks), closedByPeer: false });
    }, ms);
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closedByPeer: true });
    });
  });
}

/** An OPTIONS from a UDP client on 127.0.0.1:`clientPort` to the server on `port` (a ping), with fresh ids. */
export function optionsRequest(port: number, clientPort: number, extra: string[] = [], ruri = `sip:127.0.0.1:${port}`): Buffer {
  const lines = [
    `OPTIONS ${ruri} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${clientPort};branch=${newBranch()};rport`,
    'Max-Forwards: 70',
    `From: <sip:tester@127.0.0.1>;tag=${newTag()}`,
    `To: <${ruri}>`,
    `Call-ID: ${newCallId('test')}`,
    'CSeq: 1 OPTIONS',
    ...extra,
    'Content-Length: 0',
  ];
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n');
}

/** The Call-ID of raw request bytes (long or compact form), undefined when absent. */
export function callIdOf(bytes: Buffer): string | undefined {
  const head = bytes.toString('latin1', 0, Math.max(0, bytes.indexOf('\r\n\r\n')) || bytes.length);
  const m = /^(?:call-id|i)[ \t]*:[ \t]*(.*?)[ \t]*$/im.exec(head);
  return m?.[1];
}
