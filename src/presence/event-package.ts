import type { SipRequest } from '../message/index.js';
import type { WatcherDecision } from './subscription.js';

/** What a NOTIFY carries: a full state document of the resource (RFC 6665 §4.2.2; partial state is a package's own). */
export interface EventState {
  contentType: string;
  body: string;
  /** Header fields the NOTIFY carries besides (e.g. Require: eventlist for a resource list). */
  headers?: Array<[string, string]>;
}

/** Which NOTIFY a state is asked for: a package with per-subscription state (RFC 4662 lists) sends partial state when not `full`. */
export interface StateContext {
  /** The subscription's own key (its dialog and event), stable for its life. */
  subscription: string;
  /** The NOTIFY follows a SUBSCRIBE, a refresh or a decision: it must carry the full state (RFC 6665 §4.2.1.2). */
  full: boolean;
}

/** A package's say on a new subscription before it is made: refuse it, or add headers to its 200. */
export interface Admission {
  refuse?: { status: number; reason?: string; headers?: Array<[string, string]> };
  headers?: Array<[string, string]>;
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
  state(resource: string, context?: StateContext): Promise<EventState>;
  /** Asked before a new subscription to `resource` is made (e.g. 421 when a list is asked for without eventlist support). */
  admit?(request: SipRequest, resource: string): Promise<Admission>;
  /** Applies an update another process (or this one) announced for `resource` (replicated state), before its NOTIFYs. */
  apply?(resource: string, update: unknown): void;
  /** A subscription ended: per-subscription state may go. */
  ended?(subscription: string): void;
  /**
   * Whether `watcher` (an AOR) may watch `resource` (RFC 5025's sub-handling): without it, everyone may. Asked at
   * every new subscription and again when the owner's rules change.
   */
  authorize?(watcher: string, resource: string): Promise<WatcherDecision>;
  /** What a politely blocked watcher is shown (a state that reveals nothing). */
  politeState?(resource: string): EventState;
}
