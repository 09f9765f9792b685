import { DigestClient, type ClientCredentials } from '../auth/index.js';
import { createResponse, parseUri, SipResponse, type SipRequest } from '../message/index.js';
import { newRequest, TransactionLayer, type ServerTransaction } from '../transaction/index.js';
import { DnsSipResolver, TransportLayer, type Destination, type ListenSpec } from '../transport/index.js';
import { SystemClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { exchange } from './exchange.js';
import { RegistrationClient } from './registration.js';

export interface UserAgentOptions {
  /** Our address-of-record: the From of our requests and what we register (`sip:alice@example.com`). */
  aor: string;
  credentials?: ClientCredentials;
  /** Where every request goes first (an outbound proxy, §8.1.2); without it the Request-URI is resolved (RFC 3263). */
  proxy?: Destination;
  /** Our listener; default UDP on an ephemeral port of every address. */
  listen?: ListenSpec;
  /** For RFC 3263 lookups without a proxy: `ip[:port]` resolvers (default the system's). */
  dnsServers?: string[];
  clock?: Clock;
  logger?: Logger;
  /** A MESSAGE for us (RFC 3428): it is answered 200 after this returns. */
  onMessage?: (request: SipRequest) => void;
}

export interface RequestOutcome {
  /** The final status (408 when nothing answered, 503 when it could not be sent or had nowhere to go). */
  status: number;
  reason: string;
  response?: SipResponse;
}

/**
 * A user agent on sipway's own stack (transport, transactions, digest client): sends requests outside a dialog
 * with one authentication round when challenged, keeps registrations, and answers OPTIONS and MESSAGE sent to it
 * (everything else 501, or 481 for a request within a dialog it does not have). The session (call) API comes on
 * top of this and the dialog layer.
 */
export class UserAgent {
  private readonly digest: DigestClient | undefined;
  private readonly resolver: DnsSipResolver | undefined;

  private constructor(
    private readonly options: UserAgentOptions,
    readonly transport: TransportLayer,
    readonly transactions: TransactionLayer,
    readonly clock: Clock,
  ) {
    this.digest = options.credentials ? new DigestClient(options.credentials) : undefined;
    this.resolver = options.proxy ? undefined : new DnsSipResolver({ servers: options.dnsServers, clock, logger: options.logger ?? silentLogger() });
  }

  static async start(options: UserAgentOptions): Promise<UserAgent> {
    const clock = options.clock ?? new SystemClock();
    const logger = options.logger ?? silentLogger();
    const aor = parseUri(options.aor);
    if (aor.type !== 'sip') throw new Error(`the AOR must be a sip: or sips: URI, not '${options.aor}'`);
    const transport = new TransportLayer({ listen: [options.listen ?? { transport: 'udp', host: '0.0.0.0', port: 0 }], clock, logger });
    const transactions = new TransactionLayer({ sender: transport, clock, logger });
    const ua = new UserAgent(options, transport, transactions, clock);
    transactions.setUser({
      onRequest: (request, st) => ua.answer(request, st),
      onAck: () => undefined,
      onStrayResponse: () => undefined,
    });
    transport.setReceiver({ onMessage: (m) => transactions.receive(m) });
    await transport.start();
    return ua;
  }

  /** Our Contact: the AOR's user at the listener's advertised address. */
  get contact(): string {
    const aor = parseUri(this.options.aor);
    const user = aor.type === 'sip' && aor.user !== undefined ? `${aor.user}@` : '';
    const l = this.transport.listeners()[0]!;
    return `<sip:${user}${l.advertised}${l.transport === 'udp' ? '' : `;transport=${l.transport}`}>`;
  }

  /**
   * Sends a request outside any dialog to `uri` and waits for its final response, answering one 401/407 round with
   * our credentials. Never throws for network outcomes: they are statuses.
   */
  async request(method: string, uri: string, options: { headers?: Array<[string, string]>; body?: Buffer; contentType?: string } = {}): Promise<RequestOutcome> {
    const target = parseUri(uri);
    let request = newRequest(method, target, { from: `<${this.options.aor}>`, contact: method === 'INVITE' ? this.contact : undefined, ...options });
    const to = await this.destinationFor(request);
    if (to === undefined) return { status: 503, reason: `Service Unavailable - no address for ${uri}` };
    for (let round = 0; ; round++) {
      const response = await exchange(this.transactions, this.transport, request, to);
      if (!(response instanceof SipResponse)) return response;
      const status = response.status;
      if ((status === 401 || status === 407) && this.digest && round < 2) {
        const retry = this.digest.retry(request, response);
        if (retry === undefined) return { status, reason: `${response.reason} - ${this.digest.refusal ?? 'not answered'}`, response };
        request = retry;
        continue;
      }
      return { status, reason: response.reason, response };
    }
  }

  /** A registration of our AOR with our Contact at the proxy (or the AOR's domain), not yet started. */
  registration(options: { expires?: number; retryMs?: number } = {}): RegistrationClient {
    const registrar = this.options.proxy;
    if (registrar === undefined) throw new Error('registering needs the registrar\'s address (proxy)');
    return new RegistrationClient({
      transactions: this.transactions,
      sender: this.transport,
      clock: this.clock,
      registrar,
      aor: this.options.aor,
      contact: this.contact,
      credentials: this.options.credentials,
      logger: this.options.logger,
      ...options,
    });
  }

  async stop(): Promise<void> {
    this.transactions.close();
    await this.transport.stop();
  }

  private answer(request: SipRequest, st: ServerTransaction): void {
    if (request.toTag !== undefined && request.method !== 'MESSAGE' && request.method !== 'OPTIONS') {
      st.respond(createResponse(request, 481));
      return;
    }
    switch (request.method) {
      case 'OPTIONS':
        st.respond(createResponse(request, 200, { headers: [['Allow', 'OPTIONS, MESSAGE'], ['Accept', 'text/plain, application/sdp']] }));
        return;
      case 'MESSAGE':
        this.options.onMessage?.(request);
        st.respond(createResponse(request, 200));
        return;
      case 'CANCEL':
        st.respond(createResponse(request, 481));
        return;
      default:
        st.respond(createResponse(request, 501, { headers: [['Allow', 'OPTIONS, MESSAGE']] }));
    }
  }

  private async destinationFor(request: SipRequest): Promise<Destination | undefined> {
    if (this.options.proxy) return this.options.proxy;
    const uri = request.uri;
    if (uri.type !== 'sip' || this.resolver === undefined) return undefined;
    const targets = await this.resolver.resolve(uri).catch(() => []);
    const first = targets[0];
    return first === undefined ? undefined : { transport: first.transport, address: first.address, port: first.port };
  }
}
