import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentialsFromPassword, MemoryCredentialStore, type CredentialStore } from '../../src/auth/credentials.js';
import {
  buildAuthorization,
  parseDigestChallenge,
  type AuthorizationInput,
  type DigestAlgorithm,
  type DigestChallenge,
} from '../../src/auth/digest.js';
import { NonceManager } from '../../src/auth/nonce.js';
import { DigestVerifier, INVALID_CREDENTIALS, type DigestVerifyInput } from '../../src/auth/verifier.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';

const REALM = 'example.com';
const URI = 'sip:example.com';

function setup(algorithms?: DigestAlgorithm[], store?: CredentialStore) {
  const clock = new FakeClock();
  const nonces = new NonceManager({ clock, lifetimeMs: 300_000 });
  const alice = credentialsFromPassword('alice', REALM, 'wonderland', ['staff']);
  const verifier = new DigestVerifier({ store: store ?? new MemoryCredentialStore([alice]), nonces, algorithms });
  /** From a fresh 401: the challenge for `algorithm`, or the first one (what most clients use). */
  const challenge = (algorithm?: DigestAlgorithm): DigestChallenge => {
    const values = verifier.challenges(REALM).map((v) => parseDigestChallenge(v));
    const found = values.find((v) => v.ok && (algorithm === undefined || v.value.algorithm === algorithm));
    assert.ok(found?.ok);
    return found.value;
  };
  const answer = (overrides: Partial<AuthorizationInput> = {}): string =>
    buildAuthorization({
      challenge: overrides.challenge ?? challenge(),
      username: 'alice',
      password: 'wonderland',
      method: 'REGISTER',
      uri: URI,
      ...overrides,
    });
  const verify = (authorization: string[], overrides: Partial<DigestVerifyInput> = {}) =>
    verifier.verify({ method: 'REGISTER', authorization, realm: REALM, requestUri: URI, ...overrides });
  return { clock, nonces, alice, verifier, challenge, answer, verify };
}

test('challenges: MD5 alone by default; configured algorithms in their order, one shared nonce, qop=auth, stale flag', () => {
  assert.deepEqual(
    setup().verifier.challenges(REALM).map((v) => /algorithm=([\w-]+)/.exec(v)?.[1]),
    ['MD5'],
  );
  const { verifier } = setup(['MD5', 'SHA-256']);
  const values = verifier.challenges(REALM);
  const parsed = values.map((v) => parseDigestChallenge(v));
  assert.deepEqual(
    parsed.map((p) => p.ok && [p.value.algorithm, p.value.qop, p.value.stale, p.value.realm]),
    [
      ['MD5', ['auth'], false, REALM],
      ['SHA-256', ['auth'], false, REALM],
    ],
  );
  assert.ok(parsed[0]?.ok && parsed[1]?.ok && parsed[0].value.nonce === parsed[1].value.nonce);
  assert.match(verifier.challenges(REALM, true)[0]!, /stale=TRUE/);
  assert.deepEqual(
    setup(['SHA-256']).verifier.challenges(REALM).map((v) => /algorithm=([\w-]+)/.exec(v)?.[1]),
    ['SHA-256'],
  );
});

test('no credentials for our realm: challenge', async () => {
  const { verify, answer } = setup();
  assert.deepEqual(await verify([]), { outcome: 'challenge', stale: false });
  assert.deepEqual(await verify(['Basic YWxpY2U6d29uZGVybGFuZA==']), { outcome: 'challenge', stale: false });
  const foreign = answer().replace(`realm="${REALM}"`, 'realm="upstream.example.net"');
  assert.deepEqual(await verify([foreign]), { outcome: 'challenge', stale: false });
});

test('correct MD5 and SHA-256 answers authenticate, picking our realm among several', async () => {
  const { verify, answer, challenge, alice } = setup(['MD5', 'SHA-256']);
  const upstream = answer().replace(`realm="${REALM}"`, 'realm="upstream.example.net"');
  assert.deepEqual(await verify([upstream, answer()]), { outcome: 'ok', username: 'alice', credentials: alice });
  const sha = answer({ challenge: challenge('SHA-256') });
  assert.match(sha, /algorithm=SHA-256/);
  assert.deepEqual(await verify([sha]), { outcome: 'ok', username: 'alice', credentials: alice });
});

test('unknown user and wrong password are indistinguishable', async () => {
  const { verify, answer } = setup();
  const wrongPassword = await verify([answer({ password: 'looking-glass' })]);
  const unknownUser = await verify([answer({ username: 'mallory', password: 'wonderland' })]);
  assert.deepEqual(wrongPassword, { outcome: 'failed', reason: INVALID_CREDENTIALS, username: 'alice' });
  assert.deepEqual(unknownUser, { outcome: 'failed', reason: INVALID_CREDENTIALS, username: 'mallory' });
});

test('stale nonce: challenge with stale=true only if the digest is right', async () => {
  const { verify, answer, clock } = setup();
  const good = answer();
  const bad = answer({ password: 'guess' });
  clock.advance(300_001);
  assert.deepEqual(await verify([good]), { outcome: 'challenge', stale: true });
  assert.deepEqual(await verify([bad]), { outcome: 'failed', reason: INVALID_CREDENTIALS, username: 'alice' });
});

test('a nonce we did not issue: stale=true with a right digest (e.g. after a restart), failure otherwise', async () => {
  const { verify, challenge } = setup();
  const forged: DigestChallenge = { ...challenge(), nonce: 'not-one-of-ours' };
  const base = { username: 'alice', method: 'REGISTER', uri: URI, challenge: forged };
  assert.deepEqual(await verify([buildAuthorization({ ...base, password: 'wonderland' })]), {
    outcome: 'challenge',
    stale: true,
  });
  assert.deepEqual(await verify([buildAuthorization({ ...base, password: 'guess' })]), {
    outcome: 'failed',
    reason: INVALID_CREDENTIALS,
    username: 'alice',
  });
});

test('nonce counts: reuse with a higher nc works, a replayed nc fails', async () => {
  const { verify, answer, challenge } = setup();
  const c = challenge();
  const first = answer({ challenge: c, nc: 1 });
  assert.equal((await verify([first])).outcome, 'ok');
  assert.deepEqual(await verify([first]), { outcome: 'failed', reason: 'nonce count replayed', username: 'alice' });
  assert.equal((await verify([answer({ challenge: c, nc: 2 })])).outcome, 'ok');
});

test('RFC 2069 clients (no qop) and -sess variants are verified', async () => {
  const { verify, challenge } = setup(['MD5', 'SHA-256']);
  const base = { username: 'alice', password: 'wonderland', method: 'REGISTER', uri: URI };
  const legacy = buildAuthorization({ ...base, challenge: { ...challenge(), qop: [] } });
  assert.doesNotMatch(legacy, /nc=/);
  assert.equal((await verify([legacy])).outcome, 'ok');
  const sess = buildAuthorization({ ...base, challenge: { ...challenge('SHA-256'), algorithm: 'SHA-256-sess' } });
  assert.equal((await verify([sess])).outcome, 'ok');
});

test('qop=auth-int covers the body', async () => {
  const { verify, challenge } = setup();
  const body = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n';
  const value = buildAuthorization({
    challenge: { ...challenge(), qop: ['auth-int'] },
    username: 'alice',
    password: 'wonderland',
    method: 'INVITE',
    uri: URI,
    body,
  });
  assert.equal((await verify([value], { method: 'INVITE', body: Buffer.from(body) })).outcome, 'ok');
  const tampered = await verify([value], { method: 'INVITE', body: body.replace('192.0.2.1', '203.0.113.9') });
  assert.deepEqual(tampered, { outcome: 'failed', reason: INVALID_CREDENTIALS, username: 'alice' });
});

test('algorithm, uri and method are enforced', async () => {
  const shaOnly = setup(['SHA-256']);
  const md5 = shaOnly.answer({ challenge: { ...shaOnly.challenge('SHA-256'), algorithm: 'MD5' } });
  assert.deepEqual(await shaOnly.verify([md5]), { outcome: 'failed', reason: 'algorithm not offered', username: 'alice' });
  const byDefault = setup();
  const sha = byDefault.answer({ challenge: { ...byDefault.challenge('MD5'), algorithm: 'SHA-256' } });
  assert.deepEqual(await byDefault.verify([sha]), { outcome: 'failed', reason: 'algorithm not offered', username: 'alice' });

  const { verify, answer } = setup();
  const elsewhere = answer({ uri: 'sip:other.example.com' });
  assert.deepEqual(await verify([elsewhere]), { outcome: 'failed', reason: 'uri mismatch', username: 'alice' });
  assert.equal((await verify([elsewhere], { requestUri: undefined })).outcome, 'ok');
  assert.deepEqual(await verify([answer()], { method: 'INVITE' }), {
    outcome: 'failed',
    reason: INVALID_CREDENTIALS,
    username: 'alice',
  });
});

test('malformed credentials for our realm (or with no readable realm) fail, naming the problem', async () => {
  const { verify } = setup();
  assert.deepEqual(await verify([`Digest username="alice", realm="${REALM}", uri="${URI}", response="00"`]), {
    outcome: 'failed',
    reason: 'malformed credentials: nonce missing',
  });
  assert.deepEqual(await verify(['Digest username="alice", nonce="n']), {
    outcome: 'failed',
    reason: 'malformed credentials: nonce unterminated quoted string',
  });
  assert.deepEqual(await verify(['Digest realm="elsewhere", username="alice"']), { outcome: 'challenge', stale: false });
});

test('a failing credential store rejects the verification', async () => {
  const broken: CredentialStore = { getCredentials: () => Promise.reject(new Error('database down')) };
  const { verify, answer } = setup(undefined, broken);
  await assert.rejects(verify([answer()]), /database down/);
});

test('algorithm configuration is checked', () => {
  const nonces = new NonceManager({ clock: new FakeClock() });
  const store = new MemoryCredentialStore();
  assert.throws(() => new DigestVerifier({ store, nonces, algorithms: [] }), ConfigError);
  assert.throws(() => new DigestVerifier({ store, nonces, algorithms: ['MD5', 'MD5'] }), ConfigError);
});

test('the memory store keys by username and realm, case-sensitively', async () => {
  const store = new MemoryCredentialStore([credentialsFromPassword('alice', REALM, 'pw')]);
  assert.equal((await store.getCredentials('alice', REALM))?.username, 'alice');
  assert.equal(await store.getCredentials('Alice', REALM), undefined);
  assert.equal(await store.getCredentials('alice', 'EXAMPLE.COM'), undefined);
  assert.ok(store.delete('alice', REALM));
  assert.equal(await store.getCredentials('alice', REALM), undefined);
});
