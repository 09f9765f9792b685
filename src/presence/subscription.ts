import type { Dialog } from '../dialog/index.js';
import type { Destination } from '../transport/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';

/** RFC 6665 §4.1.3: pending until the resource's owner decides; active; terminated. */
export type SubscriptionState = 'pending' | 'active' | 'terminated';

/**
 * What the resource's owner decided about a watcher (RFC 5025 §3.2.1 sub-handling): allow; block (refused);
 * polite-block (accepted, shown a state that reveals nothing); confirm (pending until the owner decides).
 */
export type WatcherDecision = 'allow' | 'block' | 'polite-block' | 'confirm';

/** NOTIFYs that could not be sent in a row before a subscription is given up. */
export const MAX_SEND_FAILURES = 5;

/** Why a subscription ended (RFC 6665 §4.1.3 reason values). */
export type TerminationReason = 'timeout' | 'noresource' | 'rejected' | 'deactivated' | 'giveup';

/**
 * One subscription as its notifier keeps it (RFC 6665 §4.2.2): a usage of its dialog, active until its Expires runs
 * out (a refresh starts it again) or it is ended. NOTIFYs are paced: one goes at once, and while the last one is less
 * than `minInterval` old, changes are gathered into one that goes when the interval is over (RFC 3856 §6.10).
 */
export class Subscription {
  private current: SubscriptionState;
  /** Accepted but shown nothing true (polite-block). */
  private polite = false;
  private allowed: boolean;
  private expiry: TimerHandle | undefined;
  private paced: TimerHandle | undefined;
  private lastNotifyAt = Number.NEGATIVE_INFINITY;
  private sendFailures = 0;
  private expiresAt = 0;
  readonly createdAt: number;

  constructor(
    readonly dialog: Dialog,
    readonly event: string,
    /** The resource watched: the SUBSCRIBE's Request-URI as an AOR. */
    readonly resource: string,
    /** Who watches: the SUBSCRIBE's From as an AOR. */
    readonly watcher: string,
    decision: Exclude<WatcherDecision, 'block'>,
    /** Where NOTIFYs go: the subscriber's flow when it came from behind a NAT, else its route set or Contact. */
    readonly destination: Destination,
    private readonly clock: Clock,
    private readonly minInterval: number,
    /** Sends a NOTIFY with the resource's state; `terminated` carries the reason. */
    private readonly send: (s: Subscription, terminated: TerminationReason | undefined, full: boolean) => void,
    /** Forget it: it has ended. */
    private readonly ended: (s: Subscription) => void,
    /** When it began (a restored subscription began before this process). */
    createdAt?: number,
  ) {
    this.current = decision === 'confirm' ? 'pending' : 'active';
    this.polite = decision === 'polite-block';
    this.allowed = decision !== 'confirm';
    this.createdAt = createdAt ?? clock.now();
  }

  /** The owner's decision it stands on now (what a restart must restore). */
  get decision(): Exclude<WatcherDecision, 'block'> {
    if (this.current === 'pending') return 'confirm';
    return this.polite ? 'polite-block' : 'allow';
  }

  /** When it runs out, ms on its clock. */
  get expiresAtMs(): number {
    return this.expiresAt;
  }

  /** A subscription kept over a restart goes on until `expiresAt`, with a full-state NOTIFY now (the state may have moved). */
  resume(expiresAt: number): void {
    this.activate(Math.max(1, Math.ceil((expiresAt - this.clock.now()) / 1000)));
  }

  /** Allowed to see a state (allow or polite-block, now or when it ended): pending watchers see none. */
  get authorized(): boolean {
    return this.allowed;
  }

  /** Shown a state that reveals nothing (polite-block). */
  get politelyBlocked(): boolean {
    return this.polite;
  }

  /** The owner decided (again): pending becomes active, or the subscription ends rejected; a NOTIFY tells. */
  decide(decision: WatcherDecision): void {
    if (this.current === 'terminated') return;
    if (decision === 'block') {
      this.terminate('rejected');
      return;
    }
    const next: SubscriptionState = decision === 'confirm' ? 'pending' : 'active';
    const polite = decision === 'polite-block';
    if (next === this.current && polite === this.polite) return;
    this.current = next;
    this.polite = polite;
    this.allowed = next === 'active';
    this.notifyNow(true);
  }

  get state(): SubscriptionState {
    return this.current;
  }

  /** Seconds left, for the NOTIFY's Subscription-State (RFC 6665 §4.2.2 expires parameter). */
  get secondsLeft(): number {
    return Math.max(0, Math.round((this.expiresAt - this.clock.now()) / 1000));
  }

  /** Starts or refreshes the subscription for `seconds` and sends the full state at once (§4.2.1.2). */
  activate(seconds: number): void {
    this.expiry?.cancel();
    this.expiresAt = this.clock.now() + seconds * 1000;
    this.expiry = this.clock.setTimer(seconds * 1000, () => this.terminate('timeout'));
    this.notifyNow(true);
  }

  /** The resource's state changed: a NOTIFY now, or one at the end of the pacing interval (not while pending). */
  changed(): void {
    if (this.current !== 'active' || this.paced) return;
    const wait = this.lastNotifyAt + this.minInterval - this.clock.now();
    if (wait <= 0) {
      this.notifyNow(false);
      return;
    }
    this.paced = this.clock.setTimer(wait, () => {
      this.paced = undefined;
      if (this.current === 'active') this.notifyNow(false);
    });
  }

  /** Ends it with a last NOTIFY (§4.2.2: Subscription-State terminated with the reason). */
  terminate(reason: TerminationReason): void {
    if (this.current === 'terminated') return;
    this.stopTimers();
    this.current = 'terminated';
    this.send(this, reason, true);
    this.ended(this);
  }

  /**
   * A NOTIFY could not be sent (the server is out of transactions): the full state goes again after `ms`, up to
   * `MAX_SEND_FAILURES` times in a row; then the subscription ends without a word (the subscriber's refresh gets 481).
   * False when it has ended.
   */
  retryLater(ms: number): boolean {
    if (this.current === 'terminated') return false;
    if (++this.sendFailures > MAX_SEND_FAILURES) {
      this.drop();
      return false;
    }
    this.paced?.cancel();
    this.paced = this.clock.setTimer(ms, () => {
      this.paced = undefined;
      if (this.current !== 'terminated') this.notifyNow(true);
    });
    return true;
  }

  /** A NOTIFY went out: the count of failures in a row starts again. */
  sent(): void {
    this.sendFailures = 0;
  }

  /** Stops its timers and nothing else: the process stops, and the subscription, kept in the store, goes on after it. */
  halt(): void {
    this.stopTimers();
  }

  /** Ends it without a NOTIFY: the subscriber is gone (481 or 408 to a NOTIFY, §4.2.2). */
  drop(): void {
    if (this.current === 'terminated') return;
    this.stopTimers();
    this.current = 'terminated';
    this.ended(this);
  }

  /** `full`: the NOTIFY must carry the whole state (after a SUBSCRIBE, refresh or decision), not only what changed. */
  private notifyNow(full: boolean): void {
    // A change gathered while a full-state NOTIFY is due goes in it: the full state has it.
    this.paced?.cancel();
    this.paced = undefined;
    this.lastNotifyAt = this.clock.now();
    this.send(this, undefined, full);
  }

  private stopTimers(): void {
    this.expiry?.cancel();
    this.paced?.cancel();
    this.expiry = undefined;
    this.paced = undefined;
  }
}
