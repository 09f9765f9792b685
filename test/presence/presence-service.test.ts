import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SipRequest, SipResponse } from '../../src/message/index.js';
import { basicStatuses, composePidf, PresenceService } from '../../src/presence/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { FakeClock, LoopTransport, parseText } from '../../src/testing/index.js';
import { answerNotify, sentNotifies } from './notify-helpers.js';

const BOB = 'sip:bob@example.com';
const pidf = (id: string, basic: string, note = ''): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="${BOB}"><tuple id="${id}"><status><basic>${basic}</basic></status>${note}</tuple><dm:person id="p1"><dm:note>${id}</dm:note></dm:person></presence>`;

/** The presence service on a loop transport and a fake clock; Bob is registered when `registered` holds. */
function service(options: { maxTransactions?: number; notifyIntervalMs?: number } = {}) {
  const clock = new FakeClock(0);
  const sender = new LoopTransport({ clock, address: '192.0.2.5' });
  const transactions = new TransactionLayer({ sender, clock, maxTransactions: options.maxTransactions });
  const state = { registered: false };
  const presence = new PresenceService({ transactions, sender, clock, contact: '<sip:192.0.2.5:5060>', registered: async () => state.registered, notifyIntervalMs: options.notifyIntervalMs });
  transactions.setUser({ onRequest: (r, st) => void presence.handle(r, st), onAck: () => undefined, onStrayResponse: () => undefined });
  // The watcher answers each NOTIFY 200 when the clock next moves (a NOTIFY nobody answers ends its subscription).
  sender.deliverTo({ receive: (m) => m.isRequest && m.method === 'NOTIFY' && answer(m as SipRequest, 200) });
  let n = 0;
  /** A request from the watcher (192.0.2.1) or a device, with `lines` added. */
  const request = (method: string, lines: string[], body = '', toTag?: string, cseq = 1): SipRequest => {
    const r = parseText<SipRequest>(
      [
        `${method} ${BOB} SIP/2.0`,
        `Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKp${++n}`,
        'Max-Forwards: 70',
        'From: <sip:alice@example.com>;tag=w1',
        `To: <${BOB}>${toTag ? `;tag=${toTag}` : ''}`,
        `Call-ID: ${method === 'PUBLISH' ? `pub${n}` : 'sub1'}@192.0.2.1`,
        `CSeq: ${cseq} ${method}`,
        'Contact: <sip:alice@192.0.2.1:5060>',
        ...lines,
        'Content-Length: 0',
        '',
        '',
      ].join('\n'),
    );
    if (body) {
      r.body = Buffer.from(body);
      r.headers.set('Content-Length', String(r.body.length));
    }
    r.source = { transport: 'udp', address: '192.0.2.1', port: 5060, localAddress: '192.0.2.5', localPort: 5060, flowId: 'udp:x', receivedAt: 0 };
    return r;
  };
  const send = (r: SipRequest): SipResponse => {
    const before = sender.sent.length;
    transactions.receive(r);
    const answer = sender.sent.slice(before).find((s) => !s.message.isRequest);
    return answer!.message as SipResponse;
  };
  /** A PUBLISH, answered once the store has taken it. */
  const publish = async (r: SipRequest): Promise<SipResponse> => {
    const before = sender.sent.length;
    transactions.receive(r);
    for (let i = 0; i < 20; i++) await Promise.resolve();
    return sender.sent.slice(before).find((s) => !s.message.isRequest)!.message as SipResponse;
  };
  /** The NOTIFYs sent, each once (Timer E's retransmissions left out). */
  const notifies = (): SipRequest[] => sentNotifies(sender);
  /** The watcher answers a NOTIFY with `status`. */
  const answer = (notify: SipRequest, status: number): void => answerNotify(transactions, notify, status);
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 50; i++) await Promise.resolve();
  };
  return { clock, sender, presence, state, request, send, publish, notifies, answer, settle };
}

test('RFC 6665 §4.2.1: SUBSCRIBE is answered 200 with a dialog and followed at once by a NOTIFY with the full state (closed: not registered)', async () => {
  const s = service();
  const ok = s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 600', 'Accept: application/pidf+xml']));
  assert.equal(ok.status, 200);
  assert.ok(ok.toTag);
  assert.equal(ok.headers.get('expires'), '600');
  await s.settle();
  const [notify] = s.notifies();
  assert.equal(notify!.headers.get('event'), 'presence');
  assert.equal(notify!.headers.get('subscription-state'), 'active;expires=600');
  assert.equal(notify!.headers.get('content-type'), 'application/pidf+xml');
  assert.equal(notify!.headers.get('from'), `<${BOB}>;tag=${ok.toTag}`, 'the NOTIFY is in the subscription\'s dialog');
  assert.deepEqual(basicStatuses(notify!.body.toString()), { 'sipway-registration': 'closed' });
  assert.equal(notify!.uri.toString(), 'sip:alice@192.0.2.1:5060');
});

test('RFC 6665: 489 with Allow-Events for an unknown event, 423 with Min-Expires, 406 when Accept excludes PIDF', () => {
  const s = service();
  const bad = s.send(s.request('SUBSCRIBE', ['Event: dialog']));
  assert.equal(bad.status, 489);
  assert.equal(bad.headers.get('allow-events'), 'presence, presence.winfo');
  const brief = s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 30']));
  assert.equal(brief.status, 423);
  assert.equal(brief.headers.get('min-expires'), '60');
  assert.equal(s.send(s.request('SUBSCRIBE', ['Event: presence', 'Accept: text/plain'])).status, 406);
  assert.equal(s.presence.notifier.size, 0);
});

test('RFC 3903 + RFC 3856 §6.10: a publication reaches the watcher, paced to one NOTIFY in 5 s; refresh keeps it silent; 412 for an unknown tag; removal falls back to registration', async () => {
  const s = service();
  s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 3600']));
  await s.settle();
  s.clock.advance(1000);
  const published = await s.publish(s.request('PUBLISH', ['Event: presence', 'Expires: 120', 'Content-Type: application/pidf+xml'], pidf('phone', 'open')));
  assert.equal(published.status, 200);
  const etag = published.headers.get('sip-etag')!;
  await s.settle();
  assert.equal(s.notifies().length, 1, 'paced: the second NOTIFY waits for the interval');
  s.clock.advance(3999);
  await s.settle();
  assert.equal(s.notifies().length, 1);
  s.clock.advance(1);
  await s.settle();
  assert.equal(s.notifies().length, 2);
  assert.deepEqual(basicStatuses(s.notifies()[1]!.body.toString()), { phone: 'open' });

  const refreshed = await s.publish(s.request('PUBLISH', ['Event: presence', 'Expires: 120', `SIP-If-Match: ${etag}`]));
  assert.equal(refreshed.status, 200);
  const etag2 = refreshed.headers.get('sip-etag')!;
  assert.notEqual(etag2, etag, 'every refresh gets a new entity tag (§6 step 6)');
  assert.equal((await s.publish(s.request('PUBLISH', ['Event: presence', `SIP-If-Match: ${etag}`]))).status, 412, 'the old tag is spent');
  s.clock.advance(10_000);
  await s.settle();
  assert.equal(s.notifies().length, 2, 'a refresh changes nothing watchers see');

  s.state.registered = true;
  const removed = await s.publish(s.request('PUBLISH', ['Event: presence', 'Expires: 0', `SIP-If-Match: ${etag2}`]));
  assert.equal(removed.status, 200);
  assert.equal(removed.headers.get('sip-etag'), etag2, 'a removal\'s 2xx names the tag removed (RFC 3903 §6 step 8)');
  await s.settle();
  const beforeGrace = s.notifies().length;
  s.clock.advance(999);
  await s.settle();
  assert.equal(s.notifies().length, beforeGrace, 'a removal waits 1 s for the unregistration that may follow it (no "open" flash)');
  s.clock.advance(1);
  await s.settle();
  assert.deepEqual(basicStatuses(s.notifies().at(-1)!.body.toString()), { 'sipway-registration': 'open' }, 'nothing published: open while registered');
});

test('RFC 3903 §3: two devices\' publications are composed, one tuple each; a newer one of the same tuple wins; each expires on its own', async () => {
  const s = service();
  const phone = await s.publish(s.request('PUBLISH', ['Event: presence', 'Expires: 60', 'Content-Type: application/pidf+xml'], pidf('phone', 'open')));
  await s.publish(s.request('PUBLISH', ['Event: presence', 'Expires: 600', 'Content-Type: application/pidf+xml'], pidf('desk', 'closed')));
  s.send(s.request('SUBSCRIBE', ['Event: presence']));
  await s.settle();
  assert.deepEqual(basicStatuses(s.notifies()[0]!.body.toString()), { phone: 'open', desk: 'closed' });
  assert.match(s.notifies()[0]!.body.toString(), /<dm:person id="p1"><dm:note>desk<\/dm:note><\/dm:person>/, 'the newest person element');
  await s.publish(s.request('PUBLISH', ['Event: presence', 'Expires: 60', `SIP-If-Match: ${phone.headers.get('sip-etag')}`, 'Content-Type: application/pidf+xml'], pidf('phone', 'closed')));
  s.clock.advance(5000);
  await s.settle();
  assert.deepEqual(basicStatuses(s.notifies().at(-1)!.body.toString()), { desk: 'closed', phone: 'closed' });
  s.clock.advance(60_000); // the phone's publication expires
  await s.settle();
  assert.deepEqual(basicStatuses(s.notifies().at(-1)!.body.toString()), { desk: 'closed' });
  assert.equal(s.presence.publications.size, 1);
});

test('RFC 6665 §4.1.2.2/§4.2.2: expiry sends terminated;reason=timeout; an unsubscribe in the dialog too; a NOTIFY answered 481 ends it silently; a fetch is one NOTIFY', async () => {
  const s = service();
  s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 60']));
  await s.settle();
  s.clock.advance(60_000);
  await s.settle();
  assert.equal(s.notifies().at(-1)!.headers.get('subscription-state'), 'terminated;reason=timeout');
  assert.equal(s.presence.notifier.size, 0);

  const ok = s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 600'], '', undefined, 5));
  await s.settle();
  const refresh = s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 0'], '', ok.toTag, 6));
  assert.equal(refresh.status, 200);
  await s.settle();
  assert.equal(s.notifies().at(-1)!.headers.get('subscription-state'), 'terminated;reason=timeout');
  assert.equal(s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 600'], '', ok.toTag, 7)).status, 481, 'the dialog is gone');

  s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 600'], '', undefined, 8));
  await s.settle();
  assert.equal(s.presence.notifier.watchers('presence', BOB), 1);
  s.answer(s.notifies().at(-1)!, 481);
  assert.equal(s.presence.notifier.watchers('presence', BOB), 0, 'a 481 to a NOTIFY ends the subscription');

  const before = s.notifies().length;
  assert.equal(s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 0'], '', undefined, 9)).status, 200);
  await s.settle();
  assert.equal(s.notifies().length, before + 1);
  assert.equal(s.notifies().at(-1)!.headers.get('subscription-state'), 'terminated;reason=timeout');
  assert.equal(s.presence.notifier.size, 0);
});

test('PIDF composition keeps the publications\' namespace prefixes declared and returns undefined for non-PIDF bodies', () => {
  const doc = composePidf(BOB, [
    '<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com"><p:tuple id="t1"><p:status><p:basic>open</p:basic></p:status></p:tuple></p:presence>',
  ])!;
  assert.match(doc, /<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com">/);
  assert.deepEqual(basicStatuses(doc), { t1: 'open' });
  assert.equal(composePidf(BOB, ['hello']), undefined);
});

test('RFC 6665 §4.2.2: a NOTIFY nobody answers (Timer F, 32 s) ends its subscription without another NOTIFY', async () => {
  const s = service();
  s.sender.deliverTo({ receive: () => undefined }); // the watcher is gone
  s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 3600']));
  await s.settle();
  assert.equal(s.presence.notifier.size, 1);
  s.clock.advance(32_000);
  await s.settle();
  assert.equal(s.presence.notifier.size, 0);
  assert.equal(s.notifies().length, 1);
});

test('overload: a NOTIFY that finds no transaction is sent again 1 to 1.5 s later with the full state; the subscription stays; after 5 such failures in a row it is given up', async () => {
  // Two transactions: the SUBSCRIBE's (it lingers 32 s, Timer J) and one NOTIFY's (Timer K, 5 s, once answered).
  const s = service({ maxTransactions: 2, notifyIntervalMs: 0 });
  s.send(s.request('SUBSCRIBE', ['Event: presence', 'Expires: 3600']));
  await s.settle();
  assert.equal(s.notifies().length, 1);
  s.clock.advance(1); // the watcher's 200 to the first NOTIFY
  await s.settle();
  s.state.registered = true;
  s.presence.registrationChanged(BOB);
  await s.settle();
  assert.equal(s.notifies().length, 1, 'no transaction free: nothing sent');
  assert.equal(s.presence.stats().notifyRetries, 1);
  assert.equal(s.presence.notifier.size, 1, 'the subscription stays');
  s.clock.advance(999);
  await s.settle();
  assert.equal(s.notifies().length, 1, 'not before a second');
  // Timer K frees the first NOTIFY's transaction at 5 s; the retries every 1-1.5 s then get one.
  for (let i = 0; i < 10 && s.notifies().length < 2; i++) {
    s.clock.advance(500);
    await s.settle();
  }
  assert.equal(s.notifies().length, 2);
  assert.deepEqual(basicStatuses(s.notifies()[1]!.body.toString()), { 'sipway-registration': 'open' });
  assert.equal(s.presence.notifier.size, 1);

  // Always full (the answer to the second NOTIFY never comes: its transaction stays): given up after 5 failures.
  const full = service({ maxTransactions: 2, notifyIntervalMs: 0 });
  full.sender.deliverTo({ receive: () => undefined });
  full.send(full.request('SUBSCRIBE', ['Event: presence', 'Expires: 3600']));
  await full.settle();
  full.presence.registrationChanged(BOB);
  // The first failure, then four of its retries.
  for (let i = 0; i < 4; i++) {
    await full.settle();
    full.clock.advance(1500);
  }
  await full.settle();
  assert.equal(full.presence.stats().notifyRetries, 5);
  assert.equal(full.presence.notifier.size, 1, 'five retries, still there');
  full.clock.advance(1500);
  await full.settle();
  assert.equal(full.presence.notifier.size, 0, 'the sixth failure ends it');
});
