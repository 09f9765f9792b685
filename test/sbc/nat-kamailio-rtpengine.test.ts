/**
 * Issue 18, the anchor to compare with: the same two-NAT call as nat-baresip.test.ts (two baresip phones, each behind
 * its own MASQUERADE NAT) through Kamailio (test/kamailio/nat-rtpengine.cfg: registrar and record-routing proxy with
 * nathelper) with rtpengine relaying the media (userspace forwarding, its ng control on the server host's loopback),
 * both on the lab's server address in place of sipway. Checked the same way: RTP both ways with rtpengine only (the
 * server's address, a port of its range), never between the phones, and each phone's recording is the other's
 * played tone sequence. Kamailio is a proxy, not a B2BUA: Call-IDs and Record-Route cross, so topology is not checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { requireTool, skipWithout } from '../helpers/process.js';
import { until } from '../helpers/waits.js';
import { Capture, DOMAIN, inTwoNatLab, matchTones, natPhone, recordings, SERVER, SIP_PORT, STEP_MS, toneSequence, wavSamples, type NatPhone, type Packet } from '../helpers/nat-lab.js';

const SKIP = skipWithout('baresip', 'ip', 'iptables', 'tcpdump', 'tshark', 'kamailio', 'rtpengine');
const MEDIA = { portMin: 30000, portMax: 30199 };
const NG_PORT = 2223;

test('Kamailio + rtpengine, two baresip phones behind two NATs: RTP both ways through rtpengine, each hears the other\'s tones', { skip: SKIP, timeout: 60000 }, async (t) => {
  await inTwoNatLab(t, async (l) => {
    const rtpengine = l.srv.spawn(requireTool('rtpengine', 'rtpengine-daemon'), [
      '--config-file=none', '--foreground', '--log-stderr', '--log-level=6', '--table=-1', `--interface=${SERVER}`, `--listen-ng=127.0.0.1:${NG_PORT}`,
      `--port-min=${MEDIA.portMin}`, `--port-max=${MEDIA.portMax}`, '--num-threads=2', '--delete-delay=0',
    ]);
    const kamailio = l.srv.spawn(requireTool('kamailio'), [
      '-f', path.join(projectRoot, 'test', 'kamailio', 'nat-rtpengine.cfg'), '-DD', '-E', '-m', '32', '-M', '4', '-Y', l.work, '-w', l.work, '-P', path.join(l.work, 'kamailio.pid'),
      '-l', `udp:${SERVER}:${SIP_PORT}`, '-A', `NG_SOCK="udp:127.0.0.1:${NG_PORT}"`,
    ]);
    let log = '';
    for (const child of [rtpengine, kamailio]) {
      child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    }
    const options = `OPTIONS sip:${SERVER}:${SIP_PORT} SIP/2.0\r\nVia: SIP/2.0/UDP ${SERVER}:9;branch=z9hG4bKkam${Date.now()};rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@${SERVER}>;tag=1\r\nTo: <sip:${SERVER}>\r\nCall-ID: kam${Date.now()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
    const pong = async (): Promise<boolean> => (await l.srv.udpExchange('127.0.0.1', NG_PORT, 'ready d7:command4:pinge', 300)).some((r) => r.data.includes('4:pong'));
    const ok = async (): Promise<boolean> => (await l.srv.udpExchange(SERVER, SIP_PORT, options, 300)).some((r) => r.data.startsWith('SIP/2.0 200'));
    const up = await until(async () => (await pong()) && (await ok()), 15000, 100);
    assert.ok(up, `rtpengine answers ping and kamailio OPTIONS:\n${log.slice(-4000)}`);

    const homes = { alice: ['a', 10, [400, 600, 800, 1000], 11], bob: ['b', 10, [1300, 1500, 1700, 1900], 12] } as const;
    const phones: Array<{ phone: NatPhone; capture: Capture; address: string }> = [];
    try {
      for (const [user, [home, n, tones, seed]] of Object.entries(homes)) {
        const host = l.homeHost(home, user, n);
        const capture = await Capture.start(host, 'udp');
        phones.push({ phone: await natPhone(l, host, user, toneSequence(tones, seed)), capture, address: host.address });
      }
      const [alice, bob] = phones as [(typeof phones)[0], (typeof phones)[0]];
      for (const p of phones) await p.phone.b.waitForOutput(/SIP\/2\.0 200 [^]*?CSeq: \d+ REGISTER/, STEP_MS);
      const [ea, eb] = [alice.phone.b.events.length, bob.phone.b.events.length];
      assert.ok((await alice.phone.b.command('dial', `sip:bob@${DOMAIN}`)).ok);
      await alice.phone.b.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => alice.phone.b.events.indexOf(e) >= ea);
      await bob.phone.b.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => bob.phone.b.events.indexOf(e) >= eb);
      await new Promise((r) => setTimeout(r, 4500));
      const o = alice.phone.b.output().length;
      assert.ok((await alice.phone.b.command('hangup')).ok);
      await alice.phone.b.waitForOutput(/SIP\/2\.0 200 [^]*?CSeq: \d+ BYE/, STEP_MS, o);
      await new Promise((r) => setTimeout(r, 300));
      for (const p of phones) await p.capture.stop();

      const relay = (d: Packet, port: number): boolean => port >= MEDIA.portMin && port <= MEDIA.portMax && (d.src === SERVER || d.dst === SERVER);
      for (const p of phones) {
        // Every SDP a phone received names rtpengine (c= and o=), whatever the other phone wrote.
        const sdps = p.capture.messages().filter((d) => d.dst === p.address).map((d) => d.payload.toString('latin1')).filter((r) => /\r\n\r\nv=0/.test(r));
        assert.ok(sdps.length > 0, `${p.phone.user} received an SDP`);
        for (const line of sdps.flatMap((r) => r.split(/\r?\n/)).filter((x) => /^(c=|o=)/.test(x))) assert.ok(line.endsWith(` IP4 ${SERVER}`), `${p.phone.user} received SDP naming rtpengine: ${line}`);
        const rtp = p.capture.rtp();
        const received = rtp.filter((d) => d.dst === p.address && relay(d, d.srcPort)).length;
        const sent = rtp.filter((d) => d.src === p.address && relay(d, d.dstPort)).length;
        t.diagnostic(`${p.phone.user} RTP: received ${received}, sent ${sent}, with others ${rtp.length - received - sent}`);
        assert.equal(rtp.length, received + sent, `${p.phone.user}: RTP only with rtpengine`);
        assert.ok(received >= 150 && sent >= 150, `${p.phone.user}: RTP both ways with rtpengine (received ${received}, sent ${sent})`);
      }
      for (const [listener, speaker] of [[alice, bob], [bob, alice]] as const) {
        const files = recordings(listener.phone);
        assert.ok(files.length >= 1, `${listener.phone.user} recorded the call`);
        const m = matchTones(wavSamples(files[0]!), speaker.phone.tones, listener.phone.tones.frequencies, 0.3, 4);
        t.diagnostic(`${listener.phone.user} heard ${speaker.phone.user}: ${JSON.stringify(m)}`);
        assert.ok(m.windows >= 32 && m.matched >= 0.85 && m.inBand >= 0.9 && m.foreign <= 0.05, `${listener.phone.user} heard ${speaker.phone.user}'s tones: ${JSON.stringify(m)}`);
      }
    } catch (e) {
      const parts = [...phones.map((p) => `--- ${p.phone.user} ---\n${p.phone.b.output().slice(-5000)}`), `--- kamailio + rtpengine ---\n${log.slice(-8000)}`];
      throw new Error(`${(e as Error).message}\n${parts.join('\n')}`, { cause: e });
    } finally {
      for (const p of phones) await p.phone.b.stop();
      for (const p of phones) await p.capture.stop();
    }
  });
});
