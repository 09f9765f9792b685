import type { Stores } from '../store/index.js';
import type { TransactionLayer } from '../transaction/index.js';
import type { MessageSender } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { dialogPackage } from './dialog-info.js';
import { DEFAULT_KEEP_ENDED_MS, DialogStates, type DialogObserver } from './dialog-states.js';
import { OfflineMessages } from './offline-messages.js';
import { PresenceService, type PresenceChange } from './presence-service.js';
import { ResourceLists } from './resource-lists.js';

/** The presence and messaging services of a server, over its stores and its transaction layer. */
export interface PresenceServices {
  presence: PresenceService;
  offline: OfflineMessages;
  /** The users' buddy lists as resource lists (RFC 4662), inside `presence`. */
  lists: ResourceLists;
  /** The dialogs of our users' calls, served as the dialog event package (RFC 4235) inside `presence`. */
  dialogs: DialogStates;
  /** For the proxy's `callStates`: what it sees of calls becomes dialog updates, announced to every process. */
  callStates: DialogObserver;
}

export function presenceServices(options: {
  stores: Pick<Stores, 'location' | 'subscribers' | 'mailboxes' | 'messages' | 'watcherRules' | 'presenceState' | 'buddyLists' | 'presenceChanges'>;
  transactions: TransactionLayer;
  sender: MessageSender;
  clock: Clock;
  logger: Logger;
  /** The server's Contact in subscription dialogs. */
  contact: () => string;
  notifyIntervalMs: number;
  /** Whether a domain is the server's: buddy-list members elsewhere are shown pending. */
  isServedDomain?: (host: string) => boolean;
  /** The other processes of the server (workers), told of every change seen here. */
  peers?: (change: PresenceChange) => void;
  /** Whether this process owns a Call-ID (with workers: the one the worker bus routes it to). */
  owns?: (callId: string) => boolean;
}): PresenceServices {
  const { stores, transactions, sender, clock, logger } = options;
  // A store shared by nodes (Redis) tells changes to every process of every node (sibling workers too); else the
  // server's own peers (the workers of one node), if any.
  const channel = stores.presenceChanges;
  const peers = channel ? (change: PresenceChange) => channel.publish(JSON.stringify(change)) : options.peers;
  let lists: ResourceLists | undefined;
  // Without a say on domains every party is taken for ours (a library's presence server of its own).
  const dialogs = new DialogStates({
    clock,
    isOurs: options.isServedDomain ?? (() => true),
    logger: logger.child({ layer: 'dialog-state' }),
    // An ended dialog waits for the paced NOTIFY that reports it.
    keepEndedMs: Math.max(DEFAULT_KEEP_ENDED_MS, 2 * options.notifyIntervalMs),
  });
  const presence = new PresenceService({
    transactions,
    sender,
    clock,
    contact: options.contact,
    registered: async (aor) => (await stores.location.lookup(aor)).some((b) => b.expiresAt > clock.now()),
    logger: logger.child({ layer: 'presence' }),
    notifyIntervalMs: options.notifyIntervalMs,
    mailboxes: stores.mailboxes,
    watcherRules: stores.watcherRules,
    bindings: (aor) => stores.location.lookup(aor),
    store: stores.presenceState,
    peers,
    owns: options.owns,
    packages: (service) => {
      lists = new ResourceLists(service, {
        lists: stores.buddyLists,
        watcherRules: stores.watcherRules,
        isServedDomain: options.isServedDomain,
        hasUser: async (username, domain) => (await stores.subscribers.get(username, domain)) !== undefined,
        logger: logger.child({ layer: 'resource-lists' }),
      });
      const dialog = dialogPackage({ states: dialogs, clock, watcherRules: stores.watcherRules, changed: (aor) => presence.notifier.changed('dialog', aor) });
      return [lists.package, dialog];
    },
  });
  if (channel) {
    channel.listen((message) => presence.fromPeer(JSON.parse(message) as PresenceChange)).catch((err: unknown) => {
      logger.warn({ err }, 'presence changes of other nodes cannot be heard; their watchers learn at the next refresh');
    });
  }
  const offline = new OfflineMessages({
    store: stores.messages,
    location: stores.location,
    subscribers: stores.subscribers,
    transactions,
    sender,
    clock,
    logger: logger.child({ layer: 'messages' }),
  });
  // Each update goes to every process (each applies it per AOR, then tells that AOR's watchers), this one included.
  const callStates = dialogs.observer((update) => {
    for (const aor of update.aors) presence.announce({ event: 'dialog', resource: aor, update });
  });
  return { presence, offline, lists: lists!, dialogs, callStates };
}
