import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createResponse, parseUri, serialize, type SipRequest, type SipResponse } from '../../src/message/index.js';
import { parseBranch } from '../../src/proxy/index.js';
import type { ServerTransaction } from '../../src/transaction/index.js';
import { buildNon2xxAck } from '../../src/transaction/index.js';
import { sharedPath } from '../helpers/paths.js';
import { UdpClient } from '../helpers/server.js';
import { startProxy } from './harness.js';
import { cancelOf, Dialog, invite, parse, register, tokened, unique, untokened } from './ua.js';

/** The request as a looping element would send it back: its own Via on top, the Request-URI set to `ruri`. */
function sentBack(req: SipRequest, via: string, ruri: string): SipRequest {
  const copy = parse(serialize(req)) as SipRequest;
  copy.uri = parseUri(ruri);
  copy.headers.prepend('via', `${via};branch=${unique('z9hG4bKback')}`);
  return copy;
}

test('loop detection (§16.3 step 4): the same request back with our Via is 482; after a Request-URI rewrite it spirals through', async () => {
  const h = await startProxy();
  try {
    const bob = await h.ua('bob');
    const carol = await h.ua('carol');
    await register(bob, h.port, 'bob');
    await register(carol, h.port, 'carol');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const atBob = (await bob.request('INVITE')).message;

    // bob acts as a misconfigured proxy that routes bob@sipway.test straight back to us: a loop.
    const looped = sentBack(atBob, bob.via, 'sip:bob@sipway.test');
    bob.send(looped, h.port);
    assert.equal((await bob.response(inv.callId, 482)).status, 482);
    assert.equal(h.proxy().stats().loops, 1);

    // A forwarding service that retargets to carol: a spiral, forwarded with a second Via of ours.
    const spiral = sentBack(atBob, bob.via, 'sip:carol@sipway.test');
    bob.send(spiral, h.port);
    const atCarol = (await carol.request('INVITE')).message;
    assert.equal(atCarol.vias.length, 4);
    assert.equal(atCarol.uri.toString(), carol.contact('carol'));
    const ours = atCarol.vias.filter((v) => parseBranch(v.branch));
    assert.equal(ours.length, 2);
    assert.notEqual(parseBranch(ours[0]!.branch)!.hash, parseBranch(ours[1]!.branch)!.hash, 'different Request-URI, different hash');
    assert.equal(h.proxy().stats().loops, 1);
  } finally {
    await h.stop();
  }
});

test('Max-Forwards: 0 is refused with 483 (RFC 4475 zeromf), 1 is forwarded as 0', async () => {
  const h = await startProxy({}, { domains: ['example.com', 'sipway.test'], transport: { forceRport: true } });
  const client = new UdpClient();
  await client.bind();
  try {
    const res = await client.request(readFileSync(sharedPath('conformance', 'rfc4475', 'zeromf.dat')), h.port);
    assert.equal(res?.status, 483);

    const bob = await h.ua('bob');
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    alice.send(invite(alice, { to: 'sip:bob@sipway.test', maxForwards: 1 }), h.port);
    assert.equal((await bob.request('INVITE')).message.maxForwards, 0);
  } finally {
    client.close();
    await h.stop();
  }
});

test('the proxy itself refuses Max-Forwards 0 (483) when called directly, and counts it', async () => {
  const h = await startProxy();
  try {
    const alice = await h.ua('alice');
    const req = invite(alice, { to: 'sip:bob@sipway.test', maxForwards: 0 });
    const sent: SipResponse[] = [];
    await h.proxy().handleRequest(req, fakeTransaction(req, sent));
    assert.deepEqual(
      sent.map((r) => r.status),
      [483],
    );
    assert.equal(h.proxy().stats().tooManyHops, 1);
  } finally {
    await h.stop();
  }
});

test('a response whose next Via is a broadcast address is dropped (RFC 4475 bcast), a normal one forwarded', async () => {
  const h = await startProxy({ stateless: true });
  try {
    const alice = await h.ua('alice');
    const bcast = readFileSync(sharedPath('conformance', 'rfc4475', 'bcast.dat')).toString('latin1');
    const ourVia = `Via: SIP/2.0/UDP 127.0.0.1:${h.port};branch=z9hG4bKsw0123456789abcdef.sl`;
    const dropped = bcast.replace('Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923', ourVia);
    assert.notEqual(dropped, bcast);
    alice.send(Buffer.from(dropped, 'latin1'), h.port);
    const forwarded = dropped.replace('255.255.255.255', `127.0.0.1:${alice.port}`);
    alice.send(Buffer.from(forwarded, 'latin1'), h.port);
    const res = await alice.response('bcast.0384840201234ksdfak3j2erwedfsASdf', 200);
    assert.equal(res.vias.length, 1, 'our Via was removed');
    assert.ok(await alice.nothing(() => true, 200), 'the broadcast one went nowhere');
    const stats = h.proxy().stats();
    assert.equal(stats.broadcastDropped, 1);
    assert.equal(stats.strayForwarded, 1);
  } finally {
    await h.stop();
  }
});

test('stateless mode (§16.11): one deterministic branch for the INVITE, its retransmission, CANCEL and ACK; responses by Via', async () => {
  const h = await startProxy({ stateless: true });
  try {
    const bob = await h.ua('bob');
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const first = (await bob.request('INVITE')).message;
    const branch = first.via.branch!;
    assert.equal(parseBranch(branch)?.stateless, true);
    assert.deepEqual(untokened(first.headers.list('record-route')), [`<sip:127.0.0.1:${h.port};lr>`, `<sip:127.0.0.1:${h.port};lr>`]);
    alice.send(inv, h.port); // a retransmission
    assert.equal((await bob.request('INVITE')).message.via.branch, branch);
    assert.ok(await alice.nothing((m) => !m.isRequest && m.status === 100, 300), 'a stateless proxy sends no 100 of its own');

    bob.send(createResponse(first, 180, { toTag: 'b1' }), h.port);
    assert.equal((await alice.response(inv.callId, 180)).vias.length, 1);
    alice.send(cancelOf(inv), h.port);
    const cancel = (await bob.request('CANCEL')).message;
    assert.equal(cancel.via.branch, branch, 'the CANCEL matches the INVITE at the next hop');
    bob.send(createResponse(cancel, 200), h.port);
    const terminated = createResponse(first, 487, { toTag: 'b1' });
    bob.send(terminated, h.port);
    const final = await alice.response(inv.callId, 487);
    alice.send(buildNon2xxAck(inv, final), h.port);
    const ack = (await bob.request('ACK')).message;
    assert.equal(ack.via.branch, branch, 'the ACK for the 487 matches the INVITE at the next hop');
    assert.ok(h.proxy().stats().forwardedStateless >= 4);
    assert.equal(h.proxy().stats().contexts, 0);
  } finally {
    await h.stop();
  }
});

test('a Path recorded at registration becomes the preloaded route towards the contact (RFC 3327)', async () => {
  const h = await startProxy();
  try {
    const edge = await h.ua('edge');
    const bob = await h.ua('bob');
    const path = `<sip:edge@127.0.0.1:${edge.port};lr>`;
    await register(bob, h.port, 'bob', { extra: [`Path: ${path}`] });
    const alice = await h.ua('alice');
    alice.send(invite(alice, { to: 'sip:bob@sipway.test' }), h.port);
    const atEdge = (await edge.request('INVITE')).message;
    assert.equal(atEdge.uri.toString(), bob.contact('bob'));
    assert.deepEqual(atEdge.headers.list('route'), [path]);
  } finally {
    await h.stop();
  }
});

test('a binding registered behind NAT is reached at the address and port the REGISTER came from', async () => {
  const h = await startProxy();
  try {
    const natted = await h.ua('natted');
    await register(natted, h.port, 'bob', { contact: 'sip:bob@10.0.0.5:5060' });
    const mapped = await h.ua('mapped');
    await register(mapped, h.port, 'carol', { contact: 'sip:carol@127.0.0.1:5999' });
    const alice = await h.ua('alice');
    alice.send(invite(alice, { to: 'sip:bob@sipway.test' }), h.port);
    const atBob = (await natted.request('INVITE')).message;
    assert.equal(atBob.uri.toString(), 'sip:bob@10.0.0.5:5060', 'the Contact stays the Request-URI');
    alice.send(invite(alice, { to: 'sip:carol@sipway.test' }), h.port);
    assert.equal((await mapped.request('INVITE')).message.uri.toString(), 'sip:carol@127.0.0.1:5999');
  } finally {
    await h.stop();
  }
});

test('UDP in, TCP out: two Record-Route values (RFC 5658), the callee reached over its connection, both removed later', async () => {
  const h = await startProxy();
  try {
    const bob = (await h.tcpUa('bob')).serve();
    await register(bob, h.port, 'bob');
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    const atBob = (await bob.request('INVITE')).message;
    const tcpPort = h.ts.tcpPort!;
    assert.deepEqual(untokened(atBob.headers.list('record-route')), [`<sip:127.0.0.1:${tcpPort};lr;transport=tcp>`, `<sip:127.0.0.1:${h.port};lr>`]);
    assert.equal(tokened(atBob.headers.list('record-route')), 2, "each value carries its side's flow");
    assert.match(atBob.via.toString(), /^SIP\/2\.0\/TCP /);
    const ok = await alice.response(inv.callId, 200);
    const caller = Dialog.caller(inv, ok);
    alice.send(caller.request(alice, 'ACK'), h.port);
    await bob.request('ACK');
    const bye = caller.request(alice, 'BYE');
    alice.send(bye, h.port);
    assert.equal((await bob.request('BYE')).message.headers.has('route'), false, 'both of our Route values removed');
    assert.equal((await alice.response(bye.callId)).status, 200);
  } finally {
    await h.stop();
  }
});

test('Outbound (RFC 5626 §5.3): a registration whose flow has closed gets 430 Flow Failed', async () => {
  // 430 tells whoever asks that bob exists: shown only to callers that authenticated, or when configured.
  const h = await startProxy({ revealUserExistence: true });
  try {
    const bob = await h.tcpUa('bob');
    await register(bob, h.port, 'bob', {
      contactParams: ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-000000000001>";reg-id=1',
      extra: ['Supported: outbound'],
    });
    bob.close();
    for (let i = 0; i < 50 && h.ts.server.transport.stats().connectionsOpen > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const alice = await h.ua('alice');
    const inv = invite(alice, { to: 'sip:bob@sipway.test' });
    alice.send(inv, h.port);
    assert.equal((await alice.response(inv.callId)).status, 430);
  } finally {
    await h.stop();
  }
});

test('§16.4: a strict router upstream (Request-URI = our Record-Route) gets the last Route back as Request-URI', async () => {
  const h = await startProxy();
  try {
    const bob = await h.ua('bob');
    const alice = await h.ua('alice');
    const req = invite(alice, {
      to: `sip:127.0.0.1:${h.port};lr`,
      extra: [`Route: <${bob.contact('bob')}>`],
    });
    req.headers.set('to', '<sip:bob@sipway.test>;tag=dialog1');
    const sent: SipResponse[] = [];
    await h.proxy().handleRequest(req, fakeTransaction(req, sent));
    const atBob = (await bob.request('INVITE')).message;
    assert.equal(atBob.uri.toString(), bob.contact('bob'));
    assert.equal(atBob.headers.has('route'), false);
  } finally {
    await h.stop();
  }
});

/** A server transaction stand-in that records responses (for requests handed to the proxy directly). */
function fakeTransaction(request: SipRequest, sent: SipResponse[]): ServerTransaction {
  let state = 'Proceeding';
  return {
    request,
    get state() {
      return state;
    },
    respond(res: SipResponse) {
      sent.push(res);
      if (res.status >= 200) state = 'Completed';
    },
    terminate() {
      state = 'Terminated';
    },
    onTerminated() {},
    destination: { transport: 'udp', address: '127.0.0.1', port: 9 },
  } as unknown as ServerTransaction;
}
