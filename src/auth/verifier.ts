/**
 * The server side of Digest (RFC 3261 §22.4, RFC 8760 §2.3): decides whether the Authorization (UAS, registrar)
 * or Proxy-Authorization (proxy) credentials of a request authenticate a user in a realm. It only decides; the
 * caller turns the outcome into 401/407 with `challenges()`, 403, or onward processing.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../util/errors.js';
import type { Credentials, CredentialStore } from './credentials.js';
import {
  baseAlgorithm,
  buildChallenge,
  computeHa1,
  computeResponse,
  hashBody,
  parseDigestCredentials,
  responsesEqual,
  type DigestAlgorithm,
  type DigestCredentials,
  type DigestParseResult,
} from './digest.js';
import type { NonceManager } from './nonce.js';

export interface DigestVerifierConfig {
  store: CredentialStore;
  nonces: NonceManager;
  /** Algorithms accepted, and the order of the challenges sent; default DEFAULT_DIGEST_ALGORITHMS. */
  algorithms?: readonly DigestAlgorithm[];
}

/**
 * MD5 alone, as Kamailio challenges by default. Every common phone answers it, while some give up on a 401/407 that
 * also offers SHA-256 (baresip 1.0 with libre 1.1, Debian 12's). Offering SHA-256 beside MD5 would add no
 * security either: whoever can answer MD5 is let in. SHA-256 protects only where it is offered alone, so it is a
 * deployment's choice (docs/auth.md), not a default.
 */
export const DEFAULT_DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['MD5'];

export interface DigestVerifyInput {
  method: string;
  /** Every Authorization (or Proxy-Authorization) header value of the request, in order. */
  authorization: readonly string[];
  realm: string;
  /**
   * The Request-URI as received. When given, the digest `uri` must equal it exactly (RFC 7616 §3.4.6), so that
   * credentials computed for one target cannot be replayed against another.
   */
  requestUri?: string;
  /** The request body, needed only when the client used qop=auth-int. */
  body?: string | Uint8Array;
}

export type DigestOutcome =
  | { outcome: 'ok'; username: string; credentials: Credentials }
  /** Send `challenges(realm, stale)`: no credentials for this realm, or a valid digest over a stale nonce. */
  | { outcome: 'challenge'; stale: boolean }
  /** `username` is the claimed one, present whenever the credentials could be parsed (for logs and throttling). */
  | { outcome: 'failed'; reason: string; username?: string };

/** One reason for unknown user and wrong password, so that the outcome does not reveal which users exist. */
export const INVALID_CREDENTIALS = 'invalid credentials';

export class DigestVerifier {
  private readonly store: CredentialStore;
  private readonly nonces: NonceManager;
  private readonly algorithms: readonly DigestAlgorithm[];
  /** Unknown users are checked against an HA1 derived from this, so that they cost the same work as known ones. */
  private readonly decoyPassword = randomBytes(16).toString('hex');

  constructor(config: DigestVerifierConfig) {
    this.store = config.store;
    this.nonces = config.nonces;
    this.algorithms = config.algorithms ?? DEFAULT_DIGEST_ALGORITHMS;
    if (this.algorithms.length === 0 || new Set(this.algorithms).size !== this.algorithms.length) {
      throw new ConfigError('auth.algorithms', 'must list MD5 and/or SHA-256, each at most once');
    }
  }

  /** The WWW-Authenticate / Proxy-Authenticate values to send, one per algorithm, sharing one fresh nonce. */
  challenges(realm: string, stale = false): string[] {
    const nonce = this.nonces.issue(realm);
    return this.algorithms.map((algorithm) => buildChallenge({ realm, nonce, algorithm, stale }));
  }

  /** Rejects only if the credential store does. */
  async verify(input: DigestVerifyInput): Promise<DigestOutcome> {
    const found = findCredentials(input.authorization, input.realm);
    if (!found) return { outcome: 'challenge', stale: false };
    if (!found.ok) return { outcome: 'failed', reason: `malformed credentials: ${found.param} ${found.problem}` };
    const credentials = found.value;
    const { username, algorithm } = credentials;
    const base = baseAlgorithm(algorithm);
    if (!this.algorithms.includes(base)) return { outcome: 'failed', reason: 'algorithm not offered', username };
    if (input.requestUri !== undefined && credentials.uri !== input.requestUri) {
      return { outcome: 'failed', reason: 'uri mismatch', username };
    }

    const stored = await this.store.getCredentials(username, input.realm);
    const ha1 = stored
      ? storedHa1(stored, base)
      : computeHa1(username, input.realm, this.decoyPassword, base);
    const expected = computeResponse({
      ha1,
      nonce: credentials.nonce,
      nc: credentials.nc,
      cnonce: credentials.cnonce,
      qop: credentials.qop,
      method: input.method,
      uri: credentials.uri,
      algorithm,
      bodyHash: credentials.qop === 'auth-int' ? hashBody(algorithm, input.body) : undefined,
    });
    if (!responsesEqual(expected, credentials.response) || !stored) {
      return { outcome: 'failed', reason: INVALID_CREDENTIALS, username };
    }

    // The nonce is judged only after the digest: RFC 7616 §3.3 has stale=true tell the client that its
    // password was right, so a client that knows it gets a fresh nonce without asking the user again. A forged
    // or foreign nonce (a restarted node with a new secret) with a correct digest is treated the same way:
    // the digest proves knowledge of the password, and the new nonce restores freshness.
    if (this.nonces.verify(credentials.nonce, input.realm) !== 'valid') return { outcome: 'challenge', stale: true };
    if (credentials.nc !== undefined) {
      const count = this.nonces.checkNonceCount(credentials.nonce, credentials.nc);
      if (count === 'replayed') return { outcome: 'failed', reason: 'nonce count replayed', username };
      if (count === 'stale') return { outcome: 'challenge', stale: true };
    }
    return { outcome: 'ok', username, credentials: stored };
  }
}

function storedHa1(credentials: Credentials, algorithm: DigestAlgorithm): string {
  return algorithm === 'MD5' ? credentials.ha1Md5 : credentials.ha1Sha256;
}

/**
 * RFC 3261 §22.3: a request may carry credentials for several realms (one per proxy on the path); only those
 * for our realm concern us. Malformed values count as ours unless they name another realm or another scheme.
 */
function findCredentials(values: readonly string[], realm: string): DigestParseResult<DigestCredentials> | undefined {
  let malformed: DigestParseResult<DigestCredentials> | undefined;
  for (const value of values) {
    const parsed = parseDigestCredentials(value);
    if (parsed.ok) {
      if (parsed.value.realm === realm) return parsed;
    } else if (parsed.param !== 'scheme' && (parsed.realm === undefined || parsed.realm === realm)) {
      malformed ??= parsed;
    }
  }
  return malformed;
}
