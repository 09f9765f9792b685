import type { WatcherDecision } from './subscription.js';

/** What a NOTIFY carries: a full state document of the resource (RFC 6665 §4.2.2; partial state is a package's own). */
export interface EventState {
  contentType: string;
  body: string;
}

/**
 * An event package (RFC 6665 §7): the event name SUBSCRIBE and PUBLISH carry, what its NOTIFYs hold, and whether
 * its state may be published (RFC 3903). Packages are plugged into the notifier; unknown events get 489.
 */
export interface EventPackage {
  readonly event: string;
  /** The content type of its documents (the SUBSCRIBE's Accept must allow it when present). */
  readonly contentType: string;
  /** Whether PUBLISH of this event is taken (RFC 3903). */
  readonly publishable: boolean;
  /** The subscription duration when the SUBSCRIBE names none (seconds). */
  readonly defaultExpires: number;
  /** The full state of `resource` (an AOR, `sip:bob@example.com`), for a NOTIFY. */
  state(resource: string): Promise<EventState>;
  /**
   * Whether `watcher` (an AOR) may watch `resource` (RFC 5025's sub-handling): without it, everyone may. Asked at
   * every new subscription and again when the owner's rules change.
   */
  authorize?(watcher: string, resource: string): Promise<WatcherDecision>;
  /** What a politely blocked watcher is shown (a state that reveals nothing). */
  politeState?(resource: string): EventState;
}
