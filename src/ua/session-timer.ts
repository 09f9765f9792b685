import type { Clock, TimerHandle } from '../util/clock.js';

/** Session timers (RFC 4028) a user agent asks for: Session-Expires and the lowest it accepts (Min-SE), seconds. */
export interface SessionTimerConfig {
  expires: number;
  minSE: number;
}

/** RFC 4028 §4: 1800 s recommended; 90 s is the lowest Min-SE a UA may use. */
export const DEFAULT_SESSION_TIMER: SessionTimerConfig = { expires: 1800, minSE: 90 };

export type Refresher = 'uac' | 'uas';

export interface SessionExpires {
  delta: number;
  refresher: Refresher | undefined;
}

const SE = /^\s*(\d{1,10})\s*((?:;[^;]*)*)$/;

/** Session-Expires (RFC 4028 §4): delta-seconds with an optional refresher parameter (other parameters ignored). */
export function parseSessionExpires(value: string | undefined): SessionExpires | undefined {
  const m = value === undefined ? null : SE.exec(value);
  if (!m) return undefined;
  const delta = Number(m[1]);
  if (delta < 1 || delta > 0xffff_ffff) return undefined;
  let refresher: Refresher | undefined;
  for (const p of m[2]!.split(';')) {
    const [name, val] = p.split('=').map((s) => s.trim().toLowerCase());
    if (name === 'refresher' && (val === 'uac' || val === 'uas')) refresher = val;
  }
  return { delta, refresher };
}

/** Min-SE (RFC 4028 §5): delta-seconds, parameters ignored. */
export function parseMinSE(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^\s*(\d{1,10})\s*(;.*)?$/.exec(value);
  return m ? Number(m[1]) : undefined;
}

/**
 * One session's timer (RFC 4028 §10): the refresher refreshes at half the interval; the other side, hearing no
 * refresh, ends the session at the interval minus min(32 s, a third of it). Every refresh (ours or the peer's)
 * starts it again with the interval its 2xx agreed.
 */
export class SessionTimer {
  private timer: TimerHandle | undefined;
  private current: { interval: number; weRefresh: boolean } | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly refresh: () => void,
    private readonly expire: () => void,
  ) {}

  /** The interval in force (seconds) and who refreshes; undefined while the session has no timer. */
  get state(): { interval: number; weRefresh: boolean } | undefined {
    return this.current;
  }

  start(interval: number, weRefresh: boolean): void {
    this.stop();
    this.current = { interval, weRefresh };
    const ms = weRefresh ? (interval * 1000) / 2 : (interval - Math.min(32, interval / 3)) * 1000;
    this.timer = this.clock.setTimer(ms, () => {
      this.timer = undefined;
      if (weRefresh) this.refresh();
      else this.expire();
    });
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.current = undefined;
  }
}
