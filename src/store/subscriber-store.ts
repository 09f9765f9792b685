import { MemoryPerUserMap, byUserName, canonicalDomain } from './per-user-map.js';
/**
 * Subscribers for digest authentication. Only HA1 values are stored (RFC 7616 §3.4.2: H(username ":" realm ":" password),
 * computed by src/auth), never a password: the checks below refuse anything that is
 * not a hex digest of the right length, so a password cannot be stored by mistake.
 *
 * The domain compares case-insensitively (it is a host name, RFC 3261 §19.1.4) and is stored lower-cased; the
 * username compares case-sensitively, like the SIP user part.
 */
export interface Subscriber {
  username: string;
  domain: string;
  /** Hex MD5 HA1 (32 digits), kept as given. */
  ha1Md5: string;
  /** Hex SHA-256 HA1 (64 digits, RFC 7616), kept as given. */
  ha1Sha256: string;
  groups: string[];
  createdAt: number;
}

export interface SubscriberStore {
  get(username: string, domain: string): Promise<Subscriber | undefined>;
  /** Adds or replaces; rejects with InvalidSubscriberError on malformed input. */
  put(s: Subscriber): Promise<void>;
  /** Resolves to whether there was such a subscriber. */
  remove(username: string, domain: string): Promise<boolean>;
  /** All subscribers, or those of one domain, ordered by domain then username. */
  list(domain?: string): Promise<Subscriber[]>;
  close(): Promise<void>;
}

export class InvalidSubscriberError extends Error {
  constructor(problem: string) {
    super(`invalid subscriber: ${problem}`);
    this.name = 'InvalidSubscriberError';
  }
}

/** Returns what is wrong with a would-be subscriber, or undefined. */
export function checkSubscriber(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const s = value as Record<string, unknown>;
  if (typeof s.username !== 'string' || s.username.length === 0) return 'username must be a non-empty string';
  if (typeof s.domain !== 'string' || s.domain.length === 0) return 'domain must be a non-empty string';
  if (typeof s.ha1Md5 !== 'string' || !/^[0-9a-f]{32}$/i.test(s.ha1Md5)) return 'ha1Md5 must be 32 hex digits';
  if (typeof s.ha1Sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(s.ha1Sha256)) return 'ha1Sha256 must be 64 hex digits';
  if (!Array.isArray(s.groups) || !s.groups.every((g) => typeof g === 'string')) return 'groups must be an array of strings';
  if (!Number.isSafeInteger(s.createdAt)) return 'createdAt must be an integer (ms since the epoch)';
  return undefined;
}

/** The validated copy a store keeps: domain lower-cased, nothing shared with the caller. */
export function acceptSubscriber(s: Subscriber): Subscriber {
  const problem = checkSubscriber(s);
  if (problem) throw new InvalidSubscriberError(problem);
  return { ...s, domain: canonicalDomain(s.domain), groups: [...s.groups] };
}

export { canonicalDomain };

export const bySubscriberName: (a: Subscriber, b: Subscriber) => number = byUserName;

/** Subscribers in process memory (tests, labs). */
export class MemorySubscriberStore extends MemoryPerUserMap<Subscriber> implements SubscriberStore {
  constructor() {
    super(acceptSubscriber, copySubscriber);
  }
}

function copySubscriber(s: Subscriber): Subscriber {
  return { ...s, groups: [...s.groups] };
}
