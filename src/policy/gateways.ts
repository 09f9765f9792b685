import { type SipUri, type Uri, tryParseUri } from '../message/uri.js';
import {
  type Gateway,
  type GatewayStore,
  type GatewayTables,
  type Route,
  InvalidGatewayError,
  MAX_PREFIX_LENGTH,
  acceptGateway,
  acceptRoute,
  byGatewayId,
  checkGateway,
  checkRoute,
} from '../store/gateway-store.js';
import { ConfigError } from '../util/errors.js';

/**
 * PSTN routing for the default policy (the iptel.org example): numeric destinations go to a gateway group chosen by
 * longest prefix then least cost, failing over along an ordered list; international numbers need a privilege;
 * MESSAGE to a number goes to an SMS gateway. Everything here is pure data and decisions: the policy sends.
 */

/** Which numbers are international: the longest matching prefix of either list decides. */
export interface NumberingPlan {
  /** Prefixes that mark an international number as dialled, e.g. '00' (ITU-T E.164 international prefix) and '+'. */
  internationalPrefixes: readonly string[];
  /** Longer prefixes that are nevertheless national, e.g. '+49' and '0049' for a German deployment. */
  nationalExceptions: readonly string[];
}

export interface GatewayConfig extends NumberingPlan {
  gateways: readonly Gateway[];
  routes: readonly Route[];
  /** The subscriber group (Subscriber.groups) allowed to call international numbers. */
  internationalGroup: string;
  /** Where MESSAGE requests to numbers go (a sip: URI without user part), if anywhere. */
  smsGateway?: string;
}

export const DEFAULT_GATEWAY_CONFIG: GatewayConfig = Object.freeze({
  gateways: Object.freeze([]),
  routes: Object.freeze([]),
  internationalPrefixes: Object.freeze(['00', '+']),
  nationalExceptions: Object.freeze([]),
  internationalGroup: 'intl',
});

/** Digits with an optional leading '+'; longer than any dialled number plus access codes. */
const NUMBER = new RegExp(`^\\+?[0-9]{1,${MAX_PREFIX_LENGTH}}$`);
/** RFC 3966 §3 visual-separator; callers and config also write spaces. */
const VISUAL_SEPARATORS = /[-.() ]/g;

/** The number with visual separators removed, or undefined if what remains is not digits with an optional '+'. */
export function normaliseNumber(text: string): string | undefined {
  const n = text.replace(VISUAL_SEPARATORS, '');
  return NUMBER.test(n) ? n : undefined;
}

/**
 * The telephone number a request URI addresses, or undefined: a tel: URI (RFC 3966), a sip:/sips: URI with
 * user=phone (RFC 3261 §19.1.1: the user part is a telephone-subscriber, whose own parameters such as
 * phone-context are dropped), or a sip:/sips: URI whose user part is all digits. The host is not looked at: the
 * policy asks only about URIs in its own domains.
 */
export function numberOf(uri: Uri): string | undefined {
  if (uri.type === 'tel') return normaliseNumber(uri.number);
  if (uri.type !== 'sip') return undefined;
  let user = uri.userUnescaped;
  if (user === undefined) return undefined;
  if (uri.params.get('user')?.toLowerCase() === 'phone') user = user.split(';', 1)[0]!;
  return normaliseNumber(user);
}

export function isNumericDestination(uri: Uri): boolean {
  return numberOf(uri) !== undefined;
}

/** Whether a normalised number is international under the plan (the longest matching prefix wins). */
export function isInternational(number: string, plan: NumberingPlan): boolean {
  const longest = (prefixes: readonly string[]): number =>
    prefixes.reduce((best, p) => (number.startsWith(p) && p.length > best ? p.length : best), -1);
  const international = longest(plan.internationalPrefixes);
  return international >= 0 && international > longest(plan.nationalExceptions);
}

/** The request URI for a number at a gateway: the gateway's URI with the number as user part, marked user=phone. */
export function gatewayRequestUri(gateway: SipUri, number: string): SipUri {
  const uri = gateway.clone();
  uri.user = number;
  uri.params.set('user', 'phone');
  return uri;
}

/** The items by key, each list in the items' order. */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const list = out.get(key(item));
    if (list) list.push(item);
    else out.set(key(item), [item]);
  }
  return out;
}

/** A URI that passed checkGateway. */
function gatewayUri(text: string): SipUri {
  const problem = checkGateway({ id: 'uri', uri: text, group: 'uri', enabled: true });
  if (problem) throw new InvalidGatewayError(problem);
  return tryParseUri(text) as SipUri;
}

/** One step of the failover list. */
export interface RouteChoice {
  gateway: Gateway;
  /** The route that led to this gateway (the best one, if several do). */
  route: Route;
  /** Where to send: the gateway's URI carrying the number. */
  requestUri: SipUri;
}

export interface DialplanOptions {
  /** In [0, 1); draws the order inside weighted groups. Math.random by default. */
  random?: () => number;
}

interface Member {
  gateway: Gateway;
  uri: SipUri;
}

/**
 * An immutable routing table. A reload builds a new one and swaps it in, so a call routing while the tables change
 * sees the old table or the new one, never a mix.
 */
export class Dialplan {
  readonly plan: NumberingPlan;
  readonly internationalGroup: string;
  readonly smsGateway: SipUri | undefined;
  /** Routes by prefix, each list cheapest first. */
  private readonly byPrefix: ReadonlyMap<string, readonly Route[]>;
  /** Enabled gateways by group, ordered by id. */
  private readonly groups: ReadonlyMap<string, readonly Member[]>;
  private readonly random: () => number;

  /**
   * Store entries replace config entries of the same key (gateway id; route prefix and group). Throws
   * InvalidGatewayError on an entry that does not check (parseGatewayConfig and the stores only give checked ones).
   */
  constructor(config: GatewayConfig, tables: GatewayTables = { gateways: [], routes: [] }, options: DialplanOptions = {}) {
    this.random = options.random ?? Math.random;
    this.plan = Object.freeze({
      internationalPrefixes: Object.freeze([...config.internationalPrefixes]),
      nationalExceptions: Object.freeze([...config.nationalExceptions]),
    });
    this.internationalGroup = config.internationalGroup;
    this.smsGateway = config.smsGateway === undefined ? undefined : gatewayUri(config.smsGateway);

    const gateways = new Map<string, Gateway>();
    for (const g of [...config.gateways, ...tables.gateways]) gateways.set(g.id, Object.freeze(acceptGateway(g)));
    const enabled = [...gateways.values()].filter((g) => g.enabled).sort(byGatewayId);
    this.groups = groupBy(enabled.map((g) => ({ gateway: g, uri: gatewayUri(g.uri) })), (m) => m.gateway.group);

    const routes = new Map<string, Route>();
    for (const r of [...config.routes, ...tables.routes]) routes.set(`${r.prefix}\0${r.group}`, Object.freeze(acceptRoute(r)));
    const cheapestFirst = [...routes.values()].sort((a, b) => a.cost - b.cost || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
    this.byPrefix = groupBy(cheapestFirst, (r) => r.prefix);
  }

  /**
   * The failover list for a number: routes of the longest matching prefix first, then shorter ones down to the
   * default route; among routes of one prefix, the cheapest first; inside a group, enabled gateways by id, or drawn
   * by weight. A gateway reached by several routes appears once, at its first place. Empty if nothing routes.
   */
  route(number: string): RouteChoice[] {
    const n = normaliseNumber(number);
    if (n === undefined) return [];
    const out: RouteChoice[] = [];
    const seen = new Set<string>();
    for (let length = n.length; length >= 0; length--) {
      for (const route of this.byPrefix.get(n.slice(0, length)) ?? []) {
        for (const m of this.ordered(this.groups.get(route.group) ?? [])) {
          if (seen.has(m.gateway.id)) continue;
          seen.add(m.gateway.id);
          out.push({ gateway: m.gateway, route, requestUri: gatewayRequestUri(m.uri, n) });
        }
      }
    }
    return out;
  }

  isInternational(number: string): boolean {
    const n = normaliseNumber(number);
    return n !== undefined && isInternational(n, this.plan);
  }

  /** Whether a subscriber in these groups may call the number (else the policy answers 403 Forbidden). */
  mayCall(number: string, groups: readonly string[]): boolean {
    return !this.isInternational(number) || groups.includes(this.internationalGroup);
  }

  /** Where a MESSAGE to the number goes, if an SMS gateway is configured. */
  smsTarget(number: string): SipUri | undefined {
    const n = normaliseNumber(number);
    return n === undefined || this.smsGateway === undefined ? undefined : gatewayRequestUri(this.smsGateway, n);
  }

  /**
   * Members in the group's fixed order; if any has a weight, drawn per call by RFC 2782's selection (weight-0
   * members first in the running sum, so they are rarely picked early; a missing weight counts as 0).
   */
  private ordered(members: readonly Member[]): readonly Member[] {
    if (!members.some((m) => m.gateway.weight !== undefined)) return members;
    const left = [...members].sort((a, b) => Number((a.gateway.weight ?? 0) > 0) - Number((b.gateway.weight ?? 0) > 0));
    const out: Member[] = [];
    while (left.length > 0) {
      const total = left.reduce((sum, m) => sum + (m.gateway.weight ?? 0), 0);
      const pick = Math.floor(this.random() * (total + 1));
      let running = 0;
      let index = left.findIndex((m) => (running += m.gateway.weight ?? 0) >= pick);
      if (index < 0) index = left.length - 1;
      out.push(...left.splice(index, 1));
    }
    return out;
  }
}

/**
 * The dialplan in force, rebuilt from config and store by `reload` without a restart. Reloads may overlap (a
 * config reload and a CLI edit): the one started last wins, whatever order the store reads finish in.
 */
export class GatewayRouting {
  private current: Dialplan;
  private generation = 0;

  private constructor(
    private config: GatewayConfig,
    private readonly store: GatewayStore | undefined,
    private readonly options: DialplanOptions,
  ) {
    this.current = new Dialplan(config, undefined, options);
  }

  /** Reads the store once before answering, so the first call already sees its routes. */
  static async open(config: GatewayConfig, store?: GatewayStore, options: DialplanOptions = {}): Promise<GatewayRouting> {
    const routing = new GatewayRouting(config, store, options);
    await routing.reload();
    return routing;
  }

  get dialplan(): Dialplan {
    return this.current;
  }

  /**
   * Re-reads the store (and takes a new config, if given) and swaps in the new dialplan. If the store cannot be
   * read, rejects and the old dialplan stays in force.
   */
  async reload(config: GatewayConfig = this.config): Promise<void> {
    const generation = ++this.generation;
    const tables = this.store ? await this.store.load() : undefined;
    if (generation !== this.generation) return;
    this.current = new Dialplan(config, tables, this.options);
    this.config = config;
  }
}

/** Parses the `gateways` section of the config file; throws ConfigError naming the field. */
export function parseGatewayConfig(raw: unknown, field = 'gateways'): GatewayConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(field, 'must be an object');
  const c: GatewayConfig = { ...DEFAULT_GATEWAY_CONFIG };
  for (const [key, value] of Object.entries(raw)) {
    const at = `${field}.${key}`;
    switch (key) {
      case 'gateways':
        c.gateways = list(value, at).map((g, i) => {
          const withDefault = typeof g === 'object' && g !== null ? { enabled: true, ...g } : g;
          return entry(withDefault, `${at}[${i}]`, checkGateway, ['id', 'uri', 'group', 'weight', 'enabled']) as Gateway;
        });
        duplicates(c.gateways.map((g) => g.id), at, 'gateway id');
        break;
      case 'routes':
        c.routes = list(value, at).map((r, i) => entry(r, `${at}[${i}]`, checkRoute, ['prefix', 'group', 'cost', 'description']) as Route);
        duplicates(c.routes.map((r) => `prefix '${r.prefix}' to group ${r.group}`), at, 'route');
        break;
      case 'internationalPrefixes':
      case 'nationalExceptions':
        c[key] = list(value, at).map((p, i) => {
          if (typeof p !== 'string' || !/^(\+|\+?[0-9]+)$/.test(p)) throw new ConfigError(`${at}[${i}]`, "must be '+' or digits with an optional leading '+'");
          return p;
        });
        break;
      case 'internationalGroup':
        if (typeof value !== 'string' || value.length === 0) throw new ConfigError(at, 'must be a non-empty string');
        c.internationalGroup = value;
        break;
      case 'smsGateway': {
        const problem = checkGateway({ id: 'sms', uri: value, group: 'sms', enabled: true });
        if (problem) throw new ConfigError(at, problem);
        c.smsGateway = value as string;
        break;
      }
      default:
        throw new ConfigError(at, 'unknown setting (gateways, routes, internationalPrefixes, nationalExceptions, internationalGroup, smsGateway)');
    }
  }
  const both = c.internationalPrefixes.filter((p) => c.nationalExceptions.includes(p));
  if (both.length > 0) throw new ConfigError(`${field}.nationalExceptions`, `'${both[0]}' is also an international prefix`);
  return c;
}

function list(value: unknown, at: string): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(at, 'must be an array');
  return value;
}

function entry(value: unknown, at: string, check: (v: unknown) => string | undefined, keys: readonly string[]): unknown {
  const problem = check(value);
  if (problem) throw new ConfigError(at, problem);
  const unknown = Object.keys(value as object).find((k) => !keys.includes(k));
  if (unknown !== undefined) throw new ConfigError(`${at}.${unknown}`, `unknown setting (${keys.join(', ')})`);
  return { ...(value as object) };
}

function duplicates(keys: string[], at: string, what: string): void {
  const dup = keys.find((k, i) => keys.indexOf(k) !== i);
  if (dup !== undefined) throw new ConfigError(at, `duplicate ${what} ${dup}`);
}
