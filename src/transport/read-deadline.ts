import type { Clock, TimerHandle } from '../util/clock.js';

/**
 * The time a peer has to deliver a whole message once it has begun one (Kamailio's tcp_msg_read_timeout): from the
 * first byte of a message until its header section and body are complete. Bytes that trickle in do not extend it,
 * as they extend the idle timeout; a peer that misses it is disconnected.
 *
 * One timer per connection, re-armed for the remainder when it fires during a later message than the one it was
 * armed for, so that a busy connection costs no timer per message.
 */
export class ReadDeadline {
  private startedAt: number | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    private readonly expired: () => void,
  ) {}

  /** A message has begun now (no-op while one is already running, and once stopped). */
  begin(): void {
    if (this.startedAt !== undefined || this.stopped) return;
    this.startedAt = this.clock.now();
    if (this.timer === undefined) this.arm(this.timeoutMs);
  }

  /** The message is complete; the next one starts its own deadline. */
  complete(): void {
    this.startedAt = undefined;
  }

  get running(): boolean {
    return this.startedAt !== undefined;
  }

  /** For good: the connection is closing. */
  stop(): void {
    this.stopped = true;
    this.startedAt = undefined;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimer(ms, () => {
      this.timer = undefined;
      if (this.startedAt === undefined) return;
      const elapsed = this.clock.now() - this.startedAt;
      if (elapsed >= this.timeoutMs) this.expired();
      else this.arm(this.timeoutMs - elapsed);
    });
  }
}
