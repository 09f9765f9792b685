import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { DnsClient } from './dns-client.js';
import { canonicalName, RCODE, type DnsMessage, type RecordOf, type RRType } from './dns-message.js';

/** Negative answers without an SOA to take the TTL from are remembered this long (RFC 2308 §5 leaves it to us). */
const DEFAULT_NEGATIVE_TTL_S = 30;
/** No answer is reused for more than a day, whatever its TTL (RFC 8767 §4 caps at a week; a moved server matters sooner). */
const MAX_TTL_S = 86_400;
/** CNAMEs followed within one answer before giving up (a loop or a misconfiguration). */
const MAX_CNAME_HOPS = 8;

export interface DnsAnswer<T extends RRType> {
  /** The RRset asked for, CNAMEs followed; empty for NXDOMAIN, no data, or a query that failed. */
  records: Array<RecordOf<T>>;
  /** For SRV: the A/AAAA records of the SRV targets that came in the additional section (RFC 2782 "Usage rules"). */
  additional: Array<RecordOf<'A' | 'AAAA'>>;
}

type AnyAnswer = DnsAnswer<RRType>;
const NO_ANSWER: AnyAnswer = Object.freeze({ records: [], additional: [] }) as unknown as AnyAnswer;

/** What an answer means for the cache: the records and how many seconds they may be reused. */
function interpretAnswer(m: DnsMessage, name: string, type: RRType): { answer: AnyAnswer; ttlS: number } {
  const negative = { answer: NO_ANSWER, ttlS: negativeTtl(m) };
  if (m.rcode === RCODE.NXDOMAIN) return negative;
  let owner = canonicalName(name);
  let ttl = MAX_TTL_S;
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const records = m.answers.filter((r) => r.type === type && canonicalName(r.name) === owner);
    if (records.length > 0) {
      const targets = new Set(records.map((r) => (r.type === 'SRV' ? canonicalName(r.target) : '')));
      const additional =
        type === 'SRV'
          ? m.additionals.filter((r): r is RecordOf<'A' | 'AAAA'> => (r.type === 'A' || r.type === 'AAAA') && targets.has(canonicalName(r.name)))
          : [];
      // The cached whole is only as fresh as its shortest-lived part.
      for (const r of [...records, ...additional]) ttl = Math.min(ttl, r.ttl);
      return { answer: { records, additional } as AnyAnswer, ttlS: ttl };
    }
    const cname = m.answers.find((r) => r.type === 'CNAME' && canonicalName(r.name) === owner);
    if (!cname || cname.type !== 'CNAME') break;
    ttl = Math.min(ttl, cname.ttl);
    owner = canonicalName(cname.target);
  }
  return negative;
}

/** RFC 2308 §5: the negative TTL is the lesser of the SOA's own TTL and its MINIMUM field. */
function negativeTtl(m: DnsMessage): number {
  const soa = m.authorities.find((r) => r.type === 'SOA');
  if (!soa || soa.type !== 'SOA') return DEFAULT_NEGATIVE_TTL_S;
  return Math.min(soa.ttl, soa.minimum, MAX_TTL_S);
}

export interface CachingDnsLookupOptions {
  client: Pick<DnsClient, 'query'>;
  clock: Clock;
  logger: Logger;
  /** Answers (positive and negative) kept; the least recently used goes first. */
  maxEntries: number;
}

interface Entry {
  expires: number;
  answer: AnyAnswer;
}

/**
 * DNS answers cached by TTL, with negative caching, and one query in flight per name and type however many callers
 * ask at once. A failed query (timeouts, server errors) reads as "no records" and is not cached: the next caller asks
 * again, so a resolver outage ends as soon as the resolver is back.
 */
export class CachingDnsLookup {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<AnyAnswer>>();

  constructor(private readonly options: CachingDnsLookupOptions) {}

  lookup<T extends RRType>(name: string, type: T): Promise<DnsAnswer<T>> {
    const key = `${type} ${canonicalName(name)}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      if (hit.expires > this.options.clock.now()) {
        this.cache.set(key, hit); // most recently used goes to the end
        return Promise.resolve(hit.answer as unknown as DnsAnswer<T>);
      }
    }
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetch(name, type, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending as unknown as Promise<DnsAnswer<T>>;
  }

  private async fetch(name: string, type: RRType, key: string): Promise<AnyAnswer> {
    let message: DnsMessage;
    try {
      message = await this.options.client.query(name, type);
    } catch (err) {
      this.options.logger.warn({ name, type, problem: (err as Error).message }, 'dns query failed');
      return NO_ANSWER;
    }
    const { answer, ttlS } = interpretAnswer(message, name, type);
    if (ttlS > 0) this.store(key, { expires: this.options.clock.now() + ttlS * 1000, answer });
    return answer;
  }

  private store(key: string, entry: Entry): void {
    if (this.options.maxEntries <= 0) return;
    while (this.cache.size >= this.options.maxEntries) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
    this.cache.set(key, entry);
  }
}
