import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { AuthService, subscriberCredentials, type AuthServiceConfig } from '../../src/auth/auth-service.js';
import { computeHa1 } from '../../src/auth/digest.js';
import {
  parseMessage,
  SipRequest,
  type MessageSource,
  type NameAddr,
  type SipResponse,
} from '../../src/message/index.js';
import { Registrar, type RegistrarOptions } from '../../src/registrar/index.js';
import { MemoryLocationStore, MemorySubscriberStore, type LocationStore, type SubscriberStore } from '../../src/store/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { wire } from '../helpers/messages.js';
import { sharedPath } from '../helpers/paths.js';

export const DOMAIN = 'example.com';

export const UA_SOURCE: MessageSource = {
  transport: 'tcp',
  address: '192.0.2.10',
  port: 50_000,
  localAddress: '192.0.2.1',
  localPort: 5060,
  flowId: 'tcp:192.0.2.10:50000',
  receivedAt: 0,
};

export interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export const LEVEL = { debug: 20, warn: 40 } as const;

export interface HarnessOptions extends Partial<Omit<RegistrarOptions, 'auth'>> {
  /** Configure digest authentication (true: defaults). */
  auth?: boolean | AuthServiceConfig;
}

export type Harness = ReturnType<typeof harness>;

/** A registrar over memory stores with a fake clock and a logger that records what it writes. */
export function harness(options: HarnessOptions = {}) {
  const clock = (options.clock as FakeClock | undefined) ?? new FakeClock();
  const location: LocationStore = options.location ?? new MemoryLocationStore(clock);
  const subscribers: SubscriberStore = options.subscribers ?? new MemorySubscriberStore();
  const logs: LogRecord[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as LogRecord) });
  const { auth: authConfig, ...rest } = options;
  const auth =
    authConfig === undefined || authConfig === false
      ? undefined
      : new AuthService({
          ...(authConfig === true ? {} : authConfig),
          credentials: subscriberCredentials(subscribers),
          clock,
          logger,
        });
  const registrar = new Registrar({ domains: [DOMAIN], ...rest, location, subscribers, auth, clock, logger });

  /** Runs one REGISTER; returns every response sent so far for it (the throttle may delay one). */
  const send = async (req: SipRequest): Promise<SipResponse[]> => {
    const responses: SipResponse[] = [];
    await registrar.handle(req, { request: req, respond: (r) => responses.push(r) });
    return responses;
  };
  /** Runs one REGISTER that must be answered at once, exactly once. */
  const answer = async (req: SipRequest): Promise<SipResponse> => {
    const responses = await send(req);
    assert.equal(responses.length, 1, 'exactly one response');
    return responses[0]!;
  };
  const addUser = (username: string, password: string, groups: string[] = []) =>
    subscribers.put({
      username,
      domain: DOMAIN,
      ha1Md5: computeHa1(username, DOMAIN, password, 'MD5'),
      ha1Sha256: computeHa1(username, DOMAIN, password, 'SHA-256'),
      groups,
      createdAt: 0,
    });
  return { clock, location, subscribers, auth, registrar, logs, send, answer, addUser };
}

export interface RegisterSpec {
  requestUri?: string;
  /** AOR in To; From is the same unless `from` is given. */
  to?: string;
  from?: string;
  callId?: string;
  cseq?: number;
  contacts?: string[];
  expires?: string | number;
  supported?: string;
  path?: string[];
  /** Proxies the REGISTER went through: one Via each above the UA's. */
  proxies?: number;
  headers?: string[];
  source?: MessageSource | null;
}

/** Builds a REGISTER from readable parts, parsed by the real parser, with `req.source` set like the transport does. */
export function register(spec: RegisterSpec = {}): SipRequest {
  const to = spec.to ?? `sip:alice@${DOMAIN}`;
  const vias = [
    ...Array.from({ length: spec.proxies ?? 0 }, (_, i) => `Via: SIP/2.0/TCP proxy${i}.example.com;branch=z9hG4bKproxy${i}`),
    'Via: SIP/2.0/TCP ua.example.net:50000;branch=z9hG4bKua',
  ];
  const lines = [
    `REGISTER ${spec.requestUri ?? `sip:${DOMAIN}`} SIP/2.0`,
    ...vias,
    'Max-Forwards: 70',
    `To: <${to}>`,
    `From: <${spec.from ?? to}>;tag=f1`,
    `Call-ID: ${spec.callId ?? 'call-1@ua.example.net'}`,
    `CSeq: ${spec.cseq ?? 1} REGISTER`,
    'User-Agent: test-phone/1.0',
    ...(spec.contacts ?? [`<sip:alice@192.0.2.10:50000;transport=tcp>`]).map((c) => `Contact: ${c}`),
    ...(spec.expires === undefined ? [] : [`Expires: ${spec.expires}`]),
    ...(spec.supported === undefined ? [] : [`Supported: ${spec.supported}`]),
    ...(spec.path ?? []).map((p) => `Path: ${p}`),
    ...(spec.headers ?? []),
  ];
  return parseRequest(wire(lines), spec.source === undefined ? UA_SOURCE : spec.source);
}

export function parseRequest(bytes: Buffer, source: MessageSource | null = UA_SOURCE): SipRequest {
  const parsed = parseMessage(bytes);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.toString());
  const req = parsed.message;
  assert.ok(req instanceof SipRequest);
  if (source) req.source = { ...source };
  return req;
}

/** An RFC 4475 torture message from the shared conformance directory. */
export function torture(name: string): SipRequest {
  return parseRequest(readFileSync(sharedPath('conformance', 'rfc4475', `${name}.dat`)));
}

/** The Contact values of a 200, keyed by URI. */
export function contactsOf(res: SipResponse): Map<string, NameAddr> {
  return new Map(res.contacts.map((c) => [c.uri.toString(), c]));
}

/** Contact URI -> granted expires, as the 200 lists them. */
export function expiresOf(res: SipResponse): Record<string, number> {
  return Object.fromEntries(res.contacts.map((c) => [c.uri.toString(), Number(c.params.get('expires'))]));
}
