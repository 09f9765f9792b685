import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildAuthorization,
  buildChallenge,
  computeHa1,
  computeResponse,
  hashBody,
  parseDigestChallenge,
  parseDigestCredentials,
  responsesEqual,
  selectChallenge,
  type DigestChallenge,
  type DigestCredentials,
  type DigestParseResult,
} from '../../src/auth/digest.js';

function ok<T>(result: DigestParseResult<T>): T {
  if (!result.ok) assert.fail(`unexpected parse error: ${result.param} ${result.problem}`);
  return result.value;
}

function error<T>(result: DigestParseResult<T>): { param: string; problem: string; realm?: string } {
  if (result.ok) assert.fail(`expected a parse error, got ${JSON.stringify(result.value)}`);
  return result;
}

// RFC 7616 §3.9.1 inputs.
const RFC7616 = {
  username: 'Mufasa',
  realm: 'http-auth@example.org',
  password: 'Circle of Life',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
};

test('RFC 2617 §3.5 example: MD5, qop=auth', () => {
  const header =
    'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", ' +
    'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", ' +
    'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"';
  const c = ok(parseDigestCredentials(header));
  const expected = computeResponse({
    ha1: computeHa1('Mufasa', 'testrealm@host.com', 'Circle Of Life', 'MD5'),
    nonce: c.nonce,
    nc: c.nc,
    cnonce: c.cnonce,
    qop: c.qop,
    method: 'GET',
    uri: c.uri,
    algorithm: c.algorithm,
  });
  assert.equal(expected, '6629fae49393a05397450978507c4ef1');
  assert.ok(responsesEqual(expected, c.response));
});

test('RFC 7616 §3.9.1 example: SHA-256 (and its MD5 twin), qop=auth', () => {
  const input = { nonce: RFC7616.nonce, nc: '00000001', cnonce: RFC7616.cnonce, qop: 'auth', method: 'GET' } as const;
  const { username, realm, password } = RFC7616;
  assert.equal(
    computeResponse({
      ...input,
      uri: '/dir/index.html',
      algorithm: 'SHA-256',
      ha1: computeHa1(username, realm, password, 'SHA-256'),
    }),
    '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
  );
  assert.equal(
    computeResponse({ ...input, uri: '/dir/index.html', algorithm: 'MD5', ha1: computeHa1(username, realm, password, 'MD5') }),
    '8ca523f5e9506fed4657c9700eebdbec',
  );
});

test('buildAuthorization answers the RFC 7616 challenge with the published response', () => {
  const challenge = ok(
    parseDigestChallenge(
      `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=SHA-256, nonce="${RFC7616.nonce}", ` +
        `opaque="${RFC7616.opaque}"`,
    ),
  );
  assert.deepEqual(challenge.qop, ['auth', 'auth-int']);
  const value = buildAuthorization({
    challenge,
    username: RFC7616.username,
    password: RFC7616.password,
    method: 'GET',
    uri: '/dir/index.html',
    cnonce: RFC7616.cnonce,
  });
  const c = ok(parseDigestCredentials(value));
  assert.deepEqual(c, {
    username: 'Mufasa',
    realm: RFC7616.realm,
    nonce: RFC7616.nonce,
    uri: '/dir/index.html',
    response: '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    algorithm: 'SHA-256',
    qop: 'auth',
    nc: '00000001',
    cnonce: RFC7616.cnonce,
    opaque: RFC7616.opaque,
  } satisfies DigestCredentials);
});

test('credentials: escapes, case-insensitive names, odd whitespace, quoted or bare values, unknown params', () => {
  const c = ok(
    parseDigestCredentials(
      '  digest\tUSERNAME = "Mu\\"fa\\\\sa" ,Realm="r" ,,  nonce="n",\r\n uri="sip:a@b;transport=tcp",' +
        'response="ABCDEF0123", algorithm="sha-256", QOP="auth", nc="0000000A", cnonce=c1, foo="bar, baz", x=y,',
    ),
  );
  assert.equal(c.username, 'Mu"fa\\sa');
  assert.equal(c.realm, 'r');
  assert.equal(c.uri, 'sip:a@b;transport=tcp');
  assert.equal(c.algorithm, 'SHA-256');
  assert.equal(c.qop, 'auth');
  assert.equal(c.nc, '0000000A');
  assert.equal(c.cnonce, 'c1');
  assert.equal(c.response, 'ABCDEF0123');
});

test('credentials without qop (RFC 2069) default to MD5 and need no nc/cnonce', () => {
  const c = ok(parseDigestCredentials('Digest username="u", realm="r", nonce="n", uri="sip:r", response="ab"'));
  assert.equal(c.algorithm, 'MD5');
  assert.equal(c.qop, undefined);
  assert.equal(c.nc, undefined);
});

test('credentials errors name the parameter at fault', () => {
  const base = 'username="u", realm="r", nonce="n", uri="sip:r", response="ab"';
  for (const name of ['username', 'realm', 'nonce', 'uri', 'response']) {
    const without = base.replace(new RegExp(`${name}="[^"]*"(, )?`), '');
    assert.deepEqual(error(parseDigestCredentials(`Digest ${without}`)).param, name, without);
  }
  const cases: Array<[string, string, string]> = [
    [`Digest ${base}, qop=auth, nc=00000001`, 'cnonce', 'missing'],
    [`Digest ${base}, qop=auth, cnonce="c"`, 'nc', 'missing'],
    [`Digest ${base}, qop=auth, cnonce="c", nc=1`, 'nc', 'expected 8 hexadecimal digits'],
    [`Digest ${base}, qop=auth-conf, cnonce="c", nc=00000001`, 'qop', 'unsupported "auth-conf"'],
    [`Digest ${base}, algorithm=SHA-512-256`, 'algorithm', 'unsupported "SHA-512-256"'],
    [`Digest ${base}, algorithm=MD5-sess`, 'cnonce', 'missing'],
    [`Digest ${base}, realm="again"`, 'realm', 'duplicated'],
    ['Digest username="u, realm="r"', 'username', 'expected "," at offset 27'],
    ['Digest username="unterminated', 'username', 'unterminated quoted string'],
    ['Digest username', 'username', 'expected "=" at offset 15'],
    ['Digest username=', 'username', 'empty value'],
    ['Digest username="u" realm="r"', 'username', 'expected "," at offset 20'],
    ['Digest =x', 'syntax', 'expected a parameter name at offset 7'],
    ['Digest username="u", response="xyz", realm="r", nonce="n", uri="u"', 'response', 'not hexadecimal'],
    ['Basic dXNlcjpwYXNz', 'scheme', 'unsupported scheme "Basic"'],
    ['Digestusername="u"', 'scheme', 'unsupported scheme "Digestusername"'],
    ['', 'scheme', 'missing'],
  ];
  for (const [value, param, problem] of cases) {
    const e = error(parseDigestCredentials(value));
    assert.deepEqual([e.param, e.problem], [param, problem], value);
  }
});

test('a credentials error carries the realm when it could be read', () => {
  assert.equal(error(parseDigestCredentials('Digest realm="r", username="u"')).realm, 'r');
  assert.equal(error(parseDigestCredentials('Digest username="u"')).realm, undefined);
});

test('challenge parsing: defaults, stale, qop options, unknown params', () => {
  const c = ok(parseDigestChallenge('Digest realm="example.com", nonce="abc", stale=TRUE, qop="auth-int,foo", x=1'));
  assert.deepEqual(c, { realm: 'example.com', nonce: 'abc', algorithm: 'MD5', qop: ['auth-int'], stale: true });
  const plain = ok(parseDigestChallenge('Digest realm="r", nonce="n", stale=false, domain="sip:r", opaque="o"'));
  assert.deepEqual(plain, { realm: 'r', nonce: 'n', algorithm: 'MD5', qop: [], stale: false, opaque: 'o', domain: 'sip:r' });
  assert.deepEqual(error(parseDigestChallenge('Digest realm="r"')).param, 'nonce');
  assert.deepEqual(error(parseDigestChallenge('Digest realm="r", nonce="n", qop="auth-conf"')).param, 'qop');
  assert.deepEqual(error(parseDigestChallenge('Digest realm="r", nonce="n", algorithm=SHA-512-256')).param, 'algorithm');
});

test('selectChallenge takes the first challenge we support, in header order', () => {
  const chosen = selectChallenge([
    'Basic realm="r"',
    'Digest realm="r", nonce="n1", algorithm=SHA-512-256, qop="auth"',
    'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"',
    'Digest realm="r", nonce="n3", algorithm=MD5, qop="auth"',
  ]);
  assert.equal(chosen?.nonce, 'n2');
  assert.equal(selectChallenge(['Basic realm="r"']), undefined);
});

test('buildChallenge output parses back, with quoting applied to the realm', () => {
  const value = buildChallenge({ realm: 'a "quoted" \\ realm', nonce: 'n', algorithm: 'SHA-256', opaque: 'o', stale: true });
  assert.equal(value, 'Digest realm="a \\"quoted\\" \\\\ realm", nonce="n", opaque="o", stale=TRUE, algorithm=SHA-256, qop="auth"');
  assert.deepEqual(ok(parseDigestChallenge(value)), {
    realm: 'a "quoted" \\ realm',
    nonce: 'n',
    algorithm: 'SHA-256',
    qop: ['auth'],
    stale: true,
    opaque: 'o',
  });
  assert.equal(buildChallenge({ realm: 'r', nonce: 'n', algorithm: 'MD5', qop: [] }), 'Digest realm="r", nonce="n", algorithm=MD5');
  assert.throws(() => buildChallenge({ realm: 'r\r\nVia: x', nonce: 'n', algorithm: 'MD5' }), RangeError);
});

function verifies(challenge: DigestChallenge, value: string, password: string, body?: string): boolean {
  const c = ok(parseDigestCredentials(value));
  const alg = c.algorithm.startsWith('SHA-256') ? 'SHA-256' : 'MD5';
  const expected = computeResponse({
    ha1: computeHa1(c.username, challenge.realm, password, alg),
    nonce: c.nonce,
    nc: c.nc,
    cnonce: c.cnonce,
    qop: c.qop,
    method: 'INVITE',
    uri: c.uri,
    algorithm: c.algorithm,
    bodyHash: c.qop === 'auth-int' ? hashBody(c.algorithm, body) : undefined,
  });
  return responsesEqual(expected, c.response);
}

test('buildAuthorization: auth-int only when nothing else is offered, RFC 2069 mode, -sess, nc formatting', () => {
  const base = { username: 'alice', password: 'secret', method: 'INVITE', uri: 'sip:bob@example.com' };
  const authInt = ok(parseDigestChallenge('Digest realm="r", nonce="n", qop="auth-int", algorithm=SHA-256'));
  const withBody = buildAuthorization({ ...base, challenge: authInt, body: 'v=0\r\n', nc: 26 });
  assert.match(withBody, /qop=auth-int, nc=0000001a$/);
  assert.ok(verifies(authInt, withBody, 'secret', 'v=0\r\n'));
  assert.ok(!verifies(authInt, withBody, 'secret', 'v=1\r\n'));

  const legacy = ok(parseDigestChallenge('Digest realm="r", nonce="n"'));
  const legacyValue = buildAuthorization({ ...base, challenge: legacy });
  assert.doesNotMatch(legacyValue, /qop|nc=|cnonce/);
  assert.ok(verifies(legacy, legacyValue, 'secret'));
  assert.ok(!verifies(legacy, legacyValue, 'wrong'));

  const sess = ok(parseDigestChallenge('Digest realm="r", nonce="n", algorithm=MD5-sess'));
  const sessValue = buildAuthorization({ ...base, challenge: sess });
  assert.match(sessValue, /cnonce="[A-Za-z0-9_-]{16}"/);
  assert.ok(verifies(sess, sessValue, 'secret'));

  assert.throws(() => buildAuthorization({ ...base, username: 'a\nb', challenge: legacy }), RangeError);
});

test('responsesEqual ignores hex case and rejects other lengths and values', () => {
  assert.ok(responsesEqual('abcdef', 'ABCDEF'));
  assert.ok(!responsesEqual('abcdef', 'abcdee'));
  assert.ok(!responsesEqual('abcdef', 'abcdef00'));
  assert.ok(!responsesEqual('abcdef', ''));
});
