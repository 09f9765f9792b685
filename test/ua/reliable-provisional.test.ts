import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SipRequest, SipResponse } from '../../src/message/index.js';
import { parseText } from '../../src/testing/index.js';
import { parseRAck } from '../../src/ua/index.js';
import { fakeUaCore, fakeUaPair } from '../helpers/ua-core.js';

const OFFER = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER = 'v=0\r\no=- 2 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';

const requestsOf = (core: ReturnType<typeof fakeUaCore>, method: string): SipRequest[] => core.sender.requests(method).map((s) => s.message as SipRequest);

test('RFC 3262 §7.2: RAck is parsed strictly', () => {
  assert.deepEqual(parseRAck('776656 1 INVITE'), { rseq: 776656, cseq: 1, method: 'INVITE' });
  assert.equal(parseRAck('1 INVITE'), undefined);
  assert.equal(parseRAck('99999999999 1 INVITE'), undefined);
  assert.equal(parseRAck(undefined), undefined);
});

test('RFC 3262: a 183 with the answer is sent reliably, PRACKed once, and the 2xx that waited for it carries no SDP', async () => {
  const pair = fakeUaPair();
  const alice = pair.call({ sdp: OFFER });
  await pair.run(1);
  const bob = pair.bob.sessions[0]!;
  bob.progress(183, { sdp: ANSWER });
  bob.accept(); // must wait for the PRACK (§3: the 183 carried SDP)
  const early = pair.bob.sender.responses(183)[0]!.message as SipResponse;
  assert.equal(early.headers.get('require'), '100rel');
  const rseq = Number(early.headers.get('rseq'));
  assert.ok(rseq >= 1 && rseq < 2 ** 31);
  assert.equal(pair.bob.sender.responses(200).length, 0, 'no 2xx before the PRACK');
  await pair.run(5);
  const pracks = requestsOf(pair.alice, 'PRACK');
  assert.equal(pracks.length, 1);
  assert.equal(pracks[0]!.headers.get('rack'), `${rseq} ${alice.invite.cseq.seq} INVITE`);
  const ok = pair.bob.sender.responses(200).map((s) => s.message as SipResponse).find((r) => r.cseq.method === 'INVITE')!;
  assert.equal(ok.body.length, 0, 'the offer/answer exchange was done in the 183 and its PRACK');
  const order = pair.bob.sender.responses(200).map((s) => (s.message as SipResponse).cseq.method);
  assert.deepEqual(order.slice(0, 2), ['PRACK', 'INVITE'], 'the PRACK is answered before the 2xx that waited for it');
  assert.equal((await alice.answered).status, 200);
  assert.equal(alice.remoteSdp, ANSWER);
  assert.equal(bob.localSdp, ANSWER);
  assert.equal(bob.state, 'Confirmed');
  assert.equal(alice.dialog!.state, 'Confirmed');
  assert.equal(bob.dialog!.state, 'Confirmed', 'the early dialog the 183 made was confirmed by the 2xx');
});

test('RFC 3262 §3: a reliable provisional is sent again at T1, 2·T1, 4·T1 ... (not capped at T2) and, never PRACKed, the INVITE fails 504 at 64·T1', async () => {
  const pair = fakeUaPair();
  pair.alice.sender.lose = (m) => m.isRequest && m.method === 'PRACK';
  const alice = pair.call({ sdp: OFFER });
  await pair.run(1);
  const bob = pair.bob.sessions[0]!;
  bob.progress(180, { reliable: true });
  await pair.run(32_100, 50);
  const sent = pair.bob.sender.responses(180).map((s) => s.at);
  const base = sent[0]!;
  assert.deepEqual(sent.map((t) => t - base), [0, 500, 1500, 3500, 7500, 15500, 31500]);
  const failed = pair.bob.sender.responses(504)[0]!;
  assert.equal(failed.at - base, 32_000);
  assert.match((failed.message as SipResponse).reason, /no PRACK/);
  assert.equal((await alice.answered).status, 504);
  const pracks = requestsOf(pair.alice, 'PRACK');
  assert.equal(new Set(pracks.map((p) => p.cseq.seq)).size, 1, 'retransmitted 180s (same RSeq) are not PRACKed again');
});

test('RFC 3262 §3: an INVITE without an offer gets ours in a reliable 183 and the answer in the PRACK', async () => {
  const pair = fakeUaPair();
  const alice = pair.call();
  alice.onOffer = () => OFFER;
  await pair.run(1);
  const bob = pair.bob.sessions[0]!;
  bob.progress(183, { sdp: ANSWER });
  await pair.run(5);
  const prack = requestsOf(pair.alice, 'PRACK')[0]!;
  assert.equal(prack.body.toString(), OFFER);
  assert.equal(bob.remoteSdp, OFFER);
  bob.accept();
  await pair.run(5);
  assert.equal(alice.remoteSdp, ANSWER);
  assert.equal(alice.localSdp, OFFER);
});

test('RFC 3262 §4: a PRACK for an RSeq we never sent is answered 481', async () => {
  const pair = fakeUaPair();
  pair.call({ sdp: OFFER });
  await pair.run(1);
  const bob = pair.bob.sessions[0]!;
  bob.progress(183, { sdp: ANSWER });
  const early = pair.bob.sender.responses(183)[0]!.message as SipResponse;
  const rseq = Number(early.headers.get('rseq'));
  const invite = bob.invite;
  const prack = parseText<SipRequest>(
    [
      'PRACK sip:bob@192.0.2.10:5060 SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKprackbad',
      'Max-Forwards: 70',
      `From: ${invite.headers.get('from')}`,
      `To: <sip:bob@192.0.2.10>;tag=${early.toTag}`,
      `Call-ID: ${invite.callId}`,
      `CSeq: ${invite.cseq.seq + 1} PRACK`,
      `RAck: ${rseq + 5} ${invite.cseq.seq} INVITE`,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
  pair.bob.transactions.receive(prack);
  assert.match((pair.bob.sender.responses(481)[0]!.message as SipResponse).reason, /no such reliable provisional/);
});

test('RFC 3261 §8.2.2.3: an INVITE that requires an extension we lack is refused 420 naming it', () => {
  const { transactions, sender } = fakeUaCore();
  transactions.receive(
    parseText(
      [
        'INVITE sip:bob@192.0.2.10 SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKreq1',
        'Max-Forwards: 70',
        'From: <sip:alice@example.com>;tag=a1',
        'To: <sip:bob@example.com>',
        'Call-ID: r1@192.0.2.1',
        'CSeq: 1 INVITE',
        'Contact: <sip:alice@192.0.2.1>',
        'Require: 100rel, precondition',
        'Content-Length: 0',
        '',
        '',
      ].join('\n'),
    ),
  );
  const refused = sender.responses(420)[0]!.message as SipResponse;
  assert.equal(refused.headers.get('unsupported'), 'precondition');
});

test('RFC 3262 §3: a 2xx may overtake a reliable provisional without SDP; its late PRACK is answered 200, not 481', async () => {
  const pair = fakeUaPair();
  const alice = pair.call({ sdp: OFFER });
  await pair.run(1);
  const bob = pair.bob.sessions[0]!;
  bob.ring({ reliable: true });
  bob.accept(ANSWER); // no SDP in the 180: the 2xx need not wait for its PRACK
  await pair.run(10);
  assert.equal((await alice.answered).status, 200);
  const prackAnswers = pair.bob.sender.responses().map((s) => s.message as SipResponse).filter((r) => r.cseq.method === 'PRACK');
  assert.deepEqual(prackAnswers.map((r) => r.status), [200]);
});
