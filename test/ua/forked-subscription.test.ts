import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { parseMessage, type SipRequest } from '../../src/message/index.js';
import { UserAgent, type ClientSubscription } from '../../src/ua/index.js';
import { until } from '../helpers/waits.js';

/**
 * Two notifiers behind one socket, as a forking proxy would present them (RFC 6665 §4.1.2.4): each answers the
 * SUBSCRIBE with a NOTIFY of its own tag; the first one's NOTIFY comes before the 200, and the 200 carries its tag.
 */
async function forkingNotifiers() {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const port = socket.address().port;
  const received: SipRequest[] = [];
  const send = (text: string, to: { address: string; port: number }): void => void socket.send(Buffer.from(text.replace(/\n/g, '\r\n')), to.port, to.address);
  let notifyCseq = 100;
  const notify = (subscribe: SipRequest, tag: string, to: { address: string; port: number }, state = 'active;expires=600'): void => {
    const body = `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com"><tuple id="${tag}"><status><basic>open</basic></status></tuple></presence>`;
    send(
      [
        `NOTIFY ${subscribe.contacts[0]!.uri.toString()} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${tag}${notifyCseq}`,
        'Max-Forwards: 70',
        `From: <sip:bob@example.com>;tag=${tag}`,
        `To: ${subscribe.headers.get('from')}`,
        `Call-ID: ${subscribe.callId}`,
        `CSeq: ${notifyCseq++} NOTIFY`,
        `Contact: <sip:${tag}@127.0.0.1:${port}>`,
        'Event: presence',
        `Subscription-State: ${state}`,
        'Content-Type: application/pidf+xml',
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\n'),
      to,
    );
  };
  socket.on('message', (buf, rinfo) => {
    const parsed = parseMessage(buf);
    if (!parsed.ok || !parsed.message.isRequest) return;
    const request = parsed.message as SipRequest;
    received.push(request);
    if (request.method !== 'SUBSCRIBE' || request.toTag !== undefined) {
      if (request.method === 'SUBSCRIBE') {
        // A refresh or unsubscribe in a fork's dialog: 200, and for Expires 0 the last NOTIFY.
        const h = request.headers;
        send(['SIP/2.0 200 OK', `Via: ${h.get('via')}`, `From: ${h.get('from')}`, `To: ${h.get('to')}`, `Call-ID: ${request.callId}`, `CSeq: ${h.get('cseq')}`, 'Expires: 0', 'Content-Length: 0', '', ''].join('\n'), rinfo);
      }
      return;
    }
    const to = { address: rinfo.address, port: rinfo.port };
    notify(request, 'n1', to);
    setTimeout(() => {
      const h = request.headers;
      send(
        ['SIP/2.0 200 OK', `Via: ${h.get('via')}`, `From: ${h.get('from')}`, `To: ${h.get('to')};tag=n1`, `Call-ID: ${request.callId}`, `CSeq: ${h.get('cseq')}`, `Contact: <sip:n1@127.0.0.1:${port}>`, 'Expires: 600', 'Content-Length: 0', '', ''].join('\n'),
        to,
      );
      setTimeout(() => notify(request, 'n2', to), 50);
    }, 50);
  });
  return { port, received, close: () => socket.close() };
}

test('RFC 6665 §4.1.2.4: a NOTIFY before the 2xx makes the dialog; a forked SUBSCRIBE\'s second notifier makes a subscription of its own, handed to onFork', async () => {
  const notifiers = await forkingNotifiers();
  const ua = await UserAgent.start({ aor: 'sip:alice@example.com' });
  try {
    const forks: ClientSubscription[] = [];
    const outcome = await ua.subscribe(`sip:bob@127.0.0.1:${notifiers.port}`, 'presence', { expires: 600, onFork: (s) => forks.push(s) });
    assert.equal(outcome.status, 200);
    const main = outcome.subscription!;
    assert.equal(main.dialog.remoteTag, 'n1');
    assert.equal(main.notifications.length, 1, 'the NOTIFY that came before the 200 is the subscription\'s first');
    assert.match(main.notifications[0]!.body, /tuple id="n1"/);
    await until(() => forks.length === 1, 3000);
    assert.equal(forks[0]!.dialog.remoteTag, 'n2');
    assert.match(forks[0]!.notifications[0]!.body, /tuple id="n2"/);
    assert.equal(forks[0]!.dialog.callId, main.dialog.callId);
    assert.ok(forks[0]!.active);
    // Refreshing the fork goes to its own notifier's Contact, in its own dialog, CSeq on from the SUBSCRIBE's.
    assert.equal(await forks[0]!.refresh(600), 200);
    const refresh = notifiers.received.find((r) => r.method === 'SUBSCRIBE' && r.toTag === 'n2')!;
    assert.equal(refresh.uri.toString(), `sip:n2@127.0.0.1:${notifiers.port}`);
    assert.ok(refresh.cseq.seq > notifiers.received[0]!.cseq.seq);
  } finally {
    await ua.stop();
    notifiers.close();
  }
});

test('RFC 6665 §4.1.2.4: without onFork, a second notifier\'s subscription is ended at once (SUBSCRIBE Expires 0 in its dialog)', async () => {
  const notifiers = await forkingNotifiers();
  const ua = await UserAgent.start({ aor: 'sip:alice@example.com' });
  try {
    const outcome = await ua.subscribe(`sip:bob@127.0.0.1:${notifiers.port}`, 'presence', { expires: 600 });
    assert.equal(outcome.status, 200);
    await until(() => notifiers.received.some((r) => r.method === 'SUBSCRIBE' && r.toTag === 'n2'), 3000);
    const ending = notifiers.received.find((r) => r.method === 'SUBSCRIBE' && r.toTag === 'n2')!;
    assert.equal(ending.headers.get('expires'), '0');
    assert.ok(!notifiers.received.some((r) => r.method === 'SUBSCRIBE' && r.toTag === 'n1'), 'the answered subscription stays');
    assert.ok(outcome.subscription!.active);
  } finally {
    await ua.stop();
    notifiers.close();
  }
});
