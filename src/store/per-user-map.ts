/** Something kept per SIP user: the user part compares case-sensitively, the domain case-insensitively. */
export interface PerUser {
  username: string;
  domain: string;
}

export function canonicalDomain(domain: string): string {
  return domain.toLowerCase();
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function byUserName(a: PerUser, b: PerUser): number {
  return compare(a.domain, b.domain) || compare(a.username, b.username);
}

/** A store of one record per user (the message-waiting, message-box and watcher-rule stores share this shape). */
export interface PerUserStore<T extends PerUser> {
  get(username: string, domain: string): Promise<T | undefined>;
  /** Adds or replaces; rejects on a malformed record. */
  put(record: T): Promise<void>;
  /** Resolves to whether there was one. */
  remove(username: string, domain: string): Promise<boolean>;
  /** All records, or those of one domain, ordered by domain then username. */
  list(domain?: string): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * The in-memory backend shared by the per-user stores (subscribers, CPL scripts): records are validated on the way in
 * (`accept`, which also canonicalises the domain) and copied on the way out, so callers never share a stored object.
 */
export class MemoryPerUserMap<T extends PerUser> {
  private readonly byDomain = new Map<string, Map<string, T>>();

  constructor(
    private readonly accept: (record: T) => T,
    private readonly copy: (record: T) => T,
  ) {}

  async get(username: string, domain: string): Promise<T | undefined> {
    const r = this.byDomain.get(canonicalDomain(domain))?.get(username);
    return r && this.copy(r);
  }

  async put(record: T): Promise<void> {
    const kept = this.accept(record);
    let users = this.byDomain.get(kept.domain);
    if (!users) this.byDomain.set(kept.domain, (users = new Map()));
    users.set(kept.username, kept);
  }

  async remove(username: string, domain: string): Promise<boolean> {
    const key = canonicalDomain(domain);
    const users = this.byDomain.get(key);
    if (!users?.delete(username)) return false;
    if (users.size === 0) this.byDomain.delete(key);
    return true;
  }

  /** All records, or those of one domain, ordered by domain then username. */
  async list(domain?: string): Promise<T[]> {
    const domains = domain === undefined ? [...this.byDomain.values()] : [this.byDomain.get(canonicalDomain(domain))];
    return domains.flatMap((users) => (users ? [...users.values()].map(this.copy) : [])).sort(byUserName);
  }

  async close(): Promise<void> {}
}
