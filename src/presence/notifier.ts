import { Dialog, Dialogs, type DialogSnapshot } from '../dialog/index.js';
import type { PresenceStateStore } from '../store/index.js';
import { createResponse, type SipRequest, type SipResponse } from '../message/index.js';
import { SipError } from '../util/errors.js';
import { canonicalAor } from '../registrar/index.js';
import { addVia, type ServerTransaction, type TransactionLayer } from '../transaction/index.js';
import type { Destination, MessageSender } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { newTag } from '../util/ids.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { Admission, EventPackage, EventState } from './event-package.js';
import { Subscription, type TerminationReason, type WatcherDecision } from './subscription.js';

export interface NotifierOptions {
  transactions: TransactionLayer;
  sender: MessageSender;
  clock: Clock;
  /** Our Contact in the subscriptions' dialogs: where refreshes come (a URI without a user part: the server). */
  contact: string | (() => string);
  logger?: Logger;
  /** Shorter subscriptions are refused 423 with this Min-Expires (RFC 6665 §4.2.1.1), seconds. */
  minExpires?: number;
  /** Longer ones are cut to this, seconds. */
  maxExpires?: number;
  /** The least time between two NOTIFYs of one subscription (RFC 3856 §6.10), ms. */
  notifyIntervalMs?: number;
  /** The watchers of (event, resource) changed: one came, went, or was decided about (watcher info, RFC 3857). */
  watchersChanged?: (event: string, resource: string) => void;
  /** Subscriptions are written here when made, refreshed, decided and ended (never per NOTIFY) and restored from it. */
  store?: Pick<PresenceStateStore, 'saveSubscription' | 'removeSubscription' | 'subscriptions'>;
  /** Whether this process owns a Call-ID (restores only its own subscriptions). Default: all. */
  owns?: (callId: string) => boolean;
}

/** A subscription as the store keeps it (StoredSubscription.data). */
interface SubscriptionRecord {
  event: string;
  resource: string;
  watcher: string;
  decision: Exclude<WatcherDecision, 'block'>;
  createdAt: number;
  expiresAt: number;
  dialog: DialogSnapshot;
  destination: Destination;
}

/** One watcher of a resource as watcher info reports it (RFC 3858). */
export interface WatcherEntry {
  id: string;
  watcher: string;
  status: 'pending' | 'active' | 'terminated';
  /** What made it so: subscribe, approved, rejected, timeout ... (RFC 3858 §4.4 event attribute). */
  event: string;
  /** Seconds the subscription has existed. */
  durationSubscribed: number;
}

/**
 * The notifier of RFC 6665 §4.2 for the event packages plugged into it: SUBSCRIBE answered 200 (a subscription as a
 * usage of a new dialog) and followed at once by a NOTIFY with the full state; refreshes in the dialog; Expires 0 a
 * fetch or an unsubscribe (a last NOTIFY, terminated); 489 with Allow-Events for an event no package takes, 423 with
 * Min-Expires for too short a subscription, 406 when Accept excludes the package's documents. A state change of a
 * resource goes to every subscription to it, paced. A NOTIFY answered 481 or 408, or not answered, ends its
 * subscription (§4.2.2).
 */
export class Notifier {
  private readonly packages = new Map<string, EventPackage>();
  private readonly dialogs = new Dialogs();
  /** Subscriptions by dialog key and event. */
  private readonly byDialog = new Map<string, Subscription>();
  /** Subscriptions by event and resource. */
  private readonly byResource = new Map<string, Set<Subscription>>();
  private readonly logger: Logger;
  private readonly minExpires: number;
  private readonly maxExpires: number;
  private readonly notifyIntervalMs: number;

  private readonly contact: () => string;
  private readonly changeListeners: Array<(event: string, resource: string) => void> = [];
  private retried = 0;

  constructor(
    private readonly options: NotifierOptions,
    packages: readonly EventPackage[],
  ) {
    const contact = options.contact;
    this.contact = typeof contact === 'string' ? () => contact : contact;
    for (const p of packages) this.packages.set(p.event, p);
    this.logger = options.logger ?? silentLogger();
    this.minExpires = options.minExpires ?? 60;
    this.maxExpires = options.maxExpires ?? 3600;
    this.notifyIntervalMs = options.notifyIntervalMs ?? 5000;
  }

  /** Allow-Events (RFC 6665 §8.2.2): the events we take. */
  get allowEvents(): string {
    return [...this.packages.keys()].join(', ');
  }

  get size(): number {
    return this.byDialog.size;
  }

  /** NOTIFYs sent again because none could be sent (no transaction to be had) when due. */
  get retries(): number {
    return this.retried;
  }

  /** Whether a package for `event` is plugged in. */
  serves(event: string | undefined): boolean {
    return event !== undefined && this.packages.has(event);
  }

  /** Subscriptions to `event` of `resource` (active ones). */
  watchers(event: string, resource: string): number {
    return this.byResource.get(key(event, resource))?.size ?? 0;
  }

  /** The watchers of (event, resource) now, for watcher info. */
  watcherList(event: string, resource: string): WatcherEntry[] {
    const now = this.options.clock.now();
    return [...(this.byResource.get(key(event, resource)) ?? [])].map((s) => ({
      id: s.dialog.localTag,
      watcher: s.watcher,
      status: s.state,
      event: s.state === 'pending' ? 'subscribe' : 'approved',
      durationSubscribed: Math.round((now - s.createdAt) / 1000),
    }));
  }

  /** The owner's rules for `resource` changed: every subscription to it is decided again (pending ones too). */
  async reauthorize(event: string, resource: string): Promise<void> {
    const pkg = this.packages.get(event);
    if (pkg?.authorize === undefined) return;
    for (const s of [...(this.byResource.get(key(event, resource)) ?? [])]) {
      const before = s.decision;
      s.decide(await pkg.authorize(s.watcher, resource).catch(() => 'confirm' as const));
      if (s.state !== 'terminated' && s.decision !== before) this.save(s);
    }
    this.options.watchersChanged?.(event, resource);
  }

  /** A SUBSCRIBE, new or within one of our subscriptions' dialogs; answered through `st`. */
  subscribe(request: SipRequest, st: ServerTransaction): void {
    const event = eventName(request);
    const pkg = event === undefined ? undefined : this.packages.get(event);
    if (pkg === undefined) {
      st.respond(createResponse(request, 489, { headers: [['Allow-Events', this.allowEvents]] }));
      return;
    }
    const accept = request.headers.list('accept');
    if (accept.length > 0 && !accept.some((a) => accepts(a, pkg.contentType))) {
      st.respond(createResponse(request, 406, { headers: [['Accept', pkg.contentType]] }));
      return;
    }
    const asked = request.headers.get('expires');
    let seconds = asked === undefined ? pkg.defaultExpires : Number(asked.trim());
    if (!Number.isInteger(seconds) || seconds < 0) {
      st.respond(createResponse(request, 400, { reason: 'Bad Request - Expires is not a number of seconds' }));
      return;
    }
    if (seconds > 0 && seconds < this.minExpires) {
      st.respond(createResponse(request, 423, { headers: [['Min-Expires', String(this.minExpires)]] }));
      return;
    }
    seconds = Math.min(seconds, this.maxExpires);
    if (request.toTag !== undefined) {
      this.refresh(request, st, event!, seconds);
      return;
    }
    const watcher = watcherOf(request);
    if (pkg.authorize === undefined && pkg.admit === undefined) {
      this.create(request, st, pkg, seconds, watcher, 'allow', []);
      return;
    }
    void this.admit(request, st, pkg, seconds, watcher);
  }

  /** The package's admission and the owner's rules, then the subscription; a store that fails is a 500 with a reason. */
  private async admit(request: SipRequest, st: ServerTransaction, pkg: EventPackage, seconds: number, watcher: string): Promise<void> {
    const resource = resourceOf(request);
    let admission: Admission = {};
    try {
      admission = (await pkg.admit?.(request, resource)) ?? {};
    } catch (e) {
      this.logger.warn({ err: e, event: pkg.event, resource }, 'subscription admission failed');
      st.respond(createResponse(request, 500, { reason: 'Server Internal Error - the resource could not be looked up' }));
      return;
    }
    if (admission.refuse) {
      const { status, reason, headers } = admission.refuse;
      st.respond(createResponse(request, status, { reason, headers }));
      return;
    }
    let decision: WatcherDecision = 'allow';
    try {
      if (pkg.authorize) decision = await pkg.authorize(watcher, resource);
    } catch {
      st.respond(createResponse(request, 500, { reason: 'Server Internal Error - the watcher rules could not be read' }));
      return;
    }
    if (decision === 'block') st.respond(createResponse(request, 403, { reason: 'Forbidden - the owner does not allow you to watch' }));
    else this.create(request, st, pkg, seconds, watcher, decision, admission.headers ?? []);
  }

  /** The state of `resource` for `event` changed: every subscription to it is told (paced), and every listener. */
  changed(event: string, resource: string): void {
    for (const s of this.byResource.get(key(event, resource)) ?? []) s.changed();
    for (const listener of this.changeListeners) listener(event, resource);
  }

  /** Hears every change (a resource list hears its members' changes this way). */
  onChange(listener: (event: string, resource: string) => void): void {
    this.changeListeners.push(listener);
  }

  /**
   * The process stops. Subscriptions kept in a store stay there and go on after a restart (`restore`); without a
   * store each ends with a last NOTIFY (deactivated: the subscriber may subscribe again, §4.1.3).
   */
  close(): void {
    for (const s of [...this.byDialog.values()]) {
      if (this.options.store) s.halt();
      else s.terminate('deactivated');
    }
    if (this.options.store) this.byDialog.clear();
  }

  private create(
    request: SipRequest,
    st: ServerTransaction,
    pkg: EventPackage,
    seconds: number,
    watcher: string,
    decision: Exclude<WatcherDecision, 'block'>,
    headers: Array<[string, string]>,
  ): void {
    let dialog: Dialog;
    const localTag = newTag();
    try {
      dialog = this.dialogs.fromRequest(request, localTag);
    } catch (e) {
      st.respond(createResponse(request, 400, { reason: `Bad Request - ${(e as Error).message}` }));
      return;
    }
    st.respond(createResponse(request, 200, { toTag: localTag, headers: [['Contact', this.contact()], ['Expires', String(seconds)], ...headers] }));
    const subscription = this.subscription(dialog, pkg, resourceOf(request), watcher, decision, destinationOf(request, dialog));
    if (seconds === 0) {
      // A fetch (§4.4.3): the state once, in a NOTIFY that ends the subscription.
      subscription.terminate('timeout');
      return;
    }
    this.track(subscription);
    subscription.activate(seconds);
    this.save(subscription);
    this.options.watchersChanged?.(pkg.event, subscription.resource);
  }

  private track(subscription: Subscription): void {
    this.byDialog.set(dialogEventKey(subscription.dialog, subscription.event), subscription);
    const k = key(subscription.event, subscription.resource);
    if (!this.byResource.has(k)) this.byResource.set(k, new Set());
    this.byResource.get(k)!.add(subscription);
  }

  /**
   * The subscriptions of the store that this process owns, made again with their dialogs; each gets a full-state
   * NOTIFY (the state may have moved while the server was down) numbered past any it sent before. How many.
   */
  async restore(): Promise<number> {
    const store = this.options.store;
    if (store === undefined) return 0;
    const owns = this.options.owns ?? (() => true);
    // NOTIFYs are not written one by one: our CSeq jumps past as many as could have gone since the last write
    // (one per pacing interval over the longest subscription, and a margin).
    const advance = Math.ceil((this.maxExpires * 1000) / Math.max(this.notifyIntervalMs, 1)) + 1000;
    let restored = 0;
    for (const stored of await store.subscriptions(this.options.clock.now())) {
      if (!owns(stored.callId) || this.byDialog.has(stored.key)) continue;
      try {
        const r = JSON.parse(stored.data) as SubscriptionRecord;
        const pkg = this.packages.get(r.event);
        if (pkg === undefined) continue;
        const dialog = this.dialogs.adopt(Dialog.restore(r.dialog, advance));
        const subscription = this.subscription(dialog, pkg, r.resource, r.watcher, r.decision, r.destination, r.createdAt);
        this.track(subscription);
        subscription.resume(r.expiresAt);
        this.save(subscription);
        restored++;
      } catch (err) {
        this.logger.warn({ err, key: stored.key }, 'stored subscription not restored');
      }
    }
    return restored;
  }

  private subscription(
    dialog: Dialog,
    pkg: EventPackage,
    resource: string,
    watcher: string,
    decision: Exclude<WatcherDecision, 'block'>,
    destination: Destination,
    createdAt?: number,
  ): Subscription {
    return new Subscription(
      dialog,
      pkg.event,
      resource,
      watcher,
      decision,
      destination,
      this.options.clock,
      this.notifyIntervalMs,
      (s, terminated, full) => void this.notify(s, terminated, full),
      (s) => this.forget(s),
      createdAt,
    );
  }

  /** Written when made, refreshed or decided: what a restart needs (the dialog, the decision, the expiry). */
  private save(s: Subscription): void {
    const store = this.options.store;
    if (store === undefined || s.state === 'terminated') return;
    const record: SubscriptionRecord = {
      event: s.event,
      resource: s.resource,
      watcher: s.watcher,
      decision: s.decision,
      createdAt: s.createdAt,
      expiresAt: s.expiresAtMs,
      dialog: s.dialog.snapshot(),
      destination: { transport: s.destination.transport, address: s.destination.address, port: s.destination.port },
    };
    store
      .saveSubscription({ key: dialogEventKey(s.dialog, s.event), callId: s.dialog.callId, expiresAt: s.expiresAtMs, data: JSON.stringify(record) })
      .catch((err: unknown) => this.logger.warn({ err, resource: s.resource }, 'subscription not stored; it will not survive a restart'));
  }

  private refresh(request: SipRequest, st: ServerTransaction, event: string, seconds: number): void {
    const dialog = this.dialogs.match(request);
    const subscription = dialog && this.byDialog.get(dialogEventKey(dialog, event));
    if (dialog === undefined || subscription === undefined) {
      st.respond(createResponse(request, 481, { reason: 'Subscription Does Not Exist' }));
      return;
    }
    const refusal = dialog.receiveRequest(request);
    if (refusal) {
      st.respond(createResponse(request, refusal.status, { reason: refusal.reason }));
      return;
    }
    st.respond(createResponse(request, 200, { headers: [['Contact', this.contact()], ['Expires', String(seconds)]] }));
    if (seconds === 0) subscription.terminate('timeout');
    else {
      subscription.activate(seconds);
      this.save(subscription);
    }
  }

  private forget(s: Subscription): void {
    this.byDialog.delete(dialogEventKey(s.dialog, s.event));
    this.packages.get(s.event)?.ended?.(dialogEventKey(s.dialog, s.event));
    this.options.store?.removeSubscription(dialogEventKey(s.dialog, s.event)).catch((err: unknown) => this.logger.warn({ err }, 'ended subscription not removed from the store'));
    const k = key(s.event, s.resource);
    const set = this.byResource.get(k);
    set?.delete(s);
    if (set?.size === 0) this.byResource.delete(k);
    // One dialog, one subscription here (no shared usages yet): the dialog goes with it.
    this.dialogs.forget(s.dialog);
    this.options.watchersChanged?.(s.event, s.resource);
  }

  private async notify(s: Subscription, terminated: TerminationReason | undefined, full: boolean): Promise<void> {
    const pkg = this.packages.get(s.event)!;
    let state: EventState | undefined;
    try {
      // RFC 6665 §4.2.1: a pending subscription's NOTIFY says so and carries no state; a politely blocked watcher
      // sees a state that reveals nothing.
      if (!s.authorized) state = undefined;
      else if (s.politelyBlocked && pkg.politeState) state = pkg.politeState(s.resource);
      else state = await pkg.state(s.resource, { subscription: dialogEventKey(s.dialog, s.event), full });
    } catch (e) {
      // A store that cannot say the state now: the next change or refresh tries again.
      this.logger.warn({ err: e, event: s.event, resource: s.resource }, 'event state unavailable; NOTIFY not sent');
      return;
    }
    if (terminated === undefined && s.state === 'terminated') return;
    const notify = s.dialog.createRequest('NOTIFY', {
      headers: [
        ['Event', s.event],
        ['Subscription-State', terminated === undefined ? `${s.state};expires=${s.secondsLeft}` : `terminated;reason=${terminated}`],
        ['Contact', this.contact()],
        ...(state?.headers ?? []),
      ],
      body: state === undefined || terminated === 'rejected' ? undefined : Buffer.from(state.body),
      contentType: state?.contentType,
    });
    try {
      addVia(notify, this.options.sender, s.destination);
      this.options.transactions.sendRequest(notify, s.destination, {
        onResponse: (r: SipResponse) => {
          if (r.status < 200) return;
          s.dialog.receiveResponse(notify, r);
          if (r.status === 481 || r.status === 408) s.drop();
        },
        onTimeout: () => s.drop(),
        onTransportError: () => s.drop(),
      });
      s.sent();
    } catch (e) {
      // Out of transactions (overload): the subscription stays and its full state goes again a little later, for
      // a last NOTIFY too; anything else (no route to the subscriber) ends it.
      // Spread over 1 to 1.5 s, so that a storm's NOTIFYs do not all come back at once.
      if (e instanceof SipError && e.status === 503 && terminated === undefined && s.retryLater(1000 + Math.floor(Math.random() * 500))) {
        this.retried++;
        this.logger.debug({ resource: s.resource }, 'NOTIFY not sent (overload); sent again later');
        return;
      }
      this.logger.warn({ err: e, resource: s.resource }, 'NOTIFY could not be sent; subscription dropped');
      s.drop();
    }
  }
}

function key(event: string, resource: string): string {
  return `${event}\n${resource}`;
}

function dialogEventKey(dialog: Dialog, event: string): string {
  return `${dialog.key}\n${event}`;
}

/** The event package name of a SUBSCRIBE or PUBLISH (its Event header without parameters, lower-case). */
export function eventName(request: SipRequest): string | undefined {
  const value = request.headers.get('event');
  const name = value?.split(';')[0]?.trim().toLowerCase();
  return name ? name : undefined;
}

/** Who subscribes: the From's URI as an AOR (the proxy has authenticated it for users of our domains). */
export function watcherOf(request: SipRequest): string {
  const uri = request.from.uri;
  return uri.type === 'sip' ? canonicalAor(uri) : uri.toString();
}

/** The resource a SUBSCRIBE or PUBLISH is about: its Request-URI as an AOR (scheme, user, host). */
export function resourceOf(request: SipRequest): string {
  const uri = request.uri;
  // The registrar's canonical AOR: presence from registration state looks the resource up by it.
  return uri.type === 'sip' ? canonicalAor(uri) : uri.toString();
}

function accepts(range: string, type: string): boolean {
  const r = range.split(';')[0]!.trim().toLowerCase();
  return r === '*/*' || r === type || (r.endsWith('/*') && type.startsWith(r.slice(0, -1)));
}

/**
 * Where NOTIFYs go: along the route set when there is one, else back to the flow the SUBSCRIBE came from (a phone
 * behind a NAT writes a Contact nobody can reach; its flow reaches it), else to its Contact.
 */
function destinationOf(request: SipRequest, dialog: Dialog): Destination {
  const first = dialog.routeSet[0]?.uri;
  const source = request.source;
  if (first === undefined && source) return { transport: source.transport as Destination['transport'], address: source.address, port: source.port, flowId: source.flowId };
  const next = first ?? dialog.remoteTarget;
  if (next.type !== 'sip') return { transport: 'udp', address: '0.0.0.0', port: 0 };
  const transport = (next.transportParam ?? 'udp') as Destination['transport'];
  return { transport, address: next.hostname, port: next.port ?? (transport === 'tls' ? 5061 : 5060) };
}
