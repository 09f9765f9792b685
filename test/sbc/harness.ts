/**
 * Phones and a sipway server with the SBC on, on loopback: sipway user agents (src/ua) as phones, each with an RTP
 * stream (src/media) for its audio, and every SIP message each phone received, raw, for the topology checks.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { randomInt } from 'node:crypto';
import { startTestServer, type TestServer } from '../../src/testing/index.js';
import { UserAgent, type InviteSession, type RegistrationClient, type UserAgentOptions } from '../../src/ua/index.js';
import { pcmuDescription, pcmuTarget, RtpStream } from '../../src/media/index.js';
import { RECEIVE_CHANNEL, type ReceiveEvent } from '../../src/transport/transport-layer.js';
import { SystemClock } from '../../src/util/clock.js';
import { until, within } from '../helpers/waits.js';

export const DOMAIN = 'sipway.test';
export const LOOPBACK = '127.0.0.1';
export const clock = new SystemClock();

/** A media port range of our own for the relay, out of RtpStream's (20000-39998) and the kernel's ephemeral ports. */
export function relayPorts(): { portMin: number; portMax: number } {
  const portMin = 10000 + 2 * randomInt(0, 4000);
  return { portMin, portMax: portMin + 99 };
}

export interface Phone {
  ua: UserAgent;
  aor: string;
  port: number;
  rtp: RtpStream;
  /** Every SIP message this phone received, as bytes on the wire (text). */
  received: string[];
  /** Calls for this phone, in the order they came. */
  incoming: InviteSession[];
  /** What the phone does with the next call (default: answer at once with its RTP port). */
  onCall: (session: InviteSession) => void;
  sdp(): string;
  registration?: RegistrationClient;
}

export interface Lab {
  ts: TestServer;
  proxy: { transport: 'udp'; address: string; port: number };
  phone(user: string, options?: { register?: boolean; ua?: Partial<UserAgentOptions> }): Promise<Phone>;
  close(): Promise<void>;
}

/** Starts the server (SBC on, embedded relay on loopback unless `config.sbc` says otherwise) and hands out phones. */
export async function lab(config: Record<string, unknown> = {}, sbc: Record<string, unknown> = {}): Promise<Lab> {
  const { media, ...rest } = sbc as { media?: Record<string, unknown> };
  const ts = await startTestServer({
    domains: [DOMAIN],
    auth: { register: false },
    proxy: { authenticateCallers: false },
    ...config,
    sbc: { enabled: true, media: { address: LOOPBACK, ...relayPorts(), ...media }, ...rest },
  });
  const proxy = { transport: 'udp' as const, address: LOOPBACK, port: ts.port };
  const phones: Phone[] = [];
  const byPort = new Map<number, Phone>();
  const listener = (message: unknown): void => {
    const event = message as ReceiveEvent;
    byPort.get(event.source.localPort)?.received.push(event.bytes.toString('utf8'));
  };
  subscribe(RECEIVE_CHANNEL, listener);
  return {
    ts,
    proxy,
    async phone(user, options = {}) {
      const rtp = await RtpStream.open(LOOPBACK);
      const phone: Phone = {
        ua: undefined as unknown as UserAgent,
        aor: `sip:${user}@${DOMAIN}`,
        port: 0,
        rtp,
        received: [],
        incoming: [],
        onCall: (s) => s.accept(phone.sdp()),
        sdp: () => pcmuDescription(LOOPBACK, rtp.port),
      };
      phone.ua = await UserAgent.start({
        aor: phone.aor,
        proxy,
        onInvite: (s) => {
          phone.incoming.push(s);
          phone.onCall(s);
        },
        ...options.ua,
      });
      phone.port = phone.ua.transport.listeners()[0]!.port;
      byPort.set(phone.port, phone);
      if (options.register !== false) {
        phone.registration = phone.ua.registration();
        assert.equal((await phone.registration.register()).status, 200);
      }
      phones.push(phone);
      return phone;
    },
    async close() {
      unsubscribe(RECEIVE_CHANNEL, listener);
      for (const p of phones) {
        p.registration?.stop();
        p.rtp.close();
      }
      await Promise.all(phones.map((p) => p.ua.stop()));
      await ts.stop();
    },
  };
}

/** Both phones send audio to where their peer's SDP says and count what arrives, until each got `packets`. */
export async function audioFlows(a: { session: InviteSession; phone: Phone }, b: { session: InviteSession; phone: Phone }, packets = 10): Promise<void> {
  const toA = pcmuTarget(a.session.remoteSdp);
  const toB = pcmuTarget(b.session.remoteSdp);
  assert.ok(toA && toB, 'both sides have a PCMU stream to send to');
  const before = [a.phone.rtp.counters.received, b.phone.rtp.counters.received];
  const audio = new Uint8Array(8000).fill(0x55);
  a.phone.rtp.start(toA, audio, clock);
  b.phone.rtp.start(toB, audio, clock);
  try {
    const ok = await until(() => a.phone.rtp.counters.received - before[0]! >= packets && b.phone.rtp.counters.received - before[1]! >= packets, 5000);
    assert.ok(ok, `RTP both ways: ${a.phone.aor} got ${a.phone.rtp.counters.received - before[0]!}, ${b.phone.aor} got ${b.phone.rtp.counters.received - before[1]!}`);
  } finally {
    a.phone.rtp.stop();
    b.phone.rtp.stop();
  }
}

export { until, within };

/** The first line and the named header fields of one raw message (for readable failures). */
export function headerValues(raw: string, name: string): string[] {
  const head = raw.split(/\r\n\r\n/)[0]!;
  const re = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'gim');
  return [...head.matchAll(re)].map((m) => m[1]!.trim());
}
