import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { computeHa1 } from '../../src/auth/index.js';
import { putCplScript } from '../../src/policy/cpl/index.js';
import { SystemClock, type Clock, type TimerHandle } from '../../src/util/clock.js';
import { projectRoot } from '../helpers/paths.js';
import { startProxy, type ProxyHarness } from '../proxy/harness.js';
import { invite, register, retryWithCredentials, TestUa, type UasBehaviour } from '../proxy/ua.js';

/**
 * Users' CPL scripts on calls through a running server with the default policy: the examples of examples/cpl/,
 * with their far-away URIs pointed at UAs on loopback (and long timeouts shortened), phones as TestUas.
 */

const example = (name: string): string => readFileSync(path.join(projectRoot, 'examples', 'cpl', name), 'utf8');

async function putScript(h: ProxyHarness, user: string, xml: string, domain = 'sipway.test'): Promise<void> {
  const r = await putCplScript(h.ts.server.cplScripts, { username: user, domain }, xml, Date.now());
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
}

async function subscriber(h: ProxyHarness, username: string, domain: string, password: string): Promise<void> {
  const ha1 = (algorithm: 'MD5' | 'SHA-256') => computeHa1(username, domain, password, algorithm);
  await h.ts.server.subscribers.put({ username, domain, ha1Md5: ha1('MD5'), ha1Sha256: ha1('SHA-256'), groups: [], createdAt: 0 });
}

/** A UAS on loopback: its URI for scripts, and the UA to watch. */
async function uas(h: ProxyHarness, name: string, behaviour: UasBehaviour = {}): Promise<{ ua: TestUa; uri: string }> {
  const ua = (await h.ua(name)).serve(behaviour);
  return { ua, uri: `sip:${name}@127.0.0.1:${ua.port}` };
}

/** Calls `to` from `from` and returns the caller's final response. */
async function call(h: ProxyHarness, to: string, from = 'sip:bob@elsewhere.test', ms = 8000): Promise<{ status: number; reason: string; contact: string | undefined }> {
  const caller = await h.ua('caller');
  const inv = invite(caller, { to, from });
  caller.send(inv, h.port);
  const res = await caller.response(inv.callId, undefined, ms);
  return { status: res.status, reason: res.reason, contact: res.headers.get('contact') };
}

/** forward-busy-noanswer.xml with voicemail and cell phone on loopback and the ring times in seconds given. */
async function forwardingLab(phone: UasBehaviour | 'unregistered', cell: UasBehaviour = {}, vm: UasBehaviour = {}) {
  const h = await startProxy();
  const voicemail = await uas(h, 'vm', vm);
  const cellPhone = await uas(h, 'cell', cell);
  await putScript(
    h,
    'alice',
    example('forward-busy-noanswer.xml')
      .replace('sip:alice@voicemail.example.com', voicemail.uri)
      .replace('tel:+15555550123', cellPhone.uri)
      .replace('timeout="20"', 'timeout="1"')
      .replace('timeout="30"', 'timeout="1"'),
  );
  let desk: TestUa | undefined;
  if (phone !== 'unregistered') {
    desk = (await h.ua('desk')).serve(phone);
    await register(desk, h.port, 'alice');
  }
  return { h, voicemail: voicemail.ua, cell: cellPhone.ua, desk };
}

const invited = (ua: TestUa, ms = 300) => ua.nothing((m) => m.isRequest && m.method === 'INVITE', ms).then((none) => !none);

test('forward-busy-noanswer: a busy phone sends the call to voicemail', async () => {
  const l = await forwardingLab({ status: 486 });
  try {
    const res = await call(l.h, 'sip:alice@sipway.test');
    assert.equal(res.status, 200, 'voicemail answered');
    await l.desk!.request('INVITE');
    await l.voicemail.request('INVITE');
    assert.equal(await invited(l.cell), false, 'busy does not try the cell phone');
  } finally {
    await l.h.stop();
  }
});

test('forward-busy-noanswer: no answer in time rings the cell phone; the desk phone is cancelled', async () => {
  const l = await forwardingLab({ status: null });
  try {
    const res = await call(l.h, 'sip:alice@sipway.test');
    assert.equal(res.status, 200, 'the cell phone answered');
    await l.desk!.request('CANCEL');
    const atCell = (await l.cell.request('INVITE')).message;
    assert.equal(atCell.uri.toString(), `sip:cell@127.0.0.1:${l.cell.port}`);
    assert.equal(await invited(l.voicemail), false);
  } finally {
    await l.h.stop();
  }
});

test('forward-busy-noanswer: no answer, then the cell phone busy too: voicemail (the default output)', async () => {
  const l = await forwardingLab({ status: null }, { status: 486 });
  try {
    assert.equal((await call(l.h, 'sip:alice@sipway.test')).status, 200);
    await l.cell.request('INVITE');
    await l.voicemail.request('INVITE');
  } finally {
    await l.h.stop();
  }
});

test('forward-busy-noanswer: not registered goes to voicemail at once; voicemail failing gives its answer', async () => {
  const l = await forwardingLab('unregistered', {}, { status: 503 });
  try {
    // The script ends after voicemail's proxy node: the best response (a 503 goes upstream as 500, §16.7) is the answer.
    assert.equal((await call(l.h, 'sip:alice@sipway.test')).status, 500);
    await l.voicemail.request('INVITE');
    assert.equal(await invited(l.cell), false);
  } finally {
    await l.h.stop();
  }
});

test('a caller who cancels while the script rings the phone ends the script (487), nothing else is tried', async () => {
  const l = await forwardingLab({ status: null });
  try {
    const caller = await l.h.ua('caller');
    const inv = invite(caller, { to: 'sip:alice@sipway.test', from: 'sip:bob@elsewhere.test' });
    caller.send(inv, l.h.port);
    await l.desk!.request('INVITE');
    const { cancelOf } = await import('../proxy/ua.js');
    caller.send(cancelOf(inv), l.h.port);
    assert.equal((await caller.response(inv.callId, 487, 5000)).status, 487);
    assert.equal(await invited(l.cell, 1500), false, 'the noanswer output is not taken after a CANCEL');
  } finally {
    await l.h.stop();
  }
});

/** The system clock moved to `at` (for time-switch), timers as usual. */
function clockAt(at: string): Clock {
  const system = new SystemClock();
  const offset = Date.parse(at) - Date.now();
  return { now: () => Date.now() + offset, setTimer: (ms: number, fn: () => void): TimerHandle => system.setTimer(ms, fn) };
}

test('screen-monica-business-hours: declined (603) on a weekday morning in Berlin, through on a Saturday', async () => {
  for (const [at, expected] of [
    ['2025-03-28T08:30:00Z', 603],
    ['2025-03-29T08:30:00Z', 200],
  ] as const) {
    const h = await startProxy({}, {}, { clock: clockAt(at) });
    try {
      const desk = (await h.ua('desk')).serve();
      await register(desk, h.port, 'alice');
      await putScript(h, 'alice', example('screen-monica-business-hours.xml'));
      const res = await call(h, 'sip:alice@sipway.test', 'sip:monica@example.net');
      assert.equal(res.status, expected, at);
      if (expected === 603) {
        assert.equal(res.reason, 'Not during business hours');
        assert.equal(await invited(desk), false);
      }
      assert.equal((await call(h, 'sip:alice@sipway.test', 'sip:carl@example.net')).status, 200, 'others always get through');
    } finally {
      await h.stop();
    }
  }
});

test('friends-to-cell-others-to-secretary: an authenticated friend is redirected to the cell, a forged From to the secretary', async () => {
  const h = await startProxy({ authenticateCallers: true }, { domains: ['sipway.test', 'example.com'] });
  try {
    await subscriber(h, 'bob', 'example.com', 'pw-bob');
    await putScript(h, 'alice', example('friends-to-cell-others-to-secretary.xml'), 'example.com');
    const bob = await h.ua('bob');
    const inv = invite(bob, { to: 'sip:alice@example.com', from: 'sip:bob@example.com' });
    bob.send(inv, h.port);
    const challenge = await bob.response(inv.callId, 407);
    bob.send(retryWithCredentials(inv, challenge, 'bob', 'pw-bob'), h.port);
    const toCell = await bob.response(inv.callId, 302);
    assert.equal(toCell.headers.get('contact'), '<tel:+15555550123>');

    // Without authenticateCallers nobody from example.com is verified: the origin is not trusted.
    const open = await startProxy({}, { domains: ['sipway.test', 'example.com'] });
    try {
      await putScript(open, 'alice', example('friends-to-cell-others-to-secretary.xml'), 'example.com');
      const forged = await call(open, 'sip:alice@example.com', 'sip:bob@example.com');
      assert.equal(forged.status, 302);
      assert.equal(forged.contact, '<sip:secretary@example.com>');
    } finally {
      await open.stop();
    }
  } finally {
    await h.stop();
  }
});

test('an outgoing script bars premium numbers for its owner before the PSTN routing', async () => {
  const h = await startProxy({ authenticateCallers: true });
  try {
    await subscriber(h, 'alice', 'sipway.test', 'pw');
    await putScript(h, 'alice', example('block-premium-numbers.xml'));
    const alice = await h.ua('alice');
    const dial = async (to: string) => {
      const inv = invite(alice, { to, from: 'sip:alice@sipway.test' });
      alice.send(inv, h.port);
      const challenge = await alice.response(inv.callId, 407);
      alice.send(retryWithCredentials(inv, challenge, 'alice', 'pw'), h.port);
      return alice.response(inv.callId, undefined, 5000);
    };
    const barred = await dial('tel:+19005551234');
    assert.equal(barred.status, 403);
    assert.equal(barred.reason, 'Premium-rate numbers are blocked');
    // Other numbers go on to the PSTN routing: no gateways configured here, so nobody to reach.
    assert.equal((await dial('tel:+15551234')).status, 404);
  } finally {
    await h.stop();
  }
});

test('a stored script that no longer validates is ignored: the call goes through as without one', async () => {
  const h = await startProxy();
  try {
    const desk = (await h.ua('desk')).serve();
    await register(desk, h.port, 'alice');
    await h.ts.server.cplScripts.put({ username: 'alice', domain: 'sipway.test', script: '<cpl><incoming>', updatedAt: 0 });
    assert.equal((await call(h, 'sip:alice@sipway.test')).status, 200);
  } finally {
    await h.stop();
  }
});

test('cpl.enabled false runs no scripts; bad cpl settings name the field', async () => {
  const h = await startProxy({}, { cpl: { enabled: false } });
  try {
    const desk = (await h.ua('desk')).serve();
    await register(desk, h.port, 'alice');
    await putScript(h, 'alice', '<cpl xmlns="urn:ietf:params:xml:ns:cpl"><incoming><reject status="busy"/></incoming></cpl>');
    assert.equal((await call(h, 'sip:alice@sipway.test')).status, 200);
  } finally {
    await h.stop();
  }
  const { applyConfigObject, defaultConfig } = await import('../../src/server/config.js');
  assert.throws(() => applyConfigObject(defaultConfig(), { cpl: { timeZone: 'Mars/Olympus' } }), /cpl\.timeZone/);
  assert.throws(() => applyConfigObject(defaultConfig(), { cpl: { smtp: { host: 'x', from: 'nobody' } } }), /cpl\.smtp\.from/);
  assert.throws(() => applyConfigObject(defaultConfig(), { cpl: { ring: 1 } }), /cpl\.ring/);
});

test('forward-unconditional: every call goes to the home phone; the registered desk phone does not ring', async () => {
  const h = await startProxy();
  try {
    const home = await uas(h, 'home');
    const desk = (await h.ua('desk')).serve();
    await register(desk, h.port, 'alice');
    await putScript(h, 'alice', example('forward-unconditional.xml').replace('sip:alice@home.example.com', home.uri));
    assert.equal((await call(h, 'sip:alice@sipway.test')).status, 200);
    await home.ua.request('INVITE');
    assert.equal(await invited(desk), false);
  } finally {
    await h.stop();
  }
});

const cpl = (incoming: string): string => `<cpl xmlns="urn:ietf:params:xml:ns:cpl"><incoming>${incoming}</incoming></cpl>`;

test('proxy ordering="sequential" tries the locations one after another, each for the timeout', async () => {
  const h = await startProxy();
  try {
    const first = await uas(h, 'first', { status: null });
    const second = await uas(h, 'second');
    await putScript(h, 'alice', cpl(`<location url="${first.uri}" priority="1.0"><location url="${second.uri}" priority="0.5"><proxy ordering="sequential" timeout="1"/></location></location>`));
    assert.equal((await call(h, 'sip:alice@sipway.test')).status, 200);
    const a = await first.ua.request('INVITE');
    await first.ua.request('CANCEL');
    const b = await second.ua.request('INVITE');
    assert.ok(a.at + 900 < b.at, 'the second location rings after the first one timed out');
  } finally {
    await h.stop();
  }
});

test('a 3xx: followed by the server with recurse="yes", handed to the redirection output with recurse="no"', async () => {
  const h = await startProxy();
  try {
    const target = await uas(h, 'target');
    const mover = await uas(h, 'mover', { status: 302, headers: [['Contact', `<${target.uri}>`]] });
    await putScript(h, 'alice', cpl(`<location url="${mover.uri}"><proxy/></location>`));
    assert.equal((await call(h, 'sip:alice@sipway.test')).status, 200);
    await mover.ua.request('INVITE');
    await target.ua.request('INVITE');

    await putScript(h, 'alice', cpl(`<location url="${mover.uri}"><proxy recurse="no"><redirection><reject status="reject" reason="Moved, declined"/></redirection></proxy></location>`));
    const res = await call(h, 'sip:alice@sipway.test');
    assert.equal(res.status, 603);
    assert.equal(res.reason, 'Moved, declined');
    assert.equal(await invited(target.ua), false);
  } finally {
    await h.stop();
  }
});

test('proxy to a user of ours reaches their registered phones; lookup notfound takes its output', async () => {
  const h = await startProxy();
  try {
    const secretaryPhone = (await h.ua('secretary')).serve();
    await register(secretaryPhone, h.port, 'secretary');
    await putScript(h, 'alice', cpl('<lookup source="registration"><success><proxy/></success><notfound><location url="sip:secretary@sipway.test"><proxy/></location></notfound></lookup>'));
    assert.equal((await call(h, 'sip:alice@sipway.test')).status, 200);
    await secretaryPhone.request('INVITE');
  } finally {
    await h.stop();
  }
});
