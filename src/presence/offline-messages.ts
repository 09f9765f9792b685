import { parseUri, type SipRequest } from '../message/index.js';
import { canonicalAor } from '../registrar/index.js';
import type { Binding, LocationStore, MessageBoxStore, StoredMessage, SubscriberStore } from '../store/index.js';
import { addVia, newRequest, type TransactionLayer } from '../transaction/index.js';
import type { Destination, MessageSender } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';

export interface OfflineMessagesOptions {
  store: MessageBoxStore;
  location: Pick<LocationStore, 'lookup'>;
  /** Only subscribers' messages are kept: a MESSAGE to an unknown user is the routing's (404). */
  subscribers: Pick<SubscriberStore, 'get'>;
  transactions: TransactionLayer;
  sender: MessageSender;
  clock: Clock;
  logger?: Logger;
  /** Messages kept per user; one more is refused 480 (mailbox full). Default 50. */
  maxPerUser?: number;
  /** Largest body kept, bytes; a larger one is refused 513. Default 8192. */
  maxBytes?: number;
  /** How long a message waits for its user, ms. Default 7 days. */
  ttlMs?: number;
}

export interface StoreOutcome {
  status: number;
  reason: string;
}

/**
 * Store and forward for instant messages (RFC 3428) to users who are offline (Kamailio's msilo): a MESSAGE to a user
 * of ours with no binding is kept and answered 202 Accepted (RFC 3428 §7: taken, not yet delivered), and delivered
 * when the user next registers, to each of their contacts, each message removed once a contact has answered it 2xx.
 * A message waits `ttlMs` at most. One delivery runs per user at a time, so a REGISTER refresh that crosses one
 * does not send the messages twice.
 */
export class OfflineMessages {
  private readonly logger: Logger;
  private readonly maxPerUser: number;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly delivering = new Set<string>();

  constructor(private readonly options: OfflineMessagesOptions) {
    this.logger = options.logger ?? silentLogger();
    this.maxPerUser = options.maxPerUser ?? 50;
    this.maxBytes = options.maxBytes ?? 8192;
    this.ttlMs = options.ttlMs ?? 7 * 24 * 3600 * 1000;
  }

  /**
   * A MESSAGE for a subscriber of ours with no binding now is kept: the status to answer it with. Undefined when its
   * Request-URI names no such user or the user is online (the routing delivers it).
   */
  async keepIfOffline(request: SipRequest): Promise<StoreOutcome | undefined> {
    const uri = request.uri;
    if (request.method !== 'MESSAGE' || uri.type !== 'sip' || uri.user === undefined) return undefined;
    const user = uri.userUnescaped ?? uri.user;
    if ((await this.options.subscribers.get(user, uri.host)) === undefined) return undefined;
    const now = this.options.clock.now();
    if ((await this.options.location.lookup(canonicalAor(uri))).some((b) => b.expiresAt > now)) return undefined;
    return this.keep(request, user, uri.host);
  }

  /** Keeps `request` (a MESSAGE) for the user `username@domain`; the status to answer it with. */
  async keep(request: SipRequest, username: string, domain: string): Promise<StoreOutcome> {
    if (request.body.length > this.maxBytes) return { status: 513, reason: `Message Too Large - at most ${this.maxBytes} bytes are kept for an offline user` };
    const now = this.options.clock.now();
    const box = (await this.options.store.get(username, domain)) ?? { username, domain, messages: [] };
    const live = box.messages.filter((m) => m.expiresAt > now);
    if (live.length >= this.maxPerUser) return { status: 480, reason: 'Temporarily Unavailable - the user is offline and their message box is full' };
    const from = request.from.clone();
    from.tag = undefined;
    live.push({
      from: from.toString(),
      contentType: request.headers.get('content-type') ?? 'text/plain',
      body: request.body.toString('utf8'),
      receivedAt: now,
      expiresAt: now + this.ttlMs,
    });
    await this.options.store.put({ username, domain, messages: live });
    return { status: 202, reason: 'Accepted - stored for delivery when the user registers' };
  }

  /** The user of `aor` (re)registered: their kept messages go to each contact now registered. */
  async deliver(aor: string): Promise<void> {
    const uri = parseUri(aor);
    if (uri.type !== 'sip' || uri.user === undefined) return;
    const username = uri.userUnescaped ?? uri.user;
    if (this.delivering.has(aor)) return;
    this.delivering.add(aor);
    try {
      const now = this.options.clock.now();
      const box = await this.options.store.get(username, uri.host);
      const waiting = (box?.messages ?? []).filter((m) => m.expiresAt > now);
      if (waiting.length === 0) return;
      const bindings = (await this.options.location.lookup(aor)).filter((b) => b.expiresAt > now && b.path.length === 0);
      if (bindings.length === 0) return;
      const delivered = new Set<StoredMessage>();
      await Promise.all(waiting.map(async (m) => {
        const answers = await Promise.all(bindings.map((b) => this.send(m, aor, b)));
        if (answers.some((ok) => ok)) delivered.add(m);
      }));
      // Read again: messages may have come in meanwhile; only the delivered ones go.
      const current = await this.options.store.get(username, uri.host);
      const left = (current?.messages ?? []).filter((m) => m.expiresAt > this.options.clock.now() && ![...delivered].some((d) => d.receivedAt === m.receivedAt && d.body === m.body && d.from === m.from));
      if (left.length === 0) await this.options.store.remove(username, uri.host);
      else await this.options.store.put({ username, domain: uri.host, messages: left });
      this.logger.info({ aor, delivered: delivered.size, left: left.length }, 'offline messages delivered');
    } catch (err) {
      this.logger.warn({ err, aor }, 'offline messages not delivered (kept for the next registration)');
    } finally {
      this.delivering.delete(aor);
    }
  }

  /** One stored message to one binding, over the flow it registered from; true on a 2xx. */
  private send(m: StoredMessage, aor: string, binding: Binding): Promise<boolean> {
    return new Promise((resolve) => {
      try {
        const contact = parseUri(binding.contact);
        const s = binding.source;
        const destination: Destination = { transport: s.transport as Destination['transport'], address: s.address, port: s.port };
        if (binding.flowId !== undefined) destination.flowId = binding.flowId;
        const request = newRequest('MESSAGE', contact, {
          from: m.from,
          to: `<${aor}>`,
          // RFC 3428 §7 (and Date, §20.17): when it was sent, so that the user sees how old it is.
          headers: [['Date', new Date(m.receivedAt).toUTCString()]],
          body: Buffer.from(m.body, 'utf8'),
          contentType: m.contentType,
        });
        addVia(request, this.options.sender, destination);
        this.options.transactions.sendRequest(request, destination, {
          onResponse: (r) => r.status >= 200 && resolve(r.status < 300),
          onTimeout: () => resolve(false),
          onTransportError: () => resolve(false),
        });
      } catch (err) {
        this.logger.warn({ err, aor, contact: binding.contact }, 'offline message not sent');
        resolve(false);
      }
    });
  }
}
