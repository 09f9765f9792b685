/**
 * One call that answers "who sent this request?" for the registrar, proxy and policy layers: Digest verification
 * (RFC 3261 §22, RFC 8760), nonces and failure throttling wired together, and the outcome turned into what the
 * caller sends: onward processing, a 401/407 challenge, or a 403 for a blocked source or user.
 */
import type { SipRequest } from '../message/index.js';
import { parseUri, uriEquals } from '../message/index.js';
import type { SubscriberStore } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { CredentialStore } from './credentials.js';
import { parseDigestCredentials, type DigestAlgorithm } from './digest.js';
import { NonceManager } from './nonce.js';
import { AuthFailureThrottle, type AuthFailureThrottleConfig } from './throttle.js';
import { DigestVerifier } from './verifier.js';

/** The declarative part, as it appears in the server configuration. */
export interface AuthServiceConfig {
  /** Accepted algorithms and the order of the challenges; default MD5 alone (see docs/auth.md). */
  algorithms?: DigestAlgorithm[];
  /** Default 300 s. */
  nonceLifetimeMs?: number;
  /** Nonce secret shared by cluster nodes (>= 16 bytes); random per process when omitted. */
  secret?: string | Uint8Array;
  throttle?: Omit<AuthFailureThrottleConfig, 'clock'>;
}

export interface AuthServiceOptions extends AuthServiceConfig {
  credentials: CredentialStore;
  clock: Clock;
  logger: Logger;
}

/** 'www': a UAS or registrar (Authorization, 401); 'proxy': a proxy (Proxy-Authorization, 407). RFC 3261 §22.2/§22.3. */
export type AuthKind = 'www' | 'proxy';

export type AuthResult =
  | { ok: true; username: string; groups: string[] }
  | {
      ok: false;
      status: 401 | 407 | 403;
      reason?: string;
      headers: Array<[string, string]>;
      /** Throttle slowdown: how long the caller waits before sending this answer. */
      delayMs: number;
    };

const HEADERS: Record<AuthKind, { credentials: string; challenge: string; status: 401 | 407 }> = {
  www: { credentials: 'authorization', challenge: 'WWW-Authenticate', status: 401 },
  proxy: { credentials: 'proxy-authorization', challenge: 'Proxy-Authenticate', status: 407 },
};

/**
 * Throttling keys on the source address; requests injected in-process (no transport) share this key, so that they
 * are throttled too rather than never.
 */
const UNKNOWN_SOURCE = 'unknown';

/** What authentication has decided so far (the admin endpoint's GET /stats). */
export interface AuthStats {
  /** Credentials checked and accepted. */
  accepted: number;
  /**
   * Credentials checked and refused (wrong password, unknown user, malformed, replayed): each cost a store lookup
   * and a hash, so this is the rate at which guesses reach the verifier.
   */
  failed: number;
  /** Requests refused before any check: their source is blocked (or failed against a user under attack). */
  refused: number;
  /** Blocks started (one warning each). */
  blocks: number;
}

export class AuthService {
  private readonly verifier: DigestVerifier;
  private readonly throttle: AuthFailureThrottle;
  private readonly logger: Logger;
  private readonly counters: AuthStats = { accepted: 0, failed: 0, refused: 0, blocks: 0 };

  constructor(options: AuthServiceOptions) {
    const nonces = new NonceManager({ clock: options.clock, secret: options.secret, lifetimeMs: options.nonceLifetimeMs });
    this.verifier = new DigestVerifier({ store: options.credentials, nonces, algorithms: options.algorithms });
    this.throttle = new AuthFailureThrottle({ ...options.throttle, clock: options.clock });
    this.logger = options.logger;
  }

  /** Rejects only when the credential store fails (the caller answers 500; it is not counted as a failure). */
  async authenticate(req: SipRequest, realm: string, kind: AuthKind): Promise<AuthResult> {
    const names = HEADERS[kind];
    const source = req.source?.address ?? UNKNOWN_SOURCE;
    const authorization = req.headers.getAll(names.credentials);
    const claimed = claimedCredentials(authorization, realm);
    const challenge = (stale: boolean, delayMs: number): AuthResult => ({
      ok: false,
      status: names.status,
      headers: this.verifier.challenges(realm, stale).map((v): [string, string] => [names.challenge, v]),
      delayMs,
    });

    // A blocked source or user is refused before any hashing: guessing must not even cost us the work.
    const before = this.throttle.check(source, claimed?.username);
    if (before.blocked) {
      this.counters.refused++;
      return forbidden();
    }

    const outcome = await this.verifier.verify({
      method: req.method,
      authorization,
      realm,
      requestUri: sameResource(claimed?.uri, req) ? claimed?.uri : req.uri.toString(),
      body: req.body,
    });
    switch (outcome.outcome) {
      case 'ok':
        this.counters.accepted++;
        this.throttle.recordSuccess(source, outcome.username);
        return { ok: true, username: outcome.username, groups: outcome.credentials.groups ?? [] };
      case 'challenge':
        return challenge(outcome.stale, this.throttle.check(source, claimed?.username).delayMs);
      case 'failed': {
        const user = outcome.username;
        this.counters.failed++;
        this.logger.debug({ source, user, realm, reason: outcome.reason }, 'digest authentication failed');
        if (this.throttle.recordFailure(source, user)) {
          // recordFailure reports a block once, when it starts: one warning per block, not one per request.
          this.counters.blocks++;
          this.logger.warn({ source, user, realm }, 'authentication blocked after repeated failures');
          return forbidden();
        }
        // Unknown user and wrong password take this same path: same status, same headers, same delay rule. A source
        // that has just failed against a user under attack is refused from its next attempt; this answer keeps the
        // slow-down it was given before the check.
        const after = this.throttle.check(source, user);
        return challenge(false, Math.max(before.delayMs, after.blocked ? 0 : after.delayMs));
      }
    }
  }

  stats(): AuthStats {
    return { ...this.counters };
  }
}

function forbidden(): AuthResult {
  return { ok: false, status: 403, reason: 'Forbidden', headers: [], delayMs: 0 };
}

/**
 * The username and digest-uri of the Digest credentials for `realm`, read before verification so that the
 * throttle can judge the claimed user. Other schemes (RFC 4475 regaut01: Basic or unknown ones) are ignored.
 */
function claimedCredentials(values: readonly string[], realm: string): { username: string; uri: string } | undefined {
  for (const value of values) {
    const parsed = parseDigestCredentials(value);
    if (parsed.ok && parsed.value.realm === realm) return { username: parsed.value.username, uri: parsed.value.uri };
  }
  return undefined;
}

/**
 * RFC 2617 §3.2.2.5 (which RFC 3261 §22.4 keeps): the digest-uri must designate the same resource as the
 * Request-URI. The verifier compares strings, so an equivalent spelling (§19.1.4: `SIP:Example.COM`) is handed
 * over as the Request-URI; anything else is compared with the Request-URI as we print it, and fails.
 */
function sameResource(digestUri: string | undefined, req: SipRequest): boolean {
  if (digestUri === undefined) return false;
  try {
    return uriEquals(parseUri(digestUri), req.uri);
  } catch {
    return false;
  }
}

/**
 * The subscriber database as a credential store: the realm is the subscriber's domain (what `sipway user add`
 * hashes HA1 with).
 */
export function subscriberCredentials(store: SubscriberStore): CredentialStore {
  return {
    async getCredentials(username, realm) {
      const s = await store.get(username, realm);
      return s && { username: s.username, realm, ha1Md5: s.ha1Md5, ha1Sha256: s.ha1Sha256, groups: s.groups };
    },
  };
}
