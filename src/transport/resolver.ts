import { isIP } from 'node:net';
import type { SipUri, Uri } from '../message/index.js';
import { SystemClock, type Clock } from '../util/clock.js';
import { ConfigError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { isInvalidName, normalizeAddress } from './address.js';
import { CachingDnsLookup } from './dns-cache.js';
import { DnsClient, parseDnsServer, systemDnsServers } from './dns-client.js';
import { canonicalName, isEncodableName, type RecordOf } from './dns-message.js';
import { DEFAULT_PORTS } from './response-route.js';
import type { TransportName } from './types.js';

export interface ResolvedTarget {
  transport: TransportName;
  address: string;
  port: number;
  /** the SRV/host name it came from, for TLS SNI */
  host?: string;
}

export interface SipResolver {
  /** RFC 3263 §4: targets to try, in order, for a SIP/SIPS URI (or a host/port/transport triple); blocklisted ones last or removed. */
  resolve(uri: SipUri): Promise<ResolvedTarget[]>;
  /** §4.3: a target that answered 503 or timed out / refused: put on a short blocklist (default 60 s, configurable). */
  markFailed(target: ResolvedTarget): void;
}

export interface DnsSipResolverOptions {
  /** Recursive resolvers as `ip[:port]` (`[ipv6]:port`); default: the system's (/etc/resolv.conf). */
  servers?: string[];
  clock?: Clock;
  /** Transports this element can send on; NAPTR services and SRV queries for others are ignored. */
  supportedTransports?: TransportName[];
  /** How long a target given to `markFailed` is skipped. 0 disables the blocklist. */
  blocklistMs?: number;
  /** Bound on cached DNS answers (and on blocklisted targets). */
  cacheMaxEntries?: number;
  /** Wait for one DNS server's answer this long before asking the next. */
  timeoutMs?: number;
  logger?: Logger;
  /** Uniform in [0, 1) for the RFC 2782 weighted selection; Math.random unless a test seeds it. */
  random?: () => number;
}

export const DNS_RESOLVER_DEFAULTS = {
  blocklistMs: 60_000,
  cacheMaxEntries: 1000,
  timeoutMs: 2000,
  supportedTransports: ['udp', 'tcp', 'tls'] as TransportName[],
};

/** RFC 3263 §4.1 and RFC 7118 NAPTR services (compared case-insensitively). A Map: service text is untrusted. */
const NAPTR_SERVICES = new Map<string, TransportName>([
  ['sip+d2u', 'udp'],
  ['sip+d2t', 'tcp'],
  ['sips+d2t', 'tls'],
  ['sip+d2w', 'ws'],
  ['sips+d2w', 'wss'],
]);

/**
 * SRV owner names (RFC 3263 §4.2: `_sips` for TLS, also for a SIP URI). RFC 7118 names no SRV records for WebSocket;
 * `_sip._ws`/`_sips._ws` are used only for an explicit `transport=ws|wss` without a port.
 */
const SRV_PREFIX: Record<TransportName, string> = { udp: '_sip._udp', tcp: '_sip._tcp', tls: '_sips._tcp', ws: '_sip._ws', wss: '_sips._ws' };

/** §4.1 without NAPTR: SRV is queried for these, in this (our) order of preference. */
const SRV_FALLBACK_ORDER: Record<'sip' | 'sips', TransportName[]> = { sip: ['udp', 'tcp', 'tls'], sips: ['tls'] };

/** Bounds on what one resolution produces, whatever the zone holds. */
const MAX_RECORDS = 16;
const MAX_TARGETS = 32;

/**
 * RFC 3263 §4 server location: NAPTR, then SRV (RFC 2782 ordering), then A/AAAA, with every answer cached by its TTL
 * and a blocklist of targets that recently failed (§4.3). Each instance has its own cache and blocklist.
 */
export class DnsSipResolver implements SipResolver {
  private readonly clock: Clock;
  private readonly lookup: CachingDnsLookup;
  private readonly supported: ReadonlySet<TransportName>;
  private readonly blocklistMs: number;
  private readonly maxBlocklisted: number;
  private readonly random: () => number;
  /** Target key -> time it may be used again. Insertion order is expiry order (one fixed blocklist period). */
  private readonly blocklist = new Map<string, number>();

  constructor(options: DnsSipResolverOptions = {}) {
    this.clock = options.clock ?? new SystemClock();
    const logger = options.logger ?? silentLogger();
    const timeoutMs = options.timeoutMs ?? DNS_RESOLVER_DEFAULTS.timeoutMs;
    this.blocklistMs = options.blocklistMs ?? DNS_RESOLVER_DEFAULTS.blocklistMs;
    this.maxBlocklisted = options.cacheMaxEntries ?? DNS_RESOLVER_DEFAULTS.cacheMaxEntries;
    if (!(timeoutMs > 0)) throw new ConfigError('dns.timeoutMs', `must be positive, not ${timeoutMs}`);
    if (!(this.blocklistMs >= 0)) throw new ConfigError('dns.blocklistMs', `must be 0 or more, not ${this.blocklistMs}`);
    if (!(this.maxBlocklisted >= 0)) throw new ConfigError('dns.cacheMaxEntries', `must be 0 or more, not ${this.maxBlocklisted}`);
    this.supported = new Set(options.supportedTransports ?? DNS_RESOLVER_DEFAULTS.supportedTransports);
    this.random = options.random ?? Math.random;
    const servers = options.servers ? options.servers.map(parseDnsServer) : systemDnsServers();
    this.lookup = new CachingDnsLookup({
      client: new DnsClient({ servers, timeoutMs, clock: this.clock, logger }),
      clock: this.clock,
      logger,
      maxEntries: this.maxBlocklisted,
    });
  }

  /**
   * Targets in the order to try them. Blocklisted targets are left out, unless every target is blocklisted: then all
   * are returned (in order), since trying a server that failed a while ago beats failing the request unasked.
   * An empty list means the URI names nothing reachable with the supported transports (or DNS gave nothing);
   * tel: and other non-SIP URIs are not located by RFC 3263 and give an empty list too.
   */
  async resolve(uri: Uri): Promise<ResolvedTarget[]> {
    if (uri.type !== 'sip') return [];
    const unique = new Map<string, ResolvedTarget>();
    for (const t of await this.locate(uri)) if (!unique.has(targetKey(t))) unique.set(targetKey(t), t);
    const targets = [...unique.values()].slice(0, MAX_TARGETS);
    const usable = targets.filter((t) => !this.isBlocklisted(t));
    return usable.length > 0 ? usable : targets;
  }

  markFailed(target: ResolvedTarget): void {
    if (this.blocklistMs === 0 || this.maxBlocklisted === 0) return;
    const key = targetKey(target);
    this.blocklist.delete(key);
    while (this.blocklist.size >= this.maxBlocklisted) this.blocklist.delete(this.blocklist.keys().next().value as string);
    this.blocklist.set(key, this.clock.now() + this.blocklistMs);
  }

  private isBlocklisted(target: ResolvedTarget): boolean {
    const key = targetKey(target);
    const until = this.blocklist.get(key);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.blocklist.delete(key);
    return false;
  }

  private async locate(uri: SipUri): Promise<ResolvedTarget[]> {
    const secure = uri.scheme === 'sips';
    // §4: the TARGET is maddr when present, else the host.
    const targetText = uri.params.get('maddr') || uri.host;
    const target = targetText.startsWith('[') ? targetText.slice(1, -1) : targetText;
    // §4.1: an explicit transport parameter decides; one we cannot use leaves nothing to try.
    const param = uri.transportParam;
    const explicit = param === undefined ? undefined : transportFromParam(param, secure);
    if (param !== undefined && (explicit === undefined || !this.supported.has(explicit))) return [];
    const chosen = explicit ?? this.defaultTransport(secure);

    if (isIP(target) !== 0) {
      return chosen ? [{ transport: chosen, address: normalizeAddress(target), port: uri.port ?? DEFAULT_PORTS[chosen] }] : [];
    }
    if (!isEncodableName(target) || canonicalName(target) === '' || isInvalidName(target)) return [];
    const name = canonicalName(target);
    // §4.2: an explicit port means A/AAAA only, no SRV.
    if (uri.port !== undefined) return chosen ? this.hostTargets(name, chosen, uri.port) : [];

    if (explicit) {
      const viaSrv = await this.srvTargets(`${SRV_PREFIX[explicit]}.${name}`, explicit);
      return viaSrv.length > 0 ? viaSrv : this.hostTargets(name, explicit, DEFAULT_PORTS[explicit]);
    }
    const viaNaptr = await this.naptrTargets(name, secure);
    if (viaNaptr.length > 0) return viaNaptr;
    // §4.1: no (usable) NAPTR: SRV for each supported transport, all queried at once, in our order of preference.
    const srvTransports = SRV_FALLBACK_ORDER[uri.scheme].filter((t) => this.supported.has(t));
    const viaSrv = (await Promise.all(srvTransports.map((t) => this.srvTargets(`${SRV_PREFIX[t]}.${name}`, t)))).flat();
    if (viaSrv.length > 0) return viaSrv;
    // §4.2: no SRV either: the host's addresses at the default port (5060 UDP for sip, 5061 TLS for sips).
    return chosen ? this.hostTargets(name, chosen, DEFAULT_PORTS[chosen]) : [];
  }

  /** §4.1: UDP for sip (TCP, then TLS, if UDP is not supported), TLS for sips. */
  private defaultTransport(secure: boolean): TransportName | undefined {
    return SRV_FALLBACK_ORDER[secure ? 'sips' : 'sip'].find((t) => this.supported.has(t));
  }

  /**
   * §4.1: NAPTR records whose service maps to a supported transport (a sips URI keeps only SIPS services; a sip URI
   * keeps them too, RFC 3263 §4.1), flag "s", ordered by order then preference. Each record's SRV set follows the
   * previous ones, so that a client can fail over from the most preferred transport to the next.
   */
  private async naptrTargets(name: string, secure: boolean): Promise<ResolvedTarget[]> {
    const { records } = await this.lookup.lookup(name, 'NAPTR');
    const usable: Array<{ record: RecordOf<'NAPTR'>; transport: TransportName }> = [];
    for (const record of records) {
      const transport = NAPTR_SERVICES.get(record.services.toLowerCase());
      if (!transport || !this.supported.has(transport) || (secure && transport !== 'tls' && transport !== 'wss')) continue;
      if (record.flags.toLowerCase() !== 's' || record.replacement === '' || !isEncodableName(record.replacement)) continue;
      usable.push({ record, transport });
    }
    usable.sort((a, b) => a.record.order - b.record.order || a.record.preference - b.record.preference);
    const lists = await Promise.all(usable.slice(0, MAX_RECORDS).map(({ record, transport }) => this.srvTargets(record.replacement, transport)));
    return lists.flat();
  }

  /** RFC 2782 usage rules: ordered SRV targets, each resolved to addresses (from the additional section if given). */
  private async srvTargets(srvName: string, transport: TransportName): Promise<ResolvedTarget[]> {
    const { records, additional } = await this.lookup.lookup(srvName, 'SRV');
    // A target of "." says the service is decidedly not available; port 0 cannot be contacted.
    const usable = records.filter((r) => r.target !== '' && r.port !== 0 && isEncodableName(r.target));
    const ordered = orderSrv(usable, this.random).slice(0, MAX_RECORDS);
    const lists = await Promise.all(
      ordered.map(async (srv) => {
        const host = canonicalName(srv.target);
        const given = additional.filter((a) => canonicalName(a.name) === host);
        const addresses = given.length > 0 ? addressesOf(given) : await this.addresses(host);
        return addresses.map((address) => ({ transport, address, port: srv.port, host }));
      }),
    );
    return lists.flat();
  }

  private async hostTargets(name: string, transport: TransportName, port: number): Promise<ResolvedTarget[]> {
    return (await this.addresses(name)).map((address) => ({ transport, address, port, host: name }));
  }

  private async addresses(name: string): Promise<string[]> {
    const [a, aaaa] = await Promise.all([this.lookup.lookup(name, 'A'), this.lookup.lookup(name, 'AAAA')]);
    return addressesOf([...a.records, ...aaaa.records]);
  }
}

/** IPv4 before IPv6, each in the order DNS gave them. */
function addressesOf(records: Array<RecordOf<'A' | 'AAAA'>>): string[] {
  const v4 = records.filter((r) => r.type === 'A');
  const v6 = records.filter((r) => r.type === 'AAAA');
  return [...v4, ...v6].map((r) => normalizeAddress(r.address));
}

/**
 * RFC 2782 "Usage rules": lowest priority first; within a priority, repeatedly pick a record with probability
 * proportional to its weight (zero-weight records first in the list, so that they have a small chance when a random
 * number of 0 comes up).
 */
function orderSrv<T extends { priority: number; weight: number }>(records: T[], random: () => number): T[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const out: T[] = [];
  for (const priority of priorities) {
    const group = records.filter((r) => r.priority === priority);
    const remaining = [...group.filter((r) => r.weight === 0), ...group.filter((r) => r.weight > 0)];
    while (remaining.length > 0) {
      const total = remaining.reduce((sum, r) => sum + r.weight, 0);
      const pick = Math.min(Math.floor(random() * (total + 1)), total);
      let running = 0;
      const index = remaining.findIndex((r) => (running += r.weight) >= pick);
      out.push(...remaining.splice(index, 1));
    }
  }
  return out;
}

/**
 * The transport a `transport` parameter names (§4.1). In a sips URI, `tcp` means TLS over TCP and `ws` secure
 * WebSocket; UDP cannot carry sips (RFC 3261 §26.2.2); `tls` is the deprecated spelling (RFC 5630).
 */
function transportFromParam(param: string, secure: boolean): TransportName | undefined {
  switch (param) {
    case 'udp':
      return secure ? undefined : 'udp';
    case 'tcp':
      return secure ? 'tls' : 'tcp';
    case 'tls':
      return 'tls';
    case 'ws':
      return secure ? 'wss' : 'ws';
    case 'wss':
      return 'wss';
    default:
      return undefined;
  }
}

function targetKey(t: ResolvedTarget): string {
  return `${t.transport}:${t.address}:${t.port}`;
}
