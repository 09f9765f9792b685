/**
 * The edge-proxy lab of issue 13: sipway on a "public" network 10.213.0.0/24 (host `srv`, 10.213.0.1), phones there
 * (10.213.0.11 and up), and a NAT router (10.213.0.254 outside, 192.168.77.1 inside) masquerading the private network
 * 192.168.77.0/24 where the phones behind NAT live (192.168.77.10 and up). Public hosts have no route to the private
 * network: a request sent to a private Contact fails with ENETUNREACH, as it does on the Internet.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { labOrSkip, type NetHost, type NetLab } from '../helpers/netns.js';
import { runCli, startCliServer, type RunningServer } from '../helpers/process.js';
import { Baresip, type BaresipEvent } from '../helpers/baresip.js';
import { LinphonecNs } from '../helpers/linphonec-ns.js';
import { JsSipPhone, type JsSipEvent } from '../helpers/jssip-browser.js';
import { createTestCa, type TestCa } from '../helpers/certs.js';

export const DOMAIN = 'sipway.test';
export const SERVER = '10.213.0.1';
/** sipway's host's address on the second network (tests of several listeners). */
export const SECOND_SERVER = '10.214.0.1';
export const NAT_OUTSIDE = '10.213.0.254';
export const NAT_INSIDE = '192.168.77.1';
/** Ports of sipway's listeners in the lab (the namespace is private, so fixed ports are safe). */
export const PORTS = { udp: 5060, tcp: 5060, tls: 5061, ws: 8080, wss: 8443 } as const;
/** Bounds every single wait of a call step. */
export const STEP_MS = 8000;

export interface EdgeLab {
  lab: NetLab;
  srv: NetHost;
  work: string;
  /** Public host `name` at 10.213.0.`n`. */
  publicHost(name: string, n: number): NetHost;
  /** Host `name` at 192.168.77.`n` behind the NAT router (made on first use). */
  natHost(name: string, n: number): NetHost;
  /** Host `name` at 10.214.0.`n` on the second network, which only sipway's host (10.214.0.1) shares. */
  secondHost(name: string, n: number): NetHost;
}

/**
 * The lab's public network and sipway's host; with `secondNetwork`, also a network 10.214.0.0/24 where sipway's host
 * has a second address, SECOND_SERVER. Undefined when the test was skipped (no root / no `ip netns`).
 */
export function edgeLab(t: TestContext, work: string, secondNetwork = false): EdgeLab | undefined {
  const lab = labOrSkip(t);
  if (!lab) return undefined;
  lab.network('public');
  if (secondNetwork) lab.network('second');
  const srv = lab.host('srv', [{ network: 'public', address: SERVER }, ...(secondNetwork ? [{ network: 'second', address: SECOND_SERVER }] : [])]);
  let natReady = false;
  return {
    lab,
    srv,
    work,
    publicHost: (name, n) => lab.host(name, [{ network: 'public', address: `10.213.0.${n}` }]),
    secondHost: (name, n) => lab.host(name, [{ network: 'second', address: `10.214.0.${n}` }]),
    natHost: (name, n) => {
      if (!natReady) {
        lab.network('private');
        lab.nat('nat', { network: 'public', address: NAT_OUTSIDE }, { network: 'private', address: NAT_INSIDE });
        natReady = true;
      }
      return lab.host(name, [{ network: 'private', address: `192.168.77.${n}` }], NAT_INSIDE);
    },
  };
}

export interface SipwayInLab {
  server: RunningServer;
  data: string;
  /** The CA that signed sipway's certificate (when started with TLS). */
  ca?: TestCa;
}

/**
 * Starts `sipway serve` in `host` with users `<name>@sipway.test` (password `<name>-pw`), listening on `listen`
 * (default UDP, TCP, TLS, WS and WSS on the host's main address). TLS uses a certificate from a fresh test CA, which
 * sipway also trusts for its own outbound TLS (tls.ca).
 */
export async function startSipway(el: EdgeLab, users: string[], options: { host?: NetHost; listen?: string[]; extraArgs?: string[] } = {}): Promise<SipwayInLab> {
  const host = options.host ?? el.srv;
  const data = path.join(el.work, 'data');
  for (const user of users) {
    const r = runCli(['user', 'add', `${user}@${DOMAIN}`, '--password', `${user}-pw`, '--data', data]);
    assert.equal(r.status, 0, r.stderr);
  }
  // libre 1.1 (baresip 1.0) gives up on a challenge set offering any algorithm but MD5.
  const settings: Record<string, unknown> = { auth: { algorithms: ['MD5'] } };
  const listen = options.listen ?? (['udp', 'tcp', 'tls', 'ws', 'wss'] as const).map((t) => `${t}:${host.address}:${PORTS[t]}`);
  let ca: TestCa | undefined;
  if (listen.some((l) => l.startsWith('tls:') || l.startsWith('wss:'))) {
    ca = createTestCa(path.join(el.work, 'ca'));
    const cert = ca.issue('sipway', [DOMAIN, ...host.addresses]);
    // The test CA is trusted for sipway's own outbound TLS too (tls.ca, docs/transports.md#tls-settings).
    settings.tls = { cert: cert.certFile, key: cert.keyFile, ca: ca.caFile };
  }
  const config = path.join(el.work, 'sipway.json');
  writeFileSync(config, JSON.stringify(settings));
  const args = ['--config', config, '--domain', DOMAIN, '--data', data, '--log-level', 'debug', ...listen.flatMap((l) => ['--listen', l])];
  const server = await startCliServer([...args, ...(options.extraArgs ?? [])], 20000, { host });
  return { server, data, ca };
}

/** Waits (bounded) until sipway's location service holds a binding of `user` whose source matches `source`. */
export async function registered(data: string, user: string, source: RegExp, timeoutMs = STEP_MS): Promise<{ contact: string; source: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const loc = runCli(['location', `${user}@${DOMAIN}`, '--data', data, '--json']);
    const rows = loc.status === 0 ? (JSON.parse(loc.stdout) as Array<{ aor: string; contact: string; source: string }>) : [];
    const row = rows.find((r) => source.test(r.source));
    if (row) return row;
    if (Date.now() > deadline) assert.fail(`sipway location lacks ${user} from ${source} within ${timeoutMs} ms:\n${loc.stdout}${loc.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface PhoneOptions {
  /** Transport of its account and outbound proxy (default udp). */
  transport?: 'udp' | 'tcp' | 'tls';
  /** Media a browser accepts (ICE, DTLS-SRTP, rtcp-mux). */
  webrtc?: boolean;
  /** The sipway address it uses as outbound proxy (default SERVER). */
  proxy?: string;
}

/** A baresip on `host` registered at sipway (digest auth, sipway as outbound proxy), answering calls at once. */
export async function phone(el: EdgeLab, sipway: SipwayInLab, host: NetHost, user: string, options: PhoneOptions = {}): Promise<Baresip> {
  const transport = options.transport ?? 'udp';
  const port = PORTS[transport];
  return Baresip.start(
    user,
    path.join(el.work, user),
    { user, domain: DOMAIN, password: `${user}-pw`, outboundProxy: `sip:${options.proxy ?? SERVER}:${port};transport=${transport}`, autoAnswer: true, regint: 600, transport },
    10000,
    { host, caFile: sipway.ca?.caFile, webrtc: options.webrtc },
  );
}

/** Runs `body`; a failure carries every agent's SIP trace and sipway's log; always stops the agents. */
export async function withTranscript(agents: Array<{ name: string; output(): string; stop(): Promise<void> }>, server: RunningServer, body: () => Promise<void>): Promise<void> {
  try {
    await explained(agents, server, body);
  } finally {
    for (const a of agents) await a.stop();
  }
}

/** Runs `body`; a failure carries every agent's SIP trace and sipway's log (the tails). */
export async function explained(agents: Array<{ name: string; output(): string }>, server: RunningServer, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const parts = [...agents.map((a) => `--- ${a.name} ---\n${a.output().slice(-7000)}`), `--- sipway (tail) ---\n${server.output().slice(-7000)}`];
    throw new Error(`${(e as Error).message}\n${parts.join('\n')}`, { cause: e });
  }
}

/** `caller` dials `target`; `callee` answers on its own (answermode=auto); both see the call established. */
export async function establish(caller: Baresip, callee: Baresip, target: string): Promise<void> {
  const callerBefore = caller.events.length;
  const calleeBefore = callee.events.length;
  const dial = await caller.command('dial', target);
  assert.ok(dial.ok, `${caller.name}: dial ${target} refused: ${dial.data}`);
  await establishedBy(caller, callerBefore);
  await establishedBy(callee, calleeBefore);
}

/** Waits for a CALL_ESTABLISHED event of `b` after its first `sinceEvents` events. */
export async function establishedBy(b: Baresip, sinceEvents: number): Promise<void> {
  await b.waitForEvent('CALL_ESTABLISHED', STEP_MS, (e) => b.events.indexOf(e) >= sinceEvents);
}

/** `from` hangs up: its BYE must get a 200 (the far end's answer, relayed by sipway) within STEP_MS. */
export async function hangUpBy(from: Baresip): Promise<void> {
  const fromLog = from.output().length;
  const r = await from.command('hangup');
  assert.ok(r.ok, `${from.name}: hangup refused: ${r.data}`);
  await from.waitForOutput(/SIP\/2\.0 200 [^]*?CSeq: \d+ BYE/, STEP_MS, fromLog);
}

/**
 * `from` hangs up: its BYE must get a 200 (the far end's answer relayed by sipway) and `to` must see the call
 * closed by that BYE, both within STEP_MS.
 */
export async function hangUp(from: Baresip, to: Baresip): Promise<void> {
  await hangUpCall(baresipPhone(from), baresipPhone(to));
}

/**
 * Runs `body` in a fresh edge lab with a temporary work directory (skipped where labs cannot be made); always
 * destroys the lab and the directory.
 */
export async function inEdgeLab(t: TestContext, body: (el: EdgeLab) => Promise<void>, secondNetwork = false): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-edge-'));
  let el: EdgeLab | undefined;
  try {
    el = edgeLab(t, work, secondNetwork);
    if (el) await body(el);
  } finally {
    await el?.lab.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `holder` puts the call on hold and takes it back (two re-INVITEs): `holder` must get each 200 (the far end's
 * answer) and `other`, when a baresip, must have received each re-INVITE (sendonly, then sendrecv).
 */
export async function holdAndResume(holder: Baresip, other: Baresip | undefined): Promise<void> {
  for (const [command, direction] of [['hold', 'sendonly'], ['resume', 'sendrecv']] as const) {
    const holderLog = holder.output().length;
    const otherLog = other?.output().length ?? 0;
    const r = await holder.command(command);
    assert.ok(r.ok, `${holder.name}: ${command} refused: ${r.data}`);
    await other?.waitForOutput(new RegExp(`INVITE sip:[^]*?a=${direction}`), STEP_MS, otherLog);
    await holder.waitForOutput(/SIP\/2\.0 200 [^]*?CSeq: \d+ INVITE/, STEP_MS, holderLog);
  }
}

/** Where a phone's SIP trace and its events stood at one moment, to wait for what comes after it. */
export interface Mark {
  trace: number;
  events: number;
}

/**
 * A real SIP client of the transport matrix (baresip, linphonec or JsSIP) behind one interface: calls it makes or
 * answers at once, hold, hang-up, and its SIP trace. Every wait is bounded by STEP_MS.
 */
export interface LabPhone {
  readonly name: string;
  output(): string;
  stop(): Promise<void>;
  mark(): Mark;
  /** Resolves once a SIP message it received after `since` matches `re` (baresip's and linphonec's traces include what they sent). */
  received(re: RegExp, since: Mark): Promise<void>;
  /** Its REGISTER got a 200. */
  registered(): Promise<void>;
  /** Dials `target`; resolves when its side of the call is up (the 200 came, the ACK went). */
  dial(target: string): Promise<void>;
  /** Resolves once it answered a call that came after `since` and that call's ACK reached it. */
  answered(since: Mark): Promise<void>;
  /** Hangs up; resolves when its BYE got a 200. */
  hangUp(): Promise<void>;
  /** Resolves once the far end's BYE ended its call after `since`. */
  endedByFarEnd(since: Mark): Promise<void>;
  /** Puts the call on hold (`true`) or resumes it; resolves when its re-INVITE got a 200. */
  hold(on: boolean): Promise<void>;
}

const OK_TO = (method: string): RegExp => new RegExp(`SIP/2\\.0 200 [^]*?CSeq: \\d+ ${method}`);

export function baresipPhone(b: Baresip): LabPhone {
  const since = (m: Mark) => (e: BaresipEvent) => b.events.indexOf(e) >= m.events;
  return {
    name: b.name,
    output: () => b.output(),
    stop: () => b.stop(),
    mark: () => ({ trace: b.output().length, events: b.events.length }),
    received: (re, m) => b.waitForOutput(re, STEP_MS, m.trace),
    // It may register before its ctrl_tcp connection, which would have reported REGISTER_OK.
    registered: () => b.waitForOutput(OK_TO('REGISTER'), STEP_MS),
    dial: async (target) => {
      const before = b.events.length;
      const r = await b.command('dial', target);
      assert.ok(r.ok, `${b.name}: dial ${target} refused: ${r.data}`);
      await establishedBy(b, before);
    },
    answered: async (m) => {
      await establishedBy(b, m.events);
      await b.waitForOutput(/\nACK sip:/, STEP_MS, m.trace);
    },
    hangUp: () => hangUpBy(b),
    endedByFarEnd: async (m) => {
      const closed = await b.waitForEvent('CALL_CLOSED', STEP_MS, since(m));
      assert.match(closed.param ?? '', /reset by peer/i, `${b.name}'s call was closed by the far end's BYE: ${JSON.stringify(closed)}`);
    },
    hold: async (on) => {
      const log = b.output().length;
      const r = await b.command(on ? 'hold' : 'resume');
      assert.ok(r.ok, `${b.name}: ${on ? 'hold' : 'resume'} refused: ${r.data}`);
      await b.waitForOutput(OK_TO('INVITE'), STEP_MS, log);
    },
  };
}

export function linphonecPhone(l: LinphonecNs): LabPhone {
  const connected = /Call \d+ with \S+ connected\./;
  const ended = /Call \d+ with \S+ ended/;
  const mark = (): Mark => ({ trace: l.sipLog().length, events: l.mark() });
  return {
    name: l.name,
    output: () => l.output(),
    stop: () => l.stop(),
    mark,
    received: (re, m) => l.waitForSip(re, STEP_MS, m.trace),
    registered: () => l.waitRegistered(STEP_MS),
    dial: async (target) => {
      const m = l.mark();
      l.send(`call ${target}`);
      await l.waitForOutput(connected, STEP_MS, m);
    },
    answered: async (m) => {
      await l.waitForOutput(connected, STEP_MS, m.events);
      await l.waitForSip(/\nACK sip:/, STEP_MS, m.trace);
    },
    hangUp: async () => {
      const m = mark();
      l.send('terminate');
      await l.waitForSip(OK_TO('BYE'), STEP_MS, m.trace);
      await l.waitForOutput(ended, STEP_MS, m.events);
    },
    endedByFarEnd: (m) => l.waitForOutput(ended, STEP_MS, m.events),
    hold: async (on) => {
      const m = mark();
      l.send(on ? 'pause' : 'resume');
      await l.waitForSip(OK_TO('INVITE'), STEP_MS, m.trace);
    },
  };
}

export function jssipPhone(w: JsSipPhone): LabPhone {
  const after = (m: Mark) => (e: JsSipEvent) => w.events.indexOf(e) >= m.events;
  const mark = (): Mark => ({ trace: w.events.length, events: w.events.length });
  const got = (re: RegExp, m: Mark): Promise<unknown> => w.waitForEvent('ws-in', STEP_MS, (e) => after(m)(e) && re.test(e.data ?? ''));
  return {
    name: w.name,
    output: () => w.output(),
    stop: () => w.stop(),
    mark,
    received: async (re, m) => {
      await got(re, m);
    },
    registered: async () => {
      await w.waitForEvent('registered', STEP_MS);
    },
    dial: async (target) => {
      const m = mark();
      await w.call(target);
      await w.waitForEvent('confirmed', STEP_MS, after(m));
    },
    // A UAS session is confirmed by the ACK only.
    answered: async (m) => {
      await w.waitForEvent('confirmed', STEP_MS, after(m));
    },
    hangUp: async () => {
      const m = mark();
      await w.hangup();
      await got(OK_TO('BYE'), m);
    },
    endedByFarEnd: async (m) => {
      const e = await w.waitForEvent('ended', STEP_MS, after(m));
      assert.equal(e.originator, 'remote', `${w.name}'s call was ended by the far end's BYE: ${JSON.stringify(e)}`);
    },
    hold: async (on) => {
      const m = mark();
      await w.hold(on);
      await got(OK_TO('INVITE'), m);
    },
  };
}

/** `caller` dials `target`; `callee` answers at once and gets the ACK. */
export async function call(caller: LabPhone, callee: LabPhone, target: string): Promise<void> {
  const since = callee.mark();
  await caller.dial(target);
  await callee.answered(since);
}

/** `from` hangs up: its BYE gets a 200 and ends `to`'s call. */
export async function hangUpCall(from: LabPhone, to: LabPhone): Promise<void> {
  const since = to.mark();
  await from.hangUp();
  await to.endedByFarEnd(since);
}

/** `holder` puts the call on hold and takes it back: each re-INVITE reaches `other` (sendonly, then sendrecv) and gets a 200. */
export async function holdAndResumeCall(holder: LabPhone, other: LabPhone): Promise<void> {
  for (const [on, direction] of [[true, 'sendonly'], [false, 'sendrecv']] as const) {
    const since = other.mark();
    await holder.hold(on);
    await other.received(new RegExp(`INVITE sip:[^]*?a=${direction}`), since);
  }
}

/** A phone of the matrix: which client, over which transport (JsSIP speaks only WebSocket, the others not). */
export type PhoneKind = { client: 'baresip' | 'linphonec'; transport: 'udp' | 'tcp' | 'tls' } | { client: 'jssip'; transport: 'ws' | 'wss' };

/**
 * Starts a `kind` phone as `user` on `host`, registered at sipway over its transport, answering calls at once and
 * helping nobody past a NAT: baresip as shipped, linphonec as a plain phone (no NAT helper, no GRUU), JsSIP as
 * shipped (its Contact under `.invalid`, no GRUU). Over TLS and WSS it trusts the lab's CA.
 */
export async function startLabPhone(el: EdgeLab, sipway: SipwayInLab, host: NetHost, user: string, kind: PhoneKind): Promise<LabPhone> {
  const dir = path.join(el.work, user);
  const password = `${user}-pw`;
  switch (kind.client) {
    case 'baresip':
      return baresipPhone(await phone(el, sipway, host, user, { transport: kind.transport }));
    case 'linphonec': {
      const account = { user, domain: DOMAIN, password, proxy: `sip:${SERVER}:${PORTS[kind.transport]}`, autoAnswer: true, plain: true, transport: kind.transport, caFile: sipway.ca?.caFile };
      return linphonecPhone(await LinphonecNs.start(user, dir, account, host));
    }
    case 'jssip': {
      const account = { uri: `sip:${user}@${DOMAIN}`, password, wsUrl: `${kind.transport}://${SERVER}:${PORTS[kind.transport]}`, autoAnswer: true };
      return jssipPhone(await JsSipPhone.start(user, host, dir, account, kind.transport === 'wss' ? sipway.ca?.caFile : undefined));
    }
  }
}
