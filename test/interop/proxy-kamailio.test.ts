/**
 * Kamailio 5.6 in front of sipway: SIPp UAC -> Kamailio (test/interop/kamailio/relay.cfg: record_route, t_relay to
 * sipway) -> sipway -> SIPp UAS registered at sipway. Both proxies record-route, so the callee sees two
 * Record-Route values and the caller's BYE carries a two-entry route set, Kamailio first (RFC 3261 §16.6 step 4,
 * §12.2.1.1). A first test checks Kamailio with our config alone (no sipway), so that a broken peer is told apart
 * from a sipway failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, startCliServer, freePort, requireTool, skipWithout } from '../helpers/process.js';
import { runSipp, runSippAsync, type SippResult } from '../helpers/sipp.js';
import { startKamailio, type RunningKamailio } from '../helpers/kamailio.js';

const DOMAIN = 'sipway.test';
const ALICE_PW = 'alice-secret';
const BOB_PW = 'bob-secret';
const CALLS = 5;
const CALLER = ['-s', 'bob', '-key', 'callee_domain', DOMAIN, '-key', 'caller', 'alice', '-key', 'caller_domain', DOMAIN];

interface TracedMessage {
  direction: 'sent' | 'received';
  text: string;
}

/** The messages of a SIPp -trace_msg log in `dir`, in order. */
function traced(dir: string, scenario: string): TracedMessage[] {
  const file = readdirSync(dir).find((f) => f.startsWith(`${scenario}_`) && f.endsWith('_messages.log'));
  if (!file) return [];
  return readFileSync(path.join(dir, file), 'utf8')
    .split(/^-{20,} .*$/m)
    .map((block) => /^\s*UDP message (sent|received)[^\n]*\n\n([\s\S]*)$/.exec(block))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ direction: m[1] === 'sent' ? 'sent' : 'received', text: m[2]!.trim() }));
}

/** Every value of a header given by its names (long and compact), from repeated lines and comma lists. */
function headerValues(message: string, ...names: string[]): string[] {
  const head = message.split(/\r?\n\r?\n/)[0]!;
  const re = new RegExp(`^(?:${names.join('|')})\\s*:\\s*(.*)$`, 'gim');
  return [...head.matchAll(re)].flatMap((m) => m[1]!.split(/,(?=\s*(?:<|SIP\/))/i).map((v) => v.trim()));
}

function first(messages: TracedMessage[], direction: TracedMessage['direction'], startLine: RegExp): string | undefined {
  return messages.find((m) => m.direction === direction && startLine.test(m.text))?.text;
}

function report(label: string, r: SippResult, dir: string, kamailio: RunningKamailio, sipwayLog = ''): string {
  const traces = readdirSync(dir)
    .filter((f) => f.endsWith('_messages.log') || f.endsWith('_errors.log'))
    .map((f) => `--- ${f} (tail) ---\n${readFileSync(path.join(dir, f), 'utf8').slice(-5000)}`);
  return [
    `${label}: ${r.successful} successful, ${r.failed} failed, SIPp exit ${r.status}`,
    r.stderr.slice(-1000),
    ...traces,
    `--- kamailio (tail) ---\n${kamailio.output().slice(-4000)}`,
    ...(sipwayLog ? [`--- sipway (tail) ---\n${sipwayLog.slice(-3000)}`] : []),
  ].join('\n');
}

function subdir(work: string, name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  return dir;
}

async function withWork(name: string, body: (work: string) => Promise<void>): Promise<void> {
  requireTool('sipp');
  requireTool('kamailio');
  const work = mkdtempSync(path.join(os.tmpdir(), `sipway-${name}-`));
  try {
    await body(work);
    rmSync(work, { recursive: true, force: true });
  } catch (e) {
    throw new Error(`${(e as Error).message}\n(traces kept in ${work})`, { cause: e });
  }
}

test('Kamailio with relay.cfg alone: answers OPTIONS, relays SIPp calls to a SIPp UAS with its Record-Route (peer check)', { timeout: 60000, skip: skipWithout('sipp', 'kamailio') }, async () => {
  await withWork('kamailio-alone', async (work) => {
    const uasPort = await freePort();
    const kamailio = await startKamailio('relay.cfg', path.join(work, 'kamailio'), `sip:127.0.0.1:${uasPort}`);
    try {
      const uasDir = subdir(work, 'uas');
      const uacDir = subdir(work, 'uac');
      const callee = runSippAsync('uas-call.xml', kamailio.port, uasDir, ['-p', String(uasPort), '-s', 'bob', '-m', '3', '-timeout', '20s', '-trace_msg'], 30000);
      const caller = runSippAsync('uac-call.xml', kamailio.port, uacDir, [...CALLER, '-p', String(await freePort()), '-m', '3', '-r', '5', '-timeout', '20s', '-trace_msg'], 30000);
      const [c, u] = await Promise.all([caller, callee]);
      assert.ok(c.successful === 3 && c.failed === 0, report('UAC', c, uacDir, kamailio));
      assert.ok(u.successful === 3 && u.failed === 0, report('UAS', u, uasDir, kamailio));
      const invite = first(traced(uasDir, 'uas-call'), 'received', /^INVITE /);
      assert.equal(headerValues(invite ?? '', 'Record-Route').length, 1, `one Record-Route (Kamailio's):\n${invite}`);
    } finally {
      await kamailio.stop();
    }
  });
});

test('SIPp UAC -> Kamailio -> sipway -> SIPp UAS: both record-route, the BYE follows the route set through both', { timeout: 90000, skip: skipWithout('sipp', 'kamailio') }, async () => {
  await withWork('proxy-kamailio', async (work) => {
    const data = path.join(work, 'data');
    for (const [user, pw] of [['alice', ALICE_PW], ['bob', BOB_PW]] as const) {
      const r = runCli(['user', 'add', `${user}@${DOMAIN}`, '--password', pw, '--data', data]);
      assert.equal(r.status, 0, r.stderr);
    }
    const sipwayPort = await freePort();
    const sipway = await startCliServer(['--listen', `udp:127.0.0.1:${sipwayPort}`, '--domain', DOMAIN, '--data', data, '--log-level', 'info']);
    let kamailio: RunningKamailio | undefined;
    try {
      kamailio = await startKamailio('relay.cfg', path.join(work, 'kamailio'), `sip:127.0.0.1:${sipwayPort}`);
      // bob registers at sipway directly, from the port his UAS then listens on.
      const bobPort = await freePort();
      const regDir = subdir(work, 'register');
      const injection = path.join(regDir, 'bob.csv');
      writeFileSync(injection, `SEQUENTIAL\nbob;${DOMAIN};[authentication username=bob password=${BOB_PW}]\n`);
      const reg = runSipp('register-auth-uac.xml', sipwayPort, regDir, ['-inf', injection, '-auth_uri', DOMAIN, '-m', '1', '-p', String(bobPort), '-timeout', '10s', '-trace_msg'], 20000);
      assert.equal(reg.successful, 1, report('REGISTER bob', reg, regDir, kamailio, sipway.output()));

      const uasDir = subdir(work, 'uas');
      const uacDir = subdir(work, 'uac');
      const callee = runSippAsync('uas-call.xml', sipwayPort, uasDir, ['-p', String(bobPort), '-s', 'bob', '-m', String(CALLS), '-timeout', '30s', '-trace_msg', '-trace_err'], 40000);
      // alice sends to Kamailio; sipway's 407 comes back through it and her credentials go forward through it.
      const caller = runSippAsync(
        'uac-call-auth.xml',
        kamailio.port,
        uacDir,
        [...CALLER, '-au', 'alice', '-ap', ALICE_PW, '-auth_uri', `bob@${DOMAIN}`, '-p', String(await freePort()), '-m', String(CALLS), '-r', '5', '-timeout', '30s', '-trace_msg', '-trace_err'],
        40000,
      );
      const [c, u] = await Promise.all([caller, callee]);
      assert.ok(c.successful === CALLS && c.failed === 0, report('UAC (uac-call-auth.xml via Kamailio)', c, uacDir, kamailio, sipway.output()));
      assert.ok(u.successful === CALLS && u.failed === 0, report('UAS (uas-call.xml behind sipway)', u, uasDir, kamailio, sipway.output()));

      const kam = `127.0.0.1:${kamailio.port}`;
      const sip = `127.0.0.1:${sipwayPort}`;
      const atUas = traced(uasDir, 'uas-call');
      const invite = first(atUas, 'received', /^INVITE /) ?? '';
      const rr = headerValues(invite, 'Record-Route');
      assert.ok(rr.length >= 2, `the callee's INVITE has 2+ Record-Route values (sipway's, then Kamailio's):\n${invite}`);
      assert.ok(rr[0]!.includes(sip), `topmost Record-Route is sipway's (${sip}): ${rr.join(' | ')}`);
      assert.ok(rr[rr.length - 1]!.includes(kam), `bottom Record-Route is Kamailio's (${kam}): ${rr.join(' | ')}`);

      const bye = first(traced(uacDir, 'uac-call-auth'), 'sent', /^BYE /) ?? '';
      const route = headerValues(bye, 'Route');
      assert.ok(route.length >= 2 && route[0]!.includes(kam) && route[route.length - 1]!.includes(sip), `the caller's BYE routes via Kamailio first, then sipway:\n${bye}`);

      const byeAtUas = first(atUas, 'received', /^BYE /) ?? '';
      const vias = headerValues(byeAtUas, 'Via', 'v');
      assert.ok(vias.length >= 3 && vias[0]!.includes(sip) && vias[1]!.includes(kam), `the callee's BYE came through sipway, which got it from Kamailio:\n${byeAtUas}`);
      assert.equal(headerValues(byeAtUas, 'Route').length, 0, `both proxies consumed their Route entries:\n${byeAtUas}`);
      const kamByes = kamailio.output().match(/relay: in BYE /g)?.length ?? 0;
      assert.ok(kamByes >= CALLS, `Kamailio relayed every BYE (${kamByes} of ${CALLS})`);
    } finally {
      await kamailio?.stop();
      await sipway.stop();
    }
  });
});
