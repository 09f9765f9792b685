/**
 * Issue 13, several listeners: sipway listens on two addresses of its host and every message it sends must name the
 * socket it leaves from: the datagram's source address is the listener facing the receiver, a request's top Via
 * sent-by is that address, and the Record-Route entry the receiver will use as its next hop names it too (the top
 * one for the request's receiver, the bottom one for a response's receiver; two entries when a request changes
 * listener). A capture in sipway's namespace (tcpdump, read by tshark) checks every datagram on the wire while two
 * baresip phones call each other and hang up from each side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UdpCapture, type Datagram } from '../helpers/wire.js';
import type { AnyMessage } from '../../src/message/index.js';
import type { Baresip } from '../helpers/baresip.js';
import { DOMAIN, establish, hangUp, inEdgeLab, phone, registered, SECOND_SERVER, SERVER, startSipway, withTranscript, type EdgeLab } from './lab.js';


/** The listener address facing `address` (same /24, or loopback for loopback). */
function facing(listeners: string[], address: string): string | undefined {
  return listeners.find((l) => l.split('.').slice(0, 3).join('.') === address.split('.').slice(0, 3).join('.'));
}

function hostOf(uriOrVia: string): string {
  const m = /(?:sips?:(?:[^@;>]*@)?|SIP\/2\.0\/\w+\s+)([^:;>\s]+)/i.exec(uriOrVia);
  return m?.[1] ?? '';
}

function describe(d: Datagram): string {
  const m = d.sip!;
  return `${d.src}:${d.srcPort} -> ${d.dst}:${d.dstPort} ${m.isRequest ? m.method : `${m.status} (${m.headers.get('cseq')})`}`;
}

/** Every message sipway sent, checked against the socket it left from; returns the complaints. */
function complaints(listeners: string[], datagrams: Datagram[]): string[] {
  const out: string[] = [];
  for (const d of datagrams) {
    if (!d.sip || !listeners.includes(d.src) || d.srcPort !== 5060) continue;
    const m: AnyMessage = d.sip;
    const want = facing(listeners, d.dst);
    if (d.src !== want) out.push(`${describe(d)}: left from ${d.src}, not from the listener facing ${d.dst} (${want})`);
    if (m.isRequest) {
      const via = m.headers.list('via')[0] ?? '';
      if (hostOf(via) !== d.src) out.push(`${describe(d)}: top Via ${via} does not name the socket it left from`);
    }
    const ours = m.headers.list('record-route').filter((rr) => listeners.includes(hostOf(rr)));
    const nextHop = m.isRequest ? ours[0] : ours.at(-1);
    if (nextHop !== undefined && hostOf(nextHop) !== want) out.push(`${describe(d)}: the receiver's next hop would be Record-Route ${nextHop}, not ${want}`);
  }
  return out;
}

async function twoListeners(el: EdgeLab, listeners: string[], place: { alice: () => ReturnType<EdgeLab['publicHost']>; bob: () => ReturnType<EdgeLab['publicHost']> }, proxies: { alice: string; bob: string }): Promise<void> {
  const sipway = await startSipway(el, ['alice', 'bob'], { listen: listeners.map((a) => `udp:${a}:5060`) });
  const capture = await UdpCapture.start(el.srv, 5060);
  try {
    const aliceHost = place.alice();
    const bobHost = place.bob();
    const alice = await phone(el, sipway, aliceHost, 'alice', { proxy: proxies.alice });
    const bob = await phone(el, sipway, bobHost, 'bob', { proxy: proxies.bob });
    await withTranscript([alice, bob], sipway.server, async () => {
      await registered(sipway.data, 'alice', new RegExp(`^udp:${aliceHost.address.replace(/\./g, '\\.')}:`));
      await registered(sipway.data, 'bob', new RegExp(`^udp:${bobHost.address.replace(/\./g, '\\.')}:`));
      const calls: Array<[Baresip, Baresip, Baresip]> = [
        [alice, bob, bob],
        [bob, alice, bob],
      ];
      // The wire is checked even when a call fails: what sipway sent tells why.
      let callError: unknown;
      try {
        for (const [caller, callee, hanger] of calls) {
          await establish(caller, callee, `sip:${callee.name}@${DOMAIN}`);
          await hangUp(hanger, hanger === caller ? callee : caller);
        }
      } catch (e) {
        callError = e;
      }
      await capture.stop();
      const sent = capture.messages().filter((d) => listeners.includes(d.src));
      const wrong = complaints(listeners, capture.datagrams);
      const wire = `messages that do not name their socket:\n${wrong.join('\n') || '(none)'}\n--- all that sipway sent ---\n${sent.map(describe).join('\n')}`;
      if (callError) throw new Error(`${(callError as Error).message.split('\n')[0]}\n${wire}`, { cause: callError });
      assert.ok(sent.length >= 10, `the capture saw sipway send ${sent.length} messages`);
      assert.deepEqual(wrong, [], wire);
    });
  } finally {
    await capture.stop();
    await sipway.server.stop();
  }
}

test('two listeners, loopback and public (as in the issue): every message to the phones names the public socket', { timeout: 90000 }, async (t) => {
  await inEdgeLab(t, (el) =>
    twoListeners(el, ['127.0.0.1', SERVER], { alice: () => el.publicHost('alice', 11), bob: () => el.publicHost('bob', 12) }, { alice: SERVER, bob: SERVER }),
  );
});

test('two listeners on two networks: a call across them carries a Record-Route for each side, every message names its socket', { timeout: 90000 }, async (t) => {
  await inEdgeLab(
    t,
    (el) => twoListeners(el, [SERVER, SECOND_SERVER], { alice: () => el.publicHost('alice', 11), bob: () => el.secondHost('bob', 12) }, { alice: SERVER, bob: SECOND_SERVER }),
    true,
  );
});
