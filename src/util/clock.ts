/**
 * Time is injected everywhere so that transaction timers, nonce expiry and binding expiry can be driven by a
 * fake clock in tests (no sleeps) and so that two servers in one process never share timer state.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch (wall time; used for expiry stamps that are stored). */
  now(): number;
  /** Schedules `fn` after `ms` milliseconds. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, ms);
    // Timers must never keep a stopping process alive; shutdown is explicit.
    t.unref();
    return { cancel: () => clearTimeout(t) };
  }
}

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A deterministic clock for tests: time moves only when `advance` or `runUntilIdle` is called. */
export class FakeClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: FakeTimer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer: FakeTimer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Number of timers still pending. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing due timers in order (timers scheduled by timers fire too if due). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.current = next.at;
      this.timers.splice(this.timers.indexOf(next), 1);
      next.fn();
    }
    this.current = target;
  }

  private nextDue(limit: number): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    this.timers = this.timers.filter((t) => !t.cancelled);
    for (const t of this.timers) {
      if (t.at > limit) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
