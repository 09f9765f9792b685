import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError } from '../util/errors.js';
import type { MessageSource } from '../message/index.js';
import { ipv6Groups, normalizeAddress } from './address.js';
import type { TransportName } from './types.js';

/**
 * A flow (RFC 5626 §3.4): the transport, the peer's address and port as we see them (after any NAT), the local socket
 * they reach, and for a connection its id. It is what an edge proxy needs to send a request back to a phone over
 * the path the phone's own traffic opened.
 */
export interface Flow {
  transport: TransportName;
  address: string;
  port: number;
  localAddress: string;
  localPort: number;
  /** The connection (TCP, TLS, WS, WSS); a UDP flow is named by its socket, which survives a restart. */
  connectionId?: string;
}

export type FlowTokenResult = { ok: true; flow: Flow } | { ok: false; reason: 'forged' | 'malformed' };

/** Marks a URI user part as a flow token, so that a user name in a Route of ours is never mistaken for a forgery. */
const PREFIX = 'ft.';
const VERSION = 1;
const MAC_BYTES = 10;
const TRANSPORTS: readonly TransportName[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];
const MIN_SECRET_BYTES = 16;

/** The flow a received message came over. */
export function flowOf(source: MessageSource): Flow {
  const flow: Flow = {
    transport: source.transport as TransportName,
    address: source.address,
    port: source.port,
    localAddress: source.localAddress,
    localPort: source.localPort,
  };
  if (source.transport !== 'udp') flow.connectionId = source.flowId;
  return flow;
}

/** Whether a message came over `flow` (RFC 5626 §5.3: tells an "outgoing" request from an "incoming" one). */
export function cameOver(source: MessageSource | undefined, flow: Flow): boolean {
  if (!source || source.transport !== flow.transport) return false;
  if (flow.connectionId !== undefined) return source.flowId === flow.connectionId;
  return normalizeAddress(source.address) === flow.address && source.port === flow.port;
}

/**
 * RFC 5626 §5.2 flow tokens: a flow written into a SIP URI user part (Record-Route, Path) so that a request that
 * comes back with it can be sent over that flow, whatever its Request-URI names. The token is authenticated with an
 * HMAC: a forged or altered one must never steer a request into somebody else's connection or NAT binding. It is
 * not encrypted (a phone learns nothing from it that it did not see on the wire).
 *
 * Layout before base64url: version+transport, address family, peer address, peer port, local address, local port,
 * connection id (streams), then the first MAC_BYTES of HMAC-SHA256 over all of that.
 */
export class FlowTokens {
  private readonly key: Buffer;
  /**
   * Tokens made and read lately: every call of a phone carries the same token, and an HMAC per Record-Route value
   * and per Route value read cost ~7 % of a proxy's CPU per call. Bounded; only authentic tokens are kept, so a
   * flood of forgeries cannot evict them.
   */
  private readonly encoded = new Map<string, string>();
  private readonly decoded = new Map<string, FlowTokenResult & { ok: true }>();

  /** `secret` must be shared by every process that sends the Record-Route (workers of one server). */
  constructor(secret?: string | Uint8Array, field = 'proxy.flowTokenSecret') {
    const raw = secret === undefined ? randomBytes(32) : Buffer.from(secret);
    if (raw.length < MIN_SECRET_BYTES) throw new ConfigError(field, `must be at least ${MIN_SECRET_BYTES} bytes`);
    // A derived key: the same secret may serve elsewhere without the two uses meeting.
    this.key = createHmac('sha256', raw).update('sipway flow-token v1').digest();
  }

  encode(flow: Flow): string {
    const cacheKey = `${flow.transport}|${flow.address}|${flow.port}|${flow.localAddress}|${flow.localPort}|${flow.connectionId ?? ''}`;
    const hit = this.encoded.get(cacheKey);
    if (hit !== undefined) return hit;
    const token = this.compute(flow);
    remember(this.encoded, cacheKey, token);
    return token;
  }

  private compute(flow: Flow): string {
    const family = isIP(flow.address) === 6 ? 6 : 4;
    const parts: Buffer[] = [
      Buffer.from([(VERSION << 4) | TRANSPORTS.indexOf(flow.transport), family]),
      addressBytes(flow.address, family),
      port(flow.port),
      addressBytes(flow.localAddress, isIP(flow.localAddress) === 6 ? 6 : 4, true),
      port(flow.localPort),
    ];
    if (flow.connectionId !== undefined) parts.push(Buffer.from(flow.connectionId, 'latin1'));
    const body = Buffer.concat(parts);
    return PREFIX + Buffer.concat([body, this.mac(body)]).toString('base64url');
  }

  /** Whether a URI user part has the form of a flow token (of ours or forged). */
  static isToken(user: string | undefined): boolean {
    return user !== undefined && user.startsWith(PREFIX);
  }

  decode(token: string): FlowTokenResult {
    const hit = this.decoded.get(token);
    if (hit) return { ok: true, flow: { ...hit.flow } };
    const result = this.verify(token);
    if (result.ok) remember(this.decoded, token, { ok: true, flow: { ...result.flow } });
    return result;
  }

  private verify(token: string): FlowTokenResult {
    if (!token.startsWith(PREFIX)) return { ok: false, reason: 'malformed' };
    const text = token.slice(PREFIX.length);
    // A token of the right form with a wrong MAC is a forgery; one of the wrong form was never ours either.
    if (!/^[A-Za-z0-9_-]{16,200}$/.test(text)) return { ok: false, reason: 'forged' };
    const raw = Buffer.from(text, 'base64url');
    // One spelling per token: unused trailing bits set otherwise make another string of the same bytes.
    if (raw.toString('base64url') !== text) return { ok: false, reason: 'forged' };
    if (raw.length <= MAC_BYTES + 2) return { ok: false, reason: 'forged' };
    const body = raw.subarray(0, raw.length - MAC_BYTES);
    if (!timingSafeEqual(this.mac(body), raw.subarray(raw.length - MAC_BYTES))) return { ok: false, reason: 'forged' };
    try {
      return { ok: true, flow: parseBody(body) };
    } catch {
      // Authentic but unreadable: only a token of another version could be; treat it as not ours to follow.
      return { ok: false, reason: 'malformed' };
    }
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}

const CACHE_ENTRIES = 10_000;

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
}

function parseBody(body: Buffer): Flow {
  const head = body[0]!;
  const transport = TRANSPORTS[head & 0x0f];
  if (head >> 4 !== VERSION || transport === undefined) throw new Error('version');
  const family = body[1] === 6 ? 6 : 4;
  let at = 2;
  const address = readAddress(body, at, family);
  at += family === 6 ? 16 : 4;
  const remotePort = body.readUInt16BE(at);
  at += 2;
  const localFamily = body[at] === 6 ? 6 : 4;
  at += 1;
  const localAddress = readAddress(body, at, localFamily);
  at += localFamily === 6 ? 16 : 4;
  const localPort = body.readUInt16BE(at);
  at += 2;
  const flow: Flow = { transport, address, port: remotePort, localAddress, localPort };
  if (at < body.length) flow.connectionId = body.subarray(at).toString('latin1');
  return flow;
}

function addressBytes(address: string, family: 4 | 6, tagged = false): Buffer {
  const bytes = family === 4 ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
  return tagged ? Buffer.concat([Buffer.from([family]), bytes]) : bytes;
}

function readAddress(body: Buffer, at: number, family: 4 | 6): string {
  if (family === 4) return [...body.subarray(at, at + 4)].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(at + i).toString(16));
  return compressIpv6(groups);
}

function ipv6Bytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  ipv6Groups(address).forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** The canonical text form (RFC 5952): the longest run of zero groups as `::`. */
function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function port(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
