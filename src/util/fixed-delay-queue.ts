import type { Clock, TimerHandle } from './clock.js';

/**
 * Many timers that all run for the same time: a FIFO is then in deadline order, so one clock timer (for its head)
 * serves them all. What a timer costs shrinks from a clock timer, its handle and two closures to two array slots,
 * which is what tens of thousands of completed transactions waiting out Timers J/L/M at 1,000 calls/s need.
 *
 * Cancelling is the owner's business: it passes a tag with each entry and ignores an expiry whose tag is stale.
 */
export class FixedDelayQueue<T> {
  private items: T[] = [];
  private tags: number[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private timer: TimerHandle | undefined;
  private armedFor = Infinity;
  private firing = false;

  constructor(
    private readonly clock: Clock,
    readonly delayMs: number,
    private readonly expire: (item: T, tag: number) => void,
    /** An expiry that threw: reported here, and the entries behind it still expire. */
    private readonly onError: (err: unknown) => void,
  ) {}

  get size(): number {
    return this.items.length - this.head;
  }

  add(item: T, tag: number): void {
    const at = this.clock.now() + this.delayMs;
    this.items.push(item);
    this.tags.push(tag);
    this.deadlines.push(at);
    if (this.timer === undefined && !this.firing) this.arm(at);
  }

  /** Drops every entry and the clock timer (shutdown). */
  clear(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.armedFor = Infinity;
    this.items = [];
    this.tags = [];
    this.deadlines = [];
    this.head = 0;
  }

  private arm(at: number): void {
    this.armedFor = at;
    this.timer = this.clock.setTimer(Math.max(0, at - this.clock.now()), () => this.fire());
  }

  private fire(): void {
    this.timer = undefined;
    this.firing = true;
    const now = this.clock.now();
    // The clock may fire a little early (setTimeout rounds) or late; an entry is due at its deadline, not before.
    while (this.head < this.items.length && this.deadlines[this.head]! <= Math.max(now, this.armedFor)) {
      const i = this.head++;
      const item = this.items[i]!;
      const tag = this.tags[i]!;
      this.items[i] = undefined as T;
      try {
        this.expire(item, tag);
      } catch (err) {
        this.onError(err);
      }
    }
    this.firing = false;
    this.compact();
    if (this.head < this.items.length) this.arm(this.deadlines[this.head]!);
    else this.armedFor = Infinity;
  }

  /** Reclaims the expired prefix once it is most of the arrays, so the arrays stay proportional to what waits. */
  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.tags = [];
      this.deadlines = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.tags = this.tags.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
  }
}
