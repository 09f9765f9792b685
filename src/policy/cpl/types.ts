/**
 * The model of a parsed CPL script (RFC 3880) and the contract between the interpreter and the server that runs
 * it. The interpreter knows nothing of transactions or sockets: everything it needs from a call comes through
 * `CplEnvironment`, so the policy layer can plug it into the proxy and tests can drive it with a fake.
 */

export const CPL_NAMESPACE = 'urn:ietf:params:xml:ns:cpl';

/** 1-based line and column in the script text. */
export interface CplPosition {
  line: number;
  column: number;
}

/** A validation error: where, and what is wrong, in one line. */
export interface CplError extends CplPosition {
  message: string;
}

export type CplParseResult = { ok: true; script: CplScript } | { ok: false; errors: CplError[] };

export interface CplScript {
  /** RFC 3880 §3: the top-level action run for calls to the script's owner. */
  incoming?: CplAction;
  /** RFC 3880 §3: the top-level action run for calls the owner places. */
  outgoing?: CplAction;
  /** RFC 3880 §8: subactions by id; `sub` nodes refer to them (the parser guarantees they exist, without loops). */
  subactions: ReadonlyMap<string, CplAction>;
  /** Number of nodes and outputs in the script (what `maxNodes` bounds). */
  nodeCount: number;
}

/**
 * What follows an output, a top-level action or a subaction: one node, or nothing. An empty output is legal and
 * means "no further instructions": the script ends there (RFC 3880 §2.2).
 */
export type CplAction = CplNode | undefined;

export type CplNode =
  | AddressSwitchNode
  | StringSwitchNode
  | LanguageSwitchNode
  | TimeSwitchNode
  | PrioritySwitchNode
  | LocationNode
  | LookupNode
  | RemoveLocationNode
  | ProxyNode
  | RedirectNode
  | RejectNode
  | MailNode
  | LogNode
  | SubNode;

interface NodeBase {
  pos: CplPosition;
}

/** One output of a switch: a test, or `not-present` (the field is absent), or `otherwise` (nothing else matched). */
export interface SwitchCase<T> {
  pos: CplPosition;
  test: T | 'not-present' | 'otherwise';
  next: CplAction;
}

export type AddressField = 'origin' | 'destination' | 'original-destination';
export type AddressSubfield = 'address-type' | 'user' | 'host' | 'port' | 'tel' | 'display' | 'password' | 'alias-type';

export interface AddressTest {
  op: 'is' | 'contains' | 'subdomain-of';
  value: string;
}

/** RFC 3880 §4.1 */
export interface AddressSwitchNode extends NodeBase {
  kind: 'address-switch';
  field: AddressField;
  subfield?: AddressSubfield;
  cases: SwitchCase<AddressTest>[];
}

export type StringField = 'subject' | 'organization' | 'user-agent' | 'display';

export interface StringTest {
  op: 'is' | 'contains';
  value: string;
}

/** RFC 3880 §4.2 */
export interface StringSwitchNode extends NodeBase {
  kind: 'string-switch';
  field: StringField;
  cases: SwitchCase<StringTest>[];
}

/** RFC 3880 §4.3: `matches` is a language tag compared with the caller's accepted languages. */
export interface LanguageSwitchNode extends NodeBase {
  kind: 'language-switch';
  cases: SwitchCase<{ matches: string }>[];
}

/** RFC 3880 §4.4 */
export interface TimeSwitchNode extends NodeBase {
  kind: 'time-switch';
  /** IANA zone name (validated); absent: "floating" times in the server's zone. */
  tzid?: string;
  cases: SwitchCase<TimeRule>[];
}

export type Weekday = 0 | 1 | 2 | 3 | 4 | 5 | 6; // MO = 0 ... SU = 6, the iCalendar order

export type Frequency = 'secondly' | 'minutely' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

/**
 * An iCalendar DATE-TIME as written: wall-clock seconds counted as if the wall clock were UTC ("floating
 * seconds"), and whether it carried the 'Z' suffix (then it is a UTC instant, not a wall-clock time).
 */
export interface CplDateTime {
  floating: number;
  utc: boolean;
}

/** One `<time>` output: a period (dtstart + dtend/duration), optionally repeated by an RFC 2445 recurrence. */
export interface TimeRule {
  dtstart: CplDateTime;
  /** Either an end instant or an RFC 2445 duration: nominal days (wall clock) plus exact seconds. */
  end: { dtend: CplDateTime } | { days: number; seconds: number };
  recurrence?: Recurrence;
}

export interface Recurrence {
  freq: Frequency;
  interval: number;
  /** Last allowed start; a DATE (no time) admits every instance starting on that day. */
  until?: CplDateTime & { dateOnly: boolean };
  count?: number;
  bysecond?: number[];
  byminute?: number[];
  byhour?: number[];
  /** `ordinal` (e.g. -1 for "last") only with monthly/yearly frequencies. */
  byday?: Array<{ weekday: Weekday; ordinal?: number }>;
  bymonthday?: number[];
  byyearday?: number[];
  byweekno?: number[];
  bymonth?: number[];
  bysetpos?: number[];
  wkst: Weekday;
}

/** RFC 3880 §4.5 */
export interface PrioritySwitchNode extends NodeBase {
  kind: 'priority-switch';
  cases: SwitchCase<{ op: 'less' | 'greater' | 'equal'; value: string }>[];
}

/** RFC 3880 §5.1 */
export interface LocationNode extends NodeBase {
  kind: 'location';
  url: string;
  /** 0.0 - 1.0, default 1.0. */
  priority: number;
  clear: boolean;
  next: CplAction;
}

/** RFC 3880 §5.2 */
export interface LookupNode extends NodeBase {
  kind: 'lookup';
  source: string;
  /** Seconds; default 30. */
  timeout: number;
  clear: boolean;
  success: CplAction;
  notfound: CplAction;
  failure: CplAction;
}

/** RFC 3880 §5.3: without `location`, every location is removed. */
export interface RemoveLocationNode extends NodeBase {
  kind: 'remove-location';
  location?: string;
  next: CplAction;
}

export type ProxyOrdering = 'parallel' | 'sequential' | 'first-only';
export type ProxyOutput = 'busy' | 'noanswer' | 'redirection' | 'failure' | 'default';

/** RFC 3880 §6.1 */
export interface ProxyNode extends NodeBase {
  kind: 'proxy';
  /** Seconds, as written; absent: 20 s if the node has a noanswer or default output, else the server maximum. */
  timeout?: number;
  recurse: boolean;
  ordering: ProxyOrdering;
  outputs: Partial<Record<ProxyOutput, CplAction>>;
}

/** RFC 3880 §6.2 */
export interface RedirectNode extends NodeBase {
  kind: 'redirect';
  permanent: boolean;
}

/** RFC 3880 §6.3: `status` already mapped to a SIP code (busy 486, notfound 404, reject 603, error 500). */
export interface RejectNode extends NodeBase {
  kind: 'reject';
  status: number;
  reason?: string;
}

/** RFC 3880 §7.1 */
export interface MailNode extends NodeBase {
  kind: 'mail';
  url: string;
  next: CplAction;
}

/** RFC 3880 §7.2 */
export interface LogNode extends NodeBase {
  kind: 'log';
  name?: string;
  comment?: string;
  next: CplAction;
}

/** RFC 3880 §8: control continues in the subaction and does not come back. */
export interface SubNode extends NodeBase {
  kind: 'sub';
  ref: string;
}

export interface CplLocation {
  uri: string;
  q?: number;
}

/** What the switches read from the request (RFC 3880 §4.1.1 and §4.2 for SIP). */
export interface CplRequest {
  method: string;
  /** From URI (or the whole From header value): the `origin` address. */
  from: string;
  /** To URI (or header value): the `original-destination` address. */
  to: string;
  /** The `destination` address. */
  requestUri: string;
  subject?: string;
  organization?: string;
  userAgent?: string;
  displayFrom?: string;
  displayTo?: string;
  /** Accept-Language entries in the caller's order of preference (q-values may be left on). */
  language?: string[];
  /** The Priority header value. */
  priority?: string;
  /**
   * Whether the server verified the caller's identity. `false` makes the `origin` address not-present to
   * address-switch, so a script cannot be steered by a forged From (RFC 3880, Security Considerations); leave it undefined where
   * authentication is impossible (calls from other domains) to screen on From anyway.
   */
  authenticated?: boolean;
}

export interface CplLookupResult {
  result: 'success' | 'notfound' | 'failure';
  locations: CplLocation[];
}

export interface CplProxyResult {
  outcome: 'success' | 'busy' | 'noanswer' | 'redirection' | 'failure';
  /** The final response status the proxy operation ended with. */
  status?: number;
  /** With `redirection`: the Contacts of the 3xx response. */
  redirectContacts?: string[];
}

export interface CplEnvironment {
  request: CplRequest;
  now(): Date;
  /** RFC 3880 §5.2: `source` is 'registration' (the location service) or a URI. `timeout` is in seconds. */
  lookup(source: string, opts: { timeout: number }): Promise<CplLookupResult>;
  /**
   * RFC 3880 §6.1: proxy to `locations` (highest priority first) and report how it ended. `timeout` is in
   * seconds. With `recurse`, 3xx responses are followed by the server and `redirection` is never reported.
   */
  proxy(locations: CplLocation[], opts: { timeout: number; recurse: boolean; ordering: ProxyOrdering }): Promise<CplProxyResult>;
  log(name: string | undefined, comment: string | undefined): void;
  /** RFC 3880 §7.1: a mailto URL; delivery is the environment's (an SMTP relay, or a log). */
  mail(url: string): void;
}

export type CplOutcome =
  /** A proxy node ran; `status` is how it ended (the script may have stopped after a non-success output). */
  | { action: 'proxied'; status?: number }
  | { action: 'redirect'; locations: CplLocation[]; permanent: boolean }
  | { action: 'reject'; status: number; reason?: string }
  /** No signalling action: the server does what it would do without a script. `error` says why, if one stopped it. */
  | { action: 'default'; error?: string };
