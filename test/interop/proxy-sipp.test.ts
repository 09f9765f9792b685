/**
 * SIPp on both ends of the proxy, through `sipway serve` as a child process with users created by the CLI. The
 * callee's SIPp first registers (digest) from the very port its UAS scenario then listens on, so the proxy's
 * location lookup leads to it. Counted by SIPp's own statistics on both sides; on failure the message names the
 * counters, SIPp's stderr, the tail of its message trace (-trace_msg) and sipway's log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, startCliServer, freePort, requireTool, skipWithout, type RunningServer } from '../helpers/process.js';
import { runSipp, runSippAsync, type SippResult } from '../helpers/sipp.js';

const DOMAIN = 'sipway.test';
const USERS = { alice: 'alice-secret', bob: 'bob-secret' } as const;

interface Sipway {
  port: number;
  server: RunningServer;
}

async function startSipway(work: string): Promise<Sipway> {
  const data = path.join(work, 'data');
  for (const [user, password] of Object.entries(USERS)) {
    const r = runCli(['user', 'add', `${user}@${DOMAIN}`, '--password', password, '--data', data]);
    assert.equal(r.status, 0, r.stderr);
  }
  const port = await freePort();
  const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', data, '--log-level', 'info']);
  return { port, server };
}

/** The callee's SIPp registers `user` (401 + digest) from `fromPort`, whose Contact the UAS scenario then serves. */
function registerFrom(work: string, sipway: Sipway, user: keyof typeof USERS, fromPort: number): void {
  const dir = path.join(work, `register-${fromPort}`);
  mkdirSync(dir);
  const injection = path.join(dir, 'user.csv');
  writeFileSync(injection, `SEQUENTIAL\n${user};${DOMAIN};[authentication username=${user} password=${USERS[user]}]\n`);
  const r = runSipp('register-auth-uac.xml', sipway.port, dir, ['-inf', injection, '-auth_uri', DOMAIN, '-m', '1', '-p', String(fromPort), '-timeout', '10s', '-trace_msg'], 20000);
  assert.equal(r.successful, 1, `REGISTER of ${user} from 127.0.0.1:${fromPort}: ${report(r, dir, sipway)}`);
}

/** Keys of the uac-*.xml scenarios: alice@DOMAIN calls bob@DOMAIN. */
const CALLER = ['-s', 'bob', '-key', 'callee_domain', DOMAIN, '-key', 'caller', 'alice', '-key', 'caller_domain', DOMAIN];
/** alice answers the proxy's 407 (the digest uri is the Request-URI). */
const CALLER_AUTH = [...CALLER, '-au', 'alice', '-ap', USERS.alice, '-auth_uri', `bob@${DOMAIN}`];

/** A UAS scenario on `port` (bob's registered Contact), stopping after `calls` calls or `seconds`. */
function uas(scenario: string, sipway: Sipway, dir: string, port: number, calls: number, seconds: number): Promise<SippResult> {
  return runSippAsync(scenario, sipway.port, dir, ['-p', String(port), '-s', 'bob', '-m', String(calls), '-timeout', `${seconds}s`, '-trace_msg', '-trace_err'], (seconds + 10) * 1000);
}

async function uac(scenario: string, sipway: Sipway, dir: string, args: string[], calls: number, rate: number, seconds: number): Promise<SippResult> {
  const port = await freePort();
  return runSippAsync(scenario, sipway.port, dir, [...args, '-p', String(port), '-m', String(calls), '-r', String(rate), '-l', String(rate * 2), '-timeout', `${seconds}s`, '-trace_msg', '-trace_err'], (seconds + 10) * 1000);
}

function subdir(work: string, name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  return dir;
}

/** Counters, SIPp's stderr, the tail of its message and error traces, and sipway's log tail. */
function report(r: SippResult, dir: string, sipway: Sipway): string {
  const traces = readdirSync(dir)
    .filter((f) => f.endsWith('_messages.log') || f.endsWith('_errors.log'))
    .map((f) => `--- ${f} (tail) ---\n${readFileSync(path.join(dir, f), 'utf8').slice(-5000)}`);
  return [`${r.successful} successful, ${r.failed} failed, SIPp exit ${r.status}`, r.stderr.slice(-1000), ...traces, `--- sipway (tail) ---\n${sipway.server.output().slice(-3000)}`].join('\n');
}

function assertAll(label: string, r: SippResult, calls: number, dir: string, sipway: Sipway): void {
  assert.ok(r.successful === calls && r.failed === 0, `${label}: expected ${calls} successful calls, 0 failed; ${report(r, dir, sipway)}`);
}

/** A temp dir kept when the test fails (its SIPp traces are the evidence), removed when it passes. */
async function inWorkDir(name: string, body: (work: string) => Promise<void>): Promise<void> {
  requireTool('sipp');
  const work = mkdtempSync(path.join(os.tmpdir(), `sipway-${name}-`));
  try {
    await body(work);
    rmSync(work, { recursive: true, force: true });
  } catch (e) {
    throw new Error(`${(e as Error).message}\n(SIPp traces kept in ${work})`, { cause: e });
  }
}

/** A registered SIPp UAS (bob) and an authenticating SIPp UAC run `calls` calls through sipway; both must succeed for every call. */
async function uacToRegisteredUas(name: string, uasScenario: string, uacScenario: string, calls: number, rate: number, timeoutS: number): Promise<void> {
  await inWorkDir(name, async (work) => {
    const sipway = await startSipway(work);
    try {
      const bobPort = await freePort();
      registerFrom(work, sipway, 'bob', bobPort);
      const uasDir = subdir(work, 'uas');
      const uacDir = subdir(work, 'uac');
      const callee = uas(uasScenario, sipway, uasDir, bobPort, calls, timeoutS);
      const caller = uac(uacScenario, sipway, uacDir, CALLER_AUTH, calls, rate, timeoutS);
      const [c, u] = await Promise.all([caller, callee]);
      assertAll(`UAC (${uacScenario})`, c, calls, uacDir, sipway);
      assertAll(`UAS (${uasScenario})`, u, calls, uasDir, sipway);
    } finally {
      await sipway.server.stop();
    }
  });
}

test('SIPp: 1,000 calls with proxy authentication, UAC -> sipway -> registered UAS, none failed', { timeout: 180000, skip: skipWithout('sipp') }, async () => {
  await uacToRegisteredUas('proxy-sipp-calls', 'uas-call.xml', 'uac-call-auth.xml', 1000, 200, 60);
});

test('SIPp: CANCEL while ringing reaches the callee, which answers 487; the caller gets 200 and 487', { timeout: 60000, skip: skipWithout('sipp') }, async () => {
  await uacToRegisteredUas('proxy-sipp-cancel', 'uas-cancel.xml', 'uac-cancel-auth.xml', 20, 10, 30);
});

test('SIPp: forking to two contacts of bob; one answers, the proxy cancels the other (487, ACKed)', { timeout: 60000, skip: skipWithout('sipp') }, async () => {
  await inWorkDir('proxy-sipp-fork', async (work) => {
    const sipway = await startSipway(work);
    try {
      const answering = await freePort();
      const ringing = await freePort();
      registerFrom(work, sipway, 'bob', answering);
      registerFrom(work, sipway, 'bob', ringing);
      const loc = runCli(['location', `bob@${DOMAIN}`, '--data', path.join(work, 'data'), '--json']);
      assert.equal((JSON.parse(loc.stdout) as unknown[]).length, 2, `bob has two bindings:\n${loc.stdout}${loc.stderr}`);
      const answerDir = subdir(work, 'uas-answer');
      const ringDir = subdir(work, 'uas-ring');
      const uacDir = subdir(work, 'uac');
      const answerer = uas('uas-call.xml', sipway, answerDir, answering, 10, 30);
      const ringer = uas('uas-cancel.xml', sipway, ringDir, ringing, 10, 30);
      const caller = uac('uac-call-auth.xml', sipway, uacDir, CALLER_AUTH, 10, 2, 30);
      const [c, a, r] = await Promise.all([caller, answerer, ringer]);
      assertAll('UAC (uac-call-auth.xml)', c, 10, uacDir, sipway);
      assertAll('answering UAS (uas-call.xml)', a, 10, answerDir, sipway);
      assertAll('ringing UAS, cancelled (uas-cancel.xml)', r, 10, ringDir, sipway);
    } finally {
      await sipway.server.stop();
    }
  });
});
