import { createResponse, parseUri, type SipRequest } from '../message/index.js';
import { createHash } from 'node:crypto';
import type { Binding, MailboxRecord, MailboxStore, PresenceStateStore, WatcherRulesStore } from '../store/index.js';
import type { ServerTransaction, TransactionLayer } from '../transaction/index.js';
import type { MessageSender } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { EventPackage, EventState } from './event-package.js';
import { eventName, Notifier, type WatcherEntry } from './notifier.js';
import type { WatcherDecision } from './subscription.js';
import { basicPidf, composePidf } from './pidf.js';
import { Publications } from './publications.js';

export interface PresenceOptions {
  transactions: TransactionLayer;
  sender: MessageSender;
  clock: Clock;
  /** Our Contact in subscription dialogs. */
  contact: string | (() => string);
  /** Whether an AOR has a binding now: presence from registration state when nothing is published (open/closed). */
  registered: (aor: string) => Promise<boolean>;
  logger?: Logger;
  notifyIntervalMs?: number;
  minExpires?: number;
  /** Message-waiting counts per user: with them the service also serves message-summary (RFC 3842). */
  mailboxes?: Pick<MailboxStore, 'get'>;
  /** Presentities' rules about their watchers; without them every watcher is allowed. */
  watcherRules?: Pick<WatcherRulesStore, 'get'>;
  /** The bindings of an AOR: with them the service also serves the reg event package (RFC 3680). */
  bindings?: (aor: string) => Promise<Binding[]>;
  /** Publications and subscriptions kept in the server's store (shared by workers, kept over restarts); else memory. */
  store?: PresenceStateStore;
  /**
   * Tells the other processes of the server (workers, nodes) of a change this one saw, so that their subscribers are
   * told too; they hand it to `fromPeer`. Without it this process is alone.
   */
  peers?: (change: PresenceChange) => void;
  /** Whether this process owns a subscription's Call-ID (the worker bus routes its NOTIFYs' responses by it). */
  owns?: (callId: string) => boolean;
  /**
   * How long a publisher's own removal of its state waits before watchers are told, ms: a phone logging out removes
   * its publication just before it unregisters, and watchers would otherwise see the registration's "open" flash
   * between the two. Default 1000.
   */
  removalGraceMs?: number;
  /**
   * More packages, made once the service exists (they may read its presence and hear its changes). One named like a
   * built-in package takes its place (a resource-list server wraps `presence`).
   */
  packages?: (service: PresenceService) => EventPackage[];
}

/** How long a composed presence document serves NOTIFYs without a change, ms. */
const COMPOSED_TTL_MS = 1000;
/** Composed documents kept at most (a storm over many presentities starts again from empty). */
const MAX_COMPOSED = 10_000;

/** What `sipway stats` shows of the presence server (per process). */
export interface PresenceStats {
  /** Subscriptions held here, of every event package. */
  subscriptions: number;
  /** NOTIFYs that could not be sent (no transaction to be had: overload) and wait to be sent again. */
  notifyRetries: number;
}

/** A change of an event's state for a resource, as processes of one server tell each other. */
export interface PresenceChange {
  event: string;
  resource: string;
  /** A package's own update every process applies (replicated state, e.g. dialogs), or none: re-read the store. */
  update?: unknown;
}

/** RFC 3680 §5.3: a full reginfo document of `aor`'s current bindings (state init when there are none). */
export function regInfo(aor: string, version: number, bindings: readonly Binding[], now: number): string {
  const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
  const live = bindings.filter((b) => b.expiresAt > now);
  const id = (t: string): string => createHash('sha256').update(t).digest('hex').slice(0, 12);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="${version}" state="full">`,
    `  <registration aor="${esc(aor)}" id="${id(aor)}" state="${live.length > 0 ? 'active' : 'init'}">`,
    ...live.flatMap((b) => [
      `    <contact id="${id(b.contact)}" state="active" event="registered" duration-registered="${Math.max(0, Math.round((now - b.registeredAt) / 1000))}" expires="${Math.max(0, Math.round((b.expiresAt - now) / 1000))}" q="${b.q}">`,
      `      <uri>${esc(b.contact)}</uri>`,
      '    </contact>',
    ]),
    '  </registration>',
    '</reginfo>',
    '',
  ].join('\r\n');
}

/**
 * Whether `watcher` may see the presence of `resource` (RFC 5025 sub-handling): the presentity itself always; else its
 * rule for the watcher, else for the watcher's domain (`*@domain`), else the default: watchers of the presentity's
 * own domain are allowed (the proxy has authenticated them), others wait for the presentity's decision (confirm).
 */
export async function decideWatcher(rules: Pick<WatcherRulesStore, 'get'> | undefined, watcher: string, resource: string): Promise<WatcherDecision> {
  if (watcher === resource) return 'allow';
  const owner = parseUri(resource);
  const them = parseUri(watcher);
  if (owner.type !== 'sip' || owner.user === undefined) return 'allow';
  const theirDomain = them.type === 'sip' ? them.host.toLowerCase() : undefined;
  if (rules === undefined) return 'allow';
  const record = await rules.get(owner.userUnescaped ?? owner.user, owner.host);
  const rule = record?.rules[watcher] ?? (theirDomain === undefined ? undefined : record?.rules[`*@${theirDomain}`]);
  if (rule !== undefined) return rule;
  return theirDomain === owner.host.toLowerCase() ? 'allow' : 'confirm';
}

/** RFC 3858: a full watcherinfo document for the watchers of `resource`'s presence. */
export function watcherInfo(resource: string, version: number, watchers: readonly WatcherEntry[]): string {
  const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="${version}" state="full">`,
    `  <watcher-list resource="${esc(resource)}" package="presence">`,
    ...watchers.map((w) => `    <watcher id="${esc(w.id)}" event="${w.event}" status="${w.status}" duration-subscribed="${w.durationSubscribed}">${esc(w.watcher)}</watcher>`),
    '  </watcher-list>',
    '</watcherinfo>',
    '',
  ].join('\r\n');
}

/** RFC 3842 §5.2: a simple-message-summary body for a mailbox (no mailbox: nothing waiting). */
export function messageSummary(account: string, box: Pick<MailboxRecord, 'newMessages' | 'oldMessages' | 'urgentNew' | 'urgentOld'> | undefined): string {
  const b = box ?? { newMessages: 0, oldMessages: 0, urgentNew: 0, urgentOld: 0 };
  return [
    `Messages-Waiting: ${b.newMessages > 0 ? 'yes' : 'no'}`,
    `Message-Account: ${account}`,
    `Voice-Message: ${b.newMessages}/${b.oldMessages} (${b.urgentNew}/${b.urgentOld})`,
    '',
  ].join('\r\n');
}

/**
 * The presence server (RFC 3856) on the event framework, with message-waiting (RFC 3842) when given mailboxes: SUBSCRIBE to `presence` gets PIDF composed from the
 * presentity's publications (PUBLISH, RFC 3903), or, when it publishes nothing, open while it has a registration and
 * closed otherwise. `registrationChanged(aor)` is how the registrar tells it.
 */
export class PresenceService {
  readonly notifier: Notifier;
  readonly publications: Publications;

  constructor(private readonly options: PresenceOptions) {
    const presence: EventPackage = {
      event: 'presence',
      contentType: 'application/pidf+xml',
      publishable: true,
      defaultExpires: 3600,
      state: (resource) => this.presenceOf(resource),
      // Without rules everyone may watch (and the SUBSCRIBE is answered at once, as a library's tests expect).
      authorize: options.watcherRules && ((watcher, resource) => decideWatcher(options.watcherRules, watcher, resource)),
      politeState: (resource) => ({ contentType: 'application/pidf+xml', body: basicPidf(resource, false) }),
    };
    // Watcher info (RFC 3857): who watches my presence, for the presentity alone; full state, version counting up.
    const versions = new Map<string, number>();
    const winfo: EventPackage = {
      event: 'presence.winfo',
      contentType: 'application/watcherinfo+xml',
      publishable: false,
      defaultExpires: 3600,
      authorize: async (watcher, resource) => (watcher === resource ? 'allow' : 'block'),
      state: async (resource) => {
        const version = versions.get(resource) ?? 0;
        versions.set(resource, version + 1);
        return { contentType: 'application/watcherinfo+xml', body: watcherInfo(resource, version, this.notifier.watcherList('presence', resource)) };
      },
    };
    const packages = new Map([
      [presence.event, presence],
      [winfo.event, winfo],
    ]);
    const bindings = options.bindings;
    if (bindings) {
      // The registration state of an AOR (RFC 3680), for the user's own devices: nobody else may watch it (403).
      const regVersions = new Map<string, number>();
      const reg: EventPackage = {
        event: 'reg',
        contentType: 'application/reginfo+xml',
        publishable: false,
        defaultExpires: 3600,
        authorize: async (watcher, resource) => (watcher === resource ? 'allow' : 'block'),
        state: async (resource) => {
          const version = regVersions.get(resource) ?? 0;
          regVersions.set(resource, version + 1);
          return { contentType: 'application/reginfo+xml', body: regInfo(resource, version, await bindings(resource), options.clock.now()) };
        },
      };
      packages.set(reg.event, reg);
    }
    const mailboxes = options.mailboxes;
    if (mailboxes) {
      const mwi: EventPackage = {
        event: 'message-summary',
        contentType: 'application/simple-message-summary',
        publishable: false,
        defaultExpires: 3600,
        state: async (resource) => {
          const uri = parseUri(resource);
          const box = uri.type === 'sip' && uri.user !== undefined ? await mailboxes.get(uri.userUnescaped ?? uri.user, uri.host) : undefined;
          return { contentType: 'application/simple-message-summary', body: messageSummary(resource, box) };
        },
      };
      packages.set(mwi.event, mwi);
    }
    // Made before the notifier (which takes its packages at once); they reach the service only when called later.
    for (const extra of options.packages?.(this) ?? []) packages.set(extra.event, extra);
    this.notifier = new Notifier(
      {
        transactions: options.transactions,
        sender: options.sender,
        clock: options.clock,
        contact: options.contact,
        logger: options.logger,
        notifyIntervalMs: options.notifyIntervalMs,
        minExpires: options.minExpires,
        watchersChanged: (event, resource) => event === 'presence' && this.notifier.changed('presence.winfo', resource),
        store: options.store,
        owns: options.owns,
      },
      [...packages.values()],
    );
    this.packagesByEvent = packages;
    const grace = options.removalGraceMs ?? 1000;
    this.publications = new Publications(
      {
        clock: options.clock,
        store: options.store,
        logger: options.logger,
        minExpires: options.minExpires,
        changed: (event, resource, removed) => {
          if (removed && grace > 0) options.clock.setTimer(grace, () => this.announce({ event, resource }));
          else this.announce({ event, resource });
        },
      },
      packages,
    );
  }

  private readonly packagesByEvent: ReadonlyMap<string, EventPackage>;
  private readonly composed = new Map<string, { at: number; state: Promise<EventState> }>();

  /** Subscriptions kept in the store before a restart go on (the ones this process owns); how many. */
  async restore(): Promise<number> {
    try {
      const restored = await this.notifier.restore();
      if (restored > 0) this.options.logger?.info({ subscriptions: restored }, 'presence subscriptions restored');
      return restored;
    } catch (err) {
      this.options.logger?.warn({ err }, 'stored subscriptions not restored; their refreshes will get 481');
      return 0;
    }
  }

  /**
   * A change seen here: this process's subscribers are told, and the other processes through `peers`. Every
   * subscription lives in one process, so each watcher hears of it once.
   */
  announce(change: PresenceChange): void {
    this.options.peers?.(change);
    this.fromPeer(change);
  }

  /** A change another process saw (or this one). */
  fromPeer(change: PresenceChange): void {
    if (change.event === 'presence') this.composed.delete(change.resource);
    try {
      if (change.update !== undefined) this.packagesByEvent.get(change.event)?.apply?.(change.resource, change.update);
    } catch (err) {
      this.options.logger?.warn({ err, event: change.event }, 'presence update from a peer not applied');
      return;
    }
    this.notifier.changed(change.event, change.resource);
  }

  /**
   * Whether `request` is ours: a PUBLISH, a SUBSCRIBE to an event we serve, or a SUBSCRIBE within one of our
   * subscriptions' dialogs (a refresh). A SUBSCRIBE to another event is not (it goes on to the user's phones).
   */
  takes(request: SipRequest): boolean {
    if (request.method === 'PUBLISH') return true;
    if (request.method !== 'SUBSCRIBE') return false;
    return request.toTag !== undefined || this.notifier.serves(eventName(request));
  }

  /** Takes SUBSCRIBE and PUBLISH (answering them through `st`); false for any other request. */
  handle(request: SipRequest, st: ServerTransaction): boolean {
    if (request.method === 'SUBSCRIBE') {
      this.notifier.subscribe(request, st);
      return true;
    }
    if (request.method === 'PUBLISH') {
      if (request.toTag !== undefined) {
        st.respond(createResponse(request, 400, { reason: 'Bad Request - PUBLISH is sent outside a dialog' }));
        return true;
      }
      void this.publications.publish(request).then((response) => st.respond(response));
      return true;
    }
    return false;
  }

  /**
   * A SUBSCRIBE or PUBLISH addressed to the server itself, which has not passed the routing policy (nor its
   * authentication): refreshes of our subscriptions come to our Contact and are taken; a new subscription or a
   * publication names no user, so there is nothing to watch or publish (404; 489 for an event we do not serve), and
   * nothing is made of it.
   */
  handleAtServer(request: SipRequest, st: ServerTransaction): void {
    if (request.method === 'SUBSCRIBE' && request.toTag !== undefined) {
      this.notifier.subscribe(request, st);
      return;
    }
    if (request.method === 'SUBSCRIBE' && !this.notifier.serves(eventName(request))) {
      st.respond(createResponse(request, 489, { headers: [['Allow-Events', this.notifier.allowEvents]] }));
      return;
    }
    st.respond(createResponse(request, 404, { reason: `Not Found - ${request.method} names a user's address, not the server's` }));
  }

  stats(): PresenceStats {
    return { subscriptions: this.notifier.size, notifyRetries: this.notifier.retries };
  }

  /** The presentity `aor` changed its rules about watchers: its watchers are decided again. */
  async watcherRulesChanged(aor: string): Promise<void> {
    await this.notifier.reauthorize('presence', aor);
    // The dialog package (busy lamps, when served) follows the same rules.
    await this.notifier.reauthorize('dialog', aor);
  }

  /** The mailbox of `aor` changed: its message-summary watchers are told. */
  mailboxChanged(aor: string): void {
    this.notifier.changed('message-summary', aor);
  }

  /**
   * A binding of `aor` came or went (in this process): reg watchers see it, and presence watchers if it publishes
   * nothing, in every process.
   */
  registrationChanged(aor: string): void {
    this.announce({ event: 'reg', resource: aor });
    void this.publications.of('presence', aor).then(
      (published) => published.length === 0 && this.announce({ event: 'presence', resource: aor }),
      (err: unknown) => this.options.logger?.warn({ err, aor }, 'publications unreadable; presence watchers not told of a registration'),
    );
  }

  close(): void {
    this.notifier.close();
    this.publications.close();
  }

  /**
   * The presence document of `resource` (composed publications, else from its registrations). A change's NOTIFYs to
   * a presentity's watchers share one composition (one store read, not one per watcher); it is made again at the
   * next change of the presentity, and a second later at most (a binding may run out with nobody told).
   */
  presenceOf(resource: string): Promise<EventState> {
    const now = this.options.clock.now();
    const cached = this.composed.get(resource);
    if (cached !== undefined && now - cached.at < COMPOSED_TTL_MS) return cached.state;
    if (this.composed.size >= MAX_COMPOSED) this.composed.clear();
    const state = this.compose(resource);
    this.composed.set(resource, { at: now, state });
    state.catch(() => this.composed.get(resource)?.state === state && this.composed.delete(resource));
    return state;
  }

  private async compose(resource: string): Promise<EventState> {
    const composed = composePidf(resource, (await this.publications.of('presence', resource)).map((p) => p.body));
    const body = composed ?? basicPidf(resource, await this.options.registered(resource));
    return { contentType: 'application/pidf+xml', body };
  }
}
