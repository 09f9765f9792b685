import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ConfigError } from '../util/errors.js';
import { DEFAULT_PORTS } from './response-route.js';
import type { BoundListener, ListenSpec, TransportName } from './types.js';

const TRANSPORTS: ReadonlySet<string> = new Set<TransportName>(['udp', 'tcp', 'tls', 'ws', 'wss']);

export function addressFamily(address: string): 4 | 6 | undefined {
  const f = isIP(address);
  return f === 4 || f === 6 ? f : undefined;
}

/**
 * Socket addresses as the rest of the stack sees them: a dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`,
 * which would never equal the Via sent-by or a stored contact, so the mapped form is unwrapped.
 */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return '';
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

/** host:port with IPv6 references in brackets (RFC 3261 §25.1 hostport, RFC 5118). */
export function hostPort(host: string, port: number): string {
  return `${bracketed(host)}:${port}`;
}

export function bracketed(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded; a zone id `%eth0` ignored). */
export function ipv6Groups(address: string): number[] {
  const [head = '', tail] = address.split('%')[0]!.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => parseInt(g, 16) || 0);
}

/**
 * RFC 6761 §6.4: `invalid.` and the names under it never resolve, and must not be looked up (a WebSocket client's
 * Contact names a random host under .invalid: only its connection reaches it).
 */
export function isInvalidName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'invalid' || h.endsWith('.invalid');
}

/** An IP address as a string of 32 or 128 bits, for prefix comparisons. */
export function addressBits(address: string): string {
  if (isIP(address) === 4) return address.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  return ipv6Groups(address).map((g) => g.toString(2).padStart(16, '0')).join('');
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/**
 * What to put in our Via sent-by for a listener: a configured host for wildcard binds (a public name or NAT address),
 * else the first non-loopback interface address of the family, else loopback.
 */
export function advertisedHost(boundHost: string, configured: string | undefined): string {
  if (!isWildcard(boundHost)) return boundHost;
  if (configured) return configured;
  const family = boundHost === '::' ? 'IPv6' : 'IPv4';
  for (const list of Object.values(networkInterfaces())) {
    // Link-local IPv6 addresses need a zone id and are useless to a peer elsewhere.
    const found = list?.find((i) => i.family === family && !i.internal && !i.address.startsWith('fe80:'));
    if (found) return found.address;
  }
  return family === 'IPv6' ? '::1' : '127.0.0.1';
}

/**
 * Parses `transport:host[:port]` (`udp:0.0.0.0:5060`, `tls:[::1]:5061`, `ws:127.0.0.1`); the port defaults to the
 * transport's well-known port (RFC 3261 §19.1.2, RFC 7118 §7).
 */
export function parseListenSpec(text: string): ListenSpec {
  const m = /^([a-z]+):(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text.trim());
  const transport = m?.[1];
  if (!m || transport === undefined || !TRANSPORTS.has(transport)) {
    throw new ConfigError('listen', `'${text}' is not transport:host[:port] with transport udp, tcp, tls, ws or wss`);
  }
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  if (m[2]!.startsWith('[') && isIP(host) !== 6) throw new ConfigError('listen', `'${host}' in '${text}' is not an IPv6 address`);
  const port = m[3] === undefined ? DEFAULT_PORTS[transport as TransportName] : Number(m[3]);
  if (port > 65535) throw new ConfigError('listen', `port ${port} in '${text}' is out of range`);
  return { transport: transport as TransportName, host, port };
}

export function formatListenSpec(spec: ListenSpec): string {
  return `${spec.transport}:${hostPort(spec.host, spec.port)}`;
}

/** The host part of a listener's advertised host:port, lower case, without IPv6 brackets (for SDP, comparisons). */
export function advertisedHostname(l: BoundListener): string {
  const colon = l.advertised.lastIndexOf(':');
  return l.advertised.slice(0, colon).replace(/^\[|\]$/g, '').toLowerCase();
}
