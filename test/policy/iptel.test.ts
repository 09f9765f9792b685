import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gatewayCommand, routeCommand } from '../../src/cli/gateway.js';
import { NO_INTERNATIONAL } from '../../src/policy/default-policy.js';
import { applyConfigObject, defaultConfig } from '../../src/server/config.js';
import { ConfigError } from '../../src/util/errors.js';
import { runCli } from '../helpers/process.js';
import { openCdrStore, type CdrRecord } from '../../src/store/index.js';
import { startProxy, type ProxyHarness } from '../proxy/harness.js';
import { invite, outOfDialog, register, TestUa, type UasBehaviour } from '../proxy/ua.js';

/**
 * The default policy as the iptel.org example (docs/policy.md): real sockets on loopback, TestUas as PSTN
 * gateways, no policy file.
 */

interface Lab {
  h: ProxyHarness;
  gw: Record<string, TestUa>;
  stop(): Promise<void>;
}

/** Gateways (UAS with a behaviour each) first, then a server whose `gateways` config points at them. */
async function lab(
  gateways: Record<string, { group: string; behaviour?: UasBehaviour }>,
  settings: Record<string, unknown>,
  config: Record<string, unknown> = {},
): Promise<Lab> {
  const gw: Record<string, TestUa> = {};
  for (const [id, g] of Object.entries(gateways)) gw[id] = (await TestUa.udp(id)).serve(g.behaviour ?? {});
  const list = Object.entries(gateways).map(([id, g]) => ({ id, uri: `sip:127.0.0.1:${gw[id]!.port}`, group: g.group }));
  const h = await startProxy({}, { gateways: { gateways: list, ...settings }, ...config });
  return {
    h,
    gw,
    async stop() {
      for (const ua of Object.values(gw)) ua.close();
      await h.stop();
    },
  };
}

async function subscriber(h: ProxyHarness, username: string, groups: string[] = []): Promise<void> {
  await h.ts.server.subscribers.put({ username, domain: 'sipway.test', ha1Md5: '0'.repeat(32), ha1Sha256: '0'.repeat(64), groups, createdAt: 0 });
}

/** Calls `to` from `from` and returns the caller's final response. */
async function call(h: ProxyHarness, caller: TestUa, to: string, from = 'sip:alice@sipway.test'): Promise<{ status: number; reason: string }> {
  const inv = invite(caller, { to, from });
  caller.send(inv, h.port);
  return caller.response(inv.callId, undefined, 5000);
}

test('numbers go to the gateways of the longest matching prefix, with the number as user=phone user part', async () => {
  const l = await lab({ national: { group: 'national' }, berlin: { group: 'berlin' } }, {
    routes: [
      { prefix: '0', group: 'national', cost: 1 },
      { prefix: '030', group: 'berlin', cost: 2 },
    ],
  });
  try {
    const alice = await l.h.ua('alice');
    assert.equal((await call(l.h, alice, 'sip:030-1234567@sipway.test')).status, 200);
    const atBerlin = (await l.gw.berlin!.request('INVITE')).message;
    assert.equal(atBerlin.uri.toString(), `sip:0301234567@127.0.0.1:${l.gw.berlin!.port};user=phone`);

    assert.equal((await call(l.h, alice, 'tel:089-123')).status, 200);
    assert.equal((await l.gw.national!.request('INVITE')).message.uri.toString(), `sip:089123@127.0.0.1:${l.gw.national!.port};user=phone`);
    assert.ok(await l.gw.berlin!.nothing((m) => m.isRequest && m.method === 'INVITE'));
  } finally {
    await l.stop();
  }
});

test('failover: a gateway answering 503 passes the call to the next one; 486 from a gateway ends the search', async () => {
  const l = await lab({ gw1: { group: 'de', behaviour: { status: 503 } }, gw2: { group: 'de' } }, { routes: [{ prefix: '0', group: 'de', cost: 1 }] });
  try {
    const alice = await l.h.ua('alice');
    assert.equal((await call(l.h, alice, 'sip:0301234@sipway.test')).status, 200);
    const first = await l.gw.gw1!.request('INVITE');
    const second = await l.gw.gw2!.request('INVITE');
    assert.ok(first.at < second.at, 'gw1 (id order) is tried first');
    assert.equal(second.message.uri.toString(), `sip:0301234@127.0.0.1:${l.gw.gw2!.port};user=phone`);
  } finally {
    await l.stop();
  }

  const busy = await lab({ gw1: { group: 'de', behaviour: { status: 486 } }, gw2: { group: 'de' } }, { routes: [{ prefix: '0', group: 'de', cost: 1 }] });
  try {
    const alice = await busy.h.ua('alice');
    assert.equal((await call(busy.h, alice, 'sip:0301234@sipway.test')).status, 486);
    assert.ok(await busy.gw.gw2!.nothing((m) => m.isRequest && m.method === 'INVITE'), 'a busy callee is not tried at another gateway');
  } finally {
    await busy.stop();
  }
});

test('failover: every gateway failing gives the caller the best failure (§16.7: a 503 goes upstream as 500)', async () => {
  const l = await lab({ gw1: { group: 'de', behaviour: { status: 503 } }, gw2: { group: 'de', behaviour: { status: 503 } } }, { routes: [{ prefix: '', group: 'de', cost: 1 }] });
  try {
    const alice = await l.h.ua('alice');
    assert.equal((await call(l.h, alice, 'sip:0301234@sipway.test')).status, 500);
    await l.gw.gw1!.request('INVITE');
    await l.gw.gw2!.request('INVITE');
  } finally {
    await l.stop();
  }
});

test('failover: a 486 after an earlier gateway\'s 408 still ends the search', async () => {
  const l = await lab(
    { gw1: { group: 'de', behaviour: { status: 408 } }, gw2: { group: 'de', behaviour: { status: 486 } }, gw3: { group: 'de' } },
    { routes: [{ prefix: '', group: 'de', cost: 1 }] },
  );
  try {
    const alice = await l.h.ua('alice');
    // §16.7 step 6 picks the lowest 4xx of the two for the caller; what matters is that gw3 never rings.
    assert.ok([408, 486].includes((await call(l.h, alice, 'sip:0301234@sipway.test')).status));
    await l.gw.gw2!.request('INVITE');
    assert.ok(await l.gw.gw3!.nothing((m) => m.isRequest && m.method === 'INVITE'));
  } finally {
    await l.stop();
  }
});

test('international numbers: 403 without the privilege group, through the gateway with it', async () => {
  const l = await lab({ world: { group: 'world' } }, { routes: [{ prefix: '', group: 'world', cost: 1 }], nationalExceptions: ['+49', '0049'] });
  try {
    await subscriber(l.h, 'alice');
    await subscriber(l.h, 'bob', ['intl']);
    const caller = await l.h.ua('caller');
    const refused = await call(l.h, caller, 'sip:+1-212-5550100@sipway.test;user=phone');
    assert.deepEqual([refused.status, refused.reason], [403, NO_INTERNATIONAL]);
    assert.equal((await call(l.h, caller, 'sip:004930123@sipway.test')).status, 200, 'a national exception needs no privilege');
    assert.equal((await l.gw.world!.request('INVITE')).message.uri.toString(), `sip:004930123@127.0.0.1:${l.gw.world!.port};user=phone`);

    assert.equal((await call(l.h, caller, 'sip:+1-212-5550100@sipway.test;user=phone', 'sip:bob@sipway.test')).status, 200);
    assert.equal((await l.gw.world!.request('INVITE')).message.uri.toString(), `sip:+12125550100@127.0.0.1:${l.gw.world!.port};user=phone`);
  } finally {
    await l.stop();
  }
});

test('gateway calls need an authenticated caller even with proxy.authenticateCallers off', async () => {
  const l = await lab({ gw: { group: 'de' } }, { routes: [{ prefix: '0', group: 'de', cost: 1 }] }, { auth: { register: true } });
  try {
    const alice = await l.h.ua('alice');
    const res = await call(l.h, alice, 'sip:0301234@sipway.test');
    assert.equal(res.status, 407);
    assert.ok(await l.gw.gw!.nothing((m) => m.isRequest));
    // Calls to our users are not challenged with authenticateCallers off: nobody is there, 404.
    assert.equal((await call(l.h, alice, 'sip:nobody@sipway.test')).status, 404);
  } finally {
    await l.stop();
  }
});

test('MESSAGE to a number goes to the SMS gateway; without one, to the local user of that name', async () => {
  const sms = (await TestUa.udp('sms')).serve();
  const l = await lab({ gw: { group: 'de' } }, { routes: [{ prefix: '', group: 'de', cost: 1 }], smsGateway: `sip:127.0.0.1:${sms.port}` });
  try {
    const alice = await l.h.ua('alice');
    const m = outOfDialog(alice, 'MESSAGE', 'sip:+49170123@sipway.test');
    alice.send(m, l.h.port);
    assert.equal((await alice.response(m.callId)).status, 200);
    assert.equal((await sms.request('MESSAGE')).message.uri.toString(), `sip:+49170123@127.0.0.1:${sms.port};user=phone`);
    assert.ok(await l.gw.gw!.nothing((x) => x.isRequest), 'a MESSAGE is not a call');
  } finally {
    sms.close();
    await l.stop();
  }

  const plain = await lab({}, {});
  try {
    const alice = await plain.h.ua('alice');
    const m = outOfDialog(alice, 'MESSAGE', 'sip:+49170123@sipway.test');
    alice.send(m, plain.h.port);
    assert.equal((await alice.response(m.callId)).status, 404);
    // No gateways: a numeric user is a user like any other.
    const ext = (await plain.h.ua('ext')).serve();
    await register(ext, plain.h.port, '1234');
    assert.equal((await call(plain.h, alice, 'sip:1234@sipway.test')).status, 200);
    assert.equal((await ext.request('INVITE')).message.uri.toString(), ext.contact('1234'));
  } finally {
    await plain.stop();
  }
});

test('a call to a local user who is not online is a missed call in the CDRs', async () => {
  const l = await lab({ gw: { group: 'de' } }, { routes: [{ prefix: '0', group: 'de', cost: 1 }] });
  try {
    await subscriber(l.h, 'carol');
    const alice = await l.h.ua('alice');
    const inv = invite(alice, { to: 'sip:carol@sipway.test' });
    alice.send(inv, l.h.port);
    // alice did not authenticate: she is not told carol exists (404), and the record is a missed call all the same.
    assert.equal((await alice.response(inv.callId)).status, 404);
    const cdr = openCdrStore(l.h.ts.dataDir);
    try {
      const missed = await poll(() => cdr.cdrs.query({ type: 'missed', limit: 5 }));
      assert.deepEqual(
        missed.map((r) => [r.callId, r.callee, r.status]),
        [[inv.callId, 'sip:carol@sipway.test', 404]],
      );
    } finally {
      cdr.close();
    }
  } finally {
    await l.stop();
  }
});

test('gateways and routes added with the CLI are used after reloadPolicy(), without a restart', async () => {
  const late = (await TestUa.udp('late')).serve();
  const l = await lab({}, {});
  try {
    const alice = await l.h.ua('alice');
    assert.equal((await call(l.h, alice, 'sip:07123@sipway.test')).status, 404, 'no gateways yet: a local user that does not exist');
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t) };
    const store = ['--data', l.h.ts.dataDir];
    assert.equal(await gatewayCommand(['add', 'late', `sip:127.0.0.1:${late.port}`, '--group', 'late', ...store], io), 0);
    assert.equal(await routeCommand(['add', '07', 'late', '--cost', '1', ...store], io), 0);
    assert.equal((await call(l.h, alice, 'sip:07123@sipway.test')).status, 404, 'the running dialplan is unchanged until a reload');

    assert.deepEqual(await l.h.ts.server.reloadPolicy(), { ok: true });
    assert.equal((await call(l.h, alice, 'sip:07123@sipway.test')).status, 200);
    assert.equal((await late.request('INVITE')).message.uri.toString(), `sip:07123@127.0.0.1:${late.port};user=phone`);
  } finally {
    late.close();
    await l.stop();
  }
});

test("config: the 'gateways' section is parsed with errors naming the field, and defaults to no gateways", () => {
  assert.deepEqual(defaultConfig().gateways.gateways, []);
  const c = applyConfigObject(defaultConfig(), { gateways: { routes: [{ prefix: '+49', group: 'de', cost: 1 }], internationalGroup: 'world' } });
  assert.deepEqual(c.gateways.routes, [{ prefix: '+49', group: 'de', cost: 1 }]);
  assert.equal(c.gateways.internationalGroup, 'world');
  assert.throws(
    () => applyConfigObject(defaultConfig(), { gateways: { gateways: [{ id: 'x', uri: 'sip:1@gw.test', group: 'g' }] } }),
    (e: unknown) => e instanceof ConfigError && e.message.includes('gateways.gateways[0]'),
  );
});

test('sipway gateway and sipway route are commands of the CLI, with help', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-iptel-cli-'));
  try {
    const add = runCli(['gateway', 'add', 'gw1', 'sip:192.0.2.1', '--group', 'de', '--data', dir]);
    assert.equal(add.status, 0, add.stderr);
    const route = runCli(['route', 'add', '+49', 'de', '--cost', '1', '--data', dir]);
    assert.equal(route.status, 0, route.stderr);
    assert.equal(runCli(['gateway', 'list', '--data', dir]).stdout, 'gw1\tsip:192.0.2.1\tde\t-\tenabled\n');
    assert.equal(runCli(['route', 'list', '--data', dir]).stdout, '+49\tde\t1\n');
    assert.match(runCli(['help', 'route']).stdout, /^Usage: sipway route/);
    assert.match(runCli(['--help']).stdout, /\n  gateway +add, delete/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The first non-empty answer: CDRs are written after the response is sent. */
async function poll(read: () => Promise<CdrRecord[]>): Promise<CdrRecord[]> {
  for (let i = 0; i < 100; i++) {
    const rows = await read();
    if (rows.length > 0) return rows;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return [];
}

test('a reload reads the config file\'s gateways again; a config file that no longer parses keeps them', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-gw-reload-'));
  const gw1 = (await TestUa.udp('gw1')).serve();
  const gw2 = (await TestUa.udp('gw2')).serve();
  const configFile = path.join(dir, 'sipway.json');
  const gateways = (ua: TestUa) => ({ gateways: [{ id: ua.name, uri: `sip:127.0.0.1:${ua.port}`, group: 'de' }], routes: [{ prefix: '0', group: 'de', cost: 1 }] });
  const { writeFileSync } = await import('node:fs');
  writeFileSync(configFile, JSON.stringify({ gateways: gateways(gw1) }));
  const h = await startProxy({}, { configFile });
  try {
    const alice = await h.ua('alice');
    assert.equal((await call(h, alice, 'sip:0301234@sipway.test')).status, 200);
    await gw1.request('INVITE');

    writeFileSync(configFile, JSON.stringify({ gateways: gateways(gw2) }));
    assert.deepEqual(await h.ts.server.reloadPolicy(), { ok: true });
    assert.equal((await call(h, alice, 'sip:0301234@sipway.test')).status, 200);
    await gw2.request('INVITE');
    assert.ok(await gw1.nothing((m) => m.isRequest && m.method === 'INVITE'));

    writeFileSync(configFile, JSON.stringify({ gateways: { routes: [{ prefix: 'x' }] } }));
    const failed = await h.ts.server.reloadPolicy();
    assert.equal(failed.ok, false);
    assert.match(!failed.ok ? failed.error : '', /gateways not reloaded.*gateways\.routes/);
    assert.equal((await call(h, alice, 'sip:0301234@sipway.test')).status, 200);
    await gw2.request('INVITE');
  } finally {
    gw1.close();
    gw2.close();
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
