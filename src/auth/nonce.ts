/**
 * Stateless, self-authenticating nonces (the construction RFC 7616 §5.4 suggests: a timestamp plus a keyed hash)
 * and bounded nonce-count tracking for replay protection (RFC 7616 §3.4.5, §5.4).
 *
 * nonce = base64url(timestamp(6 bytes, ms) || random(12) || HMAC-SHA256(secret, timestamp || random || realm))
 *
 * Any node holding the secret can check authenticity and age without storage, so cluster nodes that share the
 * secret accept each other's nonces. Binding the realm stops a nonce issued for one realm being used in another.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../util/clock.js';
import { secureRandomInto } from '../util/ids.js';
import { ConfigError } from '../util/errors.js';

export type NonceStatus = 'valid' | 'stale' | 'invalid';
/**
 * `stale` means the tracker cannot vouch that this nonce was never used (it may have been forgotten under memory
 * pressure): the caller should re-challenge with stale=true, which costs an honest client one round trip.
 */
export type NonceCountStatus = 'accepted' | 'replayed' | 'stale';

export interface NonceManagerConfig {
  clock: Clock;
  /** Shared by the nodes of a cluster; at least 16 bytes. Random per instance when omitted. */
  secret?: string | Uint8Array;
  /** How long an issued nonce is valid before it is answered as stale; default 300 s. */
  lifetimeMs?: number;
  /** Upper bound on nonces whose nonce count is remembered; default 65,536. */
  maxTrackedNonces?: number;
}

const TIMESTAMP_BYTES = 6;
const RANDOM_BYTES = 12;
const MAC_BYTES = 32;
const NONCE_BYTES = TIMESTAMP_BYTES + RANDOM_BYTES + MAC_BYTES;
const NONCE_CHARS = Math.ceil((NONCE_BYTES * 4) / 3);
const NONCE_SYNTAX = new RegExp(`^[A-Za-z0-9_-]{${NONCE_CHARS}}$`);
const MIN_SECRET_BYTES = 16;

interface NonceCountEntry {
  issuedAt: number;
  highestNc: number;
}

export class NonceManager {
  private readonly clock: Clock;
  private readonly secret: Buffer;
  private readonly lifetimeMs: number;
  private readonly maxTracked: number;
  /** Insertion order is recency of use, so the first key is the least recently used nonce. */
  private readonly counts = new Map<string, NonceCountEntry>();
  /** The newest issue time among the nonces the tracker has forgotten. */
  private forgottenUpTo = -Infinity;

  constructor(config: NonceManagerConfig) {
    this.clock = config.clock;
    this.secret = config.secret === undefined ? randomBytes(32) : Buffer.from(config.secret);
    if (this.secret.length < MIN_SECRET_BYTES) {
      throw new ConfigError('auth.nonceSecret', `must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    this.lifetimeMs = config.lifetimeMs ?? 300_000;
    if (!(this.lifetimeMs > 0)) throw new ConfigError('auth.nonceLifetimeMs', 'must be a positive number');
    this.maxTracked = config.maxTrackedNonces ?? 65_536;
    if (!Number.isInteger(this.maxTracked) || this.maxTracked < 1) {
      throw new ConfigError('auth.maxTrackedNonces', 'must be a positive integer');
    }
  }

  issue(realm: string): string {
    const head = Buffer.alloc(TIMESTAMP_BYTES + RANDOM_BYTES);
    head.writeUIntBE(this.clock.now(), 0, TIMESTAMP_BYTES);
    secureRandomInto(head, TIMESTAMP_BYTES, RANDOM_BYTES);
    return Buffer.concat([head, this.mac(head, realm)]).toString('base64url');
  }

  verify(nonce: string, realm: string): NonceStatus {
    const raw = decode(nonce);
    if (!raw) return 'invalid';
    const head = raw.subarray(0, TIMESTAMP_BYTES + RANDOM_BYTES);
    if (!timingSafeEqual(raw.subarray(head.length), this.mac(head, realm))) return 'invalid';
    // A nonce from the future can only come from a cluster peer whose clock runs ahead; beyond one lifetime of
    // skew it is treated like an old one so that skew never extends a nonce's life.
    return Math.abs(this.clock.now() - issuedAt(raw)) > this.lifetimeMs ? 'stale' : 'valid';
  }

  /**
   * RFC 7616 §3.4.5: a nonce count is accepted only if it is strictly greater than the highest one seen with
   * this nonce. Call it only after `verify` said 'valid' and the response checked out, so that forged requests
   * can neither burn counts nor fill the tracker.
   *
   * The tracker is bounded: when full, the least recently used nonce is forgotten. Accepting a forgotten nonce
   * afresh would reopen it to replay, and refusing every unknown nonce would reject honest first uses, so we
   * remember the newest issue time we have forgotten: an unknown nonce issued after it cannot have been tracked
   * and is accepted with any count; an older one gets 'stale', and the client retries with a fresh nonce.
   *
   * Two limits remain, both documented in docs/auth.md: requests without qop carry no count and can be replayed
   * until the nonce goes stale; and counts are tracked per process, so a replay sent to another cluster node
   * is caught only by the nonce lifetime.
   */
  checkNonceCount(nonce: string, nc: string): NonceCountStatus {
    const raw = decode(nonce);
    if (!raw || !/^[0-9a-fA-F]{1,8}$/.test(nc)) return 'stale';
    const count = Number.parseInt(nc, 16);
    const now = this.clock.now();
    const known = this.counts.get(nonce);
    if (known) {
      if (count <= known.highestNc) return 'replayed';
      this.counts.delete(nonce);
      this.counts.set(nonce, { issuedAt: known.issuedAt, highestNc: count });
      return 'accepted';
    }
    const issued = issuedAt(raw);
    if (issued <= this.forgottenUpTo) return 'stale';
    if (count < 1) return 'replayed';
    this.makeRoom(now);
    this.counts.set(nonce, { issuedAt: issued, highestNc: count });
    return 'accepted';
  }

  /** Number of nonces whose count is being tracked (for metrics). */
  get trackedNonces(): number {
    return this.counts.size;
  }

  /**
   * Drops entries from the least recently used end while they are past their lifetime (useless: `verify` refuses
   * their nonces) or the tracker is full. Raising the mark for an expired entry is harmless: every nonce still
   * valid was issued after it.
   */
  private makeRoom(now: number): void {
    for (const [nonce, entry] of this.counts) {
      if (this.counts.size < this.maxTracked && now - entry.issuedAt <= this.lifetimeMs) return;
      this.forgottenUpTo = Math.max(this.forgottenUpTo, entry.issuedAt);
      this.counts.delete(nonce);
    }
  }

  private mac(head: Buffer, realm: string): Buffer {
    return createHmac('sha256', this.secret).update(head).update(realm, 'utf8').digest();
  }
}

/** Only the canonical encoding is accepted, so each nonce has exactly one spelling (the tracker keys on it). */
function decode(nonce: string): Buffer | undefined {
  if (!NONCE_SYNTAX.test(nonce)) return undefined;
  const raw = Buffer.from(nonce, 'base64url');
  return raw.toString('base64url') === nonce ? raw : undefined;
}

function issuedAt(raw: Buffer): number {
  return raw.readUIntBE(0, TIMESTAMP_BYTES);
}
