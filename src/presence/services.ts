import type { Stores } from '../store/index.js';
import type { TransactionLayer } from '../transaction/index.js';
import type { MessageSender } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { OfflineMessages } from './offline-messages.js';
import { PresenceService } from './presence-service.js';

/** The presence and messaging services of a server, over its stores and its transaction layer. */
export interface PresenceServices {
  presence: PresenceService;
  offline: OfflineMessages;
}

export function presenceServices(options: {
  stores: Pick<Stores, 'location' | 'subscribers' | 'mailboxes' | 'messages' | 'watcherRules'>;
  transactions: TransactionLayer;
  sender: MessageSender;
  clock: Clock;
  logger: Logger;
  /** The server's Contact in subscription dialogs. */
  contact: () => string;
  notifyIntervalMs: number;
}): PresenceServices {
  const { stores, transactions, sender, clock, logger } = options;
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
  });
  const offline = new OfflineMessages({
    store: stores.messages,
    location: stores.location,
    subscribers: stores.subscribers,
    transactions,
    sender,
    clock,
    logger: logger.child({ layer: 'messages' }),
  });
  return { presence, offline };
}
