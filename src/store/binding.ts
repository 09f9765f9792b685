/**
 * The location-service binding (RFC 3261 §10): one Contact registered for an address-of-record, with what the
 * registrar needs to route to it later: the Path it arrived through (RFC 3327), the Outbound flow (RFC 5626)
 * and the instance identity used for GRUUs (RFC 5627).
 */

/** Where the REGISTER came from: the flow a request to this binding should reuse (RFC 5626 §5.3). */
export interface BindingSource {
  transport: string;
  address: string;
  port: number;
  localAddress?: string;
  localPort?: number;
}

export interface Binding {
  /** Canonical address-of-record, e.g. 'sip:alice@example.com' (the registrar canonicalises it). */
  aor: string;
  /** The Contact URI as registered, without <>; its URI parameters stay inside. */
  contact: string;
  /** Contact header parameters other than q and expires (+sip.instance, reg-id, feature tags of RFC 3840). */
  contactParams: Record<string, string | null>;
  /** Absolute expiry, ms since the epoch; the binding is gone at this instant. */
  expiresAt: number;
  /** Preference 0..1 (RFC 3261 §20.10), default 1. */
  q: number;
  /** Call-ID and CSeq of the last accepted REGISTER, for the §10.3 step 7 ordering check. */
  callId: string;
  cseq: number;
  /** Path header values in order (RFC 3327 §5.3: used as a preloaded route set towards the contact). */
  path: string[];
  /** +sip.instance (RFC 5626 §4.1, RFC 5627 §3.1). */
  instanceId?: string;
  /** reg-id (RFC 5626 §4.2). */
  regId?: number;
  source: BindingSource;
  /** The transport flow the REGISTER arrived on; with Outbound, a request finding it gone gets 430 (§5.3). */
  flowId?: string;
  userAgent?: string;
  /** When this binding was first created (refreshes keep it), ms since the epoch. */
  registeredAt: number;
  /** The sipway node that accepted the registration (clusters). */
  node?: string;
}

/**
 * Identity of a binding within its AOR. RFC 5626 §6: with both +sip.instance and reg-id the binding is the
 * (instance, reg-id) pair whatever the Contact URI says; otherwise RFC 3261 §10.3 step 7 compares Contact URIs
 * with the §19.1.4 rules.
 */
export function bindingKey(b: Pick<Binding, 'contact' | 'instanceId' | 'regId'>): string {
  // A space cannot occur in a URI, so the two key spaces never collide.
  if (b.instanceId !== undefined && b.regId !== undefined) return `outbound ${canonicalInstance(b.instanceId)} ${b.regId}`;
  return canonicalUri(b.contact);
}

/**
 * §19.1.4: scheme, host and URI parameters compare case-insensitively and parameter order does not matter; the
 * user part is case-sensitive.
 * DEVIATION(RFC 3261 §19.1.4): a key must be one string, so a parameter present in only one of two URIs makes
 * them differ here, and %-escapes are compared as written. Registering UAs repeat their Contact verbatim, so
 * this only matters for hand-made contacts.
 */
function canonicalUri(uri: string): string {
  const colon = uri.indexOf(':');
  if (colon <= 0) return uri;
  let rest = uri.slice(colon + 1);
  let headers = '';
  const question = rest.indexOf('?');
  if (question >= 0) {
    headers = rest.slice(question);
    rest = rest.slice(0, question);
  }
  // The user part may itself carry ';' (tel-style user parameters), so the host starts after the last '@'.
  const at = rest.lastIndexOf('@');
  const userinfo = rest.slice(0, at + 1);
  const [hostport = '', ...params] = rest.slice(at + 1).split(';');
  const sortedParams = params.map((p) => p.toLowerCase()).sort();
  return (
    uri.slice(0, colon).toLowerCase() +
    ':' +
    userinfo +
    hostport.toLowerCase() +
    (sortedParams.length > 0 ? ';' + sortedParams.join(';') : '') +
    headers
  );
}

/** +sip.instance is a quoted <URN>; urn:uuid values compare case-insensitively (RFC 4122 §3). */
function canonicalInstance(instance: string): string {
  const bare = instance.replace(/^"?<?|>?"?$/g, '');
  return /^urn:uuid:/i.test(bare) ? bare.toLowerCase() : bare;
}

/** Returns what is wrong with a would-be binding, or undefined when it is well-formed. */
export function checkBinding(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'binding is not an object';
  const b = value as Record<string, unknown>;
  if (!nonEmptyString(b.aor)) return 'aor must be a non-empty string';
  if (!nonEmptyString(b.contact)) return 'contact must be a non-empty string';
  if (!isParams(b.contactParams)) return 'contactParams must map names to string or null';
  if (!Number.isSafeInteger(b.expiresAt)) return 'expiresAt must be an integer (ms since the epoch)';
  if (typeof b.q !== 'number' || !(b.q >= 0 && b.q <= 1)) return 'q must be a number in 0..1';
  if (typeof b.callId !== 'string') return 'callId must be a string';
  // §8.1.1.5: a CSeq number is a 32-bit unsigned integer.
  if (!Number.isInteger(b.cseq) || (b.cseq as number) < 0 || (b.cseq as number) > 0xffffffff) {
    return 'cseq must be a 32-bit unsigned integer';
  }
  if (!Array.isArray(b.path) || !b.path.every((p) => typeof p === 'string')) return 'path must be an array of strings';
  if (b.instanceId !== undefined && !nonEmptyString(b.instanceId)) return 'instanceId must be a non-empty string';
  // RFC 5626 §4.2: reg-id is 1..2^31-1.
  const regId = b.regId as number | undefined;
  if (regId !== undefined && !(Number.isInteger(regId) && regId >= 1 && regId <= 0x7fffffff)) {
    return 'regId must be an integer in 1..2^31-1';
  }
  const sourceProblem = checkSource(b.source);
  if (sourceProblem) return sourceProblem;
  if (b.flowId !== undefined && typeof b.flowId !== 'string') return 'flowId must be a string';
  if (b.userAgent !== undefined && typeof b.userAgent !== 'string') return 'userAgent must be a string';
  if (!Number.isSafeInteger(b.registeredAt)) return 'registeredAt must be an integer (ms since the epoch)';
  if (b.node !== undefined && typeof b.node !== 'string') return 'node must be a string';
  return undefined;
}

function checkSource(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'source must be an object';
  const s = value as Record<string, unknown>;
  if (!nonEmptyString(s.transport) || !nonEmptyString(s.address) || !isPort(s.port)) {
    return 'source needs transport, address and a port in 0..65535';
  }
  if (s.localAddress !== undefined && typeof s.localAddress !== 'string') return 'source.localAddress must be a string';
  if (s.localPort !== undefined && !isPort(s.localPort)) return 'source.localPort must be a port in 0..65535';
  return undefined;
}

function nonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

function isPort(v: unknown): boolean {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535;
}

function isParams(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  return Object.values(v).every((x) => x === null || typeof x === 'string');
}

/**
 * A private deep copy: stores never hand out objects they keep, so a caller editing a binding (the registrar
 * does, inside `modify`) cannot change the store behind its back or after aborting.
 */
export function copyBinding(b: Binding): Binding {
  const copy: Binding = {
    aor: b.aor,
    contact: b.contact,
    contactParams: { ...b.contactParams },
    expiresAt: b.expiresAt,
    q: b.q,
    callId: b.callId,
    cseq: b.cseq,
    path: [...b.path],
    source: { ...b.source },
    registeredAt: b.registeredAt,
  };
  if (b.instanceId !== undefined) copy.instanceId = b.instanceId;
  if (b.regId !== undefined) copy.regId = b.regId;
  if (b.flowId !== undefined) copy.flowId = b.flowId;
  if (b.userAgent !== undefined) copy.userAgent = b.userAgent;
  if (b.node !== undefined) copy.node = b.node;
  return copy;
}

/** The bindings still registered at `now` (expiry is exact: gone at expiresAt), best first for forking. */
export function liveBindings(bindings: readonly Binding[], now: number): Binding[] {
  return bindings.filter((b) => b.expiresAt > now).sort(byPreference);
}

/** q descending (RFC 3261 §20.10: higher q is tried first), then the most recently registered first. */
function byPreference(a: Binding, b: Binding): number {
  return b.q - a.q || b.registeredAt - a.registeredAt;
}
