import { ConfigError } from '../util/errors.js';

export type ForkingMode = 'parallel' | 'serial';

/** The proxy's settings, as they appear under `proxy` in the server configuration (docs/proxy.md). */
export interface ProxyConfig {
  /** Stay in the path of dialogs (§16.6 step 4); doubled when the request changes transport (RFC 5658). */
  recordRoute: boolean;
  /** How the targets of a location lookup are tried (§16.6): all at once, or one after another by q. */
  forking: ForkingMode;
  /** Branches one response context may create, redirects included. */
  maxBranches: number;
  /** Serial forking: a branch that has not answered finally by then is cancelled and the next one tried. */
  serialBranchTimeoutMs: number;
  /** An INVITE without a final answer by then gets `inviteTimeoutStatus` and its branches are cancelled. */
  inviteTimeoutMs: number;
  inviteTimeoutStatus: 408 | 480;
  /** §16.8 Timer C: how long an INVITE branch may stay without a final response, restarted by provisionals. */
  timerCMs: number;
  /** §16.11: forward every request statelessly (one target, responses forwarded by their Via). */
  stateless: boolean;
  /** Served domains whose users are answered with 302 and their contacts instead of being proxied to. */
  redirectDomains: string[];
  /** §16.5: a 3xx from a branch adds its Contacts to the target set (recursion). */
  followRedirects: boolean;
  /** 3xx responses a response context recurses on. */
  maxRedirects: number;
  /** Challenge (407) requests whose From names a served domain before forwarding them. */
  authenticateCallers: boolean;
  /** Challenge in-dialog requests (those with a To tag) too. */
  authenticateInDialog: boolean;
  /**
   * Tell callers that did not authenticate here whether a user of ours exists: 480 for a subscriber who is offline,
   * 404 for nobody. Off by default: both are 404, so that scanners (svwar and the like) learn nothing.
   */
  revealUserExistence: boolean;
  /** A routing policy's onRequest that has neither answered nor routed the request by then: 500, and its later verbs fail. */
  policyTimeoutMs: number;
}

export function defaultProxyConfig(): ProxyConfig {
  return {
    recordRoute: true,
    forking: 'parallel',
    maxBranches: 10,
    serialBranchTimeoutMs: 30_000,
    inviteTimeoutMs: 120_000,
    inviteTimeoutStatus: 408,
    // RFC 3261 §16.8: more than three minutes.
    timerCMs: 180_000,
    stateless: false,
    redirectDomains: [],
    followRedirects: false,
    maxRedirects: 3,
    authenticateCallers: true,
    authenticateInDialog: false,
    revealUserExistence: false,
    policyTimeoutMs: 10_000,
  };
}

const BOOLEANS = ['recordRoute', 'stateless', 'followRedirects', 'authenticateCallers', 'authenticateInDialog', 'revealUserExistence'] as const;
const NUMBERS: Record<string, [min: number, max: number]> = {
  maxBranches: [1, 100],
  serialBranchTimeoutMs: [1, 3_600_000],
  inviteTimeoutMs: [1, 3_600_000],
  timerCMs: [1, 3_600_000],
  maxRedirects: [0, 100],
  policyTimeoutMs: [1, 3_600_000],
};

/** Applies the `proxy` object of a config file onto `base`, validating every field; unknown fields are errors. */
export function readProxyConfig(base: ProxyConfig, value: unknown): ProxyConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError('proxy', 'must be an object');
  const c: ProxyConfig = { ...base, redirectDomains: [...base.redirectDomains] };
  for (const [k, v] of Object.entries(value)) {
    const field = `proxy.${k}`;
    if ((BOOLEANS as readonly string[]).includes(k)) {
      if (typeof v !== 'boolean') throw new ConfigError(field, 'must be true or false');
      c[k as (typeof BOOLEANS)[number]] = v;
    } else if (k in NUMBERS) {
      const [min, max] = NUMBERS[k]!;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(field, `must be a whole number between ${min} and ${max}`);
      (c as unknown as Record<string, number>)[k] = v;
    } else if (k === 'forking') {
      if (v !== 'parallel' && v !== 'serial') throw new ConfigError(field, "must be 'parallel' or 'serial'");
      c.forking = v;
    } else if (k === 'inviteTimeoutStatus') {
      if (v !== 408 && v !== 480) throw new ConfigError(field, 'must be 408 or 480');
      c.inviteTimeoutStatus = v;
    } else if (k === 'redirectDomains') {
      if (!Array.isArray(v) || !v.every((d) => typeof d === 'string' && d.length > 0)) throw new ConfigError(field, 'must be a list of domain names');
      c.redirectDomains = (v as string[]).map((d) => d.toLowerCase());
    } else throw new ConfigError(field, 'unknown setting');
  }
  return c;
}

/** Cross-field rule checked once the server's domains are known. */
export function checkProxyConfig(c: ProxyConfig, domains: readonly string[]): void {
  const served = new Set(domains.map((d) => d.toLowerCase()));
  const foreign = c.redirectDomains.find((d) => !served.has(d));
  if (foreign !== undefined) throw new ConfigError('proxy.redirectDomains', `'${foreign}' is not one of the served domains`);
}
