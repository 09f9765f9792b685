/**
 * Issue 18, real clients: two baresip phones (Debian 12: baresip 1.0.0), each in its own home network behind its own
 * NAT router (iptables MASQUERADE, random source ports), register at sipway on the lab's public network and call each
 * other through its SBC (B2BUA, embedded media relay on sipway's lab address). Neither phone helps itself past its NAT
 * (no STUN, ICE or SIP Outbound): its Contact, Via and SDP name its private address; only the SBC's latching relay
 * makes the audio flow.
 *
 * What is checked, in each phone's own namespace (tcpdump on its interface) and in what baresip decoded (module
 * sndfile writes each call's decoded audio to a WAV file):
 * - RTP both ways, and only with the relay (sipway's address, a port of the relay's range): never with the other phone;
 * - what each phone heard is what the other played: each plays its own pseudo-random sequence of 200 ms tones (four
 *   frequencies of its own), and the recording's 100 ms windows, decoded to their dominant frequency, match the
 *   played sequence at one offset (content and order, not only "some audio"), with next to nothing of the listener's
 *   own tones in it;
 * - hold and resume from either side through the B2BUA (re-INVITE sendonly, then sendrecv, each answered 200), and
 *   RTP both ways again after the resume;
 * - topology hiding on the wire: no SIP message a phone sent or received names the other phone's private address or
 *   its NAT's public address, or the other leg's Call-ID; every SDP it received names the relay only;
 * - SDES-SRTP (baresip's srtp module, mediaenc=srtp-mand): the relay passes the packets untouched: RTP headers with
 *   encrypted payloads (entropy near 8 bits/byte, unlike the plain call's PCMU tones), and the recordings still match;
 * - a blind transfer (sbc.refer 'transfer'): bob transfers alice to carol (behind bob's NAT); alice and carol then
 *   talk through the relay (RTP both ways, each hears the other's tones);
 * - the proxy's stateless topology hiding (`topologyHiding`, no SBC) between the same two NATs: no SIP header on
 *   either wire names the other side (SDP is not checked there: without a media relay it names the other phone).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { skipWithout } from '../helpers/process.js';
import { Capture, DOMAIN, entropy, HOMES, inTwoNatLab, matchTones, natPhone, recordings, registered, SERVER, startSipway, STEP_MS, toneSequence, wavSamples, type NatPhone, type Packet, type SipwayInLab, type TwoNatLab } from '../helpers/nat-lab.js';

const SKIP = skipWithout('baresip', 'ip', 'iptables', 'tcpdump', 'tshark');
const RELAY = { portMin: 30000, portMax: 30199 };
const ALICE_TONES = [400, 600, 800, 1000];
const BOB_TONES = [1300, 1500, 1700, 1900];
const CAROL_TONES = [2200, 2400, 2600, 2800];

interface Party {
  phone: NatPhone;
  capture: Capture;
  home: 'a' | 'b';
  address: string;
}

function sbcConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { enabled: true, calls: 'nat', media: { engine: 'embedded', address: SERVER, ...RELAY }, ...extra };
}

/** Starts a phone at `home`.`n`, its capture first (the REGISTER is on it), and waits for its binding through its NAT. */
async function party(l: TwoNatLab, sipway: SipwayInLab, home: 'a' | 'b', n: number, user: string, tones: number[], seed: number, mediaenc?: string): Promise<Party> {
  const host = l.homeHost(home, user, n);
  const capture = await Capture.start(host, 'udp');
  let phone: NatPhone | undefined;
  try {
    phone = await natPhone(l, host, user, toneSequence(tones, seed), mediaenc);
    await registered(sipway.data, user, new RegExp(`^udp:${HOMES[home].outside.replace(/\./g, '\\.')}:`));
  } catch (e) {
    await phone?.b.stop();
    await capture.stop();
    throw e;
  }
  return { phone, capture, home, address: host.address };
}

/** Runs `body`; a failure carries every phone's output and sipway's log tail; always stops the phones and captures. */
async function explained(t: TestContext, parties: Party[], sipway: SipwayInLab, body: () => Promise<void>): Promise<void> {
  notes.length = 0;
  try {
    await body();
  } catch (e) {
    const parts = [...parties.map((p) => `--- ${p.phone.user} ---\n${p.phone.b.output().slice(-6000)}`), `--- sipway (tail) ---\n${sipway.server.output().slice(-8000)}`];
    throw new Error(`${(e as Error).message}\n${parts.join('\n')}`, { cause: e });
  } finally {
    const warnings = sipway.server.output().split('\n').filter((x) => /"level":(40|50|60)/.test(x));
    notes.push(`sipway logged ${warnings.length} warnings or errors${warnings.length ? ': ' + warnings.slice(0, 3).join(' | ').slice(0, 1500) : ''}`);
    for (const n of notes) t.diagnostic(n);
    for (const p of parties) await p.phone.b.stop();
    for (const p of parties) await p.capture.stop();
  }
}

async function established(p: Party, sinceEvents: number): Promise<void> {
  await p.phone.b.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => p.phone.b.events.indexOf(e) >= sinceEvents);
}

/** `caller` dials `callee`'s AOR; both see the call established. */
async function call(caller: Party, callee: Party): Promise<void> {
  const [c, d] = [caller.phone.b.events.length, callee.phone.b.events.length];
  const r = await caller.phone.b.command('dial', `sip:${callee.phone.user}@${DOMAIN}`);
  assert.ok(r.ok, `dial refused: ${r.data}`);
  await established(caller, c);
  await established(callee, d);
}

/** `holder` holds then resumes: the other gets each re-INVITE (sendonly, then sendrecv), the holder each 200. */
async function holdAndResume(holder: Party, other: Party): Promise<void> {
  for (const [command, direction] of [['hold', 'sendonly'], ['resume', 'sendrecv']] as const) {
    const [h, o] = [holder.phone.b.output().length, other.phone.b.output().length];
    const r = await holder.phone.b.command(command);
    assert.ok(r.ok, `${holder.phone.user}: ${command} refused: ${r.data}`);
    await other.phone.b.waitForOutput(new RegExp(`INVITE sip:[^]*?a=${direction}`), STEP_MS, o);
    await holder.phone.b.waitForOutput(/SIP\/2\.0 200 [^]*?CSeq: \d+ INVITE/, STEP_MS, h);
  }
}

/** `from` hangs up; its BYE gets a 200 and `to`'s call is closed. */
async function hangUp(from: Party, to: Party): Promise<void> {
  const [f, t] = [from.phone.b.output().length, to.phone.b.events.length];
  assert.ok((await from.phone.b.command('hangup')).ok);
  await from.phone.b.waitForOutput(/SIP\/2\.0 200 [^]*?CSeq: \d+ BYE/, STEP_MS, f);
  await to.phone.b.waitForEvent('CALL_CLOSED', STEP_MS, (e) => to.phone.b.events.indexOf(e) >= t);
}

/** Figures of the run (packet counts, tone matches, entropies), reported as test diagnostics. */
const notes: string[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const fromRelay = (p: Party) => (d: Packet) => d.src === SERVER && d.srcPort >= RELAY.portMin && d.srcPort <= RELAY.portMax && d.dst === p.address;
const toRelay = (p: Party) => (d: Packet) => d.src === p.address && d.dst === SERVER && d.dstPort >= RELAY.portMin && d.dstPort <= RELAY.portMax;

/** RTP at `p` (its own capture): received from the relay and sent to it, from `since` (epoch s) on; none with anyone else. */
function rtpAt(p: Party, since = 0): { received: Packet[]; sent: Packet[] } {
  const rtp = p.capture.rtp().filter((d) => d.time >= since);
  const stray = rtp.filter((d) => !fromRelay(p)(d) && !toRelay(p)(d));
  assert.deepEqual(stray.map((d) => `${d.src}:${d.srcPort} > ${d.dst}:${d.dstPort}`).slice(0, 5), [], `${p.phone.user}: RTP only with the relay (${SERVER}:${RELAY.portMin}-${RELAY.portMax})`);
  const counts = { received: rtp.filter(fromRelay(p)), sent: rtp.filter(toRelay(p)) };
  notes.push(`${p.phone.user} RTP${since ? ' after ' + since.toFixed(1) : ''}: received ${counts.received.length}, sent ${counts.sent.length}`);
  return counts;
}

/** What `listener` heard in its `n`th call is `speaker`'s tone sequence (see the file comment). */
function heard(listener: Party, speaker: Party, n: number, fromS: number, seconds: number, others: readonly number[] = listener.phone.tones.frequencies): void {
  const files = recordings(listener.phone);
  assert.ok(files.length > n, `${listener.phone.user}: a recording of call ${n + 1} (sndfile wrote ${files.length})`);
  const samples = wavSamples(files[n]!);
  // A negative start counts from the recording's end (the tail of a call whose far end changed): the speaker's
  // sequence may then be anywhere in its first 15 s.
  const from = fromS >= 0 ? fromS : samples.length / 8000 + fromS;
  const m = matchTones(samples, speaker.phone.tones, others, from, seconds, fromS >= 0 ? undefined : 15);
  notes.push(`${listener.phone.user} heard ${speaker.phone.user}: ${JSON.stringify(m)}`);
  const what = `${listener.phone.user} heard ${speaker.phone.user}'s tones (${(samples.length / 8000).toFixed(1)} s recorded): ${JSON.stringify(m)}`;
  assert.ok(m.windows >= seconds * 10 * 0.8, `${what}: sound in most windows`);
  assert.ok(m.matched >= 0.85, `${what}: the played sequence found (by chance about 0.5)`);
  assert.ok(m.inBand >= 0.9, `${what}: the energy is at ${speaker.phone.user}'s frequencies`);
  assert.ok(m.foreign <= 0.05, `${what}: next to nothing at ${others.join(', ')} Hz`);
}

/** The Call-IDs of every SIP message a capture holds. */
function callIds(p: Party): Set<string> {
  return new Set(p.capture.messages().map((d) => d.sip.callId));
}

/**
 * Nothing of `others` in any SIP message on `p`'s wire: their private and NAT addresses, their legs' Call-IDs; every
 * SDP `p` received names the relay only (c= and o=).
 */
function hidden(p: Party, others: Party[], what: 'message' | 'headers' = 'message'): void {
  const secrets = others.flatMap((o) => [o.address, HOMES[o.home].outside, ...callIds(o)]);
  // Two phones in one home share a NAT: its address is not the other side's secret then.
  const own = new Set([p.address, HOMES[p.home].outside, ...callIds(p)]);
  const sip = p.capture.messages();
  assert.ok(sip.length > 0, `${p.phone.user}: SIP on the wire`);
  notes.push(`${p.phone.user}'s wire: ${sip.length} SIP messages, none naming ${secrets.filter((x) => !own.has(x)).join(' ')}`);
  for (const d of sip) {
    const whole = d.payload.toString('latin1');
    // Without a media relay (the proxy's stateless mode) the SDP still names the other phone: headers only then.
    const raw = what === 'headers' ? whole.split('\r\n\r\n')[0]! : whole;
    for (const s of secrets) if (!own.has(s)) assert.ok(!raw.includes(s), `${p.phone.user}'s wire: ${s} (the other side's) in\n${raw}`);
    if (what === 'message' && d.dst === p.address && /\r\n\r\nv=0/.test(raw)) {
      const sdp = raw.split('\r\n\r\n').slice(1).join('\r\n\r\n');
      for (const line of sdp.split(/\r?\n/).filter((x) => /^(c=|o=)/.test(x))) assert.ok(line.endsWith(` IP4 ${SERVER}`), `${p.phone.user} received SDP naming the relay only: ${line}`);
    }
  }
}

test('SBC, two baresip phones behind two NATs: RTP both ways through the relay, each hears the other\'s tones, hold/resume from either side, nothing of the other side on either wire', { skip: SKIP, timeout: 60000 }, async (t) => {
  await inTwoNatLab(t, async (l) => {
    const sipway = await startSipway(l, ['alice', 'bob'], sbcConfig());
    const parties: Party[] = [];
    try {
      await explained(t, parties, sipway, async () => {
        parties.push(await party(l, sipway, 'a', 10, 'alice', ALICE_TONES, 1));
        parties.push(await party(l, sipway, 'b', 10, 'bob', BOB_TONES, 2));
        const [alice, bob] = parties as [Party, Party];
        await call(alice, bob);
        await sleep(4500);
        await holdAndResume(alice, bob);
        await holdAndResume(bob, alice);
        const resumed = Date.now() / 1000;
        await sleep(2000);
        await hangUp(alice, bob);
        await sleep(300);
        for (const p of parties) await p.capture.stop();

        for (const p of parties) {
          const { received, sent } = rtpAt(p);
          assert.ok(received.length >= 200 && sent.length >= 200, `${p.phone.user}: RTP both ways with the relay (received ${received.length}, sent ${sent.length})`);
          const after = rtpAt(p, resumed);
          assert.ok(after.received.length >= 50 && after.sent.length >= 50, `${p.phone.user}: RTP both ways after the resume (received ${after.received.length}, sent ${after.sent.length})`);
          assert.ok(received.every((d) => (d.payload[1]! & 0x7f) === 0), `${p.phone.user}: plain PCMU (payload type 0) received`);
        }
        // Each phone's own RTP as it left, for the SRTP test's comparison: PCMU tones are far from random bytes.
        const plain = entropy(alice.capture.rtp().filter(toRelay(alice)).map((d) => d.payload.subarray(12)));
        notes.push(`alice's PCMU payload entropy ${plain.toFixed(2)} bits/byte`);
        assert.ok(plain < 7, `a PCMU tone's payload entropy is low (${plain.toFixed(2)} bits/byte)`);
        heard(alice, bob, 0, 0.3, 4);
        heard(bob, alice, 0, 0.3, 4);
        assert.deepEqual([...callIds(alice)].filter((id) => callIds(bob).has(id)), [], 'no Call-ID on both wires: each leg has its own');
        hidden(alice, [bob]);
        hidden(bob, [alice]);
      });
    } finally {
      await sipway.server.stop();
    }
  });
});

test('SBC, two baresip phones behind two NATs with SDES-SRTP (srtp-mand): the relay passes the encrypted packets untouched, each hears the other', { skip: SKIP, timeout: 60000 }, async (t) => {
  await inTwoNatLab(t, async (l) => {
    const sipway = await startSipway(l, ['alice', 'bob'], sbcConfig());
    const parties: Party[] = [];
    try {
      await explained(t, parties, sipway, async () => {
        parties.push(await party(l, sipway, 'a', 10, 'alice', ALICE_TONES, 3, 'srtp-mand'));
        parties.push(await party(l, sipway, 'b', 10, 'bob', BOB_TONES, 4, 'srtp-mand'));
        const [alice, bob] = parties as [Party, Party];
        await call(alice, bob);
        await sleep(4500);
        await hangUp(bob, alice);
        await sleep(300);
        for (const p of parties) await p.capture.stop();

        // The offer and the answer each carried a=crypto across the SBC (RTP/SAVP).
        for (const p of parties) {
          const sdps = p.capture.messages().filter((d) => d.dst === p.address).map((d) => d.payload.toString('latin1')).filter((r) => /\r\n\r\nv=0/.test(r));
          assert.ok(sdps.length > 0 && sdps.every((r) => /m=audio \d+ RTP\/SAVP /.test(r) && /a=crypto:/.test(r)), `${p.phone.user} received RTP/SAVP with a=crypto`);
        }
        for (const p of parties) {
          const { received, sent } = rtpAt(p);
          assert.ok(received.length >= 150 && sent.length >= 150, `${p.phone.user}: SRTP both ways with the relay (received ${received.length}, sent ${sent.length})`);
          const h = entropy(received.map((d) => d.payload.subarray(12)));
          notes.push(`${p.phone.user} received SRTP payload entropy ${h.toFixed(2)} bits/byte`);
          assert.ok(h > 7.5, `${p.phone.user}: received payloads are encrypted (entropy ${h.toFixed(2)} bits/byte)`);
        }
        // What left alice is what reached bob, byte for byte: the relay neither decrypts nor re-encrypts.
        const sentByAlice = new Set(alice.capture.rtp().filter(toRelay(alice)).map((d) => d.payload.toString('hex')));
        const reachedBob = bob.capture.rtp().filter(fromRelay(bob));
        const same = reachedBob.filter((d) => sentByAlice.has(d.payload.toString('hex'))).length;
        notes.push(`SRTP packets at bob identical to ones alice sent: ${same} of ${reachedBob.length}`);
        assert.ok(same >= reachedBob.length * 0.95, `SRTP packets pass the relay untouched: ${same} of ${reachedBob.length} at bob were sent by alice as they are`);
        heard(alice, bob, 0, 0.3, 4);
        heard(bob, alice, 0, 0.3, 4);
        hidden(alice, [bob]);
        hidden(bob, [alice]);
      });
    } finally {
      await sipway.server.stop();
    }
  });
});

test('SBC, blind transfer between NATed baresip phones (sbc.refer transfer): bob transfers alice to carol, who then talk through the relay', { skip: SKIP, timeout: 60000 }, async (t) => {
  await inTwoNatLab(t, async (l) => {
    const sipway = await startSipway(l, ['alice', 'bob', 'carol'], sbcConfig({ refer: 'transfer' }));
    const parties: Party[] = [];
    try {
      await explained(t, parties, sipway, async () => {
        parties.push(await party(l, sipway, 'a', 10, 'alice', ALICE_TONES, 5));
        parties.push(await party(l, sipway, 'b', 10, 'bob', BOB_TONES, 6));
        parties.push(await party(l, sipway, 'b', 11, 'carol', CAROL_TONES, 7));
        const [alice, bob, carol] = parties as [Party, Party, Party];
        await call(alice, bob);
        await sleep(1500);
        const [a, c, bobEvents] = [alice.phone.b.output().length, carol.phone.b.events.length, bob.phone.b.events.length];
        const r = await bob.phone.b.command('transfer', `sip:carol@${DOMAIN}`);
        assert.ok(r.ok, `bob: transfer refused: ${r.data}`);
        await established(carol, c);
        // Alice stays in her call: the SBC gives her carol's media in a re-INVITE.
        await alice.phone.b.waitForOutput(/INVITE sip:[^]*?a=sendrecv/, STEP_MS, a);
        await bob.phone.b.waitForEvent('CALL_CLOSED', 15000, (e) => bob.phone.b.events.indexOf(e) >= bobEvents);
        const transferred = Date.now() / 1000;
        await sleep(4000);
        await hangUp(alice, carol);
        await sleep(300);
        for (const p of parties) await p.capture.stop();

        for (const p of [alice, carol]) {
          const after = rtpAt(p, transferred);
          assert.ok(after.received.length >= 100 && after.sent.length >= 100, `${p.phone.user}: RTP both ways after the transfer (received ${after.received.length}, sent ${after.sent.length})`);
        }
        // Carol's only call is with alice: she heard alice's tones (carol's first recording).
        heard(carol, alice, 0, 0.3, 3);
        // And alice hears carol now: the last seconds of her (last) recording are carol's tones, none of bob's.
        const aliceFiles = recordings(alice.phone).length;
        heard(alice, carol, aliceFiles - 1, -3.5, 3, [...ALICE_TONES, ...BOB_TONES]);
        hidden(alice, [bob, carol]);
        hidden(carol, [alice]);
      });
    } finally {
      await sipway.server.stop();
    }
  });
});

test('the proxy\'s stateless topology hiding (topologyHiding, no SBC), two baresip phones behind two NATs: no header on either wire names the other side', { skip: SKIP, timeout: 60000 }, async (t) => {
  await inTwoNatLab(t, async (l) => {
    // Both NATs are outside the trust boundary: what crosses to either is hidden. No SBC: the proxy routes the call.
    const sipway = await startSipway(l, ['alice', 'bob'], { enabled: false }, [], { topologyHiding: { enabled: true, outside: [HOMES.a.outside, HOMES.b.outside] } });
    const parties: Party[] = [];
    try {
      await explained(t, parties, sipway, async () => {
        parties.push(await party(l, sipway, 'a', 10, 'alice', ALICE_TONES, 8));
        parties.push(await party(l, sipway, 'b', 10, 'bob', BOB_TONES, 9));
        const [alice, bob] = parties as [Party, Party];
        await call(alice, bob);
        await holdAndResume(bob, alice);
        await hangUp(bob, alice);
        await sleep(300);
        for (const p of parties) await p.capture.stop();
        const encoded = [...callIds(bob)].filter((id) => id.startsWith('!sw!'));
        notes.push(`bob's wire: Call-IDs ${[...callIds(bob)].join(' ')}`);
        assert.ok(encoded.length > 0, 'bob sees the call under an encoded Call-ID');
        hidden(alice, [bob], 'headers');
        hidden(bob, [alice], 'headers');
      });
    } finally {
      await sipway.server.stop();
    }
  });
});
