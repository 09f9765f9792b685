import { DigestClient, type ClientCredentials } from '../auth/index.js';
import { parseUri, SipResponse, type SipRequest } from '../message/index.js';
import { newRequest, type TransactionLayer } from '../transaction/index.js';
import type { Destination, MessageSender } from '../transport/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { newCallId } from '../util/ids.js';
import { exchangeWithCredentials } from './exchange.js';
import { silentLogger, type Logger } from '../util/logger.js';

export interface RegistrationOptions {
  transactions: TransactionLayer;
  sender: MessageSender;
  clock: Clock;
  /** Where the REGISTERs go (the registrar's address, resolved). */
  registrar: Destination;
  /** The address-of-record: `sip:alice@example.com`. Its host is the Request-URI (§10.2). */
  aor: string;
  /** Our Contact: `<sip:alice@192.0.2.1:5060>`. */
  contact: string;
  credentials?: ClientCredentials;
  /** Seconds asked for (§10.2.1.1); the registrar may grant less, or ask for more with 423. Default 3600. */
  expires?: number;
  /** After a failed refresh, the next try (ms). Default 30,000. */
  retryMs?: number;
  logger?: Logger;
  /**
   * SIP Outbound (RFC 5626): our Contact carries `+sip.instance` (a `urn:uuid:` that stays the same for this device)
   * and `reg-id`, the REGISTER says `Supported: outbound, path`, and while registered a double-CRLF keep-alive goes
   * to the registrar every Flow-Timer seconds (80-100 % of it), or, without one, every 95-120 s over TCP/TLS and
   * 24-29 s over UDP (§4.4.1), so that the flow and the NAT binding in front of us stay open.
   */
  outbound?: { instanceId: string; regId?: number };
}

/** RFC 5626 §3.5.1: a double CRLF, the keep-alive a flow's far end answers with a single CRLF (over TCP/TLS). */
const KEEP_ALIVE = Buffer.from('\r\n\r\n');

export type RegistrationState = 'Unregistered' | 'Registering' | 'Registered' | 'Failed';

export interface RegistrationResult {
  /** The final status of the last REGISTER (408 for no answer, 503 for a transport failure). */
  status: number;
  reason: string;
  /** Seconds granted for our Contact (0 after unregister). */
  expires: number;
}

/**
 * A registration (RFC 3261 §10.2) kept alive: REGISTER with our Contact, a 401/407 answered with credentials,
 * a 423 answered with the Min-Expires asked for, and a refresh before the granted time runs out (at half of it),
 * all with one Call-ID and CSeq counting up (§10.2.4). A failed refresh is tried again after `retryMs`.
 */
export class RegistrationClient {
  private readonly callId = newCallId();
  private cseq = 0;
  private current: RegistrationState = 'Unregistered';
  private granted = 0;
  private timer: TimerHandle | undefined;
  private readonly digest: DigestClient | undefined;
  private readonly logger: Logger;
  private stopped = false;
  private keepAlive: TimerHandle | undefined;
  private flowTimer: number | undefined;

  constructor(private readonly options: RegistrationOptions) {
    this.digest = options.credentials ? new DigestClient(options.credentials) : undefined;
    this.logger = options.logger ?? silentLogger();
  }

  get state(): RegistrationState {
    return this.current;
  }

  /** Seconds the registrar granted in its last 2xx. */
  get expires(): number {
    return this.granted;
  }

  /** Registers (or refreshes now) and keeps refreshing until `unregister` or `stop`. */
  async register(): Promise<RegistrationResult> {
    this.stopped = false;
    this.cancelRefresh();
    this.current = 'Registering';
    const result = await this.exchange(this.options.expires ?? 3600);
    if (result.status >= 200 && result.status < 300 && result.expires > 0) {
      this.current = 'Registered';
      if (!this.stopped) this.scheduleRefresh(result.expires * 500);
      if (!this.stopped && this.options.outbound) this.scheduleKeepAlive();
    } else {
      this.current = 'Failed';
      this.logger.warn({ aor: this.options.aor, status: result.status, reason: result.reason }, 'registration failed');
      if (!this.stopped) this.scheduleRefresh(this.options.retryMs ?? 30_000);
    }
    return result;
  }

  /** Removes our Contact (Expires 0) and stops refreshing. */
  async unregister(): Promise<RegistrationResult> {
    this.stop();
    const result = await this.exchange(0);
    this.current = 'Unregistered';
    this.granted = 0;
    return result;
  }

  /** Stops refreshing without telling the registrar (the binding expires by itself). */
  stop(): void {
    this.stopped = true;
    this.cancelRefresh();
    this.keepAlive?.cancel();
    this.keepAlive = undefined;
  }

  /** The Contact we register: with RFC 5626's instance and reg-id when Outbound is on. */
  get contact(): string {
    const o = this.options.outbound;
    if (o === undefined) return this.options.contact;
    return `${this.options.contact};+sip.instance="<${o.instanceId}>";reg-id=${o.regId ?? 1}`;
  }

  private scheduleKeepAlive(): void {
    this.keepAlive?.cancel();
    const reliable = this.options.sender.isReliable(this.options.registrar.transport);
    // §4.4.1: a random point in the last fifth of the interval, so that many devices do not ping together.
    const base = this.flowTimer ?? (reliable ? 120 : 29);
    const ms = Math.round(base * 1000 * (0.8 + 0.2 * Math.random()));
    this.keepAlive = this.options.clock.setTimer(ms, () => {
      this.keepAlive = undefined;
      this.options.sender.resend(KEEP_ALIVE, this.options.registrar).catch((err: unknown) => this.logger.warn({ err, aor: this.options.aor }, 'keep-alive not sent'));
      if (!this.stopped) this.scheduleKeepAlive();
    });
  }

  private scheduleRefresh(ms: number): void {
    this.timer = this.options.clock.setTimer(ms, () => {
      this.timer = undefined;
      this.register().catch((err: unknown) => this.logger.error({ err, aor: this.options.aor }, 'registration refresh failed'));
    });
  }

  private cancelRefresh(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** One REGISTER exchange: authentication retries while the digest client answers (stale nonces), one 423 retry. */
  private async exchange(expires: number): Promise<RegistrationResult> {
    const digest = this.digest;
    // The digest client stops at a refused password; a registrar that keeps saying stale=true is cut off here.
    let authRounds = 3;
    let intervalRetried = false;
    for (;;) {
      const request = this.build(expires);
      digest?.authorize(request);
      const outcome = await exchangeWithCredentials(this.options.transactions, this.options.sender, request, this.options.registrar, digest && ((r, c) => digest.retry(r, c)), authRounds);
      authRounds -= outcome.retries;
      this.cseq = outcome.request.cseq.seq;
      const response = outcome.response;
      if (!(response instanceof SipResponse)) return { ...response, expires: 0 };
      const status = response.status;
      if (outcome.unanswered) return { status, reason: `${response.reason} - ${digest!.refusal ?? 'not answered'}`, expires: 0 };
      if (status === 423 && !intervalRetried && expires > 0) {
        // §10.2.8: ask again with at least Min-Expires.
        const min = Number(response.headers.get('min-expires'));
        if (!Number.isInteger(min) || min <= expires) return { status, reason: response.reason, expires: 0 };
        intervalRetried = true;
        expires = min;
        continue;
      }
      if (status < 200 || status >= 300) return { status, reason: response.reason, expires: 0 };
      const flowTimer = Number(response.headers.get('flow-timer'));
      this.flowTimer = Number.isInteger(flowTimer) && flowTimer > 0 ? flowTimer : undefined;
      this.granted = expires === 0 ? 0 : this.grantedOf(response, expires);
      return { status, reason: response.reason, expires: this.granted };
    }
  }

  private build(expires: number): SipRequest {
    const aor = parseUri(this.options.aor);
    const registrarUri = aor.type === 'sip' ? parseUri(`${aor.scheme}:${aor.host}${aor.port !== undefined ? `:${aor.port}` : ''}`) : aor;
    this.cseq++;
    return newRequest('REGISTER', registrarUri, {
      from: `<${this.options.aor}>`,
      to: `<${this.options.aor}>`,
      callId: this.callId,
      cseq: this.cseq,
      contact: this.contact,
      headers: this.options.outbound ? [['Expires', String(expires)], ['Supported', 'outbound, path']] : [['Expires', String(expires)]],
    });
  }

  /** §10.2.4: the expires the registrar gave our Contact in the 2xx, else its Expires header, else what we asked. */
  private grantedOf(response: SipResponse, asked: number): number {
    const ours = parseUri(this.options.contact.replace(/^<|>$/g, '')).toString();
    for (const c of response.contacts) {
      if (c.uri.toString() !== ours) continue;
      const e = Number(c.params.get('expires'));
      if (Number.isInteger(e)) return e;
    }
    const header = Number(response.headers.get('expires'));
    return Number.isInteger(header) ? header : asked;
  }
}
