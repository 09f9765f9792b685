import { DigestClient, type ClientCredentials } from '../auth/index.js';
import { createResponse, parseUri, SipResponse, type SipRequest } from '../message/index.js';
import { DEFAULT_TIMER_CONFIG, newRequest, TransactionLayer, type InviteServerTransaction, type ServerTransaction } from '../transaction/index.js';
import { DnsSipResolver, TransportLayer, type Destination, type ListenSpec } from '../transport/index.js';
import { SystemClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { Dialog, Dialogs } from '../dialog/index.js';
import { exchangeWithCredentials } from './exchange.js';
import { InviteSession } from './invite-session.js';
import { UA_ALLOW, UA_EXTENSIONS, type ReferredCall, type Referral, type SessionUsage, type UaCore } from './ua-core.js';
import { parseReplaces } from './refer.js';
import { ClientSubscription } from './subscriber.js';
import type { OfferHandler } from './offer-answer.js';
import { DEFAULT_SESSION_TIMER, type SessionTimerConfig } from './session-timer.js';
import { RegistrationClient, type RegistrationOptions } from './registration.js';

export interface UserAgentOptions {
  /** Our address-of-record: the From of our requests and what we register (`sip:alice@example.com`). */
  aor: string;
  credentials?: ClientCredentials;
  /** Where every request goes first (an outbound proxy, §8.1.2); without it the Request-URI is resolved (RFC 3263). */
  proxy?: Destination;
  /**
   * Our listener. Default: the proxy's transport on an ephemeral port, on loopback when the proxy is on loopback (so
   * that the Contact we put in requests is one the proxy can reach), else on every address.
   */
  listen?: ListenSpec;
  /** For RFC 3263 lookups without a proxy: `ip[:port]` resolvers (default the system's). */
  dnsServers?: string[];
  clock?: Clock;
  logger?: Logger;
  /** A MESSAGE for us (RFC 3428): it is answered 200 after this returns. */
  onMessage?: (request: SipRequest) => void;
  /** A call for us: answer it with session.ring(), accept(sdp) or reject(status). Without it calls get 480. */
  onInvite?: (session: InviteSession) => void;
  /**
   * Session timers (RFC 4028) asked for in our INVITEs and accepted in others': Session-Expires and Min-SE in seconds
   * (default 1800 and 90); false for none (a peer's timer is then not kept either).
   */
  sessionTimer?: SessionTimerConfig | false;
  /**
   * A REFER in one of our calls (a transfer, RFC 3515): place the call with `transfer.call(options)` and return it, or
   * return undefined to decline. Without it every REFER is declined with 603.
   */
  onRefer?: (transfer: Transfer) => Promise<InviteSession | undefined> | InviteSession | undefined;
  /** Our Contact (a name-addr), instead of one made of the AOR's user and the listener's advertised address. */
  contact?: string;
  /**
   * Where a request within `dialog` goes, asked before the proxy and the route set; undefined: as usual. A B2BUA on a
   * server's transport sends its requests to a phone behind NAT where that phone's requests came from.
   */
  destinationOf?: (dialog: Dialog) => Destination | undefined;
}

/** A transfer asked of us: the REFER's target, and the call to place for it. */
export interface Transfer extends Referral {
  /** The call the REFER came in. */
  readonly session: InviteSession;
  /** Calls the target with the Replaces and Referred-By the REFER asked for; the referrer hears how it goes. */
  call(options?: CallOptions): Promise<InviteSession>;
}

export interface CallOptions {
  /** Our offer; without one the callee offers in its 2xx (or a reliable provisional) and `onOffer` answers. */
  sdp?: string;
  headers?: Array<[string, string]>;
  /** Answers the callee's offer (see InviteSession.onOffer). */
  onOffer?: OfferHandler;
  /** Our From (a name-addr without tag); default our address-of-record. A B2BUA passes the caller's identity on. */
  from?: string;
  /** The To (a name-addr without tag); default the URI called. */
  to?: string;
  /** The Call-ID; default a random one (a worker of a cluster wants one that steers to itself). */
  callId?: string;
}

export interface RequestOutcome {
  /** The final status (408 when nothing answered, 503 when it could not be sent or had nowhere to go). */
  status: number;
  reason: string;
  response?: SipResponse;
}

/** A SUBSCRIBE of ours and the subscriptions its NOTIFYs made, by the notifier's tag. */
interface Subscribing {
  request: SipRequest;
  event: string;
  expires: number;
  made: Map<string, ClientSubscription>;
  /** The To tag of the 2xx ('' for a failure); undefined until the answer. */
  answeredTag?: string;
  onFork?: (subscription: ClientSubscription) => void;
}

/**
 * A user agent on sipway's own stack (transport, transactions, digest client): sends requests outside a dialog
 * with one authentication round when challenged, keeps registrations, and answers OPTIONS and MESSAGE sent to it
 * (everything else 501, or 481 for a request within a dialog it does not have). The session (call) API comes on
 * top of this and the dialog layer.
 */
export class UserAgent implements UaCore {
  private readonly digest: DigestClient | undefined;
  private readonly resolver: DnsSipResolver | undefined;
  readonly dialogs = new Dialogs();
  readonly sessions = new Map<string, SessionUsage>();
  /** SUBSCRIBEs whose notifiers' NOTIFYs may still make dialogs, by Call-ID and From tag. */
  private readonly subscribing = new Map<string, Subscribing>();
  readonly timers = { T1: DEFAULT_TIMER_CONFIG.T1, T2: DEFAULT_TIMER_CONFIG.T2 };
  readonly sessionTimer: SessionTimerConfig | false;
  readonly placeReferredCall: UaCore['placeReferredCall'];
  /** Calls for us not answered yet, by their INVITE transaction (a CANCEL finds them here). */
  private readonly ringing = new Map<InviteServerTransaction, InviteSession>();
  /** Started its own transport (start), rather than running on one someone else owns (over). */
  private ownsTransport = true;

  private constructor(
    private readonly options: UserAgentOptions,
    readonly transport: TransportLayer,
    readonly transactions: TransactionLayer,
    readonly clock: Clock,
  ) {
    this.digest = options.credentials ? new DigestClient(options.credentials) : undefined;
    this.sessionTimer = options.sessionTimer ?? DEFAULT_SESSION_TIMER;
    const onRefer = options.onRefer;
    if (onRefer) this.placeReferredCall = (referral, session) => this.followTransfer(onRefer, referral, session as InviteSession);
    this.resolver = options.proxy ? undefined : new DnsSipResolver({ servers: options.dnsServers, clock, logger: options.logger ?? silentLogger() });
  }

  static async start(options: UserAgentOptions): Promise<UserAgent> {
    const clock = options.clock ?? new SystemClock();
    const logger = options.logger ?? silentLogger();
    const aor = parseUri(options.aor);
    if (aor.type !== 'sip') throw new Error(`the AOR must be a sip: or sips: URI, not '${options.aor}'`);
    const transport = new TransportLayer({ listen: [options.listen ?? defaultListener(options.proxy)], clock, logger });
    const transactions = new TransactionLayer({ sender: transport, clock, logger });
    const ua = new UserAgent(options, transport, transactions, clock);
    transactions.setUser({
      onRequest: (request, st) => ua.answer(request, st),
      onAck: (ack) => {
        const dialog = ua.dialogs.match(ack);
        if (dialog) ua.sessions.get(dialog.key)?.acked(ack);
      },
      onStrayResponse: () => undefined,
    });
    transport.setReceiver({ onMessage: (m) => transactions.receive(m) });
    await transport.start();
    return ua;
  }

  /**
   * A user agent on a transport and transaction layer that someone else runs (a server's, for its B2BUA): nothing is
   * started or stopped here, and the owner hands over the messages that are the user agent's: `claim` and
   * `claimAck` in its transaction user (CANCELs of calls it answers, requests and ACKs in its dialogs), `adopt` for a
   * new INVITE it decided to give it. `stop` ends the calls only.
   */
  static over(options: UserAgentOptions, transport: TransportLayer, transactions: TransactionLayer, timers?: { T1: number; T2: number }): UserAgent {
    const aor = parseUri(options.aor);
    if (aor.type !== 'sip') throw new Error(`the AOR must be a sip: or sips: URI, not '${options.aor}'`);
    const ua = new UserAgent(options, transport, transactions, options.clock ?? new SystemClock());
    ua.ownsTransport = false;
    if (timers) Object.assign(ua.timers, timers);
    return ua;
  }

  /**
   * For a user agent made with `over`: takes `request` when it is ours (a CANCEL of a call ringing here, a request
   * in one of our dialogs) and answers it; false leaves it to the owner's next module.
   */
  claim(request: SipRequest, st: ServerTransaction): boolean {
    if (request.method === 'CANCEL') {
      const invite = this.transactions.findInviteForCancel(request);
      if (invite === undefined || !this.ringing.has(invite)) return false;
      this.answer(request, st);
      return true;
    }
    if (request.toTag === undefined || this.dialogs.match(request) === undefined) return false;
    this.withinDialog(request, st);
    return true;
  }

  /** For a user agent made with `over`: an ACK in one of our dialogs (for our 2xx) is taken; false otherwise. */
  claimAck(ack: SipRequest): boolean {
    const dialog = this.dialogs.match(ack);
    if (dialog === undefined) return false;
    this.sessions.get(dialog.key)?.acked(ack);
    return true;
  }

  /**
   * A new INVITE handed to us by the owner of the transport (not through onInvite): the session to answer it, or
   * undefined when it was refused here (420 for an extension we lack, 422 for a session interval too small).
   */
  adopt(invite: SipRequest, st: InviteServerTransaction): InviteSession | undefined {
    const refusal = InviteSession.refusal(this, invite);
    if (refusal) {
      st.respond(refusal);
      return undefined;
    }
    const session = this.track(InviteSession.incoming(this, invite, st));
    this.ringing.set(st, session);
    void session.answered.then(() => this.ringing.delete(st));
    return session;
  }

  get sender(): TransportLayer {
    return this.transport;
  }

  /**
   * Calls `uri` (an INVITE with `sdp` as the offer, through the proxy or to the resolved Request-URI). The session
   * resolves `answered` at the final answer and `ended` when it is over; `bye()` hangs up, `cancel()` gives up
   * before the answer. The INVITE says what we support (100rel, timer) and asks for our session timer.
   */
  async call(uri: string, options: CallOptions = {}): Promise<InviteSession> {
    const body = options.sdp === undefined ? undefined : Buffer.from(options.sdp);
    const headers: Array<[string, string]> = [['Allow', UA_ALLOW], ['Supported', UA_EXTENSIONS.join(', ')]];
    if (this.sessionTimer) headers.push(['Session-Expires', String(this.sessionTimer.expires)], ['Min-SE', String(this.sessionTimer.minSE)]);
    const invite = newRequest('INVITE', parseUri(uri), {
      from: options.from ?? `<${this.options.aor}>`,
      to: options.to,
      callId: options.callId,
      contact: this.contact,
      headers: [...headers, ...(options.headers ?? [])],
      body,
      contentType: body ? 'application/sdp' : undefined,
    });
    const to = await this.destinationFor(invite);
    if (to === undefined) return InviteSession.failed(this, invite, 503, `Service Unavailable - no address for ${uri}`);
    this.digest?.authorize(invite);
    return this.track(InviteSession.call(this, invite, to, options.onOffer));
  }

  /** Every call of ours not over yet, either direction: stop() ends them. */
  private readonly calls = new Set<InviteSession>();

  private track(session: InviteSession): InviteSession {
    this.calls.add(session);
    void session.ended.then(() => this.calls.delete(session));
    return session;
  }

  private async followTransfer(onRefer: NonNullable<UserAgentOptions['onRefer']>, referral: Referral, session: InviteSession): Promise<ReferredCall | undefined> {
    const headers: Array<[string, string]> = [];
    if (referral.replaces !== undefined) headers.push(['Replaces', referral.replaces]);
    if (referral.referredBy !== undefined) headers.push(['Referred-By', referral.referredBy]);
    const transfer: Transfer = {
      ...referral,
      session,
      call: (options: CallOptions = {}) => this.call(referral.target, { ...options, headers: [...headers, ...(options.headers ?? [])] }),
    };
    return onRefer(transfer);
  }

  withCredentials(request: SipRequest, challenge: SipResponse): SipRequest | undefined {
    return this.digest?.retry(request, challenge);
  }

  authorize(request: SipRequest): void {
    this.digest?.authorize(request);
  }

  /** Where a request within `dialog` goes: the outbound proxy, else its first route, else its remote target. */
  destinationOf(dialog: Dialog): Destination {
    const chosen = this.options.destinationOf?.(dialog);
    if (chosen) return chosen;
    if (this.options.proxy) return this.options.proxy;
    const next = dialog.routeSet[0]?.uri ?? dialog.remoteTarget;
    if (next.type !== 'sip') return { transport: 'udp', address: '0.0.0.0', port: 0 };
    const transport = (next.transportParam ?? 'udp') as Destination['transport'];
    return { transport, address: next.hostname, port: next.port ?? (transport === 'tls' ? 5061 : 5060) };
  }

  /** Our Contact: the AOR's user at the listener's advertised address. */
  get contact(): string {
    if (this.options.contact !== undefined) return this.options.contact;
    const aor = parseUri(this.options.aor);
    const user = aor.type === 'sip' && aor.user !== undefined ? `${aor.user}@` : '';
    const l = this.transport.listeners()[0]!;
    return `<sip:${user}${l.advertised}${l.transport === 'udp' ? '' : `;transport=${l.transport}`}>`;
  }

  /**
   * Sends a request outside any dialog to `uri` and waits for its final response, answering up to two 401/407 rounds
   * with our credentials. Never throws for network outcomes: they are statuses.
   */
  async request(method: string, uri: string, options: { headers?: Array<[string, string]>; body?: Buffer; contentType?: string } = {}): Promise<RequestOutcome> {
    const target = parseUri(uri);
    const request = newRequest(method, target, { from: `<${this.options.aor}>`, contact: method === 'INVITE' ? this.contact : undefined, ...options });
    const to = await this.destinationFor(request);
    if (to === undefined) return { status: 503, reason: `Service Unavailable - no address for ${uri}` };
    const digest = this.digest;
    const { response, unanswered } = await exchangeWithCredentials(this.transactions, this.transport, request, to, digest && ((r, c) => digest.retry(r, c)), 2);
    if (!(response instanceof SipResponse)) return response;
    const reason = unanswered ? `${response.reason} - ${digest!.refusal ?? 'not answered'}` : response.reason;
    return { status: response.status, reason, response };
  }

  /**
   * Subscribes to `event` of `uri` (RFC 6665 §4.1): SUBSCRIBE with one authentication round; on a 2xx the
   * subscription (its NOTIFYs in `notifications` and `onNotify`, refreshed on its own until `unsubscribe()`).
   * A NOTIFY that comes before the 2xx makes the dialog (§4.1.2.4). When the SUBSCRIBE forked, every other notifier's
   * NOTIFY makes a subscription of its own (for 64·T1 after the answer): handed to `onFork`, or, without it, ended at once.
   */
  async subscribe(
    uri: string,
    event: string,
    options: { expires?: number; accept?: string; headers?: Array<[string, string]>; onFork?: (subscription: ClientSubscription) => void } = {},
  ): Promise<RequestOutcome & { subscription?: ClientSubscription }> {
    const headers: Array<[string, string]> = [['Event', event], ['Expires', String(options.expires ?? 3600)]];
    if (options.accept) headers.push(['Accept', options.accept]);
    // e.g. Supported: eventlist for a resource list (RFC 4662).
    headers.push(...(options.headers ?? []));
    const request = newRequest('SUBSCRIBE', parseUri(uri), { from: `<${this.options.aor}>`, contact: this.contact, headers });
    const to = await this.destinationFor(request);
    if (to === undefined) return { status: 503, reason: `Service Unavailable - no address for ${uri}` };
    const pending: Subscribing = { request, event, expires: options.expires ?? 3600, made: new Map(), onFork: options.onFork };
    const pendingKey = `${request.callId}\n${request.fromTag}`;
    this.subscribing.set(pendingKey, pending);
    const digest = this.digest;
    const { response, request: sent } = await exchangeWithCredentials(this.transactions, this.transport, request, to, digest && ((r, c) => digest.retry(r, c)), 2);
    // Forks may still answer with NOTIFYs for as long as a proxy may still fork (Timer C's shortest, 64·T1).
    this.clock.setTimer(64 * this.timers.T1, () => this.subscribing.delete(pendingKey));
    if (!(response instanceof SipResponse)) return response;
    const dialog = response.status < 300 ? this.dialogs.fromResponse(sent, response) : undefined;
    pending.answeredTag = dialog?.remoteTag ?? '';
    // NOTIFYs that came before this answer from other notifiers are forks.
    for (const [tag, made] of pending.made) if (tag !== pending.answeredTag) this.forked(pending, made);
    if (dialog === undefined) return { status: response.status, reason: response.reason, response };
    const granted = Number(response.headers.get('expires') ?? options.expires ?? 3600);
    const subscription = pending.made.get(dialog.remoteTag) ?? new ClientSubscription(this, dialog, event, granted);
    subscription.expires = granted;
    return { status: response.status, reason: response.reason, response, subscription };
  }

  /** A NOTIFY in no dialog of ours: it makes one if it belongs to a SUBSCRIBE of ours (§4.1.2.4); true when taken. */
  private notifyMakesDialog(request: SipRequest, st: ServerTransaction): boolean {
    const pending = this.subscribing.get(`${request.callId}\n${request.toTag}`);
    if (pending === undefined || request.fromTag === undefined || pending.made.has(request.fromTag)) return false;
    let dialog: Dialog;
    try {
      dialog = this.dialogs.adopt(Dialog.asSubscriber(pending.request, request));
    } catch (err) {
      st.respond(createResponse(request, 400, { reason: `Bad Request - ${(err as Error).message}` }));
      return true;
    }
    const expires = /;\s*expires\s*=\s*(\d+)/i.exec(request.headers.get('subscription-state') ?? '')?.[1];
    const subscription = new ClientSubscription(this, dialog, pending.event, expires === undefined ? pending.expires : Number(expires));
    pending.made.set(dialog.remoteTag, subscription);
    subscription.inDialog(request, st);
    if (pending.answeredTag !== undefined && dialog.remoteTag !== pending.answeredTag) this.forked(pending, subscription);
    return true;
  }

  private forked(pending: Subscribing, subscription: ClientSubscription): void {
    if (pending.onFork) pending.onFork(subscription);
    else if (subscription.active) void subscription.unsubscribe();
  }

  /** A registration of our AOR with our Contact at the proxy (or the AOR's domain), not yet started. */
  registration(options: Pick<RegistrationOptions, 'expires' | 'retryMs' | 'outbound'> = {}): RegistrationClient {
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

  /**
   * Ends every call (BYE for an answered one, CANCEL for one we are placing, 480 for one ringing here), waits up to a
   * second for their BYEs to be answered, then closes the transactions and listeners.
   */
  async stop(): Promise<void> {
    await this.stopCalls();
    if (!this.ownsTransport) return;
    this.transactions.close();
    await this.transport.stop();
  }

  /** The first half of stop(): every call ended (a BYE answered or a second gone), the user agent still listening. */
  async stopCalls(): Promise<void> {
    const byes: Array<Promise<unknown>> = [];
    for (const call of this.calls) {
      if (call.state === 'Confirmed') byes.push(call.bye());
      else if (call.side === 'uac') call.cancel();
      else call.reject(480, 'Temporarily Unavailable - shutting down');
    }
    if (byes.length > 0) {
      // Shutdown is bounded in wall time whatever clock the sessions run on: a peer that is gone answers no BYE.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(byes), new Promise((resolve) => (timer = setTimeout(resolve, 1000).unref()))]);
      clearTimeout(timer);
    }
  }

  private answer(request: SipRequest, st: ServerTransaction): void {
    if (request.method === 'CANCEL') {
      const invite = this.transactions.findInviteForCancel(request);
      const session = invite && this.ringing.get(invite);
      st.respond(createResponse(request, session ? 200 : 481));
      session?.cancelled();
      return;
    }
    if (request.toTag !== undefined && request.method !== 'MESSAGE' && request.method !== 'OPTIONS') {
      this.withinDialog(request, st);
      return;
    }
    switch (request.method) {
      case 'OPTIONS':
        st.respond(createResponse(request, 200, { headers: [['Allow', UA_ALLOW], ['Supported', UA_EXTENSIONS.join(', ')], ['Accept', 'text/plain, application/sdp']] }));
        return;
      case 'MESSAGE':
        this.options.onMessage?.(request);
        st.respond(createResponse(request, 200));
        return;
      case 'INVITE':
        this.incomingCall(request, st as InviteServerTransaction);
        return;
      default:
        st.respond(createResponse(request, 501, { headers: [['Allow', UA_ALLOW]] }));
    }
  }

  private incomingCall(invite: SipRequest, st: InviteServerTransaction): void {
    const onInvite = this.options.onInvite;
    if (onInvite === undefined) {
      st.respond(createResponse(invite, 480, { reason: 'Temporarily Unavailable - not taking calls' }));
      return;
    }
    const refusal = InviteSession.refusal(this, invite);
    if (refusal) {
      st.respond(refusal);
      return;
    }
    let replaced: InviteSession | undefined;
    if (invite.headers.has('replaces')) {
      // RFC 3891 §3: the dialog named by its tags as we know them (to-tag ours); 481 when we have none such.
      const r = parseReplaces(invite.headers.get('replaces'));
      const dialog = r && this.dialogs.get(r.callId, r.toTag, r.fromTag);
      const old = dialog && this.sessions.get(dialog.key);
      if (!(old instanceof InviteSession) || old.state === 'Terminated') {
        st.respond(createResponse(invite, 481, { reason: 'Call/Transaction Does Not Exist - no dialog to replace' }));
        return;
      }
      if (r!.earlyOnly && old.state === 'Confirmed') {
        st.respond(createResponse(invite, 486, { reason: 'Busy Here - the dialog to replace is confirmed (early-only)' }));
        return;
      }
      replaced = old;
    }
    const session = this.track(InviteSession.incoming(this, invite, st));
    if (replaced) {
      const old = replaced;
      session.replaces = old;
      // The new call takes the old one's place once it is up (§3): the old one is ended with BYE.
      void session.answered.then((a) => (a.status < 300 ? old.bye() : undefined));
    }
    this.ringing.set(st, session);
    void session.answered.then(() => this.ringing.delete(st));
    onInvite(session);
  }

  /** §12.2.2: a request in a dialog: 481 for one we do not have, 500 out of order; BYE ends the session, the rest is its usage's. */
  private withinDialog(request: SipRequest, st: ServerTransaction): void {
    const dialog = this.dialogs.match(request);
    if (dialog === undefined) {
      if (request.method === 'NOTIFY' && this.notifyMakesDialog(request, st)) return;
      st.respond(createResponse(request, 481));
      return;
    }
    // A NOTIFY of a subscription may cross a request sent after it (a transferee's last NOTIFYs and its BYE: Twinkle
    // numbers them in the order it queued them): taken out of order rather than refused 500 (§12.2.2), since a
    // refused NOTIFY ends the subscription at its notifier and its outcome would never come.
    const refusal = dialog.receiveRequest(request, { outOfOrder: request.method === 'NOTIFY' ? 'accept' : 'refuse' });
    if (refusal) {
      st.respond(createResponse(request, refusal.status, { reason: refusal.reason }));
      return;
    }
    if (request.method === 'BYE') {
      st.respond(createResponse(request, 200));
      // The session lets its dialog go once no usage of it is left (a transfer's subscription may be).
      const session = this.sessions.get(dialog.key);
      if (session) session.byeReceived(request);
      else this.dialogs.forget(dialog);
      return;
    }
    const session = this.sessions.get(dialog.key);
    if (request.method === 'INVITE' && session) {
      session.reinvited(request, st as InviteServerTransaction);
      return;
    }
    if (session) {
      session.inDialog(request, st);
      return;
    }
    st.respond(createResponse(request, 481));
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

/** The listener a user agent gets when it names none: see UserAgentOptions.listen. */
export function defaultListener(proxy: Destination | undefined): ListenSpec {
  const transport = proxy?.transport === 'tcp' ? 'tcp' : 'udp';
  const address = proxy?.address ?? '';
  if (address.startsWith('127.') || address === '::1') return { transport, host: address, port: 0 };
  return { transport, host: address.includes(':') ? '::' : '0.0.0.0', port: 0 };
}
