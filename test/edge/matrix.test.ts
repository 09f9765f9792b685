/**
 * Issue 13's matrix, transport × NAT × caller/callee, with real phones: each cell is a client over one transport on
 * the public network or behind the MASQUERADE NAT (random source ports), which calls a public baresip over UDP and is
 * called by it. One lab and one sipway (UDP, TCP, TLS, WS and WSS listeners) serve every cell in turn; each cell has
 * a host, a user and a phone of its own. No phone helps the proxy past the NAT (see startLabPhone): every request of a
 * dialog toward it (ACK, re-INVITE, BYE) must take the flow it registered on.
 *
 * As caller, the phone calls the peer, holds and resumes, is held and resumed, the peer hangs up; it calls again and
 * hangs up itself. As callee the same with the roles swapped (the ACK must reach the phone). A cell is one line of
 * CELLS; `todo` marks a cell whose failure is the client's (the reason says what it cannot do), and keeps it running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  baresipPhone,
  call,
  DOMAIN,
  explained,
  hangUpCall,
  holdAndResumeCall,
  inEdgeLab,
  NAT_OUTSIDE,
  phone,
  registered,
  startLabPhone,
  startSipway,
  type LabPhone,
  type PhoneKind,
} from './lab.js';

type Cell = PhoneKind & {
  nat: boolean;
  /** Why the cell fails for the client's own sake, if it does: the cell runs as a todo. */
  todo?: string;
  /** Why the phone, as callee, does not put the call on hold itself (the caller still does). */
  noHoldAsCallee?: string;
};

/**
 * baresip 1.0's dtls_srtp answers a re-INVITE's offer with `a=setup:actpass` when it made the first offer of the call;
 * RFC 5763 §5 wants `active` or `passive` in an answer, and Chromium refuses it ("Answerer must use either active or
 * passive value for setup attribute"), after which JsSIP ends the call itself. So JsSIP called by baresip cannot
 * hold; it does as caller, where baresip answers `active`.
 */
const BARESIP_ANSWERS_ACTPASS = 'baresip 1.0 answers a re-offer with a=setup:actpass, which Chromium refuses';

const CELLS: Cell[] = [
  { client: 'baresip', transport: 'udp', nat: false },
  { client: 'baresip', transport: 'udp', nat: true },
  { client: 'baresip', transport: 'tcp', nat: false },
  { client: 'baresip', transport: 'tcp', nat: true },
  { client: 'baresip', transport: 'tls', nat: false },
  { client: 'baresip', transport: 'tls', nat: true },
  { client: 'linphonec', transport: 'udp', nat: true },
  { client: 'linphonec', transport: 'tcp', nat: true },
  { client: 'linphonec', transport: 'tls', nat: true },
  { client: 'jssip', transport: 'ws', nat: false, noHoldAsCallee: BARESIP_ANSWERS_ACTPASS },
  { client: 'jssip', transport: 'ws', nat: true, noHoldAsCallee: BARESIP_ANSWERS_ACTPASS },
  { client: 'jssip', transport: 'wss', nat: false, noHoldAsCallee: BARESIP_ANSWERS_ACTPASS },
  { client: 'jssip', transport: 'wss', nat: true, noHoldAsCallee: BARESIP_ANSWERS_ACTPASS },
];

const cellName = (c: Cell): string => `${c.transport.toUpperCase()} ${c.nat ? 'behind NAT' : 'public'}: ${c.client}`;
const cellUser = (c: Cell): string => `${c.client}-${c.transport}-${c.nat ? 'nat' : 'pub'}`;
const escaped = (address: string): string => address.replace(/\./g, '\\.');

async function asCaller(me: LabPhone, peer: LabPhone): Promise<void> {
  const target = `sip:${peer.name}@${DOMAIN}`;
  await call(me, peer, target);
  await holdAndResumeCall(me, peer);
  await holdAndResumeCall(peer, me);
  await hangUpCall(peer, me);
  await call(me, peer, target);
  await hangUpCall(me, peer);
}

async function asCallee(me: LabPhone, peer: LabPhone, holds: boolean): Promise<void> {
  const target = `sip:${me.name}@${DOMAIN}`;
  await call(peer, me, target);
  await holdAndResumeCall(peer, me);
  if (holds) await holdAndResumeCall(me, peer);
  await hangUpCall(me, peer);
  await call(peer, me, target);
  await hangUpCall(peer, me);
}

test('transport matrix: baresip, linphonec and JsSIP over UDP, TCP, TLS, WS and WSS, public and behind NAT, as caller and callee', { timeout: 600000 }, async (t) => {
  await inEdgeLab(t, async (el) => {
    const sipway = await startSipway(el, ['bob', 'webbob', ...CELLS.map(cellUser)]);
    const peers: LabPhone[] = [];
    try {
      // JsSIP's peer offers media a browser accepts (ICE, DTLS-SRTP); the others' peer plain RTP.
      const bob = baresipPhone(await phone(el, sipway, el.publicHost('bob', 12), 'bob'));
      peers.push(bob);
      const webbob = baresipPhone(await phone(el, sipway, el.publicHost('webbob', 13), 'webbob', { webrtc: true }));
      peers.push(webbob);
      await explained(peers, sipway.server, async () => {
        await registered(sipway.data, 'bob', /^udp:10\.213\.0\.12:/);
        await registered(sipway.data, 'webbob', /^udp:10\.213\.0\.13:/);
      });
      for (const [i, cell] of CELLS.entries()) {
        await t.test(cellName(cell), { timeout: 120000 }, async (ct) => {
          const user = cellUser(cell);
          const host = cell.nat ? el.natHost(`m${i}`, 30 + i) : el.publicHost(`m${i}`, 30 + i);
          const peer = cell.client === 'jssip' ? webbob : bob;
          const me = await startLabPhone(el, sipway, host, user, cell);
          try {
            await explained([me, peer], sipway.server, async () => {
              await me.registered();
              await registered(sipway.data, user, new RegExp(`^${cell.transport}:${escaped(cell.nat ? NAT_OUTSIDE : host.address)}:`));
              // What the proxy has to cope with: the phone names its private address, and nothing helps past the NAT.
              if (cell.nat && cell.client !== 'jssip') assert.match(me.output(), /REGISTER sip:[^]*?Contact: <sip:[^>]*@192\.168\.77\.\d+/, `${user} registers its private address as Contact`);
            });
            await ct.test('as caller: hold and resume both ways, BYE from the callee, then from the caller', { todo: cell.todo }, () => explained([me, peer], sipway.server, () => asCaller(me, peer)));
            const holds = cell.noHoldAsCallee ? `hold and resume by the caller only (${cell.noHoldAsCallee})` : 'hold and resume both ways';
            await ct.test(`as callee: ${holds}, BYE from the callee, then from the caller`, { todo: cell.todo }, () => explained([me, peer], sipway.server, () => asCallee(me, peer, !cell.noHoldAsCallee)));
          } finally {
            await me.stop();
          }
        });
      }
    } finally {
      for (const p of peers) await p.stop();
      await sipway.server.stop();
    }
  });
});
