import { tryParseUri } from '../../message/index.js';
import { canonicalZone, parseDateTime, parseDuration, parseUntil, parseWeekday } from './datetime.js';
import { parseXml, type XmlAttribute, type XmlElement } from './xml.js';
import {
  CPL_NAMESPACE,
  type AddressField,
  type AddressSubfield,
  type AddressTest,
  type CplAction,
  type CplError,
  type CplNode,
  type CplParseResult,
  type CplPosition,
  type CplScript,
  type Frequency,
  type ProxyOutput,
  type Recurrence,
  type StringField,
  type SwitchCase,
  type TimeRule,
} from './types.js';

export interface CplLimits {
  /** Size of the script text in UTF-8 bytes. */
  maxBytes: number;
  /** Elements (nodes and outputs) in the script. */
  maxNodes: number;
  /** Nesting depth of elements. */
  maxDepth: number;
}

export const DEFAULT_CPL_LIMITS: CplLimits = { maxBytes: 64 * 1024, maxNodes: 1000, maxDepth: 100 };

/** A script with this many problems is reported with the first ones only. */
const MAX_ERRORS = 50;

const NODES = [
  'address-switch',
  'string-switch',
  'language-switch',
  'time-switch',
  'priority-switch',
  'location',
  'lookup',
  'remove-location',
  'proxy',
  'redirect',
  'reject',
  'mail',
  'log',
  'sub',
] as const;
type NodeName = (typeof NODES)[number];

const ADDRESS_FIELDS: readonly AddressField[] = ['origin', 'destination', 'original-destination'];
const ADDRESS_SUBFIELDS: readonly AddressSubfield[] = ['address-type', 'user', 'host', 'port', 'tel', 'display', 'password', 'alias-type'];
const STRING_FIELDS: readonly StringField[] = ['subject', 'organization', 'user-agent', 'display'];
const FREQUENCIES: readonly Frequency[] = ['secondly', 'minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const PRIORITIES = ['emergency', 'urgent', 'normal', 'non-urgent'];
const PROXY_OUTPUTS: readonly ProxyOutput[] = ['busy', 'noanswer', 'redirection', 'failure', 'default'];
/** RFC 3880 §6.3: the symbolic reject statuses, as SIP codes. */
const REJECT_STATUS: Record<string, number> = { busy: 486, notfound: 404, reject: 603, error: 500 };

const TIME_ATTRIBUTES = [
  'dtstart',
  'dtend',
  'duration',
  'freq',
  'interval',
  'until',
  'count',
  'bysecond',
  'byminute',
  'byhour',
  'byday',
  'bymonthday',
  'byyearday',
  'byweekno',
  'bymonth',
  'wkst',
  'bysetpos',
] as const;

/** BYxxx lists of integers: allowed range, and whether negative values (counting from the end) are allowed too. */
const BY_RANGES = {
  bysecond: [0, 59, false],
  byminute: [0, 59, false],
  byhour: [0, 23, false],
  bymonthday: [1, 31, true],
  byyearday: [1, 366, true],
  byweekno: [1, 53, true],
  bymonth: [1, 12, false],
  bysetpos: [1, 366, true],
} as const;

/**
 * Parses and validates a CPL script (RFC 3880): well-formed XML in the CPL namespace, only the elements and
 * attributes of the RFC's schema, required attributes present and well-typed, outputs valid for their node and
 * not repeated, `otherwise` last, subaction references that resolve and never loop (RFC 3880 §8), time-switch
 * values in RFC 2445 syntax with a known time zone (§4.4), and bounded size. Every problem is reported with its
 * line and column; nothing throws.
 */
export function parseCpl(xml: string, limits: Partial<CplLimits> = {}): CplParseResult {
  const l = { ...DEFAULT_CPL_LIMITS, ...limits };
  const doc = parseXml(xml, { maxBytes: l.maxBytes, maxElements: l.maxNodes, maxDepth: l.maxDepth });
  if (!doc.ok) return { ok: false, errors: [doc.error] };
  const builder = new Builder();
  const script = builder.script(doc.root);
  if (builder.errors.length > 0 || !script) {
    const errors = builder.errors.sort((a, b) => a.line - b.line || a.column - b.column);
    return { ok: false, errors: errors.slice(0, MAX_ERRORS) };
  }
  return { ok: true, script };
}

/** "script.xml:12:5: message", the form the CLI prints. */
export function formatCplError(file: string, e: CplError): string {
  return `${file}:${e.line}:${e.column}: ${e.message}`;
}

interface SubReference {
  ref: string;
  pos: CplPosition;
  /** The subaction the `sub` sits in, if any. */
  from?: string;
}

class Builder {
  readonly errors: CplError[] = [];
  private readonly subs: SubReference[] = [];
  private currentSubaction: string | undefined;
  private elements = 0;

  error(pos: CplPosition, message: string): void {
    this.errors.push({ ...pos, message });
  }

  script(root: XmlElement): CplScript | undefined {
    if (root.local !== 'cpl' || root.uri !== CPL_NAMESPACE) {
      const found = root.uri ? `<${root.name}> in namespace '${root.uri}'` : `<${root.name}> without a namespace`;
      this.error(root.pos, `the root element must be <cpl xmlns="${CPL_NAMESPACE}">, not ${found}`);
      return undefined;
    }
    this.visit(root);
    this.attributes(root, []);
    let incoming: CplAction;
    let outgoing: CplAction;
    const subactions = new Map<string, CplAction>();
    const seen = new Map<string, CplPosition>();
    const subactionPos = new Map<string, CplPosition>();
    for (const child of root.children) {
      if (!this.isCpl(child)) continue;
      const earlier = seen.get(child.local);
      if (earlier && child.local !== 'subaction') {
        this.error(child.pos, `<${child.local}> appears twice in <cpl> (first at line ${earlier.line})`);
        continue;
      }
      seen.set(child.local, child.pos);
      switch (child.local) {
        case 'incoming':
          this.visit(child);
          this.attributes(child, []);
          incoming = this.action(child);
          break;
        case 'outgoing':
          this.visit(child);
          this.attributes(child, []);
          outgoing = this.action(child);
          break;
        case 'ancillary':
          // RFC 3880 defines no content for it; extensions would, and sipway supports none.
          this.visit(child);
          this.attributes(child, []);
          for (const c of child.children) this.error(c.pos, `<${c.name}> is not supported inside <ancillary>`);
          break;
        case 'subaction': {
          this.visit(child);
          const id = this.attributes(child, ['id'], ['id']).id?.value;
          if (id === undefined) break;
          const first = subactionPos.get(id);
          if (first) {
            this.error(child.pos, `subaction id '${id}' is already used at line ${first.line}`);
            break;
          }
          subactionPos.set(id, child.pos);
          this.currentSubaction = id;
          subactions.set(id, this.action(child));
          this.currentSubaction = undefined;
          break;
        }
        default:
          this.misplaced(child, 'cpl');
      }
    }
    this.checkSubs(subactionPos);
    return { incoming, outgoing, subactions, nodeCount: this.elements };
  }

  /** Checks common to every element: counted, and no character data (CPL carries everything in attributes). */
  private visit(el: XmlElement): void {
    this.elements++;
    if (el.textPos) this.error(el.textPos, `text is not allowed inside <${el.local}>`);
  }

  /** Elements of other namespaces are CPL extensions, which sipway does not support: refuse them. */
  private isCpl(el: XmlElement): boolean {
    if (el.uri === CPL_NAMESPACE) return true;
    this.error(el.pos, `<${el.name}> is not a CPL element (namespace '${el.uri}'); CPL extensions are not supported`);
    return false;
  }

  /** The attributes of an element, by name; reports unknown and missing ones. Namespaced attributes are ignored. */
  private attributes<K extends string>(el: XmlElement, known: readonly K[], required: readonly K[] = []): Partial<Record<K, XmlAttribute>> {
    const out: Partial<Record<K, XmlAttribute>> = {};
    for (const a of el.attributes) {
      if (a.uri !== '') continue;
      if ((known as readonly string[]).includes(a.local)) out[a.local as K] = a;
      else this.error(a.pos, `<${el.local}> has no attribute '${a.local}'${known.length ? ` (it takes ${known.join(', ')})` : ''}`);
    }
    for (const r of required) if (!out[r]) this.error(el.pos, `<${el.local}> needs a '${r}' attribute`);
    return out;
  }

  /** The content of a top-level action or an output: nothing, or exactly one node. */
  private action(container: XmlElement): CplAction {
    let result: CplAction;
    let count = 0;
    for (const child of container.children) {
      if (!this.isCpl(child)) continue;
      if (!(NODES as readonly string[]).includes(child.local)) {
        this.misplaced(child, container.local);
        continue;
      }
      if (++count === 2) this.error(child.pos, `<${container.local}> holds more than one node; an output leads to exactly one node`);
      const node = this.node(child);
      if (count === 1) result = node;
    }
    return result;
  }

  private misplaced(el: XmlElement, parent: string): void {
    if (el.local === 'cpl') this.error(el.pos, '<cpl> can only be the root element');
    else if (['ancillary', 'subaction', 'incoming', 'outgoing'].includes(el.local)) this.error(el.pos, `<${el.local}> is only allowed directly inside <cpl>`);
    else if (OUTPUT_NAMES.has(el.local)) this.error(el.pos, `<${parent}> output '${el.local}' is not valid here`);
    else this.error(el.pos, `unknown element <${el.local}>`);
  }

  private node(el: XmlElement): CplNode | undefined {
    this.visit(el);
    const pos = el.pos;
    switch (el.local as NodeName) {
      case 'address-switch': {
        const a = this.attributes(el, ['field', 'subfield'], ['field']);
        const field = this.oneOf(a.field, ADDRESS_FIELDS);
        const subfield = a.subfield && this.oneOf(a.subfield, ADDRESS_SUBFIELDS);
        const cases = this.cases(el, 'address', (out) => this.addressTest(out, subfield));
        return field && cases && { kind: 'address-switch', pos, field, subfield, cases };
      }
      case 'string-switch': {
        const a = this.attributes(el, ['field'], ['field']);
        const field = this.oneOf(a.field, STRING_FIELDS);
        const cases = this.cases(el, 'string', (out) => {
          const t = this.exactlyOne(out, ['is', 'contains'] as const);
          return t && { op: t.name, value: t.attr.value };
        });
        return field && cases && { kind: 'string-switch', pos, field, cases };
      }
      case 'language-switch': {
        this.attributes(el, []);
        const cases = this.cases(el, 'language', (out) => {
          const m = this.attributes(out, ['matches'], ['matches']).matches;
          if (!m) return undefined;
          if (!/^(\*|[a-z]{1,8}(-[a-z0-9]{1,8})*)$/i.test(m.value)) return this.bad(m, 'is not a language tag (e.g. en, de-CH)');
          return { matches: m.value };
        });
        return cases && { kind: 'language-switch', pos, cases };
      }
      case 'time-switch':
        return this.timeSwitch(el);
      case 'priority-switch': {
        this.attributes(el, []);
        const cases = this.cases(el, 'priority', (out) => {
          const t = this.exactlyOne(out, ['less', 'greater', 'equal'] as const);
          if (!t) return undefined;
          const value = t.attr.value.toLowerCase();
          // Unknown priorities can only be compared for equality (RFC 3880 §4.5).
          if (t.name !== 'equal' && !PRIORITIES.includes(value)) return this.bad(t.attr, `must be one of ${PRIORITIES.join(', ')}`);
          return { op: t.name, value };
        });
        return cases && { kind: 'priority-switch', pos, cases };
      }
      case 'location': {
        const a = this.attributes(el, ['url', 'priority', 'clear'], ['url']);
        const url = this.uri(a.url);
        const priority = a.priority ? this.priority(a.priority) : 1;
        const clear = this.yesNo(a.clear, false);
        const next = this.action(el);
        return url !== undefined && priority !== undefined && clear !== undefined ? { kind: 'location', pos, url, priority, clear, next } : undefined;
      }
      case 'lookup': {
        const a = this.attributes(el, ['source', 'timeout', 'clear'], ['source']);
        const source = a.source && (a.source.value === 'registration' ? 'registration' : this.uri(a.source));
        const timeout = a.timeout ? this.positiveInteger(a.timeout) : 30;
        const clear = this.yesNo(a.clear, false);
        const outputs = this.outputs(el, ['success', 'notfound', 'failure'] as const);
        if (source === undefined || timeout === undefined || clear === undefined) return undefined;
        return { kind: 'lookup', pos, source, timeout, clear, success: outputs.success, notfound: outputs.notfound, failure: outputs.failure };
      }
      case 'remove-location': {
        const a = this.attributes(el, ['location']);
        const location = a.location && this.uri(a.location);
        const next = this.action(el);
        return a.location && location === undefined ? undefined : { kind: 'remove-location', pos, location, next };
      }
      case 'proxy': {
        const a = this.attributes(el, ['timeout', 'recurse', 'ordering']);
        const timeout = a.timeout && this.positiveInteger(a.timeout);
        const recurse = this.yesNo(a.recurse, true);
        const ordering = a.ordering ? this.oneOf(a.ordering, ['parallel', 'sequential', 'first-only'] as const) : 'parallel';
        const outputs = this.outputs(el, PROXY_OUTPUTS);
        if ((a.timeout && timeout === undefined) || recurse === undefined || ordering === undefined) return undefined;
        return { kind: 'proxy', pos, timeout, recurse, ordering, outputs };
      }
      case 'redirect': {
        const permanent = this.yesNo(this.attributes(el, ['permanent']).permanent, false);
        this.leaf(el);
        return permanent === undefined ? undefined : { kind: 'redirect', pos, permanent };
      }
      case 'reject': {
        const a = this.attributes(el, ['status', 'reason'], ['status']);
        this.leaf(el);
        if (!a.status) return undefined;
        const status = REJECT_STATUS[a.status.value] ?? (/^[4-6]\d\d$/.test(a.status.value) ? Number(a.status.value) : undefined);
        if (status === undefined) return this.bad(a.status, "must be busy, notfound, reject, error or a 4xx, 5xx or 6xx status code");
        if (a.reason && /[\r\n]/.test(a.reason.value)) return this.bad(a.reason, 'must be on one line (it becomes the reason phrase)');
        return { kind: 'reject', pos, status, reason: a.reason?.value };
      }
      case 'mail': {
        const url = this.attributes(el, ['url'], ['url']).url;
        const next = this.action(el);
        if (!url) return undefined;
        if (!/^mailto:[^\s]+$/i.test(url.value)) return this.bad(url, 'must be a mailto: URL');
        return { kind: 'mail', pos, url: url.value, next };
      }
      case 'log': {
        const a = this.attributes(el, ['name', 'comment']);
        return { kind: 'log', pos, name: a.name?.value, comment: a.comment?.value, next: this.action(el) };
      }
      case 'sub': {
        const ref = this.attributes(el, ['ref'], ['ref']).ref;
        this.leaf(el);
        if (!ref) return undefined;
        this.subs.push({ ref: ref.value, pos, from: this.currentSubaction });
        return { kind: 'sub', pos, ref: ref.value };
      }
    }
  }

  /** redirect, reject and sub end the script (or jump away): nothing may follow them. */
  private leaf(el: XmlElement): void {
    for (const c of el.children) this.error(c.pos, `<${el.local}> ends the script here; it cannot contain <${c.local}>`);
  }

  /**
   * The outputs of a switch, in order: `test` outputs, at most one `not-present` and at most one `otherwise`,
   * which must come last (RFC 3880 §4).
   */
  private cases<T>(el: XmlElement, output: string, test: (out: XmlElement) => T | undefined): SwitchCase<T>[] | undefined {
    const cases: SwitchCase<T>[] = [];
    const once = new Map<string, CplPosition>();
    let ok = true;
    el.children.forEach((out, i) => {
      if (!this.isCpl(out)) return (ok = false);
      if (out.local !== output && out.local !== 'not-present' && out.local !== 'otherwise') {
        this.error(out.pos, `<${el.local}> output '${out.local}' is not valid (it takes ${output}, not-present, otherwise)`);
        return (ok = false);
      }
      this.visit(out);
      let t: T | 'not-present' | 'otherwise' | undefined;
      if (out.local === output) t = test(out);
      else {
        this.attributes(out, []);
        const first = once.get(out.local);
        if (first) this.error(out.pos, `<${el.local}> output '${out.local}' appears twice (first at line ${first.line})`);
        once.set(out.local, out.pos);
        if (out.local === 'otherwise' && i < el.children.length - 1) this.error(out.pos, `<otherwise> must be the last output of <${el.local}>`);
        t = out.local as 'not-present' | 'otherwise';
      }
      const next = this.action(out);
      if (t === undefined) ok = false;
      else cases.push({ pos: out.pos, test: t, next });
    });
    return ok ? cases : undefined;
  }

  /** The named outputs of lookup and proxy: each at most once, in any order. */
  private outputs<K extends string>(el: XmlElement, names: readonly K[]): Partial<Record<K, CplAction>> {
    const out: Partial<Record<K, CplAction>> = {};
    const seen = new Map<string, CplPosition>();
    for (const o of el.children) {
      if (!this.isCpl(o)) continue;
      if (!(names as readonly string[]).includes(o.local)) {
        this.error(o.pos, `<${el.local}> output '${o.local}' is not valid (it takes ${names.join(', ')})`);
        continue;
      }
      this.visit(o);
      this.attributes(o, []);
      const first = seen.get(o.local);
      if (first) this.error(o.pos, `<${el.local}> output '${o.local}' appears twice (first at line ${first.line})`);
      seen.set(o.local, o.pos);
      out[o.local as K] = this.action(o);
    }
    return out;
  }

  private addressTest(out: XmlElement, subfield: AddressSubfield | undefined): AddressTest | undefined {
    const t = this.exactlyOne(out, ['is', 'contains', 'subdomain-of'] as const);
    if (!t) return undefined;
    // RFC 3880 §4.1: substring matches make sense for display names only, domain matches for hosts and numbers.
    if (t.name === 'contains' && subfield !== 'display') return this.bad(t.attr, "is only for subfield 'display'");
    if (t.name === 'subdomain-of' && subfield !== 'host' && subfield !== 'tel') return this.bad(t.attr, "is only for subfield 'host' or 'tel'");
    if (subfield === 'port' && !/^\d{1,5}$/.test(t.attr.value)) return this.bad(t.attr, 'must be a port number');
    return { op: t.name, value: t.attr.value };
  }

  private timeSwitch(el: XmlElement): CplNode | undefined {
    const a = this.attributes(el, ['tzid', 'tzurl']);
    let tzid: string | undefined;
    if (a.tzid) {
      // A leading '/' marks a "globally unique" id in RFC 2445; the IANA database is the registry that exists.
      tzid = canonicalZone(a.tzid.value.replace(/^\//, ''));
      if (!tzid) this.bad(a.tzid, 'is not a time zone this server knows (use an IANA name such as Europe/Berlin)');
    } else if (a.tzurl) {
      // RFC 3880 §4.4: a zone the server cannot resolve is diagnosed at upload; VTIMEZONE files are not fetched.
      this.bad(a.tzurl, 'cannot be resolved by this server: give a tzid with an IANA zone name');
    }
    const cases = this.cases(el, 'time', (out) => this.timeRule(out));
    if (!cases || (a.tzid && !tzid) || (!a.tzid && a.tzurl)) return undefined;
    return { kind: 'time-switch', pos: el.pos, tzid, cases };
  }

  private timeRule(out: XmlElement): TimeRule | undefined {
    const a = this.attributes(out, TIME_ATTRIBUTES, ['dtstart']);
    if (!a.dtstart) return undefined;
    const dtstart = parseDateTime(a.dtstart.value);
    if (!dtstart) return this.bad(a.dtstart, 'is not an RFC 2445 DATE-TIME (e.g. 20250106T090000, or ...Z for UTC)');
    let end: TimeRule['end'];
    if (a.dtend && a.duration) return this.bad(a.duration, "cannot be given together with 'dtend'");
    if (a.dtend) {
      const dtend = parseDateTime(a.dtend.value);
      if (!dtend) return this.bad(a.dtend, 'is not an RFC 2445 DATE-TIME (e.g. 20250106T170000)');
      if (dtend.utc === dtstart.utc && dtend.floating <= dtstart.floating) return this.bad(a.dtend, "must be after 'dtstart'");
      end = { dtend };
    } else if (a.duration) {
      const d = parseDuration(a.duration.value);
      if (!d) return this.bad(a.duration, 'is not a positive RFC 2445 DURATION (e.g. PT8H, P1D, P1W)');
      end = d;
    } else {
      this.error(out.pos, "<time> needs 'dtend' or 'duration'");
      return undefined;
    }
    // RFC 3880 §4.4: without freq the other parameters SHOULD be accepted and ignored.
    if (!a.freq) return { dtstart, end };
    const freq = this.oneOf(a.freq, FREQUENCIES, true);
    if (!freq) return undefined;
    const r: Recurrence = { freq, interval: 1, wkst: 0 };
    let ok = true;
    const check = <T>(v: T | undefined): T | undefined => {
      if (v === undefined) ok = false;
      return v;
    };
    if (a.interval) r.interval = check(this.positiveInteger(a.interval)) ?? 1;
    if (a.until && a.count) return this.bad(a.count, "cannot be given together with 'until'");
    if (a.until) r.until = check(parseUntil(a.until.value) ?? this.bad(a.until, 'is not an RFC 2445 DATE or DATE-TIME'));
    if (a.count) r.count = check(this.positiveInteger(a.count));
    for (const name of Object.keys(BY_RANGES) as Array<keyof typeof BY_RANGES>) {
      const attr = a[name];
      const [min, max, signed] = BY_RANGES[name];
      if (attr) r[name] = check(this.integerList(attr, min, max, signed));
    }
    if (a.byday) r.byday = check(this.byday(a.byday, freq));
    if (a.wkst) r.wkst = check(parseWeekday(a.wkst.value) ?? this.bad(a.wkst, 'must be a weekday (MO, TU, WE, TH, FR, SA, SU)')) ?? 0;
    const byRules = [r.bysecond, r.byminute, r.byhour, r.byday, r.bymonthday, r.byyearday, r.byweekno, r.bymonth];
    if (a.bysetpos && byRules.every((v) => v === undefined)) return this.bad(a.bysetpos, 'only selects among the instances of another BYxxx rule');
    return ok ? { dtstart, end, recurrence: r } : undefined;
  }

  private byday(attr: XmlAttribute, freq: Frequency): Recurrence['byday'] {
    const out: NonNullable<Recurrence['byday']> = [];
    for (const item of attr.value.split(',')) {
      const m = /^([+-]?\d{1,2})?([a-z]{2})$/i.exec(item.trim());
      const weekday = m ? parseWeekday(m[2]!) : undefined;
      if (!m || weekday === undefined) return this.bad(attr, `has '${item}', not a weekday like MO or an ordinal weekday like 1MO or -1FR`);
      if (m[1] === undefined) {
        out.push({ weekday });
        continue;
      }
      const ordinal = Number(m[1]);
      if (ordinal === 0 || Math.abs(ordinal) > 53) return this.bad(attr, `has '${item}': the ordinal must be 1 to 53 or -1 to -53`);
      // RFC 2445 §4.3.10: an ordinal counts within a month or a year.
      if (freq !== 'monthly' && freq !== 'yearly') return this.bad(attr, `has '${item}': ordinal weekdays need freq monthly or yearly`);
      out.push({ weekday, ordinal });
    }
    return out;
  }

  private integerList(attr: XmlAttribute, min: number, max: number, signed: boolean): number[] | undefined {
    const values: number[] = [];
    for (const item of attr.value.split(',')) {
      const t = item.trim();
      const v = Number(t);
      const valid = /^[+-]?\d+$/.test(t) && (signed ? Math.abs(v) >= min && Math.abs(v) <= max : v >= min && v <= max);
      if (!valid) return this.bad(attr, `has '${item}': values are ${signed ? `${min} to ${max} or -${min} to -${max}` : `${min} to ${max}`}`);
      values.push(v);
    }
    return [...new Set(values)].sort((x, y) => x - y);
  }

  private exactlyOne<K extends string>(el: XmlElement, names: readonly K[]): { name: K; attr: XmlAttribute } | undefined {
    const a = this.attributes(el, names);
    const present = names.filter((n) => a[n]);
    if (present.length !== 1) {
      this.error(el.pos, `<${el.local}> needs exactly one of ${names.map((n) => `'${n}'`).join(', ')}`);
      return undefined;
    }
    return { name: present[0]!, attr: a[present[0]!]! };
  }

  private oneOf<T extends string>(attr: XmlAttribute | undefined, values: readonly T[], ignoreCase = false): T | undefined {
    if (!attr) return undefined;
    const v = ignoreCase ? attr.value.toLowerCase() : attr.value;
    if ((values as readonly string[]).includes(v)) return v as T;
    return this.bad(attr, `must be one of ${values.join(', ')}`);
  }

  private yesNo(attr: XmlAttribute | undefined, fallback: boolean): boolean | undefined {
    if (!attr) return fallback;
    if (attr.value === 'yes' || attr.value === 'no') return attr.value === 'yes';
    return this.bad(attr, "must be 'yes' or 'no'");
  }

  private positiveInteger(attr: XmlAttribute): number | undefined {
    const v = Number(attr.value);
    return /^\d{1,9}$/.test(attr.value) && v > 0 ? v : this.bad(attr, 'must be a positive integer');
  }

  /** RFC 3880 §5.1: a q-value between 0.0 and 1.0. */
  private priority(attr: XmlAttribute): number | undefined {
    const v = Number(attr.value);
    return /^(0(\.\d{1,3})?|1(\.0{1,3})?)$/.test(attr.value) ? v : this.bad(attr, 'must be a number from 0.0 to 1.0');
  }

  private uri(attr: XmlAttribute | undefined): string | undefined {
    if (!attr) return undefined;
    return tryParseUri(attr.value) ? attr.value : this.bad(attr, 'is not a URI');
  }

  /** Reports a bad attribute value at the attribute; always undefined, so callers can `return this.bad(...)`. */
  private bad(attr: XmlAttribute, problem: string): undefined {
    this.error(attr.pos, `<${attr.element}> ${attr.local} '${attr.value}' ${problem}`);
    return undefined;
  }

  /** Every `sub` must name a subaction, and following subs from any subaction must never come back to it. */
  private checkSubs(defined: Map<string, CplPosition>): void {
    const edges = new Map<string, SubReference[]>();
    for (const s of this.subs) {
      if (!defined.has(s.ref)) {
        this.error(s.pos, `<sub> refers to subaction '${s.ref}', which is not defined`);
        continue;
      }
      if (s.from !== undefined) edges.set(s.from, [...(edges.get(s.from) ?? []), s]);
    }
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (id: string, trail: string[]): void => {
      state.set(id, 'visiting');
      for (const s of edges.get(id) ?? []) {
        if (state.get(s.ref) === 'visiting') {
          const loop = [...trail.slice(trail.indexOf(s.ref)), s.ref];
          this.error(s.pos, `<sub ref="${s.ref}"> makes a loop (${loop.join(' -> ')}); CPL scripts may not recurse`);
        } else if (!state.has(s.ref)) visit(s.ref, [...trail, s.ref]);
      }
      state.set(id, 'done');
    };
    for (const id of defined.keys()) if (!state.has(id)) visit(id, [id]);
  }
}

const OUTPUT_NAMES = new Set([
  'address',
  'string',
  'language',
  'time',
  'priority',
  'not-present',
  'otherwise',
  'success',
  'notfound',
  'failure',
  'busy',
  'noanswer',
  'redirection',
  'default',
]);
