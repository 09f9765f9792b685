import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DAY, Zone, parseDuration } from '../../src/policy/cpl/datetime.js';
import { parseCpl } from '../../src/policy/cpl/parse.js';
import { RecurrenceSet, timeRuleMatches } from '../../src/policy/cpl/recurrence.js';
import type { TimeRule, TimeSwitchNode } from '../../src/policy/cpl/types.js';

/** The `<time>` rule of a one-output time-switch with these attributes. */
function rule(attributes: string, tzid?: string): TimeRule {
  const xml = `<cpl xmlns="urn:ietf:params:xml:ns:cpl"><incoming>
    <time-switch${tzid ? ` tzid="${tzid}"` : ''}><time ${attributes}/></time-switch></incoming></cpl>`;
  const parsed = parseCpl(xml);
  assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.errors));
  const test = (parsed.script.incoming as TimeSwitchNode).cases[0]!.test;
  assert.ok(typeof test === 'object');
  return test;
}

const wall = (iso: string): number => Date.parse(iso + 'Z') / 1000;
const iso = (floating: number): string => new Date(floating * 1000).toISOString().slice(0, 16);

/** Instance starts between two wall-clock times, found the way evaluation finds them: latest-before, stepping back. */
function instances(r: TimeRule, from: string, to: string): string[] {
  const out: string[] = [];
  const u = r.recurrence!.until;
  const until = u && (u.dateOnly ? u.floating + DAY - 1 : u.floating);
  for (let t = wall(to); ; ) {
    const x = new RecurrenceSet(r.recurrence!, r.dtstart.floating, until).latestAtOrBefore(t);
    if (x === undefined || x < wall(from)) break;
    out.unshift(iso(x));
    t = x - 1;
  }
  return out;
}

describe('RFC 2445 recurrences (the RFC 5545 §3.8.5.3 examples, on wall-clock time)', () => {
  it('daily, count 10', () => {
    const r = rule('dtstart="19970902T090000" duration="PT1H" freq="daily" count="10"');
    const got = instances(r, '1997-01-01T00:00', '1998-01-01T00:00');
    assert.equal(got.length, 10);
    assert.equal(got[0], '1997-09-02T09:00');
    assert.equal(got[9], '1997-09-11T09:00');
  });

  it('weekly on Tuesday and Thursday until a date, week starting on Sunday', () => {
    const r = rule('dtstart="19970902T090000" duration="PT1H" freq="weekly" until="19971007T000000" wkst="SU" byday="TU,TH"');
    assert.deepEqual(
      instances(r, '1997-01-01T00:00', '1998-01-01T00:00').map((s) => s.slice(5, 10)),
      ['09-02', '09-04', '09-09', '09-11', '09-16', '09-18', '09-23', '09-25', '09-30', '10-02'],
    );
  });

  it('every other week, the week start deciding which Sunday belongs to which week', () => {
    const attrs = 'dtstart="19970805T090000" duration="PT1H" freq="weekly" interval="2" count="4" byday="TU,SU"';
    assert.deepEqual(instances(rule(`${attrs} wkst="MO"`), '1997-08-01T00:00', '1997-12-01T00:00').map((s) => s.slice(5, 10)), ['08-05', '08-10', '08-19', '08-24']);
    assert.deepEqual(instances(rule(`${attrs} wkst="SU"`), '1997-08-01T00:00', '1997-12-01T00:00').map((s) => s.slice(5, 10)), ['08-05', '08-17', '08-19', '08-31']);
  });

  it('monthly on the first Friday, count 10', () => {
    const r = rule('dtstart="19970905T090000" duration="PT1H" freq="monthly" count="10" byday="1FR"');
    assert.deepEqual(instances(r, '1997-01-01T00:00', '1999-01-01T00:00').map((s) => s.slice(0, 10)), [
      '1997-09-05', '1997-10-03', '1997-11-07', '1997-12-05', '1998-01-02', '1998-02-06', '1998-03-06', '1998-04-03', '1998-05-01', '1998-06-05',
    ]);
  });

  it('monthly on the second-to-last Monday', () => {
    const r = rule('dtstart="19970922T090000" duration="PT1H" freq="monthly" count="6" byday="-2MO"');
    assert.deepEqual(instances(r, '1997-01-01T00:00', '1999-01-01T00:00').map((s) => s.slice(0, 10)), [
      '1997-09-22', '1997-10-20', '1997-11-17', '1997-12-22', '1998-01-19', '1998-02-16',
    ]);
  });

  it('the first Saturday after the first Sunday of the month (BYDAY limited by BYMONTHDAY)', () => {
    const r = rule('dtstart="19970913T090000" duration="PT1H" freq="monthly" byday="SA" bymonthday="7,8,9,10,11,12,13"');
    assert.deepEqual(instances(r, '1997-01-01T00:00', '1998-04-01T00:00').map((s) => s.slice(0, 10)), [
      '1997-09-13', '1997-10-11', '1997-11-08', '1997-12-13', '1998-01-10', '1998-02-07', '1998-03-07',
    ]);
  });

  it('US election day: every 4 years, the first Tuesday after a Monday in November', () => {
    const r = rule('dtstart="19961105T090000" duration="PT1H" freq="yearly" interval="4" bymonth="11" byday="TU" bymonthday="2,3,4,5,6,7,8"');
    assert.deepEqual(instances(r, '1996-01-01T00:00', '2005-01-01T00:00').map((s) => s.slice(0, 10)), ['1996-11-05', '2000-11-07', '2004-11-02']);
  });

  it('BYSETPOS: the third of Tuesday, Wednesday or Thursday each month; the second-to-last weekday', () => {
    const third = rule('dtstart="19970904T090000" duration="PT1H" freq="monthly" count="3" byday="TU,WE,TH" bysetpos="3"');
    assert.deepEqual(instances(third, '1997-01-01T00:00', '1998-01-01T00:00').map((s) => s.slice(0, 10)), ['1997-09-04', '1997-10-07', '1997-11-06']);
    const secondLast = rule('dtstart="19970929T090000" duration="PT1H" freq="monthly" byday="MO,TU,WE,TH,FR" bysetpos="-2"');
    assert.deepEqual(instances(secondLast, '1997-01-01T00:00', '1998-04-01T00:00').map((s) => s.slice(0, 10)), [
      '1997-09-29', '1997-10-30', '1997-11-27', '1997-12-30', '1998-01-29', '1998-02-26', '1998-03-30',
    ]);
  });

  it('every 20 minutes from 9:00 to 16:40, daily with BYHOUR/BYMINUTE and minutely with BYHOUR', () => {
    const daily = rule('dtstart="19970902T090000" duration="PT1M" freq="daily" byhour="9,10,11,12,13,14,15,16" byminute="0,20,40"');
    const minutely = rule('dtstart="19970902T090000" duration="PT1M" freq="minutely" interval="20" byhour="9,10,11,12,13,14,15,16"');
    const expected = [9, 10, 11, 12, 13, 14, 15, 16].flatMap((h) => [0, 20, 40].map((m) => `1997-09-03T${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`));
    assert.deepEqual(instances(daily, '1997-09-03T00:00', '1997-09-03T23:59'), expected);
    assert.deepEqual(instances(minutely, '1997-09-03T00:00', '1997-09-03T23:59'), expected);
  });

  it('Monday of week 20; every Thursday in March; invalid dates skipped', () => {
    const week20 = rule('dtstart="19970512T090000" duration="PT1H" freq="yearly" byweekno="20" byday="MO"');
    assert.deepEqual(instances(week20, '1997-01-01T00:00', '2000-01-01T00:00').map((s) => s.slice(0, 10)), ['1997-05-12', '1998-05-11', '1999-05-17']);
    const march = rule('dtstart="19970313T090000" duration="PT1H" freq="yearly" bymonth="3" byday="TH"');
    assert.deepEqual(instances(march, '1998-01-01T00:00', '1999-01-01T00:00').map((s) => s.slice(0, 10)), ['1998-03-05', '1998-03-12', '1998-03-19', '1998-03-26']);
    const fifteenth = rule('dtstart="20070115T090000" duration="PT1H" freq="monthly" bymonthday="15,30" count="5"');
    assert.deepEqual(instances(fifteenth, '2007-01-01T00:00', '2008-01-01T00:00').map((s) => s.slice(0, 10)), ['2007-01-15', '2007-01-30', '2007-02-15', '2007-03-15', '2007-03-30']);
  });

  it('the last day of each month; yearly on dtstart\'s day by default; until as a DATE includes that day', () => {
    const last = rule('dtstart="20240131T090000" duration="PT1H" freq="monthly" bymonthday="-1"');
    assert.deepEqual(instances(last, '2024-01-01T00:00', '2024-05-01T00:00').map((s) => s.slice(0, 10)), ['2024-01-31', '2024-02-29', '2024-03-31', '2024-04-30']);
    const birthday = rule('dtstart="20200229T000000" duration="P1D" freq="yearly"');
    assert.deepEqual(instances(birthday, '2020-01-01T00:00', '2029-01-01T00:00').map((s) => s.slice(0, 10)), ['2020-02-29', '2024-02-29', '2028-02-29']);
    const untilDate = rule('dtstart="20250101T090000" duration="PT1H" freq="daily" until="20250103"');
    assert.deepEqual(instances(untilDate, '2025-01-01T00:00', '2025-02-01T00:00').map((s) => s.slice(0, 10)), ['2025-01-01', '2025-01-02', '2025-01-03']);
  });

  it('dtstart is the first instance even when the rule would not select it', () => {
    const r = rule('dtstart="20250104T100000" duration="PT1H" freq="weekly" byday="MO"'); // a Saturday
    assert.deepEqual(instances(r, '2025-01-01T00:00', '2025-01-14T00:00').map((s) => s.slice(0, 10)), ['2025-01-04', '2025-01-06', '2025-01-13']);
  });
});

describe('time-switch periods in time zones', () => {
  const businessHours = 'dtstart="20250106T090000" duration="PT8H" freq="weekly" byday="MO,TU,WE,TH,FR"';
  const at = (r: TimeRule, zone: string, instant: string): boolean => timeRuleMatches(r, new Zone(zone), Date.parse(instant));

  it('business hours Mon-Fri 9-17 in Europe/Berlin, across the March 2025 DST change', () => {
    const r = rule(businessHours, 'Europe/Berlin');
    // Friday 28 March: CET (UTC+1), so 9:00 is 08:00Z and 17:00 is 16:00Z.
    assert.equal(at(r, 'Europe/Berlin', '2025-03-28T07:59:59Z'), false);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-28T08:00:00Z'), true);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-28T15:59:59Z'), true);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-28T16:00:00Z'), false);
    // Saturday and Sunday (the change itself is Sunday 30 March, 02:00 -> 03:00).
    assert.equal(at(r, 'Europe/Berlin', '2025-03-29T10:00:00Z'), false);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-30T10:00:00Z'), false);
    // Monday 31 March: CEST (UTC+2), so 9:00 is 07:00Z.
    assert.equal(at(r, 'Europe/Berlin', '2025-03-31T06:59:59Z'), false);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-31T07:00:00Z'), true);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-31T15:00:00Z'), false);
  });

  it('business hours in America/New_York across the November 2025 change (EDT -> EST)', () => {
    const r = rule(businessHours, 'America/New_York');
    // Friday 31 October, EDT (UTC-4): 9:00-17:00 is 13:00Z-21:00Z.
    assert.equal(at(r, 'America/New_York', '2025-10-31T12:59:00Z'), false);
    assert.equal(at(r, 'America/New_York', '2025-10-31T13:00:00Z'), true);
    assert.equal(at(r, 'America/New_York', '2025-10-31T20:59:00Z'), true);
    assert.equal(at(r, 'America/New_York', '2025-10-31T21:00:00Z'), false);
    // Monday 3 November, EST (UTC-5): 14:00Z-22:00Z.
    assert.equal(at(r, 'America/New_York', '2025-11-03T13:30:00Z'), false);
    assert.equal(at(r, 'America/New_York', '2025-11-03T14:00:00Z'), true);
    assert.equal(at(r, 'America/New_York', '2025-11-03T21:30:00Z'), true);
    assert.equal(at(r, 'America/New_York', '2025-11-03T22:00:00Z'), false);
  });

  it('a one-day duration is a wall-clock day: 23 hours on the day the clocks go forward', () => {
    const r = rule('dtstart="20250330T000000" duration="P1D"', 'Europe/Berlin');
    assert.equal(at(r, 'Europe/Berlin', '2025-03-29T22:59:59Z'), false);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-29T23:00:00Z'), true);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-30T21:59:59Z'), true);
    assert.equal(at(r, 'Europe/Berlin', '2025-03-30T22:00:00Z'), false);
  });

  it('floating times (no tzid) are read in the zone the caller gives; UTC times are instants', () => {
    const floating = rule('dtstart="20250102T120000" duration="PT1H"');
    assert.equal(at(floating, 'Asia/Tokyo', '2025-01-02T03:30:00Z'), true);
    assert.equal(at(floating, 'UTC', '2025-01-02T03:30:00Z'), false);
    assert.equal(at(floating, 'UTC', '2025-01-02T12:30:00Z'), true);
    const utc = rule('dtstart="20250102T120000Z" dtend="20250102T130000Z"');
    assert.equal(at(utc, 'Asia/Tokyo', '2025-01-02T12:30:00Z'), true);
    assert.equal(at(utc, 'Asia/Tokyo', '2025-01-02T13:00:00Z'), false);
  });

  it('monthly and yearly rules, until and count, in a zone', () => {
    const payday = rule('dtstart="20250101T000000" duration="P1D" freq="monthly" bymonthday="-1" until="20250630"', 'Europe/Berlin');
    assert.equal(at(payday, 'Europe/Berlin', '2025-04-30T12:00:00Z'), true);
    assert.equal(at(payday, 'Europe/Berlin', '2025-04-29T12:00:00Z'), false);
    assert.equal(at(payday, 'Europe/Berlin', '2025-06-30T12:00:00Z'), true);
    assert.equal(at(payday, 'Europe/Berlin', '2025-07-31T12:00:00Z'), false, 'after until');
    const threeMondays = rule('dtstart="20250106T090000" duration="PT1H" freq="weekly" count="3"', 'America/New_York');
    assert.equal(at(threeMondays, 'America/New_York', '2025-01-20T14:30:00Z'), true, 'third Monday');
    assert.equal(at(threeMondays, 'America/New_York', '2025-01-27T14:30:00Z'), false, 'fourth Monday is past the count');
    const newYear = rule('dtstart="20200101T000000" duration="P1D" freq="yearly"', 'Asia/Tokyo');
    assert.equal(at(newYear, 'Asia/Tokyo', '2031-01-01T10:00:00Z'), true);
    assert.equal(at(newYear, 'Asia/Tokyo', '2031-01-01T16:00:00Z'), false);
  });

  it('a skipped wall-clock time uses the offset from before the change; a repeated one the first occurrence', () => {
    const berlin = new Zone('Europe/Berlin');
    assert.equal(new Date(berlin.toInstant(wall('2025-03-30T02:30'))).toISOString(), '2025-03-30T01:30:00.000Z');
    assert.equal(new Date(berlin.toInstant(wall('2025-10-26T02:30'))).toISOString(), '2025-10-26T00:30:00.000Z');
    assert.equal(berlin.toLocal(Date.parse('2025-10-26T01:30:00Z')), wall('2025-10-26T02:30'));
  });

  it('durations: weeks and days are nominal, hours to seconds exact; zero and malformed ones are refused', () => {
    assert.deepEqual(parseDuration('P1W'), { days: 7, seconds: 0 });
    assert.deepEqual(parseDuration('P1DT2H3M4S'), { days: 1, seconds: 7384 });
    assert.deepEqual(parseDuration('PT8H'), { days: 0, seconds: 28800 });
    for (const bad of ['PT', 'P', 'P1DT', 'PT0S', '-PT1H', 'P1H', '8h']) assert.equal(parseDuration(bad), undefined, bad);
  });

  it('a rule that can never match is searched within a bounded budget, not forever', () => {
    const never = rule('dtstart="20000101T000000" duration="PT1H" freq="secondly" bymonth="2" bymonthday="30"');
    const started = process.hrtime.bigint();
    assert.equal(at(never, 'UTC', '2025-06-01T00:00:00Z'), false);
    assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 2000);
  });
});
