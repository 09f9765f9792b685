import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { parseMessage, type AnyMessage, type SipResponse } from '../../src/message/index.js';
import { TransportLayer, type TransportLayerOptions } from '../../src/transport/transport-layer.js';
import type { ListenSpec, MessageReceiver, TransportName } from '../../src/transport/types.js';
import { requireTool } from '../helpers/process.js';

export const WAIT_MS = 3000;

/** Every await on the network is bounded: a lost packet fails the test instead of hanging it. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls a condition the test cannot await directly (what the server side has seen), bounded. */
export async function eventually(what: string, condition: () => boolean): Promise<void> {
  await within(
    (async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
    })(),
    what,
  );
}

export const loopbackOnly = (address: string): boolean => address === '127.0.0.1' || address === '::1';

/** A queue that hands items to waiters in order. */
export class Inbox<T> {
  private items: T[] = [];
  private waiters: Array<(item: T) => void> = [];

  push(item: T): void {
    const w = this.waiters.shift();
    if (w) w(item);
    else this.items.push(item);
  }

  next(what = 'a message', ms = WAIT_MS): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return within(new Promise<T>((resolve) => this.waiters.push(resolve)), what, ms);
  }

  get size(): number {
    return this.items.length;
  }
}

export class CollectingReceiver implements MessageReceiver {
  readonly inbox = new Inbox<AnyMessage>();
  onMessage(message: AnyMessage): void {
    this.inbox.push(message);
  }
}

export function spec(transport: TransportName, host = '127.0.0.1', port = 0): ListenSpec {
  return { transport, host, port };
}

/** Starts a layer with a collecting receiver and a loopback-only destination filter; stopped after the test file. */
export async function startLayer(options: Partial<TransportLayerOptions> & { listen: ListenSpec[] }) {
  const receiver = new CollectingReceiver();
  const layer = new TransportLayer({ receiver, destinationFilter: loopbackOnly, ...options });
  await layer.start();
  after(() => layer.stop());
  const port = (t: TransportName, family?: 4 | 6): number => {
    const l = layer.listenerFor(t, family);
    if (!l) throw new Error(`no ${t} listener`);
    return l.port;
  };
  return { layer, receiver, inbox: receiver.inbox, port };
}

export interface RequestOptions {
  method?: string;
  uri?: string;
  via?: string;
  callId?: string | null;
  extra?: string[];
  body?: string;
  contentLength?: string;
}

/** A request as a peer would write it; `callId: null` leaves Call-ID out. */
export function request(o: RequestOptions = {}): string {
  const method = o.method ?? 'OPTIONS';
  const body = o.body ?? '';
  const lines = [
    `${method} ${o.uri ?? 'sip:service@127.0.0.1'} SIP/2.0`,
    `Via: ${o.via ?? 'SIP/2.0/UDP client.example.com:5070;branch=z9hG4bK-t1;rport'}`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=a1',
    'To: <sip:service@example.com>',
    ...(o.callId === null ? [] : [`Call-ID: ${o.callId ?? 'call-1@example.com'}`]),
    `CSeq: 1 ${method}`,
    ...(o.extra ?? []),
    `Content-Length: ${o.contentLength ?? Buffer.byteLength(body)}`,
    '',
    body,
  ];
  return lines.join('\r\n');
}

export function response(via: string, status = 200, reason = 'OK'): string {
  return [
    `SIP/2.0 ${status} ${reason}`,
    `Via: ${via}`,
    'From: <sip:alice@example.com>;tag=a1',
    'To: <sip:service@example.com>;tag=b2',
    'Call-ID: call-1@example.com',
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** Parses what a test peer received; a 400 about a missing header lacks that header too, so partial reads count. */
export function parse(bytes: Buffer | string): AnyMessage {
  const r = parseMessage(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  if (r.ok) return r.message;
  if (!r.message) throw new Error(`test peer received an unparsable message: ${r.error.toString()}`);
  return r.message;
}

/** A raw UDP peer. */
export class UdpPeer {
  readonly inbox = new Inbox<{ bytes: Buffer; port: number; address: string }>();
  private constructor(readonly socket: UdpSocket) {
    socket.on('message', (bytes, r) => this.inbox.push({ bytes, port: r.port, address: r.address }));
  }

  static async open(family: 4 | 6 = 4): Promise<UdpPeer> {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.bind(0, family === 6 ? '::1' : '127.0.0.1', resolve));
    const peer = new UdpPeer(socket);
    after(() => socket.close());
    return peer;
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(text: string | Buffer, port: number, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(text, port, host, (err) => (err ? reject(err) : resolve())));
  }

  async next(what?: string): Promise<AnyMessage> {
    return parse((await this.inbox.next(what)).bytes);
  }
}

/** A raw TCP peer that records everything it receives. */
export class TcpPeer {
  private received = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number, host = '127.0.0.1', localAddress?: string): Promise<TcpPeer> {
    const socket = connect({ port, host, localAddress });
    await within(new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject)), 'tcp connect');
    after(() => socket.destroy());
    return new TcpPeer(socket);
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Waits until at least `n` bytes have arrived and takes them. */
  async take(n: number, what = `${n} bytes`): Promise<Buffer> {
    await within(
      (async () => {
        while (this.received.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
      })(),
      what,
    );
    const out = this.received.subarray(0, n);
    this.received = this.received.subarray(n);
    return out;
  }

  /** Waits for one complete message (header section plus Content-Length body). */
  async nextMessage(what = 'a message'): Promise<AnyMessage> {
    await within(
      (async () => {
        while (!this.hasWholeMessage()) await new Promise<void>((resolve) => this.waiters.push(resolve));
      })(),
      what,
    );
    const end = this.received.indexOf('\r\n\r\n') + 4;
    const cl = /content-length:\s*(\d+)/i.exec(this.received.subarray(0, end).toString('latin1'));
    const total = end + Number(cl?.[1] ?? 0);
    const bytes = this.received.subarray(0, total);
    this.received = this.received.subarray(total);
    return parse(bytes);
  }

  private hasWholeMessage(): boolean {
    const end = this.received.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const cl = /content-length:\s*(\d+)/i.exec(this.received.subarray(0, end).toString('latin1'));
    return this.received.length >= end + 4 + Number(cl?.[1] ?? 0);
  }
}

/** A throwaway self-signed certificate for CN=localhost, made with openssl in a temp dir. */
export function selfSignedCert(): { cert: Buffer; key: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'sipway-tls-'));
  try {
    execFileSync(
      requireTool('openssl'),
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestPki {
  ca: Buffer;
  /** Signed by `ca` for localhost and 127.0.0.1 (server and client use). */
  server: { cert: Buffer; key: Buffer };
  client: { cert: Buffer; key: Buffer };
  /** Signed by another CA nobody trusts. */
  foreign: { cert: Buffer; key: Buffer };
  /** The directory with every file (ca.pem, server.pem, server.key, ...), removed at process exit. */
  dir: string;
}

/** A throwaway CA with a server and a client certificate, and a certificate of a foreign CA, made with openssl. */
export function testPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'sipway-pki-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ca = (name: string): void => run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-days', '2', '-keyout', `${name}.key`, '-out', `${name}.pem`);
  const leaf = (name: string, issuer: string): void => {
    run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    const ext = join(dir, `${name}.ext`);
    writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', `${name}.pem`);
  };
  ca('ca');
  ca('foreign-ca');
  leaf('server', 'ca');
  leaf('client', 'ca');
  leaf('foreign', 'foreign-ca');
  const pair = (name: string): { cert: Buffer; key: Buffer } => ({ cert: readFileSync(join(dir, `${name}.pem`)), key: readFileSync(join(dir, `${name}.key`)) });
  return { ca: readFileSync(join(dir, 'ca.pem')), server: pair('server'), client: pair('client'), foreign: pair('foreign'), dir };
}

export function asResponse(m: AnyMessage): SipResponse {
  if (m.isRequest) throw new Error(`expected a response, got ${m.method}`);
  return m;
}
