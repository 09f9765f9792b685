/**
 * The registrar of RFC 3261 §10.3, with Path (RFC 3327), Outbound (RFC 5626) and GRUU (RFC 5627), over a
 * LocationStore. `handle` answers REGISTER requests that the server core has validated; `lookup` resolves a
 * Request-URI (AOR or GRUU) to the bindings a proxy forwards to.
 */
import type { AuthResult, AuthService } from '../auth/auth-service.js';
import {
  HeaderSyntaxError,
  createResponse,
  optionTags,
  parseNameAddr,
  tryParseUri,
  unescape,
  type ResponseOptions,
  type SipRequest,
  type SipResponse,
  type SipUri,
} from '../message/index.js';
import { bindingKey, LocationContentionError, type Binding, type BindingSource, type LocationStore, type SubscriberStore } from '../store/index.js';
import { responseDestination } from '../transport/index.js';
import type { Clock } from '../util/clock.js';
import { ConfigError, SipError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { aorDomain, aorOf, canonicalAor } from './aor.js';
import { readContacts, type ContactUpdate, type ExpiryPolicy, type RegisterContacts } from './contacts.js';
import { TEMP_GRUU_PREFIX, TempGruuCodec, publicGruu, temporaryGruu } from './gruu.js';

/** What the registrar needs from a server transaction; the same shape as the server core's RequestResponder. */
export interface RegisterResponder {
  readonly request: SipRequest;
  respond(response: SipResponse): void;
}

export interface RegistrarOptions {
  location: LocationStore;
  /** Consulted for third-party registrations: the target AOR must be a subscriber. */
  subscribers: SubscriberStore;
  /** Digest authentication; undefined registers anyone for anything (lab mode). */
  auth?: AuthService;
  clock: Clock;
  logger: Logger;
  /** Domains whose AORs this registrar keeps (Request-URI and To hosts). */
  domains: string[];
  /** Seconds; a shorter non-zero interval gets 423 (§10.3 step 7). Default 60. */
  minExpires?: number;
  /** Seconds; longer requests are shortened to it. Default 7200. */
  maxExpires?: number;
  /** Seconds, when the REGISTER names none. Default 3600. */
  defaultExpires?: number;
  /** Bindings one AOR may hold; a REGISTER that would go beyond gets 403. Default 16. */
  maxBindingsPerAor?: number;
  /** Recorded in each binding (clusters: which node holds the flow). */
  nodeId?: string;
  /** Key material for temporary GRUUs, shared by cluster nodes (>= 16 bytes); random per instance by default. */
  gruuSecret?: string | Uint8Array;
  /** Whether a transport flow still exists (RFC 5626 §5.3); without it flows are assumed alive. */
  isFlowAlive?: (flowId: string) => boolean;
  /** Subscribers in this group may register any AOR of a served domain (third-party registration). */
  thirdPartyGroup?: string;
  /**
   * Takes a per-user script carried in a REGISTER body (`application/cpl+xml`, as CPL servers accept uploads) for
   * the AOR's user once the registration is authorised; resolves to an error text to answer 400 with, or undefined.
   */
  acceptScript?: (user: { username: string; domain: string }, script: string) => Promise<string | undefined>;
  /** The bindings of `aor` were changed by a REGISTER (added, refreshed or removed): presence watches this. */
  onBindingsChanged?: (aor: string) => void;
}

/** One place a request for the looked-up URI can be sent. */
export interface Target {
  /** Contact, Path (a preloaded route set, RFC 3327 §5.3), source and flow of the registration. */
  binding: Binding;
  /** Registered with Outbound (reg-id): requests must reuse the registration's flow (RFC 5626 §5.3). */
  outbound: boolean;
  /** An Outbound binding whose flow to us is gone. */
  flowFailed: boolean;
}

export interface LookupResult {
  /** The canonical AOR, or undefined when the URI is not one (not sip/sips, or an unknown temporary GRUU). */
  aor: string | undefined;
  /** Set when the URI was a GRUU: only the bindings of that instance are targets. */
  gruu?: 'public' | 'temporary';
  /** Best first: q descending, then most recently registered. */
  targets: Target[];
  /** Every target is a failed Outbound flow: RFC 5626 §5.3 has the proxy answer 430 (Flow Failed). */
  allFlowsFailed: boolean;
}

interface Outcome {
  aor?: string;
  contacts: number;
}

const UINT32_MAX = 0xffffffff;

export class Registrar {
  private readonly location: LocationStore;
  private readonly subscribers: SubscriberStore;
  private readonly auth: AuthService | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly domains: Set<string>;
  private readonly expiry: ExpiryPolicy;
  private readonly maxBindingsPerAor: number;
  private readonly nodeId: string | undefined;
  private readonly gruus: TempGruuCodec;
  private readonly isFlowAlive: ((flowId: string) => boolean) | undefined;
  private readonly thirdPartyGroup: string;
  private readonly acceptScript: RegistrarOptions['acceptScript'];
  private readonly onBindingsChanged: RegistrarOptions['onBindingsChanged'];

  constructor(options: RegistrarOptions) {
    this.location = options.location;
    this.subscribers = options.subscribers;
    this.auth = options.auth;
    this.clock = options.clock;
    this.logger = options.logger;
    this.domains = new Set(options.domains.map((d) => d.toLowerCase()));
    if (this.domains.size === 0) throw new ConfigError('registrar.domains', 'must list at least one domain');
    this.expiry = {
      minExpires: seconds('minExpires', options.minExpires, 60),
      maxExpires: seconds('maxExpires', options.maxExpires, 7200),
      defaultExpires: seconds('defaultExpires', options.defaultExpires, 3600),
    };
    const { minExpires, maxExpires, defaultExpires } = this.expiry;
    if (!(minExpires <= defaultExpires && defaultExpires <= maxExpires && maxExpires > 0)) {
      throw new ConfigError('registrar', 'needs 0 <= minExpires <= defaultExpires <= maxExpires, maxExpires > 0');
    }
    this.maxBindingsPerAor = options.maxBindingsPerAor ?? 16;
    if (!Number.isInteger(this.maxBindingsPerAor) || this.maxBindingsPerAor < 1) {
      throw new ConfigError('registrar.maxBindingsPerAor', 'must be a positive integer');
    }
    this.nodeId = options.nodeId;
    this.gruus = new TempGruuCodec(options.gruuSecret);
    this.isFlowAlive = options.isFlowAlive;
    this.thirdPartyGroup = options.thirdPartyGroup ?? 'registrar-admin';
    this.acceptScript = options.acceptScript;
    this.onBindingsChanged = options.onBindingsChanged;
  }

  /**
   * Answers one REGISTER. Rejects only when a store fails (the server core then answers 500 and logs it);
   * every protocol outcome is a response.
   */
  async handle(req: SipRequest, tx: RegisterResponder): Promise<void> {
    const outcome: Outcome = { contacts: req.headers.list('contact').length };
    try {
      await this.register(req, tx, outcome);
    } catch (e) {
      if (e instanceof LocationContentionError) {
        // Other nodes kept winning the compare-and-set on this AOR: nothing was written; the UA may simply retry.
        this.reply(tx, outcome, 500, { reason: 'Server Internal Error - registration contention, retry', headers: [['Retry-After', '1']] });
        return;
      }
      if (!(e instanceof SipError)) throw e;
      this.reply(tx, outcome, e.status, { reason: e.reason, headers: e.extraHeaders });
    }
  }

  private async register(req: SipRequest, tx: RegisterResponder, outcome: Outcome): Promise<void> {
    // §10.3 step 1: only domains we keep bindings for.
    const ruri = req.uri;
    if (ruri.type !== 'sip' || !this.domains.has(ruri.host.toLowerCase())) {
      throw new SipError(403, 'Forbidden - not a domain of this registrar', 'FOREIGN_DOMAIN');
    }
    const realm = ruri.host.toLowerCase();

    // §10.3 step 3 (step 2, Require, is the server core's).
    let user: Extract<AuthResult, { ok: true }> | undefined;
    if (this.auth) {
      const result = await this.auth.authenticate(req, realm, 'www');
      if (!result.ok) {
        const options: ResponseOptions = { headers: result.headers };
        if (result.reason !== undefined) options.reason = result.reason;
        return this.reply(tx, outcome, result.status, options, result.delayMs);
      }
      user = result;
    }

    // §10.3 step 5 (before step 4: authorization needs the AOR).
    const to = req.to.uri;
    if (to.type !== 'sip') {
      const scheme = to.type === 'tel' ? 'tel' : to.scheme;
      throw new SipError(400, `Bad Request - To must be a sip or sips URI, not ${scheme}`, 'TO_SCHEME');
    }
    const aor = canonicalAor(to);
    outcome.aor = aor;
    if (!this.domains.has(to.host.toLowerCase())) {
      throw new SipError(404, 'Not Found - not a domain of this registrar', 'AOR_DOMAIN');
    }
    if (user) await this.authorize(user, realm, to, aor);
    await this.takeScript(req, to);

    const supported = new Set(optionTags(req, 'supported').map((t) => t.toLowerCase()));
    const contacts = readContacts(req, this.expiry, supported.has('outbound'));
    const path = readPath(req);
    const outbound = contacts.kind === 'update' && contacts.updates.some((u) => u.regId !== undefined);
    if (outbound) checkFirstHop(req, path);

    const receivedAt = this.clock.now();
    const bindings =
      contacts.kind === 'query'
        ? await this.location.lookup(aor)
        : await this.location.modify(aor, (current) => {
            const next = this.apply(current, contacts, req, aor, path, receivedAt);
            return { next, result: next };
          });

    if (contacts.kind !== 'query') this.onBindingsChanged?.(aor);
    // §10.3 step 8: every current binding, with its remaining time exact to the second.
    const now = this.clock.now();
    const headers: Array<[string, string]> = bindings
      .filter((b) => b.expiresAt > now)
      .map((b) => ['Contact', this.contactValue(b, now, supported.has('gruu'))]);
    if (outbound) headers.push(['Require', 'outbound']);
    // RFC 3327 §5.3: the Path goes back only to a UA that said it understands it; it is stored regardless.
    if (supported.has('path')) for (const hop of path) headers.push(['Path', hop]);
    headers.push(['Date', new Date(now).toUTCString()]);
    this.reply(tx, outcome, 200, { headers });
  }

  /** A CPL script in the body is validated and stored before any binding changes: a bad script changes nothing. */
  private async takeScript(req: SipRequest, to: SipUri): Promise<void> {
    const type = (req.contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (req.body.length === 0 || type !== 'application/cpl+xml') return;
    if (!this.acceptScript) throw new SipError(415, 'Unsupported Media Type - CPL uploads are not enabled', 'CPL_DISABLED', [['Accept', 'application/sdp']]);
    const problem = await this.acceptScript({ username: to.userUnescaped ?? '', domain: to.host.toLowerCase() }, req.body.toString('utf8'));
    if (problem !== undefined) throw new SipError(400, `Bad Request - CPL ${problem}`.replace(/[\r\n]+/g, ' ').slice(0, 120), 'CPL_INVALID');
  }

  /**
   * §10.3 step 4: an authenticated user registers their own AOR; members of the third-party group register any
   * subscriber's AOR (From then differs from To).
   */
  private async authorize(user: { username: string; groups: string[] }, realm: string, to: SipUri, aor: string) {
    if (aor === aorOf(user.username, realm)) return;
    if (!user.groups.includes(this.thirdPartyGroup)) {
      throw new SipError(403, `Forbidden - ${user.username} may not register ${aor}`.slice(0, 120), 'NOT_AUTHORIZED');
    }
    const target = to.userUnescaped;
    if (target === undefined || !(await this.subscribers.get(target, to.host))) {
      throw new SipError(404, 'Not Found - no such subscriber', 'NO_SUBSCRIBER');
    }
  }

  /** §10.3 steps 6-7 inside the store's read-modify-write; throws (changing nothing) to refuse the request. */
  private apply(
    current: Binding[],
    contacts: Exclude<RegisterContacts, { kind: 'query' }>,
    req: SipRequest,
    aor: string,
    path: string[],
    now: number,
  ): Binding[] {
    if (contacts.kind === 'wildcard') {
      for (const b of current) checkOrder(b, req);
      return [];
    }
    const next = [...current];
    for (const update of contacts.updates) {
      const key = bindingKey(update);
      const i = next.findIndex((b) => bindingKey(b) === key);
      const existing = i >= 0 ? next[i] : undefined;
      if (existing) checkOrder(existing, req);
      if (update.expires === 0) {
        if (existing) next.splice(i, 1);
        continue;
      }
      const binding = this.bindingOf(update, req, aor, path, now, existing);
      if (existing) next[i] = binding;
      else next.push(binding);
    }
    if (next.length > this.maxBindingsPerAor && next.length > current.length) {
      throw new SipError(403, 'Too Many Contacts', 'TOO_MANY_BINDINGS');
    }
    return next;
  }

  private bindingOf(
    update: ContactUpdate,
    req: SipRequest,
    aor: string,
    path: string[],
    now: number,
    existing: Binding | undefined,
  ): Binding {
    const binding: Binding = {
      aor,
      contact: update.contact,
      contactParams: update.contactParams,
      expiresAt: now + update.expires * 1000,
      q: update.q,
      callId: req.callId,
      cseq: req.cseq.seq,
      path,
      source: sourceOf(req),
      // A refresh continues the registration: temporary GRUUs issued for it stay valid (see lookup).
      registeredAt: existing?.registeredAt ?? now,
    };
    if (update.instanceId !== undefined) binding.instanceId = update.instanceId;
    if (update.regId !== undefined) binding.regId = update.regId;
    const flowId = req.source?.flowId;
    if (flowId !== undefined) binding.flowId = flowId;
    const userAgent = req.headers.get('user-agent');
    if (userAgent !== undefined) binding.userAgent = userAgent;
    if (this.nodeId !== undefined) binding.node = this.nodeId;
    return binding;
  }

  private contactValue(b: Binding, now: number, gruu: boolean): string {
    let value = `<${b.contact}>`;
    for (const [name, v] of Object.entries(b.contactParams)) value += v === null ? `;${name}` : `;${name}=${v}`;
    value += `;expires=${Math.ceil((b.expiresAt - now) / 1000)}`;
    if (b.q !== 1) value += `;q=${b.q}`;
    // RFC 5627 §5: GRUUs for every binding that has an instance, when the UA supports them.
    if (gruu && b.instanceId !== undefined) {
      const token = this.gruus.encode({ aor: b.aor, instanceId: b.instanceId, registeredAt: b.registeredAt });
      value += `;pub-gruu="${publicGruu(b.aor, b.instanceId)}";temp-gruu="${temporaryGruu(token, aorDomain(b.aor))}"`;
    }
    return value;
  }

  private reply(tx: RegisterResponder, outcome: Outcome, status: number, options: ResponseOptions, delayMs = 0): void {
    this.logger.debug({ aor: outcome.aor, contacts: outcome.contacts, status }, 'REGISTER');
    const send = (): void => tx.respond(createResponse(tx.request, status, options));
    // The throttle's slowdown: a guesser waits for every answer, which costs us one timer.
    if (delayMs > 0) this.clock.setTimer(delayMs, send);
    else send();
  }

  /**
   * The targets of a Request-URI: an AOR's bindings, or those of one instance for a public GRUU (`;gr=urn`) or a
   * temporary GRUU of ours (`sip:tgruu.<token>@domain;gr`).
   */
  async lookup(target: string | SipUri): Promise<LookupResult> {
    const uri = typeof target === 'string' ? tryParseUri(target) : target;
    if (uri?.type !== 'sip') return this.located(undefined, [], undefined);
    const gr = uri.params.get('gr');
    if (gr === null && uri.user?.startsWith(TEMP_GRUU_PREFIX)) {
      const claims = this.gruus.decode(uri.user.slice(TEMP_GRUU_PREFIX.length));
      if (!claims || aorDomain(claims.aor) !== uri.host.toLowerCase()) return this.located(undefined, [], 'temporary');
      const bindings = (await this.location.lookup(claims.aor)).filter((b) => sameInstance(b.instanceId, claims.instanceId));
      // RFC 5627 §3.2: a temporary GRUU lives as long as the registration it was issued for. A binding of the
      // instance registered at or before the issue time proves the instance has stayed registered since (a
      // refresh keeps registeredAt; a lapse starts afresh), so the GRUU is still good.
      const valid = bindings.some((b) => b.registeredAt <= claims.registeredAt);
      return this.located(claims.aor, valid ? bindings : [], 'temporary');
    }
    const aor = canonicalAor(uri);
    const bindings = await this.location.lookup(aor);
    if (typeof gr !== 'string') return this.located(aor, bindings, undefined);
    const instance = unescape(gr);
    return this.located(aor, bindings.filter((b) => sameInstance(b.instanceId, instance)), 'public');
  }

  private located(aor: string | undefined, bindings: Binding[], gruu: 'public' | 'temporary' | undefined): LookupResult {
    const targets = bindings.map((binding): Target => {
      const outbound = binding.regId !== undefined;
      // Only a flow that ends here can be judged here; behind a Path, the edge proxy holds the flow (RFC 5626 §5.3).
      const flowFailed =
        outbound &&
        binding.path.length === 0 &&
        binding.flowId !== undefined &&
        this.isFlowAlive !== undefined &&
        !this.isFlowAlive(binding.flowId);
      return { binding, outbound, flowFailed };
    });
    const result: LookupResult = { aor, targets, allFlowsFailed: targets.length > 0 && targets.every((t) => t.flowFailed) };
    if (gruu) result.gruu = gruu;
    return result;
  }
}

/**
 * §10.3 step 7: a binding last set by this Call-ID may only be changed by a higher CSeq. Retransmissions never get
 * here (the transaction layer absorbs them), so an equal or lower CSeq is a REGISTER overtaken by a newer one:
 * applying it would undo the newer state.
 */
function checkOrder(b: Binding, req: SipRequest): void {
  if (b.callId === req.callId && req.cseq.seq <= b.cseq) {
    throw new SipError(500, 'Server Internal Error - REGISTER out of order (CSeq not above the last one)', 'OUT_OF_ORDER');
  }
}

/** Path values in order (RFC 3327 §5.3: each proxy put its own on top), each checked to be a name-addr. */
function readPath(req: SipRequest): string[] {
  const values = req.headers.list('path');
  try {
    for (const v of values) parseNameAddr(v, 'Path');
  } catch (e) {
    if (e instanceof HeaderSyntaxError) throw new SipError(400, `Bad Request - ${e.message}`.slice(0, 120), 'PATH_SYNTAX');
    throw e;
  }
  return values;
}

/**
 * RFC 5626 §6: a flow registered through proxies needs a first hop that supports Outbound, which says so with `ob`
 * in its Path URI. Proxies put their Path values on top, so the first hop's is the last one.
 */
function checkFirstHop(req: SipRequest, path: string[]): void {
  if (req.vias.length <= 1) return;
  const firstHop = path.length > 0 ? parseNameAddr(path[path.length - 1]!, 'Path').uri : undefined;
  if (firstHop?.type !== 'sip' || !firstHop.params.has('ob')) {
    throw new SipError(439, 'First Hop Lacks Outbound Support', 'FIRST_HOP_NO_OUTBOUND');
  }
}

/** The transport the REGISTER came over; for a request injected in-process, where its response would go. */
function sourceOf(req: SipRequest): BindingSource {
  const s = req.source;
  if (s) return { transport: s.transport, address: s.address, port: s.port, localAddress: s.localAddress, localPort: s.localPort };
  const { transport, address, port } = responseDestination(req);
  return { transport, address, port };
}

/** +sip.instance comparison: urn:uuid values are case-insensitive (RFC 4122 §3), other URNs are compared as given. */
function sameInstance(stored: string | undefined, wanted: string): boolean {
  if (stored === undefined) return false;
  return stored === wanted || (/^urn:uuid:/i.test(stored) && stored.toLowerCase() === wanted.toLowerCase());
}

function seconds(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 0 || v > UINT32_MAX) throw new ConfigError(`registrar.${field}`, 'must be a whole number of seconds');
  return v;
}
