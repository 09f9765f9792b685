import { tryParseUri, uriEquals } from '../../message/index.js';
import { Zone, localZoneName } from './datetime.js';
import { timeRuleMatches } from './recurrence.js';
import { addressCase, languageCase, priorityCase, stringCase } from './switches.js';
import type { CplAction, CplEnvironment, CplLocation, CplOutcome, CplScript, ProxyNode, TimeSwitchNode } from './types.js';

export interface CplRunOptions {
  /** Nodes executed before the run is stopped (with the default outcome and an error). */
  maxSteps?: number;
  /** Where "floating" times (a time-switch without tzid) are read; default: the process's zone. */
  timeZone?: string;
  /** Seconds a proxy node without timeout rings when it has no noanswer/default output (RFC 3880 §6.1). */
  maxRingSeconds?: number;
}

export const DEFAULT_MAX_STEPS = 1000;
export const DEFAULT_MAX_RING_SECONDS = 180;

/** RFC 3880 §6.1: a proxy node without timeout waits 20 s when the script says what to do on no answer. */
const DEFAULT_PROXY_TIMEOUT = 20;

/**
 * Runs the incoming or outgoing action of a parsed script (RFC 3880 §3) against a call. Switches read the
 * request, location nodes build the location set, proxy/redirect/reject act through the environment.
 * Control falls off the end when an output is empty or no output matches; the outcome then says what the last
 * signalling action was, or `default` for none (RFC 3880 "Default Behavior": the server acts as without a script).
 * Rejections of the environment's promises propagate to the caller.
 */
export async function runCpl(
  script: CplScript,
  direction: 'incoming' | 'outgoing',
  env: CplEnvironment,
  options: CplRunOptions = {},
): Promise<CplOutcome> {
  return new Run(script, env, options).run(direction);
}

class Run {
  /** RFC 3880 §5: the location set; one entry per URI (RFC 3261 §19.1.4 equality). */
  private locations: Required<CplLocation>[] = [];
  private lastProxyStatus: number | undefined;
  private proxied = false;
  private steps = 0;
  private readonly maxSteps: number;

  constructor(
    private readonly script: CplScript,
    private readonly env: CplEnvironment,
    private readonly options: CplRunOptions,
  ) {
    this.maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  }

  async run(direction: 'incoming' | 'outgoing'): Promise<CplOutcome> {
    // RFC 3880 §2.3: an outgoing call's location set starts with its destination, an incoming call's empty.
    if (direction === 'outgoing') this.add(this.env.request.requestUri, 1, false);
    let action: CplAction = this.script[direction];
    while (action) {
      if (++this.steps > this.maxSteps) return { action: 'default', error: `the script ran more than ${this.maxSteps} nodes` };
      const node: NonNullable<CplAction> = action;
      switch (node.kind) {
        case 'address-switch':
          action = addressCase(node, this.env.request)?.next;
          break;
        case 'string-switch':
          action = stringCase(node, this.env.request)?.next;
          break;
        case 'language-switch':
          action = languageCase(node, this.env.request)?.next;
          break;
        case 'priority-switch':
          action = priorityCase(node, this.env.request)?.next;
          break;
        case 'time-switch':
          action = this.timeCase(node);
          break;
        case 'location':
          this.add(node.url, node.priority, node.clear);
          action = node.next;
          break;
        case 'lookup': {
          const found = await this.env.lookup(node.source, { timeout: node.timeout });
          if (found.result === 'success') {
            // RFC 3880 §5.2: `clear` empties the set only when there is something to put in it.
            if (node.clear) this.locations = [];
            for (const l of found.locations) this.add(l.uri, l.q ?? 1, false);
          }
          action = node[found.result];
          break;
        }
        case 'remove-location': {
          const gone = node.location;
          this.locations = gone === undefined ? [] : this.locations.filter((l) => !sameUri(l.uri, gone));
          action = node.next;
          break;
        }
        case 'proxy': {
          const next = await this.proxy(node);
          if (next === 'done') return { action: 'proxied', status: this.lastProxyStatus };
          action = next;
          break;
        }
        case 'redirect':
          return { action: 'redirect', locations: this.ordered(), permanent: node.permanent };
        case 'reject':
          return { action: 'reject', status: node.status, reason: node.reason };
        case 'mail':
          this.env.mail(node.url);
          action = node.next;
          break;
        case 'log':
          this.env.log(node.name, node.comment);
          action = node.next;
          break;
        case 'sub':
          // The parser guarantees the subaction exists and that subs never loop.
          action = this.script.subactions.get(node.ref);
          break;
      }
    }
    return this.proxied ? { action: 'proxied', status: this.lastProxyStatus } : { action: 'default' };
  }

  private timeCase(node: TimeSwitchNode): CplAction {
    const zone = new Zone(node.tzid ?? this.options.timeZone ?? localZoneName());
    const now = this.env.now().getTime();
    for (const c of node.cases) {
      // A time is always present, so `not-present` is never taken.
      if (c.test === 'otherwise') return c.next;
      if (c.test !== 'not-present' && timeRuleMatches(c.test, zone, now)) return c.next;
    }
    return undefined;
  }

  /** RFC 3880 §6.1. Returns the action of the output taken, or 'done' when the call was answered. */
  private async proxy(node: ProxyNode): Promise<CplAction | 'done'> {
    const out = node.outputs;
    const maxRing = this.options.maxRingSeconds ?? DEFAULT_MAX_RING_SECONDS;
    const timeout = Math.min(node.timeout ?? ('noanswer' in out || 'default' in out ? DEFAULT_PROXY_TIMEOUT : maxRing), maxRing);
    const targets = this.ordered();
    // Nothing to proxy to is a failure of the proxy operation, without bothering the environment.
    const result = targets.length > 0 ? await this.env.proxy(targets, { timeout, recurse: node.recurse, ordering: node.ordering }) : { outcome: 'failure' as const };
    this.proxied = true;
    this.lastProxyStatus = result.status;
    if (result.outcome === 'success') return 'done';
    // The set has been tried; what a 3xx returned is what the script may use next (RFC 3880 §6.1 "redirection").
    this.locations = [];
    if (result.outcome === 'redirection') for (const c of result.redirectContacts ?? []) this.add(c, 1, false);
    return result.outcome in out ? out[result.outcome] : out.default;
  }

  private add(uri: string, q: number, clear: boolean): void {
    if (clear) this.locations = [];
    const existing = this.locations.find((l) => sameUri(l.uri, uri));
    if (existing) existing.q = Math.max(existing.q, q);
    else this.locations.push({ uri, q });
  }

  /** Highest priority first; equal priorities keep the order they were added in. */
  private ordered(): CplLocation[] {
    return [...this.locations].sort((a, b) => b.q - a.q).map((l) => ({ ...l }));
  }
}

function sameUri(a: string, b: string): boolean {
  const [ua, ub] = [tryParseUri(a), tryParseUri(b)];
  return ua && ub ? uriEquals(ua, ub) : a === b;
}
