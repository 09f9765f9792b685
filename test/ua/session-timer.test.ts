import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SipRequest, SipResponse } from '../../src/message/index.js';
import { parseText } from '../../src/testing/index.js';
import { parseMinSE, parseSessionExpires } from '../../src/ua/index.js';
import { fakeUaCore, fakeUaPair } from '../helpers/ua-core.js';

const OFFER = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER = 'v=0\r\no=- 2 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';
const TIMERS = { expires: 1800, minSE: 90 };

/** An INVITE from 192.0.2.1 with `headers` added and OFFER. */
function invite(headers: string[], branch = 'z9hG4bKst1'): SipRequest {
  const request = parseText<SipRequest>(
    [
      'INVITE sip:bob@192.0.2.10 SIP/2.0',
      `Via: SIP/2.0/UDP 192.0.2.1:5060;branch=${branch}`,
      'Max-Forwards: 70',
      'From: <sip:alice@example.com>;tag=a1',
      'To: <sip:bob@example.com>',
      'Call-ID: st1@192.0.2.1',
      'CSeq: 1 INVITE',
      'Contact: <sip:alice@192.0.2.1:5060>',
      ...headers,
      'Content-Type: application/sdp',
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
  request.body = Buffer.from(OFFER);
  return request;
}

function ackFor(ok: SipResponse): SipRequest {
  return parseText<SipRequest>(
    ['ACK sip:alice@192.0.2.1:5060 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKstack', 'Max-Forwards: 70', 'From: <sip:alice@example.com>;tag=a1', `To: <sip:bob@example.com>;tag=${ok.toTag}`, 'Call-ID: st1@192.0.2.1', 'CSeq: 1 ACK', 'Content-Length: 0', '', ''].join('\n'),
  );
}

test('RFC 4028 §4/§5: Session-Expires and Min-SE are parsed with their refresher', () => {
  assert.deepEqual(parseSessionExpires('1800;refresher=uas'), { delta: 1800, refresher: 'uas' });
  assert.deepEqual(parseSessionExpires('90'), { delta: 90, refresher: undefined });
  assert.deepEqual(parseSessionExpires('120 ; x=y ; refresher=UAC'), { delta: 120, refresher: 'uac' });
  assert.equal(parseSessionExpires('0'), undefined);
  assert.equal(parseSessionExpires('soon'), undefined);
  assert.equal(parseMinSE('90;lr'), 90);
  assert.equal(parseMinSE('x'), undefined);
});

test('RFC 4028 §8.1: an INVITE asking for less than our Min-SE is refused 422 with ours', () => {
  const { transactions, sender, sessions } = fakeUaCore({ sessionTimer: TIMERS });
  transactions.receive(invite(['Supported: timer', 'Session-Expires: 60']));
  const refused = sender.responses(422)[0]!.message as SipResponse;
  assert.equal(refused.headers.get('min-se'), '90');
  assert.equal(sessions.length, 0);
});

test('RFC 4028 §9/§10: the caller refreshes (refresher=uac, Require: timer); with no refresh we send BYE at SE - min(32, SE/3)', () => {
  const { transactions, sender, sessions, clock } = fakeUaCore({ sessionTimer: TIMERS });
  transactions.receive(invite(['Supported: timer', 'Session-Expires: 120', 'Min-SE: 90']));
  sessions[0]!.accept(ANSWER);
  const ok = sender.responses(200)[0]!;
  const response = ok.message as SipResponse;
  assert.equal(response.headers.get('session-expires'), '120;refresher=uac');
  assert.equal(response.headers.get('require'), 'timer');
  transactions.receive(ackFor(response));
  assert.deepEqual(sessions[0]!.sessionExpires, { interval: 120, refresher: 'remote' });
  clock.advance(87_999);
  assert.equal(sender.requests('BYE').length, 0);
  clock.advance(1);
  const bye = sender.requests('BYE');
  assert.equal(bye.length, 1);
  assert.equal(bye[0]!.at - ok.at, 88_000, '120 s - 32 s');
});

test('RFC 4028 §9: a caller without timer support gets refresher=uas; we refresh at half the interval with a re-INVITE (no UPDATE in its Allow)', () => {
  const { transactions, sender, sessions, clock } = fakeUaCore({ sessionTimer: TIMERS });
  transactions.receive(invite(['Allow: INVITE, ACK, BYE, CANCEL']));
  sessions[0]!.accept(ANSWER);
  const ok = sender.responses(200)[0]!;
  const response = ok.message as SipResponse;
  assert.equal(response.headers.get('session-expires'), '1800;refresher=uas');
  assert.equal(response.headers.get('require'), undefined);
  transactions.receive(ackFor(response));
  clock.advance(900_000);
  const refresh = sender.requests('INVITE');
  assert.equal(refresh.length, 1);
  assert.equal(refresh[0]!.at - ok.at, 900_000);
  const request = refresh[0]!.message as SipRequest;
  assert.equal(request.headers.get('session-expires'), '1800;refresher=uac');
  assert.match(request.body.toString(), /^o=- 2 2 IN IP4 192\.0\.2\.10\r$/m, 'the re-INVITE refresh offers our SDP again, version one higher');
});

test('RFC 4028 §7.4: 422 makes the caller retry with the callee\'s Min-SE; the caller then refreshes with UPDATE every half interval', async () => {
  const pair = fakeUaPair({ sessionTimer: { expires: 120, minSE: 90 }, bobSessionTimer: { expires: 1800, minSE: 300 } });
  const { alice: a, bob: b } = pair;
  const alice = pair.call({ sdp: OFFER, headers: [['Session-Expires', '120'], ['Min-SE', '90']] });
  await pair.run(5);
  const invites = a.sender.requests('INVITE').map((s) => s.message as SipRequest);
  assert.equal(b.sender.responses(422).length, 1);
  assert.equal(invites.length, 2);
  assert.equal(invites[1]!.headers.get('session-expires'), '300');
  assert.equal(invites[1]!.headers.get('min-se'), '300');
  assert.equal(invites[1]!.cseq.seq, invites[0]!.cseq.seq + 1);
  const bob = b.sessions[0]!;
  bob.accept(ANSWER);
  await pair.run(5);
  assert.equal((await alice.answered).status, 200);
  assert.deepEqual(alice.sessionExpires, { interval: 300, refresher: 'local' });
  assert.deepEqual(bob.sessionExpires, { interval: 300, refresher: 'remote' });
  await pair.run(700_000, 1000);
  const updates = a.sender.requests('UPDATE');
  assert.equal(updates.length, 4, 'a refresh every 150 s for 700 s');
  assert.equal(updates[0]!.message.body.length, 0, 'an UPDATE refresh carries no offer');
  assert.equal(b.sender.requests('BYE').length + a.sender.requests('BYE').length, 0, 'refreshed sessions do not expire');
  assert.equal(alice.state, 'Confirmed');
  assert.equal(bob.state, 'Confirmed');
});
