import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserAgent, type InviteSession } from '../../src/ua/index.js';
import { pcmuDescription, RtpStream } from '../../src/media/index.js';
import type { SbcCallInfo } from '../../src/sbc/index.js';
import { freePort, runCliAsync, startCliServer } from '../helpers/process.js';
import { audioFlows, DOMAIN, LOOPBACK, relayPorts, until, within, type Phone } from './harness.js';

test('sipway calls lists the live SBC calls of every worker (legs, media ports, packets) and ends one', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-calls-'));
  const config = path.join(dir, 'sipway.json');
  writeFileSync(
    config,
    JSON.stringify({
      domains: [DOMAIN],
      auth: { register: false },
      proxy: { authenticateCallers: false },
      log: { level: 'warn' },
      sbc: { enabled: true, media: { address: LOOPBACK, ...relayPorts() } },
    }),
  );
  const port = await freePort();
  const adminPort = await freePort();
  // Two workers: a call's legs live in the worker owning their Call-IDs; the primary asks them all.
  const server = await startCliServer(['--config', config, '--listen', `udp:127.0.0.1:${port}`, '--data', path.join(dir, 'data'), '--admin', `127.0.0.1:${adminPort}`, '--workers', '2']);
  const admin = ['--admin', `127.0.0.1:${adminPort}`];
  const proxy = { transport: 'udp' as const, address: LOOPBACK, port };
  const phones: Phone[] = [];
  const phone = async (user: string): Promise<Phone> => {
    const rtp = await RtpStream.open(LOOPBACK);
    const p: Phone = { ua: undefined as unknown as UserAgent, aor: `sip:${user}@${DOMAIN}`, port: 0, rtp, received: [], incoming: [], onCall: (s) => s.accept(p.sdp()), sdp: () => pcmuDescription(LOOPBACK, rtp.port) };
    p.ua = await UserAgent.start({ aor: p.aor, proxy, onInvite: (s: InviteSession) => (p.incoming.push(s), p.onCall(s)) });
    p.port = p.ua.transport.listeners()[0]!.port;
    phones.push(p);
    return p;
  };
  try {
    assert.equal((await runCliAsync(['calls', ...admin])).stdout.trim(), 'no call goes through the SBC');
    const alice = await phone('alice');
    const bob = await phone('bob');
    const registration = bob.ua.registration();
    assert.equal((await registration.register()).status, 200);
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const bobCall = bob.incoming[0]!;
    await audioFlows({ session: call, phone: alice }, { session: bobCall, phone: bob });

    const listed = await runCliAsync(['calls', '--json', ...admin]);
    assert.equal(listed.status, 0, listed.stderr);
    const calls = JSON.parse(listed.stdout) as SbcCallInfo[];
    assert.equal(calls.length, 1, 'one call, from whichever worker holds it');
    const c = calls[0]!;
    assert.equal(c.a.callId, call.invite.callId);
    assert.equal(c.b.callId, bobCall.invite.callId);
    assert.equal(c.caller, `sip:alice@${DOMAIN}`);
    assert.equal(c.callee, `sip:bob@${DOMAIN}`);
    assert.equal(c.state, 'answered');
    assert.equal(typeof c.worker, 'number');
    const sides = c.media!.streams[0]!.sides;
    assert.equal(sides.length, 2);
    assert.ok(sides.every((s) => s.rtp.packets >= 10 && s.latched), 'both sides latched, packets counted');
    assert.deepEqual(sides.map((s) => s.peer!.port).sort(), [alice.rtp.port, bob.rtp.port].sort(), 'each side faces one phone');

    const table = await runCliAsync(['calls', ...admin]);
    assert.match(table.stdout, new RegExp(`^${c.id}  answered .* sip:alice@${DOMAIN} -> sip:bob@${DOMAIN}`, 'm'));
    assert.ok(table.stdout.includes(`leg a ${call.invite.callId} from udp:127.0.0.1:${alice.port}\n`), table.stdout);
    assert.ok(table.stdout.includes(`leg b ${bobCall.invite.callId} to sip:bob@${DOMAIN}\n`), table.stdout);
    assert.match(table.stdout, /audio \(embedded\): port \d+ <- 127\.0\.0\.1:\d+ \d+ pkts \| port \d+ <- 127\.0\.0\.1:\d+ \d+ pkts/);

    const missing = await runCliAsync(['calls', 'end', 'nosuchcall', ...admin]);
    assert.equal(missing.status, 1);
    const ended = await runCliAsync(['calls', 'end', c.id, ...admin]);
    assert.equal(ended.status, 0, ended.stderr);
    assert.equal(ended.stdout.trim(), `call ${c.id} ended`);
    const [a, b] = await within(Promise.all([call.ended, bobCall.ended]), 'both legs ended', 5000);
    assert.equal(a.by, 'remote');
    assert.equal(b.by, 'remote');
    assert.ok(await until(async () => JSON.parse((await runCliAsync(['calls', '--json', ...admin])).stdout).length === 0, 5000), 'the list is empty again');
    registration.stop();
  } finally {
    for (const p of phones) p.rtp.close();
    await Promise.all(phones.map((p) => p.ua.stop()));
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve --workers 2: the SBC\'s per-account limit counts every worker\'s calls (the primary keeps the count); a call over gives its place back', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-sbc-limits-'));
  const config = path.join(dir, 'sipway.json');
  writeFileSync(
    config,
    JSON.stringify({
      domains: [DOMAIN],
      auth: { register: false },
      proxy: { authenticateCallers: false },
      log: { level: 'warn' },
      sbc: { enabled: true, limits: { perAccount: 1 }, media: { address: LOOPBACK, ...relayPorts() } },
    }),
  );
  const port = await freePort();
  const server = await startCliServer(['--config', config, '--listen', `udp:127.0.0.1:${port}`, '--data', path.join(dir, 'data'), '--workers', '2']);
  const proxy = { transport: 'udp' as const, address: LOOPBACK, port };
  const rtp = await RtpStream.open(LOOPBACK);
  const sdp = pcmuDescription(LOOPBACK, rtp.port);
  const alice = await UserAgent.start({ aor: `sip:alice@${DOMAIN}`, proxy });
  const bob = await UserAgent.start({ aor: `sip:bob@${DOMAIN}`, proxy, onInvite: (s: InviteSession) => s.accept(sdp) });
  const registration = bob.registration();
  try {
    assert.equal((await registration.register()).status, 200);
    const first = await alice.call(`sip:bob@${DOMAIN}`, { sdp });
    assert.equal((await within(first.answered, 'the first call', 5000)).status, 200);
    // Every call from this account (its source: callers are not authenticated here) has its own Call-ID, so the
    // calls land on either worker: each must be refused while the first is up.
    for (let i = 0; i < 4; i++) {
      const more = await alice.call(`sip:bob@${DOMAIN}`, { sdp });
      const answer = await within(more.answered, `call ${i + 2}`, 5000);
      assert.equal(answer.status, 486, `call ${i + 2}: ${answer.status} ${answer.reason}`);
    }
    assert.equal(await first.bye(), 200);
    await new Promise((r) => setTimeout(r, 200));
    const again = await alice.call(`sip:bob@${DOMAIN}`, { sdp });
    assert.equal((await within(again.answered, 'a call after the first ended', 5000)).status, 200, 'its place came back');
    assert.equal(await again.bye(), 200);
  } finally {
    registration.stop();
    rtp.close();
    await alice.stop();
    await bob.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
