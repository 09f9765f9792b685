import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SipResponse } from '../../src/message/index.js';
import type { InviteServerTransaction } from '../../src/transaction/index.js';
import { parseText } from '../../src/testing/index.js';
import { InviteSession } from '../../src/ua/index.js';
import { fakeUaCore } from '../helpers/ua-core.js';
import type { SipRequest } from '../../src/message/index.js';

const uas = fakeUaCore;

const INVITE = [
  'INVITE sip:bob@192.0.2.10 SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1',
  'Max-Forwards: 70',
  'From: <sip:alice@example.com>;tag=a1',
  'To: <sip:bob@example.com>',
  'Call-ID: s1@192.0.2.1',
  'CSeq: 1 INVITE',
  'Contact: <sip:alice@192.0.2.1:5060>',
  'Content-Length: 0',
  '',
  '',
].join('\n');

function ackFor(ok: SipResponse): SipRequest {
  return parseText<SipRequest>(
    [
      'ACK sip:bob@192.0.2.10:5060 SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKack1',
      'Max-Forwards: 70',
      'From: <sip:alice@example.com>;tag=a1',
      `To: <sip:bob@example.com>;tag=${ok.toTag}`,
      'Call-ID: s1@192.0.2.1',
      'CSeq: 1 ACK',
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

test('§13.3.1.4: the 2xx is sent again at T1, 2·T1, 4·T1 ... capped at T2, and not after the ACK', () => {
  const { clock, transactions, sessions, oks, sender } = uas();
  transactions.receive(parseText(INVITE));
  sessions[0]!.accept('v=0\r\n');
  clock.advance(3500);
  assert.deepEqual(oks(), [0, 500, 1500, 3500]);
  clock.advance(8000); // 3500 + 4000 (capped at T2), + 4000
  assert.deepEqual(oks(), [0, 500, 1500, 3500, 7500, 11500]);
  transactions.receive(ackFor(sender.responses(200)[0]!.message as SipResponse));
  assert.equal(sessions[0]!.awaitingAck, false);
  clock.advance(20_000);
  assert.equal(oks().length, 6, 'no 2xx after the ACK');
});

test('§13.3.1.4: no ACK in 64·T1 ends the session with a BYE', async () => {
  const { clock, transactions, sessions, sender } = uas();
  transactions.receive(parseText(INVITE));
  const s = sessions[0]!;
  s.accept();
  clock.advance(31_999);
  assert.equal(sender.requests('BYE').length, 0);
  clock.advance(1);
  assert.equal(sender.requests('BYE').length, 1);
  assert.equal(sender.requests('BYE')[0]!.message.headers.get('cseq')?.endsWith(' BYE'), true);
  clock.advance(32_000); // the BYE's own transaction times out (Timer F): the session still ends
  assert.deepEqual(await s.ended, { by: 'failure', reason: 'no ACK for our 2xx' });
});

test('§13.2.2.4 as caller: every 2xx (retransmissions too) is ACKed with the same bytes; a 2xx without Contact fails the call', async () => {
  const { clock, transactions, core, sender } = uas();
  const { newRequest } = await import('../../src/transaction/index.js');
  const { parseUri } = await import('../../src/message/index.js');
  const invite = newRequest('INVITE', parseUri('sip:bob@192.0.2.1'), { from: '<sip:alice@example.com>', contact: '<sip:alice@192.0.2.10>' });
  const to = { transport: 'udp' as const, address: '192.0.2.1', port: 5060 };
  const call = InviteSession.call(core, invite, to);
  /** A 200 to `req` from bob, with or without a Contact. */
  const ok = (req: SipRequest, tag: string, contact: boolean): SipResponse =>
    parseText<SipResponse>(
      [
        'SIP/2.0 200 OK',
        `Via: ${req.headers.get('via')}`,
        `From: ${req.headers.get('from')}`,
        `To: <sip:bob@192.0.2.1>;tag=${tag}`,
        `Call-ID: ${req.callId}`,
        `CSeq: ${req.cseq.seq} INVITE`,
        ...(contact ? ['Contact: <sip:bob@192.0.2.1:5062>'] : []),
        'Content-Length: 0',
        '',
        '',
      ].join('\n'),
    );
  transactions.receive(ok(invite, 'b7', true));
  assert.deepEqual(await call.answered, { status: 200, reason: 'OK' });
  clock.advance(500);
  transactions.receive(ok(invite, 'b7', true)); // the callee did not get our ACK
  const acks = sender.requests('ACK').map((s) => s.message.headers.get('via'));
  assert.equal(acks.length, 2);
  assert.equal(acks[0], acks[1], 'the same ACK (same branch) again');

  const invite2 = newRequest('INVITE', parseUri('sip:bob@192.0.2.1'), { from: '<sip:alice@example.com>', contact: '<sip:alice@192.0.2.10>' });
  const broken = InviteSession.call(core, invite2, to);
  transactions.receive(ok(invite2, 'b8', false));
  assert.deepEqual(await broken.answered, { status: 502, reason: 'Bad Gateway - a 2xx without a To tag or Contact' });
});

test('§14.2: a re-INVITE while our 2xx waits for its ACK is refused 500 with Retry-After; after the ACK it is answered', () => {
  const { transactions, sessions, sender } = uas();
  transactions.receive(parseText(INVITE));
  const s = sessions[0]!;
  s.accept('v=0\r\no=bob 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n');
  const ok = sender.responses(200)[0]!.message as SipResponse;
  const reinvite = (branch: string, cseq: number): SipRequest =>
    parseText<SipRequest>(
      INVITE.replace('branch=z9hG4bKinv1', `branch=${branch}`)
        .replace('To: <sip:bob@example.com>', `To: <sip:bob@example.com>;tag=${ok.toTag}`)
        .replace('CSeq: 1 INVITE', `CSeq: ${cseq} INVITE`),
    );
  // The UA core would route it here after matching the dialog; the test hands it over as the core does.
  const early: Array<{ request: SipRequest; st: InviteServerTransaction }> = [];
  transactions.setUser({ onRequest: (request, st) => early.push({ request, st: st as InviteServerTransaction }), onAck: (ack) => s.acked(ack), onStrayResponse: () => undefined });
  transactions.receive(reinvite('z9hG4bKre1', 2));
  s.reinvited(early[0]!.request, early[0]!.st);
  const refused = sender.responses(500)[0]!.message as SipResponse;
  assert.match(refused.reason, /not acknowledged yet/);
  assert.ok(Number(refused.headers.get('retry-after')) <= 10);
  transactions.receive(ackFor(ok));
  transactions.receive(reinvite('z9hG4bKre2', 3));
  s.reinvited(early[1]!.request, early[1]!.st);
  assert.equal(sender.responses(200).length, 2, 'the second re-INVITE is answered 200');
});
