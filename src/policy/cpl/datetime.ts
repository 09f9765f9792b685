import type { CplDateTime, Weekday } from './types.js';

/**
 * Calendar arithmetic for RFC 3880 §4.4 time switches. Recurrences are computed on wall-clock time, as iCalendar
 * (RFC 2445 §4.3.10) prescribes; a wall-clock time is a "floating" number of seconds counted as if the wall
 * clock were UTC, so that day and month arithmetic is plain integer arithmetic. Time zones only come in when
 * wall-clock times are tied to instants, through `Zone`.
 */

export const DAY = 86_400;

/** Days since 1970-01-01 of a floating time. */
export function dayOf(floating: number): number {
  return Math.floor(floating / DAY);
}

export function dayNumber(year: number, month: number, day: number): number {
  return Date.UTC(year, month - 1, day) / 86_400_000;
}

interface Civil {
  year: number;
  month: number;
  day: number;
}

export function civil(day: number): Civil {
  const d = new Date(day * 86_400_000);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** MO = 0 ... SU = 6; 1970-01-01 was a Thursday. */
export function weekdayOf(day: number): Weekday {
  return (((day + 3) % 7) + 7) % 7 as Weekday;
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export function daysInYear(year: number): number {
  return dayNumber(year + 1, 1, 1) - dayNumber(year, 1, 1);
}

const WEEKDAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'] as const;

export function parseWeekday(text: string): Weekday | undefined {
  const i = WEEKDAYS.indexOf(text.toUpperCase() as (typeof WEEKDAYS)[number]);
  return i < 0 ? undefined : (i as Weekday);
}

const DATE_TIME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)$/i;
const DATE = /^(\d{4})(\d{2})(\d{2})$/;

function floatingOf(y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number | undefined {
  // Leap seconds (s = 60) are refused: no wall clock that a switch could compare with shows them.
  if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 59) return undefined;
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
}

/** RFC 2445 §4.3.5 DATE-TIME: 19970714T133000 (wall clock) or 19970714T173000Z (UTC). */
export function parseDateTime(text: string): CplDateTime | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const floating = floatingOf(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return floating === undefined ? undefined : { floating, utc: m[7] !== '' };
}

/** `until` takes a DATE-TIME or a DATE (RFC 2445 §4.3.10). */
export function parseUntil(text: string): (CplDateTime & { dateOnly: boolean }) | undefined {
  const m = DATE.exec(text);
  if (!m) {
    const dt = parseDateTime(text);
    return dt && { ...dt, dateOnly: false };
  }
  const floating = floatingOf(+m[1]!, +m[2]!, +m[3]!);
  return floating === undefined ? undefined : { floating, utc: false, dateOnly: true };
}

const DURATION = /^\+?P(?:(\d+)W|(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?)$/i;

/**
 * RFC 2445 §4.3.6 DURATION, positive only: weeks and days are nominal (a day is a wall-clock day, 23 or 25 hours
 * across a DST change), hours, minutes and seconds are exact.
 */
export function parseDuration(text: string): { days: number; seconds: number } | undefined {
  const m = DURATION.exec(text);
  // "PT" alone, and a "T" with nothing after it, match the regular expression but are not durations.
  if (!m || /T$/i.test(text)) return undefined;
  const [, w, d, h, mi, s] = m.map((v) => (v === undefined ? 0 : Number(v)));
  const days = w! * 7 + d!;
  const seconds = h! * 3600 + mi! * 60 + s!;
  if (days === 0 && seconds === 0) return undefined;
  return { days, seconds };
}

/** The IANA name a zone is known by, or undefined when this runtime does not know it. */
export function canonicalZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** The process's own zone: where "floating" times (no tzid) are read by default (RFC 3880 §4.4). */
export function localZoneName(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** An IANA time zone, read through Intl (the runtime's tz database). */
export class Zone {
  private readonly format: Intl.DateTimeFormat;

  constructor(name: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  /** The wall-clock time (floating seconds) at an instant (ms since the epoch). */
  toLocal(ms: number): number {
    const f: Record<string, number> = {};
    for (const p of this.format.formatToParts(new Date(ms))) if (p.type !== 'literal') f[p.type] = Number(p.value);
    return Date.UTC(f.year!, f.month! - 1, f.day!, f.hour!, f.minute!, f.second!) / 1000;
  }

  /**
   * The instant (ms) of a wall-clock time. RFC 5545 §3.3.5 settles the two DST cases: a time that occurs twice is
   * the first one; a time skipped by the clock change is read with the offset from before the change.
   */
  toInstant(floating: number): number {
    const wall = floating * 1000;
    // Real zones change offset at most once within a day, so the offsets a day either side are the two candidates.
    const before = wall - this.offsetAt(wall - 86_400_000);
    const after = wall - this.offsetAt(wall + 86_400_000);
    const fits = (t: number): boolean => this.toLocal(t) === floating;
    const candidates = [before, after].filter(fits);
    return candidates.length > 0 ? Math.min(...candidates) : before;
  }

  private offsetAt(ms: number): number {
    const whole = Math.floor(ms / 1000) * 1000;
    return this.toLocal(whole) * 1000 - whole;
  }
}
