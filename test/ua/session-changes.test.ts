import { test } from 'node:test';
import assert from 'node:assert/strict';
import { audioDirection } from '../../src/sdp/index.js';
import type { SipRequest } from '../../src/message/index.js';
import { fakeUaPair, settle } from '../helpers/ua-core.js';

/** An SDP of one PCMU stream at `host`:`port`, origin version `version`, direction `dir`. */
function sdp(host: string, port: number, version = 1, dir = 'sendrecv'): string {
  return `v=0\r\no=- 7 ${version} IN IP4 ${host}\r\ns=-\r\nc=IN IP4 ${host}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=${dir}\r\n`;
}
const ALICE_SDP = sdp('192.0.2.1', 4000);
const BOB_SDP = sdp('192.0.2.10', 5000);

/** A call from Alice with `offer` (or none) answered 200 by Bob with `answer`; returns both sessions, confirmed. */
async function connected(pair: ReturnType<typeof fakeUaPair>, offer: string | undefined = ALICE_SDP, answer = BOB_SDP) {
  const alice = pair.call({ sdp: offer });
  await pair.run(1);
  const bob = pair.bob.sessions.at(-1)!;
  bob.accept(answer);
  await pair.run(5);
  assert.equal((await alice.answered).status, 200);
  return { alice, bob };
}

const sentBy = (core: ReturnType<typeof fakeUaPair>['alice'], method: string): SipRequest[] => core.sender.requests(method).map((s) => s.message as SipRequest);

test('RFC 3264 §4: offer in the INVITE, answer in the 2xx; an UPDATE (RFC 3311) offer is answered from our SDP, hold answered recvonly', async () => {
  const pair = fakeUaPair();
  const { alice, bob } = await connected(pair);
  assert.equal(alice.remoteSdp, BOB_SDP);
  assert.equal(bob.remoteSdp, ALICE_SDP);
  let changes = 0;
  alice.onChange = () => changes++;
  const result = bob.update(sdp('192.0.2.10', 5000, 2, 'sendonly'));
  await pair.run(5);
  assert.deepEqual(await result, { status: 200, reason: 'OK' });
  assert.equal(changes, 1);
  assert.equal(alice.held, true, 'Bob put Alice on hold');
  assert.equal(audioDirection(alice.localSdp), 'recvonly');
  assert.equal(audioDirection(bob.remoteSdp), 'recvonly', 'Bob holds the answer as the peer SDP');
  assert.equal(sentBy(pair.bob, 'UPDATE').length, 1);
});

test('§13.2.1: an INVITE without an offer gets one in the 2xx and answers it in the ACK (onOffer)', async () => {
  const pair = fakeUaPair();
  const offers: string[] = [];
  const alice = pair.call();
  alice.onOffer = (offer) => {
    offers.push(offer);
    return ALICE_SDP;
  };
  await pair.run(1);
  const bob = pair.bob.sessions[0]!;
  let changed = false;
  bob.onChange = () => (changed = true);
  bob.accept(BOB_SDP);
  await pair.run(5);
  assert.deepEqual(offers, [BOB_SDP]);
  const ack = sentBy(pair.alice, 'ACK')[0]!;
  assert.equal(ack.body.toString(), ALICE_SDP, 'the answer rides in the ACK');
  assert.equal(ack.headers.get('content-type'), 'application/sdp');
  assert.equal(bob.remoteSdp, ALICE_SDP);
  assert.equal(bob.localSdp, BOB_SDP);
  assert.equal(changed, true);
  assert.equal(bob.awaitingAck, false);
});

test('§13.2.2.4: an offer in the 2xx we cannot take is still answered in the ACK (every stream rejected), then BYE', async () => {
  const pair = fakeUaPair();
  const alice = pair.call();
  alice.onOffer = () => ({ status: 488, reason: 'Not Acceptable Here - no common codec' });
  await pair.run(1);
  const bob = pair.bob.sessions[0]!;
  bob.accept(BOB_SDP);
  await pair.run(10);
  const ack = sentBy(pair.alice, 'ACK')[0]!;
  assert.match(ack.body.toString(), /^m=audio 0 RTP\/AVP 0/m);
  assert.equal(sentBy(pair.alice, 'BYE').length, 1);
  assert.deepEqual(await alice.ended, { by: 'failure', reason: 'the offer in the 2xx was refused: 488 Not Acceptable Here - no common codec' });
  assert.equal((await bob.ended).by, 'remote');
});

test('§14: a re-INVITE without an offer gets our SDP (version one higher) in the 2xx and the answer in the ACK', async () => {
  const pair = fakeUaPair();
  const { alice, bob } = await connected(pair);
  let bobChanged = 0;
  bob.onChange = () => bobChanged++;
  const result = alice.reinvite();
  await pair.run(5);
  assert.equal((await result).status, 200);
  const offerIn2xx = pair.bob.sender.responses(200).map((s) => s.message.body.toString()).filter((b) => b.length > 0).at(-1)!;
  assert.match(offerIn2xx, /^o=- 7 2 IN IP4 192\.0\.2\.10/m);
  const acks = sentBy(pair.alice, 'ACK');
  assert.equal(acks.length, 2);
  assert.match(acks[1]!.body.toString(), /^o=- 7 2 IN IP4 192\.0\.2\.1\r$/m, 'Alice answered from her SDP, version one higher');
  assert.equal(bobChanged, 1);
  assert.equal(bob.remoteSdp, acks[1]!.body.toString());
});

test('§14.1 glare: re-INVITEs crossing get 491 each; the Call-ID owner retries after 2.1-4 s, the other after 0-2 s; both succeed', async () => {
  const pair = fakeUaPair();
  const { alice, bob } = await connected(pair);
  const a = alice.reinvite(sdp('192.0.2.1', 4000, 2, 'sendonly'));
  const b = bob.reinvite(sdp('192.0.2.10', 5000, 2, 'sendonly'));
  await pair.run(4500, 5);
  assert.deepEqual(await a, { status: 200, reason: 'OK' });
  assert.deepEqual(await b, { status: 200, reason: 'OK' });
  assert.equal(pair.alice.sender.responses(491).length, 1);
  assert.equal(pair.bob.sender.responses(491).length, 1);
  const aliceInvites = pair.alice.sender.requests('INVITE').slice(1).map((s) => s.at);
  const bobInvites = pair.bob.sender.requests('INVITE').map((s) => s.at);
  assert.equal(aliceInvites.length, 2);
  assert.equal(bobInvites.length, 2);
  const aliceWait = aliceInvites[1]! - aliceInvites[0]!;
  const bobWait = bobInvites[1]! - bobInvites[0]!;
  assert.ok(aliceWait >= 2100 && aliceWait <= 4010, `Alice (Call-ID owner) waited ${aliceWait} ms`);
  assert.ok(bobWait <= 2010, `Bob waited ${bobWait} ms`);
});

test('RFC 3264 §6: a re-INVITE whose offer onOffer refuses is answered 488 and the session goes on as it was', async () => {
  const pair = fakeUaPair();
  const { alice, bob } = await connected(pair);
  bob.onOffer = () => ({ status: 488, reason: 'Not Acceptable Here - video only' });
  const result = alice.reinvite(sdp('192.0.2.1', 4002, 2));
  await pair.run(5);
  assert.deepEqual(await result, { status: 488, reason: 'Not Acceptable Here - video only' });
  assert.equal(alice.state, 'Confirmed');
  assert.equal(alice.localSdp, ALICE_SDP, 'the refused offer is rolled back');
  assert.equal(bob.remoteSdp, ALICE_SDP);
  const again = alice.update(sdp('192.0.2.1', 4002, 2));
  bob.onOffer = undefined;
  await pair.run(5);
  assert.equal((await again).status, 200, 'a later offer is taken');
});

test('RFC 3311 §5.2: an UPDATE offer while our own offer is outstanding is refused 491', async () => {
  const pair = fakeUaPair();
  const { alice, bob } = await connected(pair);
  pair.bob.sender.lose = (m) => m.isRequest && m.method === 'INVITE'; // Bob's re-INVITE never arrives: his offer stays outstanding
  void bob.reinvite(sdp('192.0.2.10', 5002, 2));
  await pair.run(1);
  const update = alice.update(sdp('192.0.2.1', 4002, 2));
  // Alice's UPDATE is refused once per try; after three tries the 491 is her answer.
  await pair.run(12_000, 5);
  assert.equal((await update).status, 491);
  assert.ok(pair.bob.sender.responses(491).length >= 1);
});

test('RFC 6086: INFO in the session reaches onInfo, and its status is the answer', async () => {
  const pair = fakeUaPair();
  const { alice, bob } = await connected(pair);
  const seen: string[] = [];
  bob.onInfo = (request) => {
    seen.push(`${request.headers.get('content-type')}|${request.body.toString()}`);
    return seen.length === 1 ? 200 : 415;
  };
  const first = alice.info('Signal=5\r\nDuration=160\r\n', 'application/dtmf-relay');
  await pair.run(5);
  assert.equal(await first, 200);
  const second = alice.info('x', 'application/x-unknown');
  await pair.run(5);
  assert.equal(await second, 415);
  assert.deepEqual(seen, ['application/dtmf-relay|Signal=5\r\nDuration=160\r\n', 'application/x-unknown|x']);
  await settle();
});
