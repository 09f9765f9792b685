import { HeaderSyntaxError, type NameAddr, type SipRequest } from '../message/index.js';
import { bindingKey } from '../store/index.js';
import { SipError } from '../util/errors.js';

export interface ExpiryPolicy {
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
}

/** One Contact of a REGISTER, as the registrar will apply it (RFC 3261 §10.3 steps 6-7). */
export interface ContactUpdate {
  /** The URI as registered: URI parameters and headers stay inside (RFC 4475 cparam02, regescrt). */
  contact: string;
  /** Contact header parameters other than q and expires (RFC 4475 cparam01: after an addr-spec they land here). */
  contactParams: Record<string, string | null>;
  /** Granted seconds; 0 removes the binding. */
  expires: number;
  q: number;
  /** +sip.instance without its quotes and angle brackets (RFC 5626 §4.1). */
  instanceId?: string;
  /** Set only when Outbound applies: the UA supports it and gave an instance (RFC 5626 §6). */
  regId?: number;
}

export type RegisterContacts =
  /** No Contact: the REGISTER asks for the current bindings (§10.3 step 6). */
  | { kind: 'query' }
  | { kind: 'wildcard' }
  | { kind: 'update'; updates: ContactUpdate[] };

/** Contact schemes we accept. Others could be stored (§10.3) but a proxy could never route to them. */
const ROUTABLE_SCHEMES = new Set(['sip', 'sips', 'tel']);
const Q_VALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;
const REG_ID_MAX = 0x7fffffff;

function badRequest(why: string, code: string): SipError {
  return new SipError(400, `Bad Request - ${why}`.slice(0, 120), code);
}

/**
 * Reads the Contact header fields of a REGISTER into what the registrar applies, or throws the SipError to answer:
 * 400 for a malformed set, 423 with Min-Expires for a too brief interval. Nothing is applied unless every
 * Contact is acceptable, so a refused REGISTER changes no binding.
 */
export function readContacts(req: SipRequest, policy: ExpiryPolicy, outbound: boolean): RegisterContacts {
  const values = req.headers.list('contact');
  if (values.length === 0) return { kind: 'query' };
  const headerExpires = req.headers.get('expires');
  if (values.includes('*')) {
    // §10.3 step 6: "*" only alone and only with Expires: 0 (it cannot carry an expires parameter).
    if (values.length !== 1) throw badRequest('Contact * must be the only Contact', 'WILDCARD_NOT_ALONE');
    if (headerExpires === undefined || !/^\d+$/.test(headerExpires) || Number(headerExpires) !== 0) {
      throw badRequest('Contact * requires Expires: 0', 'WILDCARD_EXPIRES');
    }
    return { kind: 'wildcard' };
  }

  let contacts: NameAddr[];
  try {
    contacts = req.contacts;
  } catch (e) {
    if (e instanceof HeaderSyntaxError) throw badRequest(e.message, 'CONTACT_SYNTAX');
    throw e;
  }
  const keys = new Set<string>();
  const updates = contacts.map((na) => {
    const update = readContact(na, headerExpires, policy, outbound);
    const key = bindingKey(update);
    // Twice the same binding in one request has no defined order of application (§10.3 step 7).
    if (keys.has(key)) throw badRequest(`Contact ${update.contact} appears twice`, 'DUPLICATE_CONTACT');
    keys.add(key);
    return update;
  });
  // RFC 5626 §6: a REGISTER that registers a flow (reg-id) carries that one Contact only.
  if (updates.length > 1 && updates.some((u) => u.regId !== undefined)) {
    throw badRequest('a Contact with reg-id must be the only Contact', 'REG_ID_NOT_ALONE');
  }
  return { kind: 'update', updates };
}

function readContact(
  na: NameAddr,
  headerExpires: string | undefined,
  policy: ExpiryPolicy,
  outbound: boolean,
): ContactUpdate {
  const uri = na.uri;
  const scheme = uri.type === 'absolute' ? uri.scheme.toLowerCase() : uri.type === 'sip' ? uri.scheme : 'tel';
  if (!ROUTABLE_SCHEMES.has(scheme)) throw badRequest(`Contact scheme '${scheme}' is not routable`, 'CONTACT_SCHEME');

  const expires = grantedExpires(na.params.get('expires') ?? headerExpires, policy);
  const qText = na.params.get('q');
  if (qText === null || (qText !== undefined && !Q_VALUE.test(qText))) throw badRequest(`bad q value '${qText}'`, 'BAD_Q');

  const contactParams: Record<string, string | null> = {};
  for (const [name, value] of na.params.entries()) {
    const lower = name.toLowerCase();
    if (lower !== 'q' && lower !== 'expires') contactParams[name] = value;
  }
  const update: ContactUpdate = { contact: uri.toString(), contactParams, expires, q: qText === undefined ? 1 : Number(qText) };

  const instance = na.params.getUnquoted('+sip.instance')?.replace(/^<(.*)>$/, '$1');
  if (instance) update.instanceId = instance;
  const regId = na.params.get('reg-id');
  // RFC 5626 §6: reg-id means nothing without outbound in Supported or without an instance; it is then ignored.
  if (outbound && update.instanceId !== undefined && regId !== undefined) {
    const n = regId !== null && /^\d{1,10}$/.test(regId) ? Number(regId) : 0;
    if (n < 1 || n > REG_ID_MAX) throw badRequest(`bad reg-id '${regId}'`, 'BAD_REG_ID');
    update.regId = n;
  }
  return update;
}

/**
 * §10.3 step 7: the contact's expires parameter, else the Expires header, else our default; a value that is not a
 * number also gets the default. Values above the maximum (RFC 4475 scalar02: even above 2^32-1, which is still
 * legal syntax) are shortened to it; a non-zero value below the minimum is refused with 423 and Min-Expires.
 */
function grantedExpires(text: string | null | undefined, policy: ExpiryPolicy): number {
  const requested = text !== null && text !== undefined && /^\d+$/.test(text) ? Number(text) : policy.defaultExpires;
  if (requested !== 0 && requested < policy.minExpires) {
    throw new SipError(423, 'Interval Too Brief', 'INTERVAL_TOO_BRIEF', [['Min-Expires', String(policy.minExpires)]]);
  }
  return Math.min(requested, policy.maxExpires);
}
