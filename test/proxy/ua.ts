/**
 * Minimal user agents on real loopback sockets for the proxy tests: a UAS that rings and answers (or not), takes
 * CANCELs (200 + 487) and BYEs, and UAC helpers that build INVITEs, ACKs, CANCELs and in-dialog requests along the
 * route set the proxy recorded. Over UDP, or TCP through one connection to the server (as a phone behind NAT does).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import {
  createResponse,
  parseMessage,
  serialize,
  StreamFramer,
  type AnyMessage,
  type SipRequest,
  type SipResponse,
} from '../../src/message/index.js';
import { buildAuthorization, parseDigestChallenge } from '../../src/auth/index.js';
import { buildCancel } from '../../src/transaction/index.js';
import { wire } from '../helpers/messages.js';

export interface Received {
  message: AnyMessage;
  from: { address: string; port: number };
  /** performance.now() at arrival, to compare the order of events on different UAs. */
  at: number;
}

export interface UasBehaviour {
  /** Final status for INVITEs; null never answers (it rings until cancelled). Default 200. */
  status?: number | null;
  /** Send 180 Ringing first. Default true. */
  ring?: boolean;
  /** Wait before the final response. Default 0. */
  delayMs?: number;
  /** Extra header fields of the final response. */
  headers?: Array<[string, string]>;
  /** Contact of a 2xx; default this UA's own address (a phone behind NAT names a private one). */
  contact?: string;
}

let seq = 0;
export const unique = (prefix: string): string => `${prefix}${++seq}x${Math.random().toString(36).slice(2, 8)}`;

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';

export class TestUa {
  readonly received: Received[] = [];
  private unread: Received[] = [];
  private waiters: Array<() => void> = [];
  private behaviour: UasBehaviour | undefined;
  /** INVITEs being answered, by top Via branch. */
  private readonly invites = new Map<string, { req: SipRequest; toTag: string; timer?: NodeJS.Timeout; final?: SipResponse }>();

  private constructor(
    readonly transport: 'udp' | 'tcp',
    private readonly udp: dgram.Socket | undefined,
    private readonly tcp: net.Socket | undefined,
    readonly port: number,
    readonly name: string,
  ) {}

  static async udp(name = 'ua'): Promise<TestUa> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const ua = new TestUa('udp', socket, undefined, socket.address().port, name);
    socket.on('message', (buf, rinfo) => ua.onBytes(buf, { address: rinfo.address, port: rinfo.port }));
    return ua;
  }

  /** A UA with one TCP connection to the server; requests from the server come back over it. */
  static async tcp(serverPort: number, name = 'ua'): Promise<TestUa> {
    const socket = net.connect(serverPort, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    const ua = new TestUa('tcp', undefined, socket, socket.localPort!, name);
    const framer = new StreamFramer({
      message: (bytes) => ua.onBytes(bytes, { address: '127.0.0.1', port: serverPort }),
      ping: () => {},
      error: () => socket.destroy(),
    });
    socket.on('data', (chunk) => framer.push(chunk));
    return ua;
  }

  /** The Via transport token and the Contact URI of this UA. */
  get via(): string {
    return `SIP/2.0/${this.transport.toUpperCase()} 127.0.0.1:${this.port}`;
  }

  contact(user = this.name): string {
    return `sip:${user}@127.0.0.1:${this.port}${this.transport === 'tcp' ? ';transport=tcp' : ''}`;
  }

  send(m: AnyMessage | Buffer, port: number, address = '127.0.0.1'): void {
    const bytes = Buffer.isBuffer(m) ? m : serialize(m);
    if (this.tcp) this.tcp.write(bytes);
    else this.udp!.send(bytes, port, address);
  }

  /** The first message not yet taken that matches, waiting up to `ms` for it. */
  async waitFor(what: string, match: (m: AnyMessage) => boolean, ms = 3000): Promise<Received> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.unread.findIndex((r) => match(r.message));
      if (i >= 0) return this.unread.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`${this.name}: no ${what} within ${ms} ms (got ${this.unread.map((r) => describe(r.message)).join(', ') || 'nothing'})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next response with this status (or any final one) for `callId`. */
  async response(callId: string, status?: number, ms?: number): Promise<SipResponse> {
    const r = await this.waitFor(
      `${status ?? 'final'} response`,
      (m) => !m.isRequest && m.callId === callId && (status === undefined ? m.status >= 200 : m.status === status),
      ms,
    );
    return r.message as SipResponse;
  }

  async request(method: string, ms?: number): Promise<Received & { message: SipRequest }> {
    const r = await this.waitFor(`${method} request`, (m) => m.isRequest && m.method === method, ms);
    return r as Received & { message: SipRequest };
  }

  /** Whether nothing matching arrives within `ms`. */
  async nothing(match: (m: AnyMessage) => boolean, ms = 300): Promise<boolean> {
    try {
      await this.waitFor('', match, ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Acts as a UAS from now on (answering what arrives, and still recording it). */
  serve(behaviour: UasBehaviour = {}): this {
    this.behaviour = behaviour;
    return this;
  }

  close(): void {
    for (const i of this.invites.values()) clearTimeout(i.timer);
    this.udp?.close();
    this.tcp?.destroy();
  }

  private onBytes(bytes: Buffer, from: Received['from']): void {
    const parsed = parseMessage(bytes);
    if (!parsed.ok) return;
    const r: Received = { message: parsed.message, from, at: performance.now() };
    this.received.push(r);
    this.unread.push(r);
    for (const w of this.waiters.splice(0)) w();
    if (this.behaviour && parsed.message.isRequest) this.answer(parsed.message, from);
  }

  private answer(req: SipRequest, from: Received['from']): void {
    const b = this.behaviour!;
    const reply = (res: SipResponse): void => this.send(res, from.port, from.address);
    const branch = req.via.branch ?? '';
    switch (req.method) {
      case 'ACK':
        return;
      case 'INVITE': {
        const known = this.invites.get(branch);
        if (known) {
          if (known.final) reply(known.final);
          return;
        }
        const state: { req: SipRequest; toTag: string; timer?: NodeJS.Timeout; final?: SipResponse } = { req, toTag: unique('uas') };
        this.invites.set(branch, state);
        if (b.ring ?? true) reply(createResponse(req, 180, { toTag: state.toTag }));
        const status = b.status === undefined ? 200 : b.status;
        if (status === null) return;
        const final = (): void => {
          const headers: Array<[string, string]> = [...(b.headers ?? [])];
          if (status < 300) headers.push(['Contact', `<${b.contact ?? this.contact()}>`]);
          const body = status < 300 ? Buffer.from(SDP) : undefined;
          state.final = createResponse(req, status, { toTag: state.toTag, headers, body, contentType: 'application/sdp' });
          reply(state.final);
        };
        if (b.delayMs) state.timer = setTimeout(final, b.delayMs);
        else final();
        return;
      }
      case 'CANCEL': {
        reply(createResponse(req, 200));
        const pending = this.invites.get(branch);
        if (pending && !pending.final) {
          clearTimeout(pending.timer);
          pending.final = createResponse(pending.req, 487, { toTag: pending.toTag });
          reply(pending.final);
        }
        return;
      }
      default:
        reply(createResponse(req, 200));
    }
  }
}

export interface InviteOptions {
  /** Request-URI (and To). */
  to: string;
  from?: string;
  extra?: string[];
  maxForwards?: number;
  callId?: string;
  /** Contact; default this UA's own address. */
  contact?: string;
}

/** A new INVITE from `ua` (not sent). */
export function invite(ua: TestUa, o: InviteOptions): SipRequest {
  const lines = [
    `INVITE ${o.to} SIP/2.0`,
    `Via: ${ua.via};branch=${unique('z9hG4bKuac')};rport`,
    `Max-Forwards: ${o.maxForwards ?? 70}`,
    `From: <${o.from ?? 'sip:alice@sipway.test'}>;tag=${unique('a')}`,
    `To: <${o.to}>`,
    `Call-ID: ${o.callId ?? unique('call') + '@test'}`,
    'CSeq: 1 INVITE',
    `Contact: <${o.contact ?? ua.contact('caller')}>`,
    'Content-Type: application/sdp',
    ...(o.extra ?? []),
  ];
  return parse(wire(lines, SDP)) as SipRequest;
}

/** A non-INVITE out-of-dialog request (OPTIONS, MESSAGE...). */
export function outOfDialog(ua: TestUa, method: string, to: string, extra: string[] = [], from = 'sip:alice@sipway.test'): SipRequest {
  const lines = [
    `${method} ${to} SIP/2.0`,
    `Via: ${ua.via};branch=${unique('z9hG4bKuac')};rport`,
    'Max-Forwards: 70',
    `From: <${from}>;tag=${unique('a')}`,
    `To: <${to}>`,
    `Call-ID: ${unique('call')}@test`,
    `CSeq: 1 ${method}`,
    ...extra,
  ];
  return parse(wire(lines)) as SipRequest;
}

/** The INVITE again with credentials for the 407's MD5 challenge (and CSeq + 1, a new branch), as a UA retries it. */
export function retryWithCredentials(inv: SipRequest, challenge: SipResponse, user: string, password: string, extra: string[] = []): SipRequest {
  const md5 = challenge.headers
    .getAll('proxy-authenticate')
    .map((v) => parseDigestChallenge(v))
    .find((c) => c.ok && c.value.algorithm === 'MD5');
  assert.ok(md5?.ok, 'an MD5 challenge');
  const credentials = buildAuthorization({ challenge: md5.value, username: user, password, method: inv.method, uri: inv.uri.toString() });
  const retry = parse(serialize(inv)) as SipRequest;
  retry.headers.set('cseq', `${inv.cseq.seq + 1} ${inv.method}`);
  retry.headers.set('via', inv.headers.get('via')!.replace(/branch=[^;]+/, `branch=z9hG4bKretry${inv.cseq.seq}x${unique('')}`));
  retry.headers.append('proxy-authorization', credentials);
  for (const line of extra) retry.headers.append('proxy-authorization', line);
  return retry;
}

/** §9.1: the CANCEL for a request we sent. */
export function cancelOf(req: SipRequest): SipRequest {
  return parse(serialize(buildCancel(req))) as SipRequest;
}

/** A REGISTER from `ua` for user@domain, answered 200 (the server runs without REGISTER authentication). */
export async function register(
  ua: TestUa,
  serverPort: number,
  user: string,
  o: { domain?: string; contact?: string; contactParams?: string; extra?: string[]; server?: string } = {},
): Promise<SipResponse> {
  const domain = o.domain ?? 'sipway.test';
  const callId = unique('reg');
  const lines = [
    `REGISTER sip:${domain} SIP/2.0`,
    `Via: ${ua.via};branch=${unique('z9hG4bKreg')};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@${domain}>;tag=${unique('r')}`,
    `To: <sip:${user}@${domain}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 REGISTER',
    `Contact: <${o.contact ?? ua.contact(user)}>${o.contactParams ?? ''}`,
    'Expires: 3600',
    ...(o.extra ?? []),
  ];
  ua.send(wire(lines), serverPort, o.server);
  const res = await ua.response(callId);
  assert.equal(res.status, 200, `REGISTER ${user}: ${res.status} ${res.reason}`);
  return res;
}

/**
 * One side of a dialog (§12.1): the caller's from an INVITE it sent and the 2xx it got (route set = Record-Route
 * reversed), the callee's from the INVITE it received and its own 2xx (route set = Record-Route in order).
 */
export class Dialog {
  private cseq: number;

  private constructor(
    private readonly callId: string,
    private readonly local: string,
    private readonly remote: string,
    private readonly remoteTarget: string,
    readonly routeSet: string[],
    cseq: number,
    private readonly inviteCseq: number,
  ) {
    this.cseq = cseq;
  }

  static caller(inv: SipRequest, ok: SipResponse): Dialog {
    const rr = ok.recordRoutes.map((r) => r.toString()).reverse();
    return new Dialog(inv.callId, inv.headers.get('from')!, ok.headers.get('to')!, ok.contacts[0]!.uri.toString(), rr, inv.cseq.seq, inv.cseq.seq);
  }

  static callee(inv: SipRequest, ok: SipResponse): Dialog {
    const rr = inv.recordRoutes.map((r) => r.toString());
    return new Dialog(inv.callId, ok.headers.get('to')!, inv.headers.get('from')!, inv.contacts[0]!.uri.toString(), rr, 1000, inv.cseq.seq);
  }

  /** An in-dialog request from `ua` (ACK reuses the INVITE's CSeq number, §13.2.2.4). */
  request(ua: TestUa, method: string, extra: string[] = []): SipRequest {
    const cseq = method === 'ACK' ? this.inviteCseq : ++this.cseq;
    const lines = [
      `${method} ${this.remoteTarget} SIP/2.0`,
      `Via: ${ua.via};branch=${unique('z9hG4bKdlg')};rport`,
      'Max-Forwards: 70',
      `From: ${this.local}`,
      `To: ${this.remote}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} ${method}`,
      ...this.routeSet.map((r) => `Route: ${r}`),
      ...extra,
    ];
    return parse(wire(lines)) as SipRequest;
  }
}

/**
 * Record-Route or Route values with their flow tokens (RFC 5626 §5.3) taken out: what is left is the interfaces
 * they name. `tokened` counts the values that carried one.
 */
export function untokened(values: readonly string[]): string[] {
  return values.map((v) => v.replace(/sip:ft\.[A-Za-z0-9_-]+@/, 'sip:'));
}

export function tokened(values: readonly string[]): number {
  return values.filter((v) => /sip:ft\.[A-Za-z0-9_-]+@/.test(v)).length;
}

export function parse(bytes: Buffer): AnyMessage {
  const r = parseMessage(bytes);
  if (!r.ok) throw new Error(`test message does not parse: ${r.error.toString()}`);
  return r.message;
}

function describe(m: AnyMessage): string {
  return m.isRequest ? m.method : String(m.status);
}
