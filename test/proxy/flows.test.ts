/**
 * An edge proxy's flows (RFC 5626 §5.3): every request of a dialog reaches a phone over the flow the phone uses —
 * its NAT mapping over UDP, its own TCP or WebSocket connection — not at the Contact it wrote, which behind a NAT
 * names a private address, over TCP a port nobody listens on, and over WebSocket a host under .invalid. Phones
 * "behind NAT" here are UAs on loopback whose Contact names an RFC 1918 address the server may not send to
 * (destinationFilter keeps tests on loopback), exactly what happens to such a request on a real network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createResponse, parseMessage, serialize, type SipRequest, type SipResponse } from '../../src/message/index.js';
import { wire } from '../helpers/messages.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { startProxy } from './harness.js';
import { Dialog, invite, parse, register, tokened, unique, untokened, type TestUa } from './ua.js';

const BOB_NAT = 'sip:bob@192.168.77.10:5150';
const ALICE_NAT = 'sip:alice@192.168.77.20:5062';

/** alice calls bob and both sides have the 200 and the ACK; returns both dialogs. */
async function establish(alice: TestUa, bob: TestUa, port: number, contact?: string): Promise<{ caller: Dialog; callee: Dialog; inv: SipRequest }> {
  const inv = invite(alice, { to: 'sip:bob@sipway.test', contact });
  alice.send(inv, port);
  const atBob = (await bob.request('INVITE')).message;
  const ok = await alice.response(inv.callId, 200);
  const caller = Dialog.caller(inv, ok);
  alice.send(caller.request(alice, 'ACK'), port);
  await bob.request('ACK');
  const okAtBob = createResponse(atBob, 200, { toTag: ok.toTag!, headers: [['Contact', `<${ok.contacts[0]!.uri.toString()}>`]] });
  return { caller, callee: Dialog.callee(atBob, okAtBob), inv };
}

test('callee behind NAT: ACK and BYE from the caller reach it at its NAT mapping, not its private Contact', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve({ contact: BOB_NAT });
    await register(bob, h.port, 'bob', { contact: BOB_NAT });
    const alice = (await h.ua('alice')).serve();
    const { caller, callee } = await establish(alice, bob, h.port);
    const bye = caller.request(alice, 'BYE');
    alice.send(bye, h.port);
    const atBob = await bob.request('BYE');
    assert.equal(atBob.message.uri.toString(), BOB_NAT, 'the Request-URI stays the Contact');
    assert.equal((await alice.response(bye.callId)).status, 200);
    // And the other way: the phone behind NAT hangs up a second call.
    const second = await establish(alice, bob, h.port);
    const byeFromBob = second.callee.request(bob, 'BYE');
    bob.send(byeFromBob, h.port);
    await alice.request('BYE');
    assert.equal((await bob.response(byeFromBob.callId)).status, 200);
    assert.ok(callee);
  } finally {
    await h.stop();
  }
});

test('caller behind NAT: the callee’s BYE and re-INVITE reach it at its NAT mapping', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = (await h.ua('alice')).serve({ contact: ALICE_NAT });
    const { callee } = await establish(alice, bob, h.port, ALICE_NAT);
    const reinvite = callee.request(bob, 'INVITE', ['Contact: <' + bob.contact('bob') + '>']);
    bob.send(reinvite, h.port);
    const atAlice = (await alice.request('INVITE')).message;
    assert.equal(atAlice.uri.toString(), ALICE_NAT);
    assert.equal((await bob.response(reinvite.callId, 200)).status, 200);
    const bye = callee.request(bob, 'BYE');
    bob.send(bye, h.port);
    await alice.request('BYE');
    assert.equal((await bob.response(bye.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('caller over TCP whose Contact port is not listening: BYE over its connection; once closed, 430 Flow Failed', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = (await h.tcpUa('alice')).serve({ contact: 'sip:alice@127.0.0.1:1;transport=tcp' });
    const { callee } = await establish(alice, bob, h.ts.tcpPort!, 'sip:alice@127.0.0.1:1;transport=tcp');
    const bye = callee.request(bob, 'BYE');
    bob.send(bye, h.port);
    await alice.request('BYE');
    assert.equal((await bob.response(bye.callId)).status, 200);
    alice.close();
    await new Promise((r) => setTimeout(r, 100));
    const again = callee.request(bob, 'INFO');
    bob.send(again, h.port);
    const failed = await bob.response(again.callId);
    assert.equal(failed.status, 430);
    assert.equal(failed.reason, 'Flow Failed');
  } finally {
    await h.stop();
  }
});

test('a forged or altered flow token gets 403 and no request is delivered', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve({ contact: BOB_NAT });
    await register(bob, h.port, 'bob', { contact: BOB_NAT });
    const alice = (await h.ua('alice')).serve();
    const { caller } = await establish(alice, bob, h.port);
    const bye = caller.request(alice, 'BYE');
    const routes = bye.headers.list('route');
    assert.equal(tokened(routes), 2);
    // Flip one character of the token that names bob's flow.
    const altered = routes.map((r) => r.replace(/ft\.([A-Za-z0-9_-])/, (_m, c: string) => `ft.${c === 'A' ? 'B' : 'A'}`));
    bye.headers.remove('route');
    for (const r of altered) bye.headers.append('route', r);
    alice.send(bye, h.port);
    const refused = await alice.response(bye.callId);
    assert.equal(refused.status, 403);
    assert.match(refused.reason, /flow token/);
    assert.ok(await bob.nothing((m) => m.isRequest && m.method === 'BYE', 300), 'nothing reaches bob');
    assert.equal(h.proxy().stats().forgedFlowTokens, 1);
  } finally {
    await h.stop();
  }
});

test('a flow token with letters %-escaped (RFC 3261 §19.1.4: the same URI) still routes the request over its flow', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve({ contact: BOB_NAT });
    await register(bob, h.port, 'bob', { contact: BOB_NAT });
    const alice = (await h.ua('alice')).serve();
    const { caller } = await establish(alice, bob, h.port);
    const bye = caller.request(alice, 'BYE');
    const routes = bye.headers.list('route');
    // Escape every letter of each token as a phone might (Twinkle writes Z as %5a).
    const escaped = routes.map((r) => r.replace(/ft\.([A-Za-z0-9_-]+)/, (_m, t: string) => `ft.${t.replace(/[A-Za-z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}`));
    assert.notDeepEqual(escaped, routes);
    bye.headers.remove('route');
    for (const r of escaped) bye.headers.append('route', r);
    alice.send(bye, h.port);
    await bob.request('BYE');
    assert.equal(h.proxy().stats().forgedFlowTokens, 0);
  } finally {
    await h.stop();
  }
});

test('a phone on a WebSocket with a .invalid Contact: ACK and BYE over its connection, and no DNS query for .invalid', async () => {
  const dns = await startDnsServer({ zone: {} });
  const h = await startProxy({}, { listen: ['udp:127.0.0.1:0', 'ws:127.0.0.1:0'], dns: { servers: [dns.address], timeoutMs: 200 } });
  try {
    const wsPort = h.ts.server.listeners().find((l) => l.transport === 'ws')!.port;
    const phone = await WsPhone.connect(wsPort, 'sip:ws1@df7jal23ls0d.invalid;transport=ws');
    await phone.register('bob');
    const alice = (await h.ua('alice')).serve();
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const atPhone = await phone.next('INVITE');
    phone.answer(atPhone, 200);
    const ok = await alice.response(inv.callId, 200);
    const caller = Dialog.caller(inv, ok);
    alice.send(caller.request(alice, 'ACK'), h.port);
    assert.equal((await phone.next('ACK')).method, 'ACK');
    const bye = caller.request(alice, 'BYE');
    alice.send(bye, h.port);
    phone.answer(await phone.next('BYE'), 200);
    assert.equal((await alice.response(bye.callId)).status, 200);
    // The phone hangs up a second call the other way round.
    const inv2 = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv2, h.port);
    const second = await phone.next('INVITE');
    phone.answer(second, 200);
    const ok2 = await alice.response(inv2.callId, 200);
    alice.send(Dialog.caller(inv2, ok2).request(alice, 'ACK'), h.port);
    await phone.next('ACK');
    const byeFromPhone = phone.bye(second, ok2.toTag!);
    assert.equal((await alice.request('BYE')).message.callId, inv2.callId);
    assert.equal((await phone.response(byeFromPhone)).status, 200);
    assert.deepEqual(
      dns.queries.filter((q) => q.name.endsWith('invalid')),
      [],
      'RFC 6761: names under .invalid are never looked up',
    );
    phone.close();
  } finally {
    await h.stop();
  }
});

test('a request whose only target is a .invalid host without a flow gets 480 at once, with no DNS query', async () => {
  const dns = await startDnsServer({ zone: {} });
  const h = await startProxy({}, { dns: { servers: [dns.address], timeoutMs: 200 } });
  try {
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:x@abc.invalid;transport=ws' });
    alice.send(inv, h.port);
    const res = await alice.response(inv.callId);
    assert.equal(res.status, 480);
    assert.equal(dns.queries.length, 0);
  } finally {
    await h.stop();
  }
});

test('two UDP listeners: each request leaves by the socket its Via and Record-Route name (the binding’s, then the caller’s)', async () => {
  const h = await startProxy({}, { listen: ['udp:127.0.0.1:0', 'udp:127.0.0.2:0'] });
  try {
    const [one, two] = h.ts.server.listeners();
    assert.ok(one && two && one.host === '127.0.0.1' && two.host === '127.0.0.2');
    const bob = (await h.ua('bob')).serve();
    // bob registers through the second address, alice calls through the first.
    await register(bob, two.port, 'bob', { server: '127.0.0.2' });
    const alice = (await h.ua('alice')).serve();
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, one.port);
    const got = await bob.request('INVITE');
    assert.deepEqual(got.from, { address: '127.0.0.2', port: two.port }, 'sent from the socket bob registered on');
    assert.equal(got.message.via.sentBy, `127.0.0.2:${two.port}`);
    assert.deepEqual(untokened(got.message.headers.list('record-route')), [`<sip:127.0.0.2:${two.port};lr>`, `<sip:127.0.0.1:${one.port};lr>`]);
    const ok = await alice.response(inv.callId, 200);
    const caller = Dialog.caller(inv, ok);
    // The ACK for the 2xx is forwarded statelessly: the same socket, Via and no Route left.
    alice.send(caller.request(alice, 'ACK'), one.port);
    const ack = await bob.request('ACK');
    assert.deepEqual(ack.from, { address: '127.0.0.2', port: two.port });
    assert.equal(ack.message.via.sentBy, `127.0.0.2:${two.port}`);
    // bob's BYE goes to the top of his route set (the second address) and leaves for alice from the first.
    const callee = Dialog.callee(got.message, createResponse(got.message, 200, { toTag: ok.toTag! }));
    const bye = callee.request(bob, 'BYE');
    bob.send(bye, two.port, '127.0.0.2');
    const atAlice = await alice.request('BYE');
    assert.deepEqual(atAlice.from, { address: '127.0.0.1', port: one.port });
    assert.equal(atAlice.message.via.sentBy, `127.0.0.1:${one.port}`);
    assert.equal((await bob.response(bye.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('a listener with an advertised address names it in Via and Record-Route, and a Route naming it is ours', async () => {
  const h = await startProxy({}, { listen: ['udp:127.0.0.1:0 advertise 198.51.100.7:5070'] });
  try {
    const bob = (await h.ua('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = (await h.ua('alice')).serve();
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const got = (await bob.request('INVITE')).message;
    assert.equal(got.via.sentBy, '198.51.100.7:5070');
    assert.deepEqual(untokened(got.headers.list('record-route')), ['<sip:198.51.100.7:5070;lr>', '<sip:198.51.100.7:5070;lr>']);
    const ok = await alice.response(inv.callId, 200);
    const caller = Dialog.caller(inv, ok);
    const bye = caller.request(alice, 'BYE');
    alice.send(bye, h.port);
    const atBob = (await bob.request('BYE')).message;
    assert.equal(atBob.headers.has('route'), false, 'both Route values named us and were removed');
    assert.equal((await alice.response(bye.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

/** A phone over a WebSocket (RFC 7118) as JsSIP is one: a random .invalid Contact, no GRUU, no Outbound. */
class WsPhone {
  private readonly inbox: Array<SipRequest | SipResponse> = [];
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly ws: WebSocket,
    private readonly contact: string,
  ) {
    ws.on('message', (data: Buffer) => {
      const r = parseMessage(Buffer.from(data));
      if (r.ok) this.inbox.push(r.message as SipRequest | SipResponse);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(port: number, contact: string): Promise<WsPhone> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, 'sip');
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return new WsPhone(ws, contact);
  }

  private get via(): string {
    return `SIP/2.0/WS df7jal23ls0d.invalid;branch=${unique('z9hG4bKws')}`;
  }

  async register(user: string): Promise<void> {
    const callId = unique('wsreg');
    this.send(
      wire([
        'REGISTER sip:sipway.test SIP/2.0',
        `Via: ${this.via}`,
        'Max-Forwards: 70',
        `From: <sip:${user}@sipway.test>;tag=${unique('w')}`,
        `To: <sip:${user}@sipway.test>`,
        `Call-ID: ${callId}`,
        'CSeq: 1 REGISTER',
        `Contact: <${this.contact}>;+sip.ice;reg-id=1;+sip.instance="<urn:uuid:${unique('u')}>";expires=600`,
        'Supported: path, gruu, outbound',
      ]),
    );
    const res = await this.wait((m) => !m.isRequest && m.callId === callId);
    assert.equal((res as SipResponse).status, 200);
  }

  async next(method: string): Promise<SipRequest> {
    return (await this.wait((m) => m.isRequest && m.method === method)) as SipRequest;
  }

  async response(req: SipRequest): Promise<SipResponse> {
    return (await this.wait((m) => !m.isRequest && m.callId === req.callId && m.cseq.method === req.method)) as SipResponse;
  }

  answer(req: SipRequest, status: number): void {
    if (req.method === 'ACK') return;
    const headers: Array<[string, string]> = req.method === 'INVITE' ? [['Contact', `<${this.contact}>`]] : [];
    this.send(serialize(createResponse(req, status, { toTag: req.toTag ?? 'ws1tag', headers })));
  }

  /** A BYE for a call the phone answered (callee side: its route set is the INVITE's Record-Route in order). */
  bye(inv: SipRequest, toTag: string): SipRequest {
    const bye = parse(
      wire([
        `BYE ${inv.contacts[0]!.uri.toString()} SIP/2.0`,
        `Via: ${this.via}`,
        'Max-Forwards: 70',
        `From: ${inv.headers.get('to')!};tag=${toTag}`,
        `To: ${inv.headers.get('from')!}`,
        `Call-ID: ${inv.callId}`,
        'CSeq: 2 BYE',
        ...inv.recordRoutes.map((r) => `Route: ${r.toString()}`),
      ]),
    ) as SipRequest;
    this.send(serialize(bye));
    return bye;
  }

  close(): void {
    this.ws.close();
  }

  private send(bytes: Buffer): void {
    this.ws.send(bytes);
  }

  private async wait(match: (m: SipRequest | SipResponse) => boolean, ms = 3000): Promise<SipRequest | SipResponse> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`ws phone: nothing matching within ${ms} ms (inbox: ${this.inbox.map((m) => (m.isRequest ? m.method : m.status)).join(', ')})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

test('a Request-URI aliased by a Kamailio edge (add_contact_alias) goes to the alias, which is taken out', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.ua('bob')).serve();
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: `sip:bob@192.168.1.5:5060;alias=127.0.0.1~${bob.port}~1` });
    alice.send(inv, h.port);
    const got = await bob.request('INVITE');
    assert.equal(got.message.uri.toString(), 'sip:bob@192.168.1.5:5060', 'the alias is handled and removed (handle_ruri_alias)');
    assert.equal((await alice.response(inv.callId, 200)).status, 200);
    const bad = invite(alice, { to: 'sip:bob@192.168.1.5:5060;alias=not-an-address~5060~1' });
    alice.send(bad, h.port);
    assert.ok((await alice.response(bad.callId)).status >= 400, 'a malformed alias is no destination');
  } finally {
    await h.stop();
  }
});
