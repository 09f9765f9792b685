import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, parseUri, type SipRequest } from '../../src/message/index.js';
import { AuthService, credentialsFromPassword, DigestClient, MemoryCredentialStore, parseDigestCredentials, type AuthKind } from '../../src/auth/index.js';
import { newRequest } from '../../src/transaction/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';

const REALM = 'example.com';

function server(algorithms: Array<'MD5' | 'SHA-256'> = ['MD5']) {
  return new AuthService({
    credentials: new MemoryCredentialStore([credentialsFromPassword('alice', REALM, 's3cret')]),
    clock: new FakeClock(),
    logger: silentLogger(),
    algorithms,
  });
}

/** What the server answers: the request accepted, or its challenge as a response. */
async function ask(auth: AuthService, request: SipRequest, kind: AuthKind) {
  const r = await auth.authenticate(request, REALM, kind);
  return r.ok ? ('accepted' as const) : createResponse(request, r.status, { headers: r.headers });
}

function register(): SipRequest {
  return newRequest('REGISTER', parseUri(`sip:${REALM}`), { from: `<sip:alice@${REALM}>`, to: `<sip:alice@${REALM}>`, contact: '<sip:alice@192.0.2.1>', cseq: 1 });
}

test('a 401 answered with the same Call-ID and CSeq + 1 passes the registrar; a refresh carries credentials with nc 2', async () => {
  const auth = server();
  const client = new DigestClient({ username: 'alice', password: 's3cret' });
  const first = register();
  const challenge = await ask(auth, first, 'www');
  assert.notEqual(challenge, 'accepted');
  const retried = client.retry(first, challenge as Exclude<typeof challenge, 'accepted'>)!;
  assert.ok(retried, client.refusal);
  assert.equal(retried.callId, first.callId);
  assert.equal(retried.fromTag, first.fromTag);
  assert.equal(retried.headers.get('cseq'), '2 REGISTER');
  assert.equal(await ask(auth, retried, 'www'), 'accepted');

  const refresh = newRequest('REGISTER', parseUri(`sip:${REALM}`), { from: `<sip:alice@${REALM}>`, to: `<sip:alice@${REALM}>`, callId: first.callId, cseq: 3 });
  client.authorize(refresh);
  const sent = parseDigestCredentials(refresh.headers.get('authorization')!);
  assert.ok(sent.ok && sent.value.nc === '00000002', 'the nonce is reused with the next count');
  assert.equal(await ask(auth, refresh, 'www'), 'accepted');
});

test('a 407 is answered with Proxy-Authorization, and the strongest algorithm the proxy offers first is used', async () => {
  const auth = server(['SHA-256', 'MD5']);
  const client = new DigestClient({ username: 'alice', password: 's3cret' });
  const invite = newRequest('INVITE', parseUri('sip:bob@example.com'), { from: `<sip:alice@${REALM}>`, contact: '<sip:alice@192.0.2.1>' });
  const challenge = await ask(auth, invite, 'proxy');
  assert.notEqual(challenge, 'accepted');
  const retried = client.retry(invite, challenge as Exclude<typeof challenge, 'accepted'>)!;
  assert.equal(retried.headers.get('authorization'), undefined);
  const sent = parseDigestCredentials(retried.headers.get('proxy-authorization')!);
  assert.ok(sent.ok && sent.value.algorithm === 'SHA-256');
  assert.equal(await ask(auth, retried, 'proxy'), 'accepted');
});

test('a wrong password is tried once: challenged again, the client gives up with a reason instead of looping', async () => {
  const auth = server();
  const client = new DigestClient({ username: 'alice', password: 'wrong' });
  const first = register();
  const retried = client.retry(first, (await ask(auth, first, 'www')) as never)!;
  const again = await ask(auth, retried, 'www');
  assert.notEqual(again, 'accepted');
  assert.equal(client.retry(retried, again as never), undefined);
  assert.match(client.refusal ?? '', /refused \(wrong user name or password\?\)/);
});

test('challenges of another realm than the account, or not a challenge at all, are not answered', async () => {
  const auth = server();
  const client = new DigestClient({ username: 'alice', password: 's3cret', realm: 'other.example' });
  const first = register();
  assert.equal(client.retry(first, (await ask(auth, first, 'www')) as never), undefined);
  assert.match(client.refusal ?? '', /no supported challenge for realm "other.example"/);
  assert.equal(new DigestClient({ username: 'a', password: 'b' }).retry(first, createResponse(first, 403)), undefined);
});
