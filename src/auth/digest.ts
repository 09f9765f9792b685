/**
 * The Digest scheme as SIP uses it: RFC 3261 §22.4 (which still points at RFC 2617), updated by RFC 8760 to the
 * RFC 7616 algorithms. This file is pure: header values in, header values and hashes out; nonce policy lives in
 * nonce.ts and the server-side decision in verifier.ts.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type DigestAlgorithm = 'MD5' | 'SHA-256';
/** The `-sess` variants (RFC 7616 §3.4.2) fold the nonce and cnonce into HA1; we verify them but never offer them. */
export type DigestAlgorithmName = DigestAlgorithm | `${DigestAlgorithm}-sess`;
export type DigestQop = 'auth' | 'auth-int';

/** A parse failure names the parameter at fault so that logs (and 400 reason phrases) can say what was wrong. */
export interface DigestParseError {
  ok: false;
  param: string;
  problem: string;
  /** Set when the realm could be read, so that a verifier can tell whether the bad credentials were meant for it. */
  realm?: string;
}
export type DigestParseResult<T> = { ok: true; value: T } | DigestParseError;

/** Authorization / Proxy-Authorization (RFC 3261 §25 `digest-response`). */
export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm: DigestAlgorithmName;
  /** Absent for RFC 2069-style clients; then `cnonce` and `nc` are absent too (unless `-sess` needs cnonce). */
  qop?: DigestQop;
  cnonce?: string;
  /** The nonce count as sent (8 hex digits). */
  nc?: string;
  opaque?: string;
}

/** WWW-Authenticate / Proxy-Authenticate (RFC 3261 §25 `challenge`). */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  algorithm: DigestAlgorithmName;
  /** The qop options we can use, in the server's order; empty when the server sent no qop (RFC 2069 mode). */
  qop: DigestQop[];
  stale: boolean;
  opaque?: string;
  domain?: string;
}

const TOKEN_CHAR = /[A-Za-z0-9\-.!%*_+`'~]/;
const WSP = /[ \t\r\n]/;
const NC_VALUE = /^[0-9a-fA-F]{8}$/;
const ALGORITHMS: ReadonlyMap<string, DigestAlgorithmName> = new Map(
  (['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess'] as const).map((a) => [a.toLowerCase(), a]),
);

function fail(param: string, problem: string): DigestParseError {
  return { ok: false, param, problem };
}

/**
 * Splits `Digest a=b, c="d"` into a lower-cased parameter map (RFC 3261 §25 `digest-cln`, RFC 7235 §2.1).
 * Lenient where deployed clients are sloppy and it costs nothing: any parameter may be quoted or not, LWS may
 * surround `=` and `,`, empty list elements are skipped. Strict where ambiguity would be unsafe: a parameter
 * name may appear only once (RFC 3261 §7.3.1, RFC 7235 §2.1).
 */
function parseDigestParams(value: string): DigestParseResult<Map<string, string>> {
  let i = 0;
  const skipWs = (): void => {
    while (i < value.length && WSP.test(value[i]!)) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < value.length && TOKEN_CHAR.test(value[i]!)) i++;
    return value.slice(start, i);
  };

  skipWs();
  const scheme = readToken();
  if (scheme.toLowerCase() !== 'digest') return fail('scheme', scheme ? `unsupported scheme "${scheme}"` : 'missing');
  if (i < value.length && !WSP.test(value[i]!)) return fail('scheme', `unexpected character at offset ${i}`);

  const params = new Map<string, string>();
  for (;;) {
    skipWs();
    while (value[i] === ',') {
      i++;
      skipWs();
    }
    if (i >= value.length) break;
    const name = readToken().toLowerCase();
    if (!name) return fail('syntax', `expected a parameter name at offset ${i}`);
    skipWs();
    if (value[i] !== '=') return fail(name, `expected "=" at offset ${i}`);
    i++;
    skipWs();
    let paramValue: string;
    if (value[i] === '"') {
      // quoted-string with quoted-pair escapes (RFC 3261 §25); CR/LF cannot be escaped.
      i++;
      paramValue = '';
      for (;;) {
        const c = value[i];
        if (c === undefined) return fail(name, 'unterminated quoted string');
        if (c === '"') break;
        if (c === '\\') {
          const escaped = value[i + 1];
          if (escaped === undefined || escaped === '\r' || escaped === '\n') return fail(name, 'bad escape');
          paramValue += escaped;
          i += 2;
        } else {
          paramValue += c;
          i++;
        }
      }
      i++;
    } else {
      const start = i;
      while (i < value.length && value[i] !== ',' && value[i] !== '"' && !WSP.test(value[i]!)) i++;
      paramValue = value.slice(start, i);
      if (!paramValue) return fail(name, 'empty value');
    }
    if (params.has(name)) return fail(name, 'duplicated');
    params.set(name, paramValue);
    skipWs();
    if (i < value.length && value[i] !== ',') return fail(name, `expected "," at offset ${i}`);
  }
  return { ok: true, value: params };
}

function parseAlgorithm(params: Map<string, string>): DigestParseResult<DigestAlgorithmName> {
  const raw = params.get('algorithm');
  // RFC 3261 §25 / RFC 7616 §3.3: MD5 when absent.
  if (raw === undefined) return { ok: true, value: 'MD5' };
  const algorithm = ALGORITHMS.get(raw.toLowerCase());
  return algorithm ? { ok: true, value: algorithm } : fail('algorithm', `unsupported "${raw}"`);
}

function parseQop(raw: string): DigestQop | undefined {
  const qop = raw.toLowerCase();
  return qop === 'auth' || qop === 'auth-int' ? qop : undefined;
}

function required(params: Map<string, string>, names: readonly string[]): DigestParseError | undefined {
  for (const name of names) if (params.get(name) === undefined) return fail(name, 'missing');
  return undefined;
}

export function parseDigestCredentials(value: string): DigestParseResult<DigestCredentials> {
  const parsed = parseDigestParams(value);
  if (!parsed.ok) return parsed;
  const result = credentialsFromParams(parsed.value);
  const realm = parsed.value.get('realm');
  return result.ok || realm === undefined ? result : { ...result, realm };
}

function credentialsFromParams(params: Map<string, string>): DigestParseResult<DigestCredentials> {
  const missing = required(params, ['username', 'realm', 'nonce', 'uri', 'response']);
  if (missing) return missing;
  const algorithm = parseAlgorithm(params);
  if (!algorithm.ok) return algorithm;

  const credentials: DigestCredentials = {
    username: params.get('username')!,
    realm: params.get('realm')!,
    nonce: params.get('nonce')!,
    uri: params.get('uri')!,
    response: params.get('response')!,
    algorithm: algorithm.value,
  };
  if (!/^[0-9a-fA-F]+$/.test(credentials.response)) return fail('response', 'not hexadecimal');

  const rawQop = params.get('qop');
  if (rawQop !== undefined) {
    const qop = parseQop(rawQop);
    if (!qop) return fail('qop', `unsupported "${rawQop}"`);
    credentials.qop = qop;
    // RFC 7616 §3.4: with qop, cnonce and nc are mandatory.
    const missingQopParam = required(params, ['cnonce', 'nc']);
    if (missingQopParam) return missingQopParam;
    const nc = params.get('nc')!;
    if (!NC_VALUE.test(nc)) return fail('nc', 'expected 8 hexadecimal digits');
    credentials.nc = nc;
  }
  const cnonce = params.get('cnonce');
  if (cnonce !== undefined) credentials.cnonce = cnonce;
  if (credentials.algorithm.endsWith('-sess') && cnonce === undefined) return fail('cnonce', 'missing');
  const opaque = params.get('opaque');
  if (opaque !== undefined) credentials.opaque = opaque;
  return { ok: true, value: credentials };
}

/**
 * Parses one challenge. Options we cannot use are reported as errors (unsupported algorithm, or a qop list with
 * nothing we know) so that a client simply moves on to the next challenge.
 */
export function parseDigestChallenge(value: string): DigestParseResult<DigestChallenge> {
  const parsed = parseDigestParams(value);
  if (!parsed.ok) return parsed;
  const params = parsed.value;
  const missing = required(params, ['realm', 'nonce']);
  if (missing) return missing;
  const algorithm = parseAlgorithm(params);
  if (!algorithm.ok) return algorithm;

  const challenge: DigestChallenge = {
    realm: params.get('realm')!,
    nonce: params.get('nonce')!,
    algorithm: algorithm.value,
    qop: [],
    stale: params.get('stale')?.toLowerCase() === 'true',
  };
  const rawQop = params.get('qop');
  if (rawQop !== undefined) {
    // RFC 7616 §3.3: unrecognised qop options are ignored.
    for (const option of rawQop.split(',')) {
      const qop = parseQop(option.trim());
      if (qop && !challenge.qop.includes(qop)) challenge.qop.push(qop);
    }
    if (challenge.qop.length === 0) return fail('qop', `no supported option in "${rawQop}"`);
  }
  const opaque = params.get('opaque');
  if (opaque !== undefined) challenge.opaque = opaque;
  const domain = params.get('domain');
  if (domain !== undefined) challenge.domain = domain;
  return { ok: true, value: challenge };
}

/**
 * RFC 8760 §2: the server lists its challenges in order of preference and the client uses the first one it
 * supports; unparseable or unsupported ones are skipped.
 */
export function selectChallenge(values: readonly string[]): DigestChallenge | undefined {
  for (const value of values) {
    const parsed = parseDigestChallenge(value);
    if (parsed.ok) return parsed.value;
  }
  return undefined;
}

export function baseAlgorithm(algorithm: DigestAlgorithmName): DigestAlgorithm {
  return algorithm.startsWith('SHA-256') ? 'SHA-256' : 'MD5';
}

/** H(data) as lower-case hex (RFC 7616 §3.4.1: the digest is sent as lower-case hexadecimal). */
function digestHash(algorithm: DigestAlgorithmName, data: string | Uint8Array): string {
  return createHash(baseAlgorithm(algorithm) === 'MD5' ? 'md5' : 'sha256')
    .update(data)
    .digest('hex');
}

/** H(entity-body) for qop=auth-int; an absent body hashes as the empty string (RFC 3261 §22.4). */
export function hashBody(algorithm: DigestAlgorithmName, body: string | Uint8Array = ''): string {
  return digestHash(algorithm, body);
}

/** HA1 = H(username ":" realm ":" password) (RFC 7616 §3.4.2); what a credential store keeps instead of passwords. */
export function computeHa1(username: string, realm: string, password: string, algorithm: DigestAlgorithm): string {
  return digestHash(algorithm, `${username}:${realm}:${password}`);
}

export interface ResponseInput {
  /** The stored HA1 (the non-`-sess` form); the `-sess` transformation is applied here. */
  ha1: string;
  nonce: string;
  nc?: string;
  cnonce?: string;
  qop?: DigestQop;
  method: string;
  uri: string;
  algorithm: DigestAlgorithmName;
  /** H(entity-body) for qop=auth-int (see `hashBody`); the empty body's hash when omitted. */
  bodyHash?: string;
}

/** The request-digest of RFC 7616 §3.4.1 (and RFC 2069 §2.1.1 when qop is absent). */
export function computeResponse(input: ResponseInput): string {
  const { algorithm, nonce, cnonce = '' } = input;
  const ha1 = algorithm.endsWith('-sess') ? digestHash(algorithm, `${input.ha1}:${nonce}:${cnonce}`) : input.ha1;
  const a2 =
    input.qop === 'auth-int'
      ? `${input.method}:${input.uri}:${input.bodyHash ?? hashBody(algorithm)}`
      : `${input.method}:${input.uri}`;
  const ha2 = digestHash(algorithm, a2);
  if (input.qop === undefined) return digestHash(algorithm, `${ha1}:${nonce}:${ha2}`);
  return digestHash(algorithm, `${ha1}:${nonce}:${input.nc ?? ''}:${cnonce}:${input.qop}:${ha2}`);
}

/**
 * Compares a received response with the expected one without leaking, through timing, how many leading
 * characters matched. Hex case is irrelevant to the value, so the received one is lower-cased first.
 */
export function responsesEqual(expected: string, received: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(received.toLowerCase());
  // timingSafeEqual needs equal lengths; compare a with itself so that the work done does not depend on the input.
  if (a.length !== b.length) return !timingSafeEqual(a, a);
  return timingSafeEqual(a, b);
}

/** quoted-string (RFC 3261 §25); CR and LF cannot be escaped, and letting them through would inject headers. */
function quote(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new RangeError(`digest ${name} must not contain CR or LF`);
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

export interface ChallengeInput {
  realm: string;
  nonce: string;
  algorithm: DigestAlgorithm;
  opaque?: string;
  stale?: boolean;
  /** Defaults to ['auth']: RFC 8760 §2 makes qop mandatory for SIP. An empty list omits qop (RFC 2069 mode). */
  qop?: readonly DigestQop[];
}

/** A WWW-Authenticate / Proxy-Authenticate value. */
export function buildChallenge(input: ChallengeInput): string {
  const parts = [`realm=${quote('realm', input.realm)}`, `nonce=${quote('nonce', input.nonce)}`];
  if (input.opaque !== undefined) parts.push(`opaque=${quote('opaque', input.opaque)}`);
  if (input.stale) parts.push('stale=TRUE');
  parts.push(`algorithm=${input.algorithm}`);
  const qop = input.qop ?? ['auth'];
  if (qop.length > 0) parts.push(`qop="${qop.join(',')}"`);
  return `Digest ${parts.join(', ')}`;
}

export interface AuthorizationInput {
  challenge: DigestChallenge;
  username: string;
  password: string;
  method: string;
  uri: string;
  /** The nonce count: 1 for the first request with this nonce, incremented for each reuse. */
  nc?: number;
  /** Random when omitted; pass one for reproducible output. */
  cnonce?: string;
  /** The request body, used only when the challenge offers nothing but qop=auth-int. */
  body?: string | Uint8Array;
}

/** An Authorization / Proxy-Authorization value answering `challenge` (RFC 3261 §22.2, §22.3). */
export function buildAuthorization(input: AuthorizationInput): string {
  const { challenge, username, method, uri } = input;
  const { algorithm, nonce } = challenge;
  // Prefer qop=auth: auth-int needs the final body, which a proxy in the path may not change afterwards.
  const qop: DigestQop | undefined = challenge.qop.includes('auth') ? 'auth' : challenge.qop[0];
  const needsCnonce = qop !== undefined || algorithm.endsWith('-sess');
  const cnonce = needsCnonce ? (input.cnonce ?? randomBytes(12).toString('base64url')) : undefined;
  const nc = qop !== undefined ? (input.nc ?? 1).toString(16).padStart(8, '0') : undefined;
  const response = computeResponse({
    ha1: computeHa1(username, challenge.realm, input.password, baseAlgorithm(algorithm)),
    nonce,
    nc,
    cnonce,
    qop,
    method,
    uri,
    algorithm,
    bodyHash: qop === 'auth-int' ? hashBody(algorithm, input.body) : undefined,
  });
  const parts = [
    `username=${quote('username', username)}`,
    `realm=${quote('realm', challenge.realm)}`,
    `nonce=${quote('nonce', nonce)}`,
    `uri=${quote('uri', uri)}`,
    `response="${response}"`,
    `algorithm=${algorithm}`,
  ];
  if (cnonce !== undefined) parts.push(`cnonce=${quote('cnonce', cnonce)}`);
  if (challenge.opaque !== undefined) parts.push(`opaque=${quote('opaque', challenge.opaque)}`);
  if (qop !== undefined) parts.push(`qop=${qop}`, `nc=${nc}`);
  return `Digest ${parts.join(', ')}`;
}
