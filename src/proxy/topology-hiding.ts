/**
 * Topology hiding in the proxy (docs/sbc.md#stateless-topology-hiding-in-the-proxy): the stateless mode of
 * Kamailio's topoh. Nothing is stored per call: what one side of a hidden dialog must not see of the other travels
 * with the messages, encrypted and authenticated with a key of ours, and comes back in the answers and in the route
 * set of the dialog.
 *
 * A request of a hidden dialog leaves with one Via (ours: the values below it in its `swth` parameter), one
 * Record-Route value (ours: the sender's side's values in its `swth`), Contacts of ours (the original in `swct`) and,
 * towards the callee's side, an encoded Call-ID (`!sw!` + the encrypted original). Its responses get the Vias back
 * and the Call-ID as the sender knows it, their Record-Route is folded the other way (the sender's side sees one
 * value of ours with the other side's set in it, then its own values), their Contacts are masked. Each side thus sees
 * only itself and us; requests within the dialog are recognised by our Record-Route value in their route set, our
 * Contact as their Request-URI or our Call-ID, and are hidden again the same way.
 *
 * The encoding is deterministic authenticated encryption (SIV-like: IV = HMAC-SHA256 of the value, AES-256-CTR), so
 * that every message of a dialog shows the same Call-ID and Contact, and a retransmission, a CANCEL or the ACK of a
 * non-2xx response the same Via: a value altered, forged or made under another key does not open and the message
 * is refused (403 for a request, dropped for a response), never followed.
 */
import { createCipheriv, createHmac, randomBytes, timingSafeEqual, type Cipher } from 'node:crypto';
import { addRecordRoute, callIdOwner, parseViaList, tryParseUri, type NameAddr, type SipMessage, type SipRequest, type SipResponse, type Via } from '../message/index.js';
import { parseTrusted } from '../transport/flood-guard.js';
import { keyFromDataDir } from '../util/key-file.js';
import { DEFAULT_PORTS, normalizeAddress, TransportError, viaTransport, type BoundListener, type Destination, type Flow, type FlowTokens } from '../transport/index.js';
import { ConfigError, SipError } from '../util/errors.js';
import { FNV_OFFSET_BASIS, FNV_PRIME } from '../util/hash.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { parseBranch } from './branch-id.js';
import { Forwarder, recordRouteValue, type ForwarderOptions, type PreparedBranch, type ProxySender, type RecordRouting } from './forwarding.js';
import type { ProxyIdentity } from './identity.js';
import type { Target } from './target.js';

/** The Via and Record-Route/Route URI parameter of ours: the encoded set, or a marker (c, o, x). */
export const TOPOLOGY_PARAM = 'swth';
/** The Contact URI parameter carrying the encoded original Contact URI. */
export const CONTACT_PARAM = 'swct';
/**
 * The user part of our Contacts: a Request-URI with a user part is routed on, never taken for the server itself
 * (whose URIs have none), so requests to a Contact of ours reach the proxy, which puts the original back.
 */
export const CONTACT_USER = 'th';
/** Marks a Call-ID we encoded. */
export const CALL_ID_PREFIX = '!sw!';
/** The longest value (bytes) one encoding carries: a Via stack of a dozen hops, a long route set. */
export const MAX_PLAINTEXT = 2048;

const TAG_BYTES = 12;
const MIN_SECRET_BYTES = 16;
/** base64url of the tag and the longest plaintext. */
export const MAX_ENCODED = Math.ceil(((TAG_BYTES + MAX_PLAINTEXT) * 4) / 3);
const PARAM_EQ = `${TOPOLOGY_PARAM}=`;
const ENCODED = /^[A-Za-z0-9_-]+$/;
/** The steering pad of an encoded Call-ID (see maskCallId). */
const PAD = '~';
const PAD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** What one encoding carries; a value of one kind never opens as another (the kind is authenticated). */
export type TopologyKind = 'via' | 'route' | 'contact' | 'call-id';
const KIND_BYTE: Record<TopologyKind, number> = { via: 0x56, route: 0x52, contact: 0x43, 'call-id': 0x49 };

/**
 * Deterministic authenticated encryption of short strings (SIV-like): the first 12 bytes of HMAC-SHA256(kind, value)
 * are the tag and the IV of AES-256-CTR; the output is base64url(tag + ciphertext), 16 + 4/3 of the value's length in
 * characters. Equal values give equal outputs (a dialog keeps its Call-ID), which also tells an observer that two
 * values are equal, nothing more.
 */
export class TopologyCodec {
  private readonly macKey: Buffer;
  /** One AES-256-ECB context for the life of the codec: CTR's keystream blocks, made in one call per value. */
  private readonly ecb: Cipher;
  /**
   * Values repeat: a dialog's Call-ID, route sets and Contacts in every message, a Via in every response to its
   * request. Per kind, the last ones made or opened, both ways (a value made here opens without crypto).
   */
  private readonly sealed = new Map<TopologyKind, RecentMap<string>>();
  private readonly opened = new Map<TopologyKind, RecentMap<string>>();

  constructor(secret?: string | Uint8Array, field = 'topologyHiding.secret') {
    const raw = secret === undefined ? randomBytes(32) : Buffer.from(secret);
    if (raw.length < MIN_SECRET_BYTES) throw new ConfigError(field, `must be at least ${MIN_SECRET_BYTES} bytes`);
    // Derived keys: the same secret may serve elsewhere (flow tokens) without the uses meeting.
    this.macKey = createHmac('sha256', raw).update('sipway topology-hiding v1 mac').digest();
    this.ecb = createCipheriv('aes-256-ecb', createHmac('sha256', raw).update('sipway topology-hiding v1 enc').digest(), null);
    this.ecb.setAutoPadding(false);
    for (const kind of Object.keys(KIND_BYTE) as TopologyKind[]) {
      const limit = kind === 'via' ? VIA_CACHE_ENTRIES : CACHE_ENTRIES;
      this.sealed.set(kind, new RecentMap(limit));
      this.opened.set(kind, new RecentMap(limit));
    }
  }

  /** Encodes `value`; throws SipError 500 when it is longer than MAX_PLAINTEXT bytes. */
  seal(kind: TopologyKind, value: string): string {
    // A Via value is new every time (its branch): only its answers open it again.
    const sealed = kind === 'via' ? undefined : this.sealed.get(kind)!;
    const hit = sealed?.get(value);
    if (hit !== undefined) return hit;
    const plain = Buffer.from(value, 'utf8');
    if (plain.length > MAX_PLAINTEXT) throw new SipError(500, `Server Internal Error - ${kind} too long to hide`, 'TOPOLOGY_TOO_LONG');
    const out = Buffer.allocUnsafe(TAG_BYTES + plain.length);
    this.tag(kind, plain).copy(out);
    this.ctr(out.subarray(0, TAG_BYTES), plain, out.subarray(TAG_BYTES));
    const encoded = out.toString('base64url');
    this.remember(kind, value, encoded);
    return encoded;
  }

  /** What `encoded` carries; undefined for anything we did not make with this key (altered, forged, too long). */
  open(kind: TopologyKind, encoded: string): string | undefined {
    const hit = this.opened.get(kind)!.get(encoded);
    if (hit !== undefined) return hit;
    if (encoded.length < 16 || encoded.length > MAX_ENCODED || !ENCODED.test(encoded)) return undefined;
    const raw = Buffer.from(encoded, 'base64url');
    // One spelling per value: unused trailing bits set otherwise make another string of the same bytes.
    if (raw.length < TAG_BYTES || raw.toString('base64url') !== encoded) return undefined;
    const tag = raw.subarray(0, TAG_BYTES);
    const plain = Buffer.allocUnsafe(raw.length - TAG_BYTES);
    this.ctr(tag, raw.subarray(TAG_BYTES), plain);
    if (!timingSafeEqual(this.tag(kind, plain), tag)) return undefined;
    const value = plain.toString('utf8');
    this.remember(kind, value, encoded);
    return value;
  }

  private remember(kind: TopologyKind, value: string, encoded: string): void {
    if (kind !== 'via') this.sealed.get(kind)!.set(value, encoded);
    this.opened.get(kind)!.set(encoded, value);
  }

  private tag(kind: TopologyKind, plain: Buffer): Buffer {
    return createHmac('sha256', this.macKey).update(KIND_PREFIX[kind]).update(plain).digest().subarray(0, TAG_BYTES);
  }

  /** AES-256-CTR of `input` into `output`, the counter block being the tag, then a 32-bit block number from 0. */
  private ctr(tag: Buffer, input: Buffer, output: Buffer): void {
    const blocks = Math.ceil(input.length / 16);
    if (blocks === 0) return;
    const counters = Buffer.alloc(blocks * 16);
    for (let i = 0; i < blocks; i++) {
      tag.copy(counters, i * 16);
      counters.writeUInt32BE(i, i * 16 + 12);
    }
    const stream = this.ecb.update(counters);
    for (let i = 0; i < input.length; i++) output[i] = input[i]! ^ stream[i]!;
  }
}

const KIND_PREFIX: Record<TopologyKind, Buffer> = {
  via: Buffer.of(KIND_BYTE.via),
  route: Buffer.of(KIND_BYTE.route),
  contact: Buffer.of(KIND_BYTE.contact),
  'call-id': Buffer.of(KIND_BYTE['call-id']),
};

const CACHE_ENTRIES = 8_192;
const VIA_CACHE_ENTRIES = 4_096;

/**
 * A bounded map of recent entries in two generations: when the current one is full it becomes the previous one
 * (dropping the older), and a hit there moves back to the current. O(1) without the cost of deleting a Map's oldest
 * entries one by one (V8 skips their tombstones on every `keys().next()`: 6 µs an eviction at 10,000 entries).
 */
class RecentMap<V> {
  private current = new Map<string, V>();
  private previous = new Map<string, V>();

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.current.size + this.previous.size;
  }

  get(key: string): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: string, value: V): void {
    if (this.current.size >= this.limit) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }
}

// ---- configuration ----

/** The `topologyHiding` section of the config file (docs/configuration.md). */
export interface TopologyHidingConfig {
  /** Off by default: then nothing of this runs. */
  enabled: boolean;
  /** Key of the encodings (>= 16 bytes), shared by every node a dialog may cross; default a key file in `data`. */
  secret?: string;
  /**
   * The outside, the trust boundary: addresses, CIDR blocks, `ADDRESS:PORT`, `[IPv6]:PORT`. A request sent to it is
   * hidden (its topology stays inside), a request from it gets the inside's answers hidden; without it only the
   * routing policy chooses (ctx.hideTopology()).
   */
  outside: string[];
}

export function defaultTopologyHidingConfig(): TopologyHidingConfig {
  return { enabled: false, outside: [] };
}

/** Applies a config file's `topologyHiding` object onto `base`, validating every field. */
export function readTopologyHidingConfig(base: TopologyHidingConfig, value: unknown): TopologyHidingConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError('topologyHiding', 'must be an object like { enabled: true, outside: ["203.0.113.0/24"] }');
  const c: TopologyHidingConfig = { ...base, outside: [...base.outside] };
  for (const [k, v] of Object.entries(value)) {
    const field = `topologyHiding.${k}`;
    if (k === 'enabled') {
      if (typeof v !== 'boolean') throw new ConfigError(field, 'must be true or false');
      c.enabled = v;
    } else if (k === 'secret') {
      if (typeof v !== 'string' || Buffer.byteLength(v) < MIN_SECRET_BYTES) throw new ConfigError(field, `must be a string of at least ${MIN_SECRET_BYTES} bytes`);
      c.secret = v;
    } else if (k === 'outside') {
      if (!Array.isArray(v)) throw new ConfigError(field, 'must be a list of addresses, CIDR blocks or ADDRESS:PORT');
      c.outside = v.map((x, i) => {
        if (typeof x !== 'string') throw new ConfigError(`${field}[${i}]`, 'must be a string');
        parseOutside(x, `${field}[${i}]`);
        return x;
      });
    } else throw new ConfigError(field, 'unknown setting (enabled, secret, outside)');
  }
  return c;
}

/**
 * The key: the configured secret, else one kept in `dataDir/topology-hiding.key`, made once (atomically: the workers
 * of a cluster start together and must all read the same key), so that dialogs outlive a restart.
 */
export function topologyHidingKey(dataDir: string, secret: string | undefined): string | Buffer {
  return keyFromDataDir(dataDir, 'topology-hiding.key', 'topologyHiding.secret', secret);
}

interface OutsideRule {
  block: { contains(address: string): boolean };
  port: number | undefined;
}

/** `203.0.113.7`, `203.0.113.0/24`, `203.0.113.7:5060`, `2001:db8::/32`, `[2001:db8::7]:5060`. */
function parseOutside(text: string, field: string): OutsideRule {
  const t = text.trim();
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(t);
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(t);
  const [address, port] = v6 ? [v6[1]!, v6[2]] : v4 ? [v4[1]!, v4[2]] : [t, undefined];
  const p = port === undefined ? undefined : Number(port);
  if (p !== undefined && (p < 1 || p > 65535)) throw new ConfigError(field, `bad port in '${text}'`);
  return { block: parseTrusted(address, field), port: p };
}

// ---- the mode ----

export interface TopologyHidingOptions {
  /** Key of the encodings; default a random one (this process only). */
  secret?: string | Uint8Array;
  /** The outside (TopologyHidingConfig.outside). */
  outside?: readonly string[];
  /** Workers steering messages by Call-ID (docs/workers.md): an encoded Call-ID steers where its original does. */
  workers?: number;
  logger?: Logger;
}

/** What the proxy lends the mode: who we are, the listeners, the flow tokens of its Record-Route. */
export interface TopologyHidingEnv {
  identity: ProxyIdentity;
  sender: ProxySender;
  tokens: FlowTokens | undefined;
}

export interface TopologyHidingStats {
  /** Requests sent hidden: new dialogs (`policy` or `outside` chose them) and requests within hidden dialogs. */
  hidden: number;
  /** Responses of hidden requests, restored for the side they go back to. */
  responses: number;
  /** Requests refused (403) and responses dropped for an altered, forged or foreign-key value. */
  forged: number;
}

/**
 * A request to send hidden, and its Call-ID: encoded (the callee's side of the dialog), decoded on arrival (sent as
 * the caller's side knows it; the answers get it encoded again), or left alone (a request within a dialog that was
 * not hidden from its start: its Call-ID is known on both sides already).
 */
export interface Hidden {
  kind: 'hide';
  callId: 'mask' | 'decoded' | 'keep';
}

type Mark = Hidden | { kind: 'off' } | { kind: 'forged'; what: string };

/** What a request's own values said on arrival (see arrived). */
export interface Arrival {
  mark: Mark;
  /** The Call-ID decoded, for the working copy (the request as received keeps the one its sender knows). */
  callId?: string;
}

const OFF: Mark = { kind: 'off' };
const MASK: Hidden = { kind: 'hide', callId: 'mask' };
const KEEP: Hidden = { kind: 'hide', callId: 'keep' };
/** First character of our Via's encoded value: the answers' Call-ID is to be encoded again (`m`), or not (`-`). */
const REMASK = 'm';
const AS_IS = '-';

/**
 * The topology hiding of one proxy. The proxy asks `arrived` and `adopt` about each request before routing it, the
 * routing policy may `choose`, its forwarder (`forwarder()`) hides what it sends, and the server hands every
 * received response to `response` before the transaction layer sees it.
 */
export class TopologyHiding {
  readonly codec: TopologyCodec;
  private readonly outside: OutsideRule[];
  private readonly workers: number;
  private readonly logger: Logger;
  private env: TopologyHidingEnv | undefined;
  /** The working copies of requests and what to do with them (arrival values, the policy's choice). */
  private readonly marks = new WeakMap<SipRequest, Mark>();
  /** Stateless INVITEs hidden lately by branch: their CANCEL and non-2xx ACK carry nothing of ours but that branch. */
  private readonly recent = new RecentMap<Hidden>(CACHE_ENTRIES);
  /** Contact and Record-Route fields as received, and what they became (see swappedContacts, foldBack). */
  private readonly swapped = new RecentMap<string[]>(CACHE_ENTRIES);
  private readonly folded = new RecentMap<string[]>(CACHE_ENTRIES);
  private readonly counters: TopologyHidingStats = { hidden: 0, responses: 0, forged: 0 };

  constructor(options: TopologyHidingOptions = {}) {
    this.codec = new TopologyCodec(options.secret);
    this.outside = (options.outside ?? []).map((o, i) => parseOutside(o, `topologyHiding.outside[${i}]`));
    this.workers = options.workers ?? 1;
    this.logger = options.logger ?? silentLogger();
  }

  /** The proxy's identity, listeners and flow tokens (Proxy does this once). */
  attach(env: TopologyHidingEnv): void {
    this.env = env;
  }

  /** A forwarder that hides what it sends when the request is to be hidden. */
  forwarder(options: ForwarderOptions): Forwarder {
    return new HidingForwarder(options, this);
  }

  stats(): TopologyHidingStats {
    return { ...this.counters };
  }

  private get bound(): TopologyHidingEnv {
    if (this.env === undefined) throw new Error('TopologyHiding used before attach()');
    return this.env;
  }

  // ---- requests ----

  /**
   * A request as received, before §16.4, that belongs to a hidden dialog: a Route of ours with an encoded route set
   * gets the set back in its place (its first value, ours again, goes in §16.4 with the flow token it may carry), a
   * Request-URI that is a Contact of ours the original. Undefined for a request with nothing of ours; an altered
   * value is reported (forged) and changes nothing.
   */
  arrived(req: SipRequest): Arrival | undefined {
    const { identity } = this.bound;
    let hidden = false;
    const routeFields = req.headers.getAll('route');
    if (routeFields.length > 0 && routeFields.some((f) => f.includes(PARAM_EQ))) {
      let routes: NameAddr[];
      try {
        routes = req.routes;
      } catch {
        routes = [];
      }
      const values: string[] = [];
      let changed = false;
      let ours = true;
      for (const na of routes) {
        ours &&= identity.isOurs(na.uri);
        const p = ours && na.uri.type === 'sip' ? na.uri.params.get(TOPOLOGY_PARAM) : undefined;
        if (typeof p === 'string') {
          const set = this.codec.open('route', p);
          if (set === undefined) return this.refused(req, 'Route');
          values.push(...lines(set));
          changed = hidden = true;
          continue;
        }
        values.push(na.toString());
      }
      if (changed) {
        if (values.length > 0) req.headers.set('route', values.join(', '));
        else req.headers.remove('route');
      }
    }
    const uri = req.uri;
    if (uri.type === 'sip') {
      const p = uri.params.get(CONTACT_PARAM);
      if (typeof p === 'string' && identity.isOurs(uri)) {
        const original = this.codec.open('contact', p);
        const parsed = original === undefined ? undefined : tryParseUri(original);
        if (parsed === undefined) return this.refused(req, 'Request-URI');
        req.uri = parsed;
        hidden = true;
      }
    }
    if (req.callId.startsWith(CALL_ID_PREFIX)) {
      const callId = this.openCallId(req.callId);
      if (callId === undefined) return this.refused(req, 'Call-ID');
      return { mark: { kind: 'hide', callId: 'decoded' }, callId };
    }
    return hidden ? { mark: MASK } : undefined;
  }

  /** The working copy of a request that `arrived` reported on: its decoded Call-ID, and what to do with it. */
  adopt(work: SipRequest, arrival: Arrival): void {
    if (arrival.callId !== undefined) work.headers.set('call-id', arrival.callId);
    this.marks.set(work, arrival.mark);
  }

  /** Whether the request carried an altered or forged value (the proxy answers 403 and forwards nothing). */
  forged(work: SipRequest): boolean {
    return this.marks.get(work)?.kind === 'forged';
  }

  /**
   * The routing policy's choice for a request (ctx.hideTopology): hidden, or not whatever `outside` says. A request
   * within a hidden dialog is hidden whatever the choice. Returns whether the request is hidden.
   */
  choose(work: SipRequest, hide: boolean): boolean {
    const mark = this.marks.get(work);
    if (mark?.kind === 'hide') return true;
    if (mark?.kind === 'forged') return false;
    this.marks.set(work, hide ? (work.toTag === undefined ? MASK : KEEP) : OFF);
    return hide;
  }

  /**
   * How the copy of `work` for `hop` is sent: hidden (and how) or as usual (undefined). Throws SipError 403 for a
   * request that carried a forged value.
   */
  decide(work: SipRequest, method: string, hop: Destination, branch: string): Hidden | undefined {
    const mark = this.marks.get(work);
    if (mark !== undefined) {
      if (mark.kind === 'hide') return mark;
      if (mark.kind === 'forged') throw new SipError(403, 'Forbidden - altered topology hiding value', 'TOPOLOGY_FORGED');
      return undefined;
    }
    if ((method === 'CANCEL' || method === 'ACK') && this.recent.size > 0) {
      const known = this.recent.get(branch);
      if (known !== undefined) return known;
    }
    if (this.outside.length === 0) return undefined;
    // A request crossing the trust boundary, either way, starts a hidden dialog.
    const source = work.source;
    if (this.isOutside(hop.address, hop.port) || (source !== undefined && this.isOutside(source.address, source.port))) return work.toTag === undefined ? MASK : KEEP;
    return undefined;
  }

  private isOutside(address: string, port: number): boolean {
    const a = normalizeAddress(address);
    return this.outside.some((r) => (r.port === undefined || r.port === port) && r.block.contains(a));
  }

  /**
   * Hides a request built for `hop` (our Via on top, no Record-Route of ours yet): the Vias below ours go into our
   * Via, the sender's side's Record-Route values (of a request starting a dialog) into ours, after ours facing the
   * sender; the Contacts become ours, the Call-ID is encoded for the callee's side.
   */
  hide(req: SipRequest, hidden: Hidden, prepared: PreparedBranch, hop: Destination, out: BoundListener, rr: RecordRouting | undefined, branch: string): void {
    this.counters.hidden++;
    const { tokens } = this.bound;
    const vias = req.headers.list('via');
    const flag = hidden.callId === 'decoded' ? REMASK : AS_IS;
    req.headers.remove('via');
    req.headers.prepend('via', `${vias[0]!};${TOPOLOGY_PARAM}=${this.codec.seal('via', flag + vias.slice(1).join('\n'))}`);
    const senders = req.headers.list('record-route');
    if (senders.length > 0) req.headers.remove('record-route');
    // A route set is made by a request that starts a dialog; one within a dialog never changes it (RFC 3261
    // §12.2): no Record-Route at all there, so nothing of the sender's side rides on it either.
    if (recordRoutable(req.method) && req.toTag === undefined) {
      // Ours facing the sender (with the flow token of a phone that sent it itself) heads the set: requests from the
      // other side get it back as their Route, and §16.4 takes the token from it.
      const sips = req.uri.type === 'sip' && req.uri.scheme === 'sips';
      const outToken = tokens && prepared.toFlow ? tokens.encode(hopFlow(hop, out)) : undefined;
      const inToken = tokens && rr?.inboundFlow ? tokens.encode(rr.inboundFlow) : undefined;
      const set = [recordRouteValue(rr?.inbound ?? out, sips, inToken), ...senders].join('\n');
      addRecordRoute(req, withParam(recordRouteValue(out, sips, outToken), TOPOLOGY_PARAM, this.codec.seal('route', set)));
    }
    // A registration's Path (RFC 3327): the sender's side's values ride in one of ours, which requests to the
    // registered user bring back as their Route (arrived puts the values in its place).
    const paths = req.headers.list('path');
    if (paths.length > 0) {
      const sips = req.uri.type === 'sip' && req.uri.scheme === 'sips';
      req.headers.set('path', withParam(recordRouteValue(out, sips), TOPOLOGY_PARAM, this.codec.seal('route', paths.join('\n'))));
    }
    const contacts = this.swappedContacts(req, out, false);
    if (contacts) setList(req, 'contact', contacts);
    if (hidden.callId === 'mask' && !req.callId.startsWith(CALL_ID_PREFIX)) req.headers.set('call-id', this.maskCallId(req.callId));
    if (req.method === 'INVITE' && parseBranch(branch)?.stateless) this.recent.set(branch, hidden);
  }

  /**
   * The Contact values `m` is to carry: ours go back to what they stand for when `restore` (in a response: the echo
   * of the receiver's own); every other sip/sips one becomes one of ours on `listener` carrying it. Undefined: no
   * Contact to change; null: an altered one of ours.
   */
  private swappedContacts(m: SipMessage, listener: BoundListener | undefined, restore: boolean): string[] | undefined | null {
    const fields = m.headers.getAll('contact');
    if (fields.length === 0 || (fields.length === 1 && fields[0]!.trim() === '*')) return undefined;
    // The same Contact crosses in every message of a dialog (and of every call of a phone): done once.
    const key = `${restore ? 'r' : 'm'}${listener === undefined ? '' : `${listener.transport} ${listener.advertised}`}\n${fields.join('\n')}`;
    const known = this.swapped.get(key);
    if (known !== undefined) return known;
    const values = this.swapContacts(m, listener, restore);
    if (values) this.swapped.set(key, values);
    return values;
  }

  private swapContacts(m: SipMessage, listener: BoundListener | undefined, restore: boolean): string[] | null {
    let contacts: NameAddr[];
    try {
      contacts = m.contacts;
    } catch {
      // Unreadable (the transport validates requests' Contacts; a response's may be anything): nothing of it passes.
      return [];
    }
    const values: string[] = [];
    for (const na of contacts) {
      if (na.uri.type !== 'sip') {
        values.push(na.toString());
        continue;
      }
      const p = na.uri.params.get(CONTACT_PARAM);
      if (typeof p === 'string' && this.bound.identity.isOurs(na.uri)) {
        if (!restore) {
          values.push(na.toString());
          continue;
        }
        const original = this.codec.open('contact', p);
        const uri = original === undefined ? undefined : tryParseUri(original);
        if (uri === undefined) return null;
        const c = na.clone();
        c.uri = uri;
        c.angle = true;
        values.push(c.toString());
        continue;
      }
      if (listener === undefined) continue;
      const uri = `${ourUri(listener, na.uri.scheme === 'sips', CONTACT_USER)};${CONTACT_PARAM}=${this.codec.seal('contact', na.uri.toString())}`;
      const display = na.displayName !== undefined && na.displayName.length > 0 ? `${na.displayName} ` : '';
      values.push(`${display}<${uri}>${na.params.toString()}`);
    }
    return values;
  }

  /**
   * `!sw!` + the encoded Call-ID; with several workers steering by Call-ID (docs/workers.md), a pad after `~` makes
   * it steer to the worker its original steers to: the transactions of both sides of a call live on that worker.
   */
  maskCallId(callId: string): string {
    const masked = CALL_ID_PREFIX + this.codec.seal('call-id', callId);
    if (this.workers <= 1) return masked;
    const want = callIdOwner(callId, this.workers);
    let h = FNV_OFFSET_BASIS;
    for (const c of masked + PAD) h = Math.imul(h ^ c.charCodeAt(0), FNV_PRIME);
    for (const a of PAD_ALPHABET) {
      const ha = Math.imul(h ^ a.charCodeAt(0), FNV_PRIME);
      if ((ha >>> 0) % this.workers === want) return `${masked}${PAD}${a}`;
    }
    for (const a of PAD_ALPHABET) {
      const ha = Math.imul(h ^ a.charCodeAt(0), FNV_PRIME);
      for (const b of PAD_ALPHABET) {
        if ((Math.imul(ha ^ b.charCodeAt(0), FNV_PRIME) >>> 0) % this.workers === want) return `${masked}${PAD}${a}${b}`;
      }
    }
    return masked;
  }

  /** The Call-ID a `!sw!` one stands for, or undefined when it is not one of ours. */
  openCallId(masked: string): string | undefined {
    if (!masked.startsWith(CALL_ID_PREFIX)) return undefined;
    const pad = masked.indexOf(PAD, CALL_ID_PREFIX.length);
    return this.codec.open('call-id', masked.slice(CALL_ID_PREFIX.length, pad < 0 ? undefined : pad));
  }

  private refused(req: SipRequest, what: string): Arrival {
    this.counters.forged++;
    this.logger.warn({ method: req.method, callId: req.callId, src: req.source?.address, what }, 'topology hiding: altered or forged value; request refused');
    return { mark: { kind: 'forged', what } };
  }

  // ---- responses ----

  /**
   * A response as received, before the transaction layer: one to a request we hid gets, for the side it goes back
   * to, its Via values and its Call-ID back, the other side's Record-Route values folded into ours and the other
   * side's Contacts masked. Returns false when it must be dropped (an altered value); then it is left as it came.
   */
  response(res: SipResponse): boolean {
    const first = res.headers.get('via');
    if (first === undefined || !first.includes(PARAM_EQ)) return true;
    let via: Via;
    try {
      via = res.via;
    } catch {
      return true;
    }
    const encoded = via.params.get(TOPOLOGY_PARAM);
    if (typeof encoded !== 'string' || !this.bound.identity.isOurSentBy(via)) return true;
    const opened = this.codec.open('via', encoded);
    if (opened === undefined || opened.length === 0) return this.dropped(res, 'Via');
    const vias = lines(opened.slice(1));
    let callId: string | undefined;
    if (res.callId.startsWith(CALL_ID_PREFIX)) {
      callId = this.openCallId(res.callId);
      if (callId === undefined) return this.dropped(res, 'Call-ID');
    } else if (opened[0] === REMASK) callId = this.maskCallId(res.callId);
    let routes: string[] | undefined;
    if (res.headers.has('record-route')) {
      routes = this.foldBack(res);
      if (routes === undefined) return this.dropped(res, 'Record-Route');
    }
    // The registrar's 200 names the Path it stored: ours goes back to the sender's values.
    let paths: string[] | undefined;
    const pathFields = res.headers.getAll('path');
    if (pathFields.length > 0 && pathFields.some((f) => f.includes(PARAM_EQ))) {
      paths = [];
      for (const value of res.headers.list('path')) {
        const p = /;swth=([A-Za-z0-9_-]+)/.exec(value)?.[1];
        if (p === undefined) {
          paths.push(value);
          continue;
        }
        const set = this.codec.open('route', p);
        if (set === undefined) return this.dropped(res, 'Path');
        paths.push(...lines(set));
      }
    }
    // What the response goes back to: the next Via, the first of the sender's side.
    const listener = vias.length > 0 ? this.listenerFor(vias[0]!) : undefined;
    const contacts = this.swappedContacts(res, listener, true);
    if (contacts === null) return this.dropped(res, 'Contact');
    // Everything opened: now the response changes.
    this.counters.responses++;
    const top = res.headers.removeFirstValue('via')!;
    res.headers.remove('via');
    for (let i = vias.length - 1; i >= 0; i--) res.headers.prepend('via', vias[i]!);
    res.headers.prepend('via', top);
    if (callId !== undefined) res.headers.set('call-id', callId);
    if (routes !== undefined) setList(res, 'record-route', routes);
    if (paths !== undefined) setList(res, 'path', paths);
    if (contacts) setList(res, 'contact', contacts);
    return true;
  }

  /**
   * The Record-Route of a response to a hidden request, for the side it goes back to: above ours (the receiver's
   * side's values, nearest to the receiver first) and ours become one value of ours facing the sender with them
   * inside; then the sender's own values come back from ours. Undefined for an altered value. Without ours, every
   * value is the receiver's side's: none goes back.
   */
  private foldBack(res: SipResponse): string[] | undefined {
    // Every provisional and final response of a dialog's first request carries the same values: folded once.
    const key = res.headers.getAll('record-route').join('\n');
    const known = this.folded.get(key);
    if (known !== undefined) return known;
    const values = this.fold(res);
    if (values) this.folded.set(key, values);
    return values;
  }

  private fold(res: SipResponse): string[] | undefined {
    const { identity } = this.bound;
    let list: NameAddr[];
    try {
      list = res.recordRoutes;
    } catch {
      return [];
    }
    const at = list.findIndex((na) => na.uri.type === 'sip' && typeof na.uri.params.get(TOPOLOGY_PARAM) === 'string' && identity.isOurs(na.uri));
    if (at < 0) return [];
    const ours = list[at]!;
    const encoded = ours.uri.type === 'sip' ? ours.uri.params.get(TOPOLOGY_PARAM) : undefined;
    const set = typeof encoded === 'string' ? this.codec.open('route', encoded) : undefined;
    if (set === undefined) return undefined;
    const [facingSender, ...senders] = lines(set);
    if (facingSender === undefined) return undefined;
    const facingReceiver = ours.clone();
    if (facingReceiver.uri.type === 'sip') facingReceiver.uri.params.delete(TOPOLOGY_PARAM);
    const receivers = [facingReceiver.toString(), ...list.slice(0, at).reverse().map((na) => na.toString())].join('\n');
    return [withParam(facingSender, TOPOLOGY_PARAM, this.codec.seal('route', receivers)), ...senders, ...list.slice(at + 1).map((na) => na.toString())];
  }

  /** The listener that reaches a Via value's sender (where a response goes, §18.2.2). */
  private listenerFor(viaValue: string): BoundListener | undefined {
    const { sender } = this.bound;
    let next: Via | undefined;
    try {
      next = parseViaList(viaValue)[0];
    } catch {
      next = undefined;
    }
    if (next === undefined) return sender.listeners()[0];
    const transport = viaTransport(next.transport) ?? 'udp';
    const rport = next.rport;
    const destination: Destination = { transport, address: next.received ?? next.hostname, port: typeof rport === 'number' ? rport : (next.port ?? DEFAULT_PORTS[transport]) };
    return sender.listenerFor(destination) ?? sender.listeners()[0];
  }

  private dropped(res: SipResponse, what: string): boolean {
    this.counters.forged++;
    this.logger.warn({ status: res.status, callId: res.callId, src: res.source?.address, what }, 'topology hiding: altered or forged value; response dropped');
    return false;
  }
}

/**
 * The proxy's forwarder when topology hiding is on: it remembers which request each branch copies, and hides the
 * copy it builds for a hop when the request is to be hidden (`TopologyHiding.decide`).
 */
class HidingForwarder extends Forwarder {
  private readonly works = new WeakMap<PreparedBranch, SipRequest>();
  private readonly sender: ProxySender;

  constructor(
    options: ForwarderOptions,
    private readonly hiding: TopologyHiding,
  ) {
    super(options);
    this.sender = options.sender;
  }

  override async prepare(work: SipRequest, target: Target): Promise<PreparedBranch> {
    const prepared = await super.prepare(work, target);
    this.works.set(prepared, work);
    return prepared;
  }

  override build(prepared: PreparedBranch, hop: Destination, branch: string, rr: RecordRouting | undefined): SipRequest {
    const work = this.works.get(prepared);
    const hidden = work === undefined ? undefined : this.hiding.decide(work, prepared.copy.method, hop, branch);
    if (hidden === undefined) return super.build(prepared, hop, branch, rr);
    // Our Via only: the hiding makes our Record-Route value, which knows which side each value faces.
    const req = super.build(prepared, hop, branch, undefined);
    const out = this.sender.listenerFor(hop);
    if (!out) throw new TransportError('no-listener', `no ${hop.transport} listener to forward from`, hop);
    this.hiding.hide(req, hidden, prepared, hop, out, rr, branch);
    return req;
  }
}

/** Hop-by-hop requests (ACK, CANCEL) and registrations never make or use a route set through us. */
function recordRoutable(method: string): boolean {
  return method !== 'ACK' && method !== 'CANCEL' && method !== 'REGISTER';
}

/** `<sip:...>` (a value we made: in angle brackets, no header parameters) with a URI parameter added. */
function withParam(value: string, name: string, v: string): string {
  return `${value.slice(0, -1)};${name}=${v}>`;
}

/** A URI naming a listener of ours (as in Record-Route, without lr). */
function ourUri(l: BoundListener, sips: boolean, user: string): string {
  const secure = sips && (l.transport === 'tls' || l.transport === 'wss');
  let params = '';
  if (l.transport === 'wss' && secure) params = ';transport=ws';
  else if (l.transport !== 'udp' && !secure) params = `;transport=${l.transport}`;
  return `${secure ? 'sips' : 'sip'}:${user}@${l.advertised}${params}`;
}

/** The flow a hop to a phone's flow stands for (as forwarding.ts makes it for a flow token). */
function hopFlow(hop: Destination, out: BoundListener): Flow {
  const flow: Flow = { transport: hop.transport, address: normalizeAddress(hop.address), port: hop.port, localAddress: normalizeAddress(out.host), localPort: out.port };
  if (hop.transport !== 'udp' && hop.flowId !== undefined) flow.connectionId = hop.flowId;
  return flow;
}

/** One field with these values, or none. */
function setList(m: SipMessage, name: string, values: readonly string[]): void {
  if (values.length > 0) m.headers.set(name, values.join(', '));
  else m.headers.remove(name);
}

function lines(text: string): string[] {
  return text === '' ? [] : text.split('\n');
}
