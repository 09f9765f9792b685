import { DAY, Zone, civil, dayNumber, dayOf, daysInMonth, daysInYear, weekdayOf } from './datetime.js';
import type { CplDateTime, Recurrence, TimeRule } from './types.js';

/**
 * RFC 3880 §4.4 time switches: is "now" inside one of the periods a `<time>` output describes? A period starts at
 * an instance of the recurrence (RFC 2445 §4.3.10, the RRULE subset RFC 3880 keeps) and lasts the given duration
 * (or dtend - dtstart).
 *
 * All instances have the same length, so the one that started last before "now" is the only one that can still
 * be running: evaluation searches backwards from "now" for it, period by period (a year, a month, ... as `freq`
 * says), instead of enumerating from dtstart. With `count` the instances must be numbered from dtstart, so that
 * case walks forwards. Either walk is bounded by `RECURRENCE_BUDGET` units of work (days examined plus instants
 * generated): a recurrence whose latest instance lies further back than that is treated as not matching.
 */
export const RECURRENCE_BUDGET = 50_000;

/** Whether the instant `nowMs` falls in one of the periods of `rule`, with wall-clock times read in `zone`. */
export function timeRuleMatches(rule: TimeRule, zone: Zone, nowMs: number): boolean {
  const wall = (v: CplDateTime): number => (v.utc ? zone.toLocal(v.floating * 1000) : v.floating);
  const instant = (v: CplDateTime): number => (v.utc ? v.floating * 1000 : zone.toInstant(v.floating));
  const start = wall(rule.dtstart);
  const now = zone.toLocal(nowMs);
  let latest: number | undefined;
  if (!rule.recurrence) latest = start <= now ? start : undefined;
  else {
    const u = rule.recurrence.until;
    // A DATE admits every instance starting on that day.
    const until = u === undefined ? undefined : u.dateOnly ? u.floating + DAY - 1 : wall(u);
    latest = new RecurrenceSet(rule.recurrence, start, until).latestAtOrBefore(now);
  }
  if (latest === undefined) return false;
  const begin = zone.toInstant(latest);
  // Nominal days move on the wall clock (a "day" across a DST change is 23 or 25 hours); seconds are exact.
  const end =
    'dtend' in rule.end
      ? begin + (instant(rule.end.dtend) - instant(rule.dtstart))
      : zone.toInstant(latest + rule.end.days * DAY) + rule.end.seconds * 1000;
  return nowMs >= begin && nowMs < end;
}

const SUBDAILY_UNIT = { hourly: 3600, minutely: 60, secondly: 1 } as const;

/** The instances of one recurrence, on floating (wall-clock) seconds. */
export class RecurrenceSet {
  private readonly hours: number[];
  private readonly minutes: number[];
  private readonly seconds: number[];
  private readonly bymonthday?: number[];
  private readonly bymonth?: number[];
  private readonly byday?: Recurrence['byday'];
  /** Index of dtstart's period in the frequency's unit (year, month index, week's first day, day, hour, ...). */
  private readonly origin: number;
  private budget = RECURRENCE_BUDGET;

  constructor(
    private readonly rule: Recurrence,
    private readonly start: number,
    private readonly until: number | undefined,
  ) {
    const day = dayOf(start);
    const c = civil(day);
    const secondOfDay = start - day * DAY;
    const [h, mi, s] = [Math.floor(secondOfDay / 3600), Math.floor(secondOfDay / 60) % 60, secondOfDay % 60];
    const f = rule.freq;
    // RFC 2445 §4.3.10: what the rule does not say is taken from dtstart (the time of day; the day of the month for
    // monthly and yearly rules; the weekday for weekly rules and for yearly rules that only give week numbers).
    this.hours = f === 'hourly' || f === 'minutely' || f === 'secondly' ? [0] : (rule.byhour ?? [h]);
    this.minutes = f === 'minutely' || f === 'secondly' ? [0] : (rule.byminute ?? [mi]);
    this.seconds = f === 'secondly' ? [0] : (rule.bysecond ?? [s]);
    this.bymonth = rule.bymonth;
    this.bymonthday = rule.bymonthday;
    this.byday = rule.byday;
    const daySelected = rule.byday || rule.bymonthday || rule.byyearday || rule.byweekno;
    if (f === 'yearly' && !daySelected) {
      this.bymonth ??= [c.month];
      this.bymonthday = [c.day];
    } else if (f === 'yearly' && rule.byweekno && !rule.byday && !rule.bymonthday && !rule.byyearday) {
      this.byday = [{ weekday: weekdayOf(day) }];
    } else if (f === 'monthly' && !daySelected) {
      this.bymonthday = [c.day];
    } else if (f === 'weekly' && !daySelected) {
      this.byday = [{ weekday: weekdayOf(day) }];
    }
    this.origin = this.unitIndex(start);
  }

  /** The latest instance starting at or before `t` (and not after `until`), or undefined. */
  latestAtOrBefore(t: number): number | undefined {
    if (this.rule.count !== undefined) return this.latestCounted(t);
    const limit = Math.min(t, this.until ?? Infinity);
    if (limit < this.start) return undefined;
    let n = this.periodOf(limit);
    while (n >= 0 && this.budget > 0) {
      const skip = this.emptyBlock(n);
      if (skip) {
        n = Math.floor((skip.from / this.unitSeconds() - 1 - this.origin) / this.rule.interval);
        this.budget--;
        continue;
      }
      const found = this.instances(n);
      for (let i = found.length - 1; i >= 0; i--) if (found[i]! <= limit && found[i]! >= this.start) return found[i];
      n--;
    }
    // dtstart is always the first instance (RFC 2445 §4.3.10), whether or not the rule selects it.
    return n < 0 ? this.start : undefined;
  }

  /** With `count`, instances are numbered from dtstart (which is the first). */
  private latestCounted(t: number): number | undefined {
    if (t < this.start) return undefined;
    const count = this.rule.count!;
    let seen = 1;
    let last = this.start;
    for (let n = 0; seen < count && this.budget > 0; ) {
      const skip = this.emptyBlock(n);
      if (skip) {
        n = Math.ceil((skip.to / this.unitSeconds() - this.origin) / this.rule.interval);
        this.budget--;
        continue;
      }
      for (const instance of this.instances(n)) {
        if (instance <= this.start) continue;
        if (instance > t) return last;
        last = instance;
        if (++seen === count) return last;
      }
      n++;
    }
    return seen === count ? last : undefined;
  }

  private unitSeconds(): number {
    return SUBDAILY_UNIT[this.rule.freq as keyof typeof SUBDAILY_UNIT];
  }

  /** The index, in the frequency's unit, of the period holding the floating time `t`. */
  private unitIndex(t: number): number {
    const day = dayOf(t);
    switch (this.rule.freq) {
      case 'yearly':
        return civil(day).year;
      case 'monthly': {
        const c = civil(day);
        return c.year * 12 + c.month - 1;
      }
      case 'weekly':
        return day - ((weekdayOf(day) - this.rule.wkst + 7) % 7);
      case 'daily':
        return day;
      default:
        return Math.floor(t / this.unitSeconds());
    }
  }

  private periodOf(t: number): number {
    const units = this.unitIndex(t) - this.origin;
    return Math.floor(this.rule.freq === 'weekly' ? units / (7 * this.rule.interval) : units / this.rule.interval);
  }

  /**
   * For sub-daily frequencies, BYxxx rules on coarser units only filter, so a period whose day (or hour, or
   * minute) is filtered out can be skipped with its whole day (hour, minute): the returned block [from, to).
   */
  private emptyBlock(n: number): { from: number; to: number } | undefined {
    const f = this.rule.freq;
    if (f !== 'hourly' && f !== 'minutely' && f !== 'secondly') return undefined;
    const t = (this.origin + n * this.rule.interval) * this.unitSeconds();
    const day = dayOf(t);
    if (!this.dayMatches(day)) return { from: day * DAY, to: (day + 1) * DAY };
    const hour = Math.floor(t / 3600);
    if (f !== 'hourly' && this.rule.byhour && !this.rule.byhour.includes(hour % 24)) return { from: hour * 3600, to: (hour + 1) * 3600 };
    const minute = Math.floor(t / 60);
    if (f === 'secondly' && this.rule.byminute && !this.rule.byminute.includes(minute % 60)) return { from: minute * 60, to: (minute + 1) * 60 };
    return undefined;
  }

  /** The instances of period `n`, ascending, after BYSETPOS (dtstart and until are the caller's business). */
  private instances(n: number): number[] {
    const r = this.rule;
    const p = this.origin + n * (r.freq === 'weekly' ? 7 * r.interval : r.interval);
    const out: number[] = [];
    const addTimes = (base: number): void => {
      for (const h of this.hours) for (const mi of this.minutes) for (const s of this.seconds) out.push(base + h * 3600 + mi * 60 + s);
      this.budget -= this.hours.length * this.minutes.length * this.seconds.length;
    };
    const addDays = (first: number, last: number): void => {
      for (let day = first; day <= last; day++) if (this.dayMatches(day)) addTimes(day * DAY);
      this.budget -= last - first + 1;
    };
    switch (r.freq) {
      case 'yearly':
        if (this.bymonth) for (const m of this.bymonth) addDays(dayNumber(p, m, 1), dayNumber(p, m, daysInMonth(p, m)));
        else addDays(dayNumber(p, 1, 1), dayNumber(p, 12, 31));
        break;
      case 'monthly': {
        const [y, m] = [Math.floor(p / 12), (p % 12) + 1];
        addDays(dayNumber(y, m, 1), dayNumber(y, m, daysInMonth(y, m)));
        break;
      }
      case 'weekly':
        addDays(p, p + 6);
        break;
      case 'daily':
        addDays(p, p);
        break;
      default: {
        // Coarser filters were checked by emptyBlock(); the period's own unit is filtered here.
        const t = p * this.unitSeconds();
        const [h, mi, s] = [Math.floor(t / 3600) % 24, Math.floor(t / 60) % 60, t % 60];
        if (r.freq === 'hourly' && r.byhour && !r.byhour.includes(h)) break;
        if (r.freq === 'minutely' && r.byminute && !r.byminute.includes(mi)) break;
        if (r.freq === 'secondly' && r.bysecond && !r.bysecond.includes(s)) break;
        addTimes(t);
      }
    }
    return r.bysetpos ? selectPositions(out, r.bysetpos) : out;
  }

  private dayMatches(day: number): boolean {
    const r = this.rule;
    const c = civil(day);
    if (this.bymonth && !this.bymonth.includes(c.month)) return false;
    const monthLength = daysInMonth(c.year, c.month);
    if (this.bymonthday && !this.bymonthday.some((v) => nth(v, c.day, monthLength))) return false;
    const yearDay = day - dayNumber(c.year, 1, 1) + 1;
    const yearLength = daysInYear(c.year);
    if (r.byyearday && !r.byyearday.some((v) => nth(v, yearDay, yearLength))) return false;
    if (r.byweekno && !this.weekMatches(day)) return false;
    if (!this.byday) return true;
    const weekday = weekdayOf(day);
    // An ordinal counts within the month for monthly rules and yearly rules with BYMONTH, else within the year.
    const inMonth = r.freq === 'monthly' || (r.freq === 'yearly' && r.bymonth !== undefined);
    return this.byday.some(
      (d) =>
        d.weekday === weekday &&
        (d.ordinal === undefined ||
          (inMonth ? ordinalMatches(d.ordinal, c.day, monthLength) : ordinalMatches(d.ordinal, yearDay, yearLength))),
    );
  }

  /** BYWEEKNO: week 1 is the first week (starting on WKST) with at least four days of the year (RFC 2445). */
  private weekMatches(day: number): boolean {
    const weekStart = (d: number): number => d - ((weekdayOf(d) - this.rule.wkst + 7) % 7);
    const firstWeek = (year: number): number => weekStart(dayNumber(year, 1, 4));
    let year = civil(day).year;
    if (day < firstWeek(year)) year--;
    else if (day >= firstWeek(year + 1)) year++;
    const weeks = (firstWeek(year + 1) - firstWeek(year)) / 7;
    const week = Math.floor((day - firstWeek(year)) / 7) + 1;
    return this.rule.byweekno!.some((v) => nth(v, week, weeks));
  }
}

/** Whether position `index` (1-based) of `length` is the `v`-th, counting from the end when `v` is negative. */
function nth(v: number, index: number, length: number): boolean {
  return v > 0 ? v === index : length + v + 1 === index;
}

/** "The n-th Monday": the weekday's occurrence number from the start, or from the end when negative. */
function ordinalMatches(ordinal: number, index: number, length: number): boolean {
  return ordinal > 0 ? Math.floor((index - 1) / 7) + 1 === ordinal : -(Math.floor((length - index) / 7) + 1) === ordinal;
}

function selectPositions(set: number[], positions: number[]): number[] {
  const picked = new Set<number>();
  for (const p of positions) {
    const v = p > 0 ? set[p - 1] : set[set.length + p];
    if (v !== undefined) picked.add(v);
  }
  return [...picked].sort((a, b) => a - b);
}
