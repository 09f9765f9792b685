import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAuthorization, parseDigestChallenge, type DigestAlgorithm, type DigestChallenge } from '../../src/auth/digest.js';
import type { SipResponse } from '../../src/message/index.js';
import { DOMAIN, LEVEL, harness, register, UA_SOURCE, type Harness, type RegisterSpec } from './harness.js';

const AOR = `sip:alice@${DOMAIN}`;
const REQUEST_URI = `sip:${DOMAIN}`;

function challenges(res: SipResponse): DigestChallenge[] {
  return res.headers.getAll('www-authenticate').map((v) => {
    const parsed = parseDigestChallenge(v);
    assert.ok(parsed.ok, v);
    return parsed.value;
  });
}

interface Credentials {
  username?: string;
  password?: string;
  algorithm?: DigestAlgorithm;
  nc?: number;
}

/** Answers `res`'s challenge (the one for `algorithm`, MD5 by default) in a fresh REGISTER built from `spec`. */
function answering(res: SipResponse, spec: RegisterSpec, creds: Credentials = {}) {
  const challenge = challenges(res).find((c) => c.algorithm === (creds.algorithm ?? 'MD5'));
  assert.ok(challenge);
  const authorization = buildAuthorization({
    challenge,
    username: creds.username ?? 'alice',
    password: creds.password ?? 'wonderland',
    method: 'REGISTER',
    uri: REQUEST_URI,
    nc: creds.nc,
  });
  return register({ ...spec, headers: [...(spec.headers ?? []), `Authorization: ${authorization}`] });
}

async function withUsers(options: Parameters<typeof harness>[0] = {}): Promise<Harness> {
  const h = harness({ auth: true, ...options });
  await h.addUser('alice', 'wonderland');
  await h.addUser('bob', 'builder');
  await h.addUser('admin', 'root', ['registrar-admin']);
  return h;
}

describe('digest authentication of REGISTER', () => {
  it('challenges a REGISTER without credentials: 401, MD5 alone by default; nothing registered', async () => {
    const h = await withUsers();
    const res = await h.answer(register());
    assert.equal(res.status, 401);
    assert.deepEqual(
      challenges(res).map((c) => [c.algorithm, c.realm, c.qop, c.stale]),
      [['MD5', DOMAIN, ['auth'], false]],
    );
    assert.deepEqual(await h.location.lookup(AOR), []);
  });

  it('with auth.algorithms MD5 and SHA-256: one challenge each, in that order, one nonce', async () => {
    const h = await withUsers({ auth: { algorithms: ['MD5', 'SHA-256'] } });
    const res = await h.answer(register());
    assert.equal(res.status, 401);
    const offered = challenges(res);
    assert.deepEqual(
      offered.map((c) => [c.algorithm, c.realm, c.qop, c.stale]),
      [
        ['MD5', DOMAIN, ['auth'], false],
        ['SHA-256', DOMAIN, ['auth'], false],
      ],
    );
    assert.equal(offered[0]!.nonce, offered[1]!.nonce);
    assert.deepEqual(await h.location.lookup(AOR), []);
  });

  for (const algorithm of ['MD5', 'SHA-256'] as const) {
    it(`registers after a correct ${algorithm} answer to the challenge`, async () => {
      const h = await withUsers({ auth: { algorithms: [algorithm] } });
      const challenge = await h.answer(register({ cseq: 1 }));
      const res = await h.answer(answering(challenge, { cseq: 2 }, { algorithm }));
      assert.equal(res.status, 200);
      assert.equal((await h.location.lookup(AOR)).length, 1);
    });
  }

  it('a stale nonce with the right password gets a new challenge with stale=true', async () => {
    const h = await withUsers({ auth: { nonceLifetimeMs: 60_000 } });
    const first = await h.answer(register({ cseq: 1 }));
    h.clock.advance(60_001);
    const res = await h.answer(answering(first, { cseq: 2 }));
    assert.equal(res.status, 401);
    assert.ok(challenges(res).every((c) => c.stale));
    assert.notEqual(challenges(res)[0]!.nonce, challenges(first)[0]!.nonce);
    assert.equal((await h.answer(answering(res, { cseq: 3 }))).status, 200);
  });

  it('a replayed nonce count is refused with a fresh challenge; a higher count works', async () => {
    const h = await withUsers();
    const challenge = await h.answer(register({ cseq: 1 }));
    const first = answering(challenge, { cseq: 2 }, { nc: 1 });
    assert.equal((await h.answer(first)).status, 200);
    const replay = answering(challenge, { cseq: 3 }, { nc: 1 });
    const refused = await h.answer(replay);
    assert.equal(refused.status, 401);
    assert.equal(challenges(refused)[0]!.stale, false);
    assert.equal((await h.answer(answering(challenge, { cseq: 4 }, { nc: 2 }))).status, 200);
  });

  it('an unknown user and a wrong password get identical answers', async () => {
    const h = await withUsers();
    const challenge = await h.answer(register({ cseq: 1 }));
    const wrongPassword = await h.answer(answering(challenge, { cseq: 2 }, { password: 'looking-glass' }));
    const unknownUser = await h.answer(
      answering(challenge, { cseq: 3, to: `sip:carol@${DOMAIN}` }, { username: 'carol', password: 'wonderland' }),
    );
    const shape = (r: SipResponse) => [r.status, r.reason, r.headers.fields.map((f) => f.name)];
    assert.deepEqual(shape(wrongPassword), shape(unknownUser));
    assert.equal(wrongPassword.status, 401);
    assert.deepEqual(await h.location.listAors(), []);
  });

  it('credentials in a scheme other than Digest are ignored: a challenge follows', async () => {
    const h = await withUsers();
    const res = await h.answer(register({ headers: ['Authorization: Basic YWxpY2U6d29uZGVybGFuZA=='] }));
    assert.equal(res.status, 401);
    assert.deepEqual(challenges(res).map((c) => c.algorithm), ['MD5']);
  });

  it('blocks a source after repeated failures: 403, logged once, even for the right password', async () => {
    const h = await withUsers({ auth: { throttle: { maxFailuresPerSource: 3, slowdownAfter: 100 } } });
    const challenge = await h.answer(register({ cseq: 1 }));
    const statuses: number[] = [];
    for (let cseq = 2; cseq <= 5; cseq++) {
      statuses.push((await h.answer(answering(challenge, { cseq }, { password: `guess-${cseq}` }))).status);
    }
    assert.deepEqual(statuses, [401, 401, 403, 403]);
    const right = await h.answer(answering(challenge, { cseq: 6 }, { nc: 2 }));
    assert.deepEqual([right.status, right.reason], [403, 'Forbidden']);
    assert.equal(right.headers.has('www-authenticate'), false);
    const warnings = h.logs.filter((l) => l.level === LEVEL.warn);
    assert.equal(warnings.length, 1);
    assert.deepEqual([warnings[0]!.source, warnings[0]!.user], [UA_SOURCE.address, 'alice']);

    const elsewhere = await h.answer(register({ cseq: 7, source: { ...UA_SOURCE, address: '198.51.100.7' } }));
    assert.equal(elsewhere.status, 401, 'another source is not affected');
    // Three guesses were checked (the third started the block); the fourth and the right password were refused unchecked.
    assert.deepEqual(h.auth!.stats(), { accepted: 0, failed: 3, refused: 2, blocks: 1 });
  });

  it('ten bad guesses at a user do not lock the user out: from a new address the right password still registers', async () => {
    const h = await withUsers();
    const challenge = await h.answer(register({ cseq: 1 }));
    for (let cseq = 2; cseq <= 11; cseq++) await h.send(answering(challenge, { cseq }, { password: `guess-${cseq}` }));
    h.clock.advance(10_000);
    const guesser = await h.answer(answering(challenge, { cseq: 12 }, { nc: 2 }));
    assert.equal(guesser.status, 403, 'the guessing source is refused, even with the right password');
    // A guess for alice from a new address is not refused unheard, but its answer waits the longest delay.
    const third = { ...UA_SOURCE, address: '192.0.2.77' };
    const wrong = answering(await h.answer(register({ cseq: 30, source: third })), { cseq: 31, source: third }, { password: 'guess-x' });
    const responses: SipResponse[] = [];
    await h.registrar.handle(wrong, { request: wrong, respond: (r) => responses.push(r) });
    h.clock.advance(4999);
    assert.equal(responses.length, 0, 'slowed down');
    h.clock.advance(1);
    assert.deepEqual(responses.map((r) => r.status), [401]);
    // alice from an address that never failed: challenged, and her right password gets her in at once.
    const elsewhere = { ...UA_SOURCE, address: '198.51.100.7' };
    const fresh = await h.answer(register({ cseq: 20, source: elsewhere }));
    assert.equal(fresh.status, 401);
    const res = await h.answer(answering(fresh, { cseq: 21, source: elsewhere }));
    assert.equal(res.status, 200);
    assert.equal((await h.location.lookup(AOR)).length, 1);
    assert.deepEqual(h.auth!.stats(), { accepted: 1, failed: 11, refused: 1, blocks: 1 });
  });

  it('slows down answers after failures, using the injected clock', async () => {
    const h = await withUsers({ auth: { throttle: { slowdownAfter: 1, slowdownBaseMs: 2000 } } });
    const challenge = await h.answer(register({ cseq: 1 }));
    const delayed = await h.send(answering(challenge, { cseq: 2 }, { password: 'guess' }));
    assert.deepEqual(delayed, [], 'nothing sent yet');
    const responses: SipResponse[] = [];
    const req = answering(challenge, { cseq: 3 }, { password: 'guess-again' });
    await h.registrar.handle(req, { request: req, respond: (r) => responses.push(r) });
    h.clock.advance(3999);
    assert.equal(responses.length, 0);
    h.clock.advance(1);
    assert.deepEqual(responses.map((r) => r.status), [401]);
  });
});

describe('authorization (RFC 3261 §10.3 step 4)', () => {
  it('a user registers their own AOR only', async () => {
    const h = await withUsers();
    const challenge = await h.answer(register({ to: `sip:bob@${DOMAIN}`, cseq: 1 }));
    const res = await h.answer(answering(challenge, { to: `sip:bob@${DOMAIN}`, from: AOR, cseq: 2 }));
    assert.equal(res.status, 403);
    assert.match(res.reason, /alice may not register sip:bob@example.com/);
    assert.deepEqual(await h.location.listAors(), []);
  });

  it('a member of the third-party group registers another subscriber (From differs from To)', async () => {
    const h = await withUsers();
    const spec = { to: `sip:bob@${DOMAIN}`, from: `sip:admin@${DOMAIN}` };
    const challenge = await h.answer(register({ ...spec, cseq: 1 }));
    const res = await h.answer(answering(challenge, { ...spec, cseq: 2 }, { username: 'admin', password: 'root' }));
    assert.equal(res.status, 200);
    assert.deepEqual(await h.location.listAors(), [`sip:bob@${DOMAIN}`]);

    const nobody = { to: `sip:nobody@${DOMAIN}`, from: `sip:admin@${DOMAIN}` };
    const unknown = await h.answer(answering(challenge, { ...nobody, cseq: 3 }, { username: 'admin', password: 'root', nc: 2 }));
    assert.equal(unknown.status, 404);
  });
});
