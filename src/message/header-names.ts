/** Compact forms (§7.3.3, RFC 3262/3515/3841/3903/4474/6665). */
const COMPACT: Record<string, string> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** Preferred spelling when serialising a header we add; the irregular ones are listed, the rest are Title-Cased. */
const SPELLING: Record<string, string> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version',
  'rack': 'RAck',
  'rseq': 'RSeq',
  'min-se': 'Min-SE',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
  'p-asserted-identity': 'P-Asserted-Identity',
};

// Raw spellings seen on the wire map to canonical names; bounded so that a flood of novel names cannot grow it.
const canonicalCache = new Map<string, string>();
const CANONICAL_CACHE_LIMIT = 2048;

/** Canonical (lower-case, long-form) header name for a name as written. */
export function canonicalHeaderName(raw: string): string {
  const hit = canonicalCache.get(raw);
  if (hit !== undefined) return hit;
  const lower = raw.toLowerCase();
  const canonical = lower.length === 1 ? (COMPACT[lower] ?? lower) : lower;
  if (canonicalCache.size < CANONICAL_CACHE_LIMIT) canonicalCache.set(raw, canonical);
  return canonical;
}

// Spellings are asked for every header written that was not received as is; bounded like canonicalCache.
const spellingCache = new Map<string, string>();

export function headerSpelling(canonical: string): string {
  const hit = spellingCache.get(canonical);
  if (hit !== undefined) return hit;
  const spelled = SPELLING[canonical] ?? titleCase(canonical);
  if (spellingCache.size < CANONICAL_CACHE_LIMIT) spellingCache.set(canonical, spelled);
  return spelled;
}

function titleCase(canonical: string): string {
  let out = '';
  let upper = true;
  for (const ch of canonical) {
    out += upper ? ch.toUpperCase() : ch;
    upper = ch === '-';
  }
  return out;
}

/** Headers whose value is a comma-separated list that may be split or combined (§7.3.1). */
export const LIST_HEADERS = new Set([
  'via',
  'contact',
  'route',
  'record-route',
  'path',
  'service-route',
  'allow',
  'supported',
  'require',
  'proxy-require',
  'unsupported',
  'accept',
  'accept-encoding',
  'accept-language',
  'allow-events',
  'content-encoding',
  'in-reply-to',
  'warning',
  'alert-info',
  'call-info',
  'error-info',
]);

/** Headers that must appear at most once (RFC 4475 multi01). */
export const SINGLE_HEADERS = ['call-id', 'to', 'from', 'cseq', 'max-forwards', 'content-length'] as const;
