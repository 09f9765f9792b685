import { parseNameAddr, tryParseUri, uriEquals, type Uri } from '../../message/index.js';
import type { AddressSwitchNode, CplRequest, LanguageSwitchNode, PrioritySwitchNode, StringSwitchNode, SwitchCase } from './types.js';

/**
 * The switch conditions of RFC 3880 §4, read from a SIP request as §4.1.1 and §4.2 map them. Each returns the
 * output to take, or undefined when none applies (the script then ends there).
 */

/** Outputs are tried in document order; `otherwise` ends the list; `not-present` is taken when the field is absent. */
function choose<T>(cases: SwitchCase<T>[], present: boolean, matches: (test: T) => boolean): SwitchCase<T> | undefined {
  for (const c of cases) {
    if (c.test === 'otherwise') return c;
    if (c.test === 'not-present' ? !present : matches(c.test)) return c;
  }
  return undefined;
}

interface Address {
  uri?: Uri;
  text: string;
  display?: string;
}

/** RFC 3880 §4.1.1: origin = From, destination = Request-URI, original-destination = To. */
function addressOf(request: CplRequest, field: AddressSwitchNode['field']): Address | undefined {
  let text: string;
  let display: string | undefined;
  if (field === 'origin') {
    // An identity the server could not verify is no identity to decide on (RFC 3880, Security Considerations).
    if (request.authenticated === false) return undefined;
    [text, display] = [request.from, request.displayFrom];
  } else if (field === 'destination') text = request.requestUri;
  else [text, display] = [request.to, request.displayTo];
  text = text.trim();
  if (text === '') return undefined;
  let uri = tryParseUri(text);
  if (!uri) {
    try {
      const na = parseNameAddr(text, 'address');
      uri = na.uri;
      display ??= na.displayNameText;
    } catch {
      // Unparsable: only the whole text can be compared.
    }
  }
  return { uri, text, display: display || undefined };
}

const DEFAULT_PORT = { sip: 5060, sips: 5061 } as const;

function subfieldOf(a: Address, subfield: NonNullable<AddressSwitchNode['subfield']>): string | undefined {
  const u = a.uri;
  switch (subfield) {
    case 'address-type':
      return u ? (u.type === 'sip' ? u.scheme : u.type === 'tel' ? 'tel' : u.scheme.toLowerCase()) : undefined;
    case 'user':
      return u?.type === 'sip' ? u.userUnescaped : undefined;
    case 'host':
      return u?.type === 'sip' ? u.hostname : undefined;
    case 'port':
      return u?.type === 'sip' ? String(u.port ?? DEFAULT_PORT[u.scheme]) : undefined;
    case 'tel':
      // A telephone number is a tel: URI, or a SIP URI whose user part is one (user=phone, RFC 3261 §19.1.1).
      if (u?.type === 'tel') return u.number;
      return u?.type === 'sip' && u.params.get('user')?.toLowerCase() === 'phone' ? u.userUnescaped : undefined;
    case 'display':
      return a.display;
    case 'password':
      return u?.type === 'sip' ? u.password : undefined;
    case 'alias-type':
      // An H.323 notion; SIP addresses have none.
      return undefined;
  }
}

/** Telephone numbers compare without visual separators (RFC 3966 §5.1.1). */
function digits(number: string): string {
  return number.replace(/[-.() ]/g, '').toLowerCase();
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

export function addressCase(node: AddressSwitchNode, request: CplRequest): SwitchCase<unknown> | undefined {
  const address = addressOf(request, node.field);
  const sub = node.subfield;
  const value = address && (sub ? subfieldOf(address, sub) : address.text);
  return choose(node.cases, value !== undefined, (t) => {
    if (value === undefined || !address) return false;
    const v = t.value;
    if (t.op === 'contains') return value.toLowerCase().includes(v.toLowerCase());
    if (t.op === 'subdomain-of') {
      if (sub === 'tel') return digits(value).startsWith(digits(v));
      const [host, domain] = [value.toLowerCase(), v.toLowerCase().replace(/^\./, '')];
      return host === domain || (!isIp(host) && host.endsWith('.' + domain));
    }
    switch (sub) {
      case undefined: {
        // Whole addresses compare as URIs (RFC 3261 §19.1.4 for SIP), so parameter order and case do not matter.
        const other = tryParseUri(v);
        return address.uri && other ? uriEquals(address.uri, other) : value.toLowerCase() === v.toLowerCase();
      }
      case 'user':
      case 'password':
        return value === v;
      case 'tel':
        return digits(value) === digits(v);
      case 'port':
        return Number(value) === Number(v);
      default:
        return value.toLowerCase() === v.toLowerCase();
    }
  });
}

const STRING_FIELD: Record<StringSwitchNode['field'], (r: CplRequest) => string | undefined> = {
  subject: (r) => r.subject,
  organization: (r) => r.organization,
  'user-agent': (r) => r.userAgent,
  // Text for the callee's display has no SIP header of its own.
  display: () => undefined,
};

/** RFC 3880 §4.2; sipway compares case-insensitively, as people write these fields inconsistently. */
export function stringCase(node: StringSwitchNode, request: CplRequest): SwitchCase<unknown> | undefined {
  const value = STRING_FIELD[node.field](request)?.toLowerCase();
  return choose(node.cases, value !== undefined, (t) => {
    if (value === undefined) return false;
    const v = t.value.toLowerCase();
    return t.op === 'is' ? value === v : value.includes(v);
  });
}

/**
 * RFC 3880 §4.3: the output is taken when one of the caller's languages (Accept-Language, q=0 excluded) matches
 * the tag, one being equal to the other or a prefix of it at a '-' boundary ("en" and "en-GB"); '*' matches any.
 */
export function languageCase(node: LanguageSwitchNode, request: CplRequest): SwitchCase<unknown> | undefined {
  const accepted = (request.language ?? [])
    .map((entry) => {
      const [range, ...params] = entry.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return q !== undefined && Number(q.slice(2)) === 0 ? '' : range!;
    })
    .filter((range) => range !== '');
  const related = (a: string, b: string): boolean => a === b || a.startsWith(b + '-') || b.startsWith(a + '-');
  return choose(node.cases, accepted.length > 0, (t) => {
    const tag = t.matches.toLowerCase();
    return accepted.some((range) => range === '*' || tag === '*' || related(range, tag));
  });
}

const PRIORITY_RANK: Record<string, number> = { 'non-urgent': 0, normal: 1, urgent: 2, emergency: 3 };

/**
 * RFC 3880 §4.5: a request without Priority is "normal"; an unknown priority compares as "normal" for less and
 * greater, and only `equal` can name it. `not-present` still tells the header's absence.
 */
export function priorityCase(node: PrioritySwitchNode, request: CplRequest): SwitchCase<unknown> | undefined {
  const value = request.priority?.trim().toLowerCase();
  const rank = PRIORITY_RANK[value ?? 'normal'] ?? PRIORITY_RANK.normal!;
  return choose(node.cases, value !== undefined, (t) => {
    if (t.op === 'equal') return (value ?? 'normal') === t.value;
    return t.op === 'less' ? rank < PRIORITY_RANK[t.value]! : rank > PRIORITY_RANK[t.value]!;
  });
}
