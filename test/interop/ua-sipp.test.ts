/**
 * sipway's user agent (UserAgent, InviteSession) against SIPp, talking directly (no proxy between them: the UA's
 * `proxy` is SIPp's port, so every request of ours goes there; SIPp as caller sends to the UA's listener). One SIPp
 * call per test (-m 1, -timeout), each a scenario of test/sipp/ua-*.xml that checks what the UA sends (headers with
 * <ereg check_it>): reliable provisional responses and PRACK (RFC 3262) both ways, UPDATE (RFC 3311) both ways,
 * session timers (RFC 4028) with a refresh by UPDATE and a 422, and re-INVITE glare (RFC 3261 §14.1) both ways. SIPp
 * must exit 0 with one successful call, and the UA's side is asserted too; on failure the message carries SIPp's
 * counters, stderr, error log and message trace (and the work directory with them is kept).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { audioDirection } from '../../src/sdp/index.js';
import { UserAgent, type InviteSession, type UserAgentOptions } from '../../src/ua/index.js';
import { freePort, requireTool, skipWithout } from '../helpers/process.js';
import { runSippAsync, type SippResult } from '../helpers/sipp.js';
import { within as waitWithin } from '../helpers/waits.js';

/** SIPp's global timeout per scenario (-timeout): every scenario here takes well under it. */
const SIPP_TIMEOUT_S = 15;
/** Every single wait on the UA's side (an answer, a change, the end of the call). */
const STEP_MS = 8000;
const SKIP = skipWithout('sipp');

/** An SDP of one PCMU stream at 127.0.0.1:`port`, origin `user` version `version`, direction `dir`. */
function sdp(user: string, port: number, version = 1, dir = 'sendrecv'): string {
  return `v=0\r\no=${user} 7 ${version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=${dir}\r\n`;
}
const UA_SDP = sdp('sipway', 40000);

/** The SDP SIPp's scenarios send (their bodies, as SIPp writes them: CRLF line ends). */
function sippSdp(user: string, version: number, dir: string): string {
  return `v=0\r\no=${user} 4242 ${version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=${dir}\r\n`;
}

/** `promise`, or a rejection naming `what` after STEP_MS (or `ms`). */
const within = <T>(promise: Promise<T>, what: string, ms = STEP_MS): Promise<T> => waitWithin(promise, what, ms);

/**
 * Is a UDP socket bound to 127.0.0.1:`port`? Read from Linux's /proc/net/udp (local address in hex, the IP
 * little-endian); undefined where it cannot be read. (Probing by binding the port would race SIPp's own bind.)
 */
function udpBound(port: number): boolean | undefined {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  try {
    return readFileSync('/proc/net/udp', 'utf8')
      .split('\n')
      .some((l) => l.trim().split(/\s+/)[1] === hex);
  } catch {
    return undefined;
  }
}

/** SIPp's counters, stderr, error log, log actions and message trace (tail). */
function report(r: SippResult | undefined, work: string): string {
  const files = readdirSync(work)
    .filter((f) => /_(errors|logs|messages)\.log$/.test(f))
    .sort()
    .map((f) => `--- ${f} (tail) ---\n${readFileSync(path.join(work, f), 'utf8').slice(-6000)}`);
  const counters = r ? `SIPp exit ${r.status}, ${r.successful} successful, ${r.failed} failed\n${r.stderr.slice(-1500)}` : 'SIPp not started';
  return [counters, ...files].join('\n');
}

interface Harness {
  /** SIPp's own port (-p): the UA's proxy. */
  sippPort: number;
  /** A user agent on loopback sending every request to SIPp. */
  ua(options?: Partial<UserAgentOptions>): Promise<UserAgent>;
  /**
   * Starts SIPp on `scenario` (one call) with `remotePort` as its remote side (the UA's port for a UAC scenario);
   * resolves once SIPp's socket is bound. Its result is checked after the body.
   */
  sipp(scenario: string, remotePort?: number): Promise<void>;
  /** Resolves when SIPp has exited (its log files are then complete). */
  done(): Promise<SippResult>;
  /** The lines of SIPp's <log> actions (-trace_logs). */
  logs(): string[];
}

/**
 * Runs `body` with a UA and a SIPp scenario; then SIPp must have exited 0 with 1 successful call. Any failure comes
 * back with SIPp's report; its work directory (traces) is kept then, removed otherwise.
 */
async function withSipp(name: string, body: (h: Harness) => Promise<void>): Promise<void> {
  requireTool('sipp');
  const work = mkdtempSync(path.join(os.tmpdir(), `sipway-ua-sipp-${name}-`));
  const sippPort = await freePort();
  const agents: UserAgent[] = [];
  let run: Promise<SippResult> | undefined;
  let result: SippResult | undefined;
  const h: Harness = {
    sippPort,
    ua: async (options = {}) => {
      const ua = await UserAgent.start({
        aor: 'sip:alice@127.0.0.1',
        proxy: { transport: 'udp', address: '127.0.0.1', port: sippPort },
        listen: { transport: 'udp', host: '127.0.0.1', port: 0 },
        ...options,
      });
      agents.push(ua);
      return ua;
    },
    sipp: async (scenario, remotePort = sippPort) => {
      const args = ['-p', String(sippPort), '-m', '1', '-timeout', `${SIPP_TIMEOUT_S}s`, '-trace_msg', '-trace_err', '-trace_logs'];
      const started = runSippAsync(scenario, remotePort, work, args, (SIPP_TIMEOUT_S + 5) * 1000);
      run = started.then((r) => (result = r));
      // Our first request must not reach the port before SIPp listens (a port unreachable fails it at once).
      const deadline = Date.now() + 5000;
      for (;;) {
        const bound = udpBound(sippPort);
        if (bound === undefined) await new Promise((r) => setTimeout(r, 500));
        if (bound !== false || result !== undefined || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    done: () => {
      assert.ok(run, 'SIPp was started');
      return run;
    },
    logs: () =>
      readdirSync(work)
        .filter((f) => f.endsWith('_logs.log'))
        .flatMap((f) => readFileSync(path.join(work, f), 'utf8').split('\n')),
  };
  try {
    await body(h);
    assert.ok(run, 'SIPp was started');
    const r = await run;
    assert.ok(r.status === 0 && r.successful === 1 && r.failed === 0, `SIPp (${name}) did not complete its call`);
  } catch (e) {
    if (run) await run; // SIPp ends by itself (-m 1, -timeout): its traces are then complete
    throw new Error(`${(e as Error).message}\n${report(result, work)}\n(SIPp traces kept in ${work})`, { cause: e });
  } finally {
    for (const ua of agents) await ua.stop();
  }
  rmSync(work, { recursive: true, force: true });
}

/** An onInvite that answers each call with `answer`, and the first call, resolved when it comes. */
function incoming(answer: (s: InviteSession) => void): { onInvite: (s: InviteSession) => void; session: Promise<InviteSession>; count: () => number } {
  let resolve!: (s: InviteSession) => void;
  let count = 0;
  const session = new Promise<InviteSession>((r) => (resolve = r));
  const onInvite = (s: InviteSession): void => {
    count++;
    answer(s);
    resolve(s);
  };
  return { onInvite, session, count: () => count };
}

/** Resolves at the next onChange of `session`. */
function nextChange(session: InviteSession): Promise<void> {
  return new Promise((resolve) => {
    session.onChange = () => {
      session.onChange = undefined;
      resolve();
    };
  });
}

test('RFC 3262: SIPp as callee requires 100rel: reliable 183 with the answer, PRACK with RAck, 200 PRACK, 200 INVITE without SDP, ACK, our BYE', { timeout: 30000, skip: SKIP }, async () => {
  await withSipp('uas-100rel', async (h) => {
    const ua = await h.ua();
    await h.sipp('ua-uas-100rel.xml');
    const provisionals: number[] = [];
    const call = await ua.call(`sip:bob@127.0.0.1:${h.sippPort}`, { sdp: UA_SDP });
    call.onProvisional = (r) => provisionals.push(r.status);
    assert.deepEqual(await within(call.answered, 'the answer to the INVITE'), { status: 200, reason: 'OK' });
    assert.deepEqual(provisionals, [183]);
    assert.equal(call.remoteSdp, sippSdp('sipp-uas', 1, 'sendrecv'), 'the SDP of the reliable 183 is the answer in force');
    assert.equal(call.localSdp, UA_SDP);
    assert.equal(await within(call.bye(), 'our BYE'), 200);
    assert.deepEqual(await call.ended, { by: 'local', reason: 'BYE sent' });
  });
});

test('RFC 3262: SIPp as caller supporting 100rel: our 183 with the answer goes reliably (Require, RSeq), its PRACK is answered, then our 200 without SDP, ACK, SIPp\'s BYE', { timeout: 30000, skip: SKIP }, async () => {
  await withSipp('uac-100rel', async (h) => {
    const callee = incoming((s) => {
      s.progress(183, { sdp: UA_SDP });
      s.accept();
    });
    const ua = await h.ua({ onInvite: callee.onInvite });
    await h.sipp('ua-uac-100rel.xml', ua.transport.listeners()[0]!.port);
    const session = await within(callee.session, 'the INVITE from SIPp');
    assert.deepEqual(await within(session.answered, 'our 200 (after the PRACK)'), { status: 200, reason: 'OK' });
    assert.equal(session.remoteSdp, sippSdp('sipp-uac', 1, 'sendrecv'));
    assert.equal(session.localSdp, UA_SDP, 'the answer sent in the reliable 183 is ours in force');
    assert.deepEqual(await within(session.ended, 'SIPp\'s BYE'), { by: 'remote', reason: 'BYE received' });
    await h.done();
    const cseqs = h.logs().filter((l) => / 200: CSeq /.test(l)).map((l) => l.replace(/^.*CSeq\s*\d+\s+/, '').trim()).sort();
    assert.deepEqual(cseqs, ['INVITE', 'PRACK'], 'SIPp got one 200 for the PRACK and one for the INVITE');
  });
});

test('RFC 3311: SIPp holds us with an UPDATE (a=sendonly), answered 200 a=recvonly; our own UPDATE with a new offer is answered 200 with SIPp\'s SDP', { timeout: 30000, skip: SKIP }, async () => {
  await withSipp('uac-update', async (h) => {
    const callee = incoming((s) => s.accept(UA_SDP));
    const ua = await h.ua({ onInvite: callee.onInvite });
    await h.sipp('ua-uac-update.xml', ua.transport.listeners()[0]!.port);
    const session = await within(callee.session, 'the INVITE from SIPp');
    const held = nextChange(session);
    assert.deepEqual(await within(session.answered, 'our 200'), { status: 200, reason: 'OK' });
    await within(held, 'SIPp\'s UPDATE putting us on hold');
    assert.equal(session.held, true, 'the peer holds us (its SDP is a=sendonly)');
    assert.equal(session.remoteSdp, sippSdp('sipp-uac', 2, 'sendonly'));
    assert.equal(audioDirection(session.localSdp), 'recvonly', 'our answer to the hold');

    const offer = sdp('sipway', 40000, 2, 'sendrecv');
    assert.deepEqual(await within(session.update(offer), 'the answer to our UPDATE'), { status: 200, reason: 'OK' });
    assert.equal(session.localSdp, offer);
    assert.equal(session.remoteSdp, sippSdp('sipp-uac', 3, 'sendrecv'));
    assert.equal(session.held, false);
    assert.deepEqual(await within(session.ended, 'SIPp\'s BYE'), { by: 'remote', reason: 'BYE received' });
  });
});

const TIMERS = { expires: 1800, minSE: 90 };

test('RFC 4028: SIPp asks for Session-Expires 90; our 200 says 90;refresher=uac with Require: timer; SIPp\'s refresh by UPDATE is answered with the interval', { timeout: 30000, skip: SKIP }, async () => {
  await withSipp('uac-timer', async (h) => {
    const callee = incoming((s) => s.accept(UA_SDP));
    const ua = await h.ua({ onInvite: callee.onInvite, sessionTimer: TIMERS });
    await h.sipp('ua-uac-timer.xml', ua.transport.listeners()[0]!.port);
    const session = await within(callee.session, 'the INVITE from SIPp');
    assert.deepEqual(await within(session.answered, 'our 200'), { status: 200, reason: 'OK' });
    assert.deepEqual(session.sessionExpires, { interval: 90, refresher: 'remote' }, 'SIPp (the caller) refreshes');
    assert.deepEqual(await within(session.ended, 'SIPp\'s BYE'), { by: 'remote', reason: 'BYE received' });
    await h.done();
    const refreshed = h.logs().find((l) => l.startsWith('200') && l.includes('UPDATE'));
    assert.ok(refreshed, 'SIPp logged the 200 to its refresh');
  });
});

test('RFC 4028 §8.1: SIPp asks for Session-Expires 60, below our Min-SE: 422 with Min-SE 90; its second INVITE (CSeq 2, 90) is answered 200', { timeout: 30000, skip: SKIP }, async () => {
  await withSipp('uac-timer-422', async (h) => {
    const callee = incoming((s) => s.accept(UA_SDP));
    const ua = await h.ua({ onInvite: callee.onInvite, sessionTimer: TIMERS });
    await h.sipp('ua-uac-timer-422.xml', ua.transport.listeners()[0]!.port);
    const session = await within(callee.session, 'the second INVITE from SIPp');
    assert.equal(session.invite.cseq.seq, 2, 'the INVITE refused 422 never reached onInvite');
    assert.deepEqual(await within(session.answered, 'our 200'), { status: 200, reason: 'OK' });
    assert.deepEqual(session.sessionExpires, { interval: 90, refresher: 'remote' });
    assert.deepEqual(await within(session.ended, 'SIPp\'s BYE'), { by: 'remote', reason: 'BYE received' });
    assert.equal(callee.count(), 1, 'one call reached onInvite');
  });
});

test('RFC 3261 §14.1: our re-INVITE refused 491 by SIPp is sent again on its own after 2.1-4 s (we made the Call-ID), CSeq higher, and answered 200', { timeout: 30000, skip: SKIP }, async () => {
  await withSipp('uas-491', async (h) => {
    const ua = await h.ua();
    await h.sipp('ua-uas-491.xml');
    const call = await ua.call(`sip:bob@127.0.0.1:${h.sippPort}`, { sdp: UA_SDP });
    assert.deepEqual(await within(call.answered, 'the answer to the INVITE'), { status: 200, reason: 'OK' });
    const offer = sdp('sipway', 40000, 2, 'sendrecv');
    const started = Date.now();
    assert.deepEqual(await within(call.reinvite(offer), 'the re-INVITE, after 491 and the glare wait'), { status: 200, reason: 'OK' });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 2100 && elapsed <= 4600, `the re-INVITE took ${elapsed} ms: one 491, a wait of 2.1-4 s, one 200`);
    assert.equal(call.localSdp, offer);
    assert.equal(call.remoteSdp, sippSdp('sipp-uas', 2, 'sendrecv'));
    assert.equal(await within(call.bye(), 'our BYE'), 200);
    await h.done();
    // SIPp's gettimeofday at each re-INVITE's arrival: "re-INVITE N: CSeq C at SECONDS MICROSECONDS".
    const arrivals = h.logs().flatMap((l) => {
      const m = /^re-INVITE (\d): CSeq (\d+) at ([\d.]+) ([\d.]+)/.exec(l);
      return m ? [{ cseq: Number(m[2]), ms: Number(m[3]) * 1000 + Number(m[4]) / 1000 }] : [];
    });
    assert.equal(arrivals.length, 2, `SIPp logged both re-INVITEs: ${h.logs().join('\n')}`);
    const [first, second] = arrivals as [{ cseq: number; ms: number }, { cseq: number; ms: number }];
    assert.ok(second.cseq > first.cseq, `a new CSeq: ${first.cseq} then ${second.cseq}`);
    const wait = second.ms - first.ms;
    assert.ok(wait >= 2100 && wait <= 4100, `the second re-INVITE came ${wait.toFixed(1)} ms after the first (2100-4000 ms wait, §14.1)`);
  });
});

test('RFC 3261 §14.2: SIPp\'s re-INVITE crossing ours is answered 491; ours then gets its 200 and SIPp\'s refused offer changes nothing', { timeout: 30000, skip: SKIP }, async () => {
  await withSipp('uas-glare', async (h) => {
    const ua = await h.ua();
    await h.sipp('ua-uas-glare.xml');
    const call = await ua.call(`sip:bob@127.0.0.1:${h.sippPort}`, { sdp: UA_SDP });
    assert.deepEqual(await within(call.answered, 'the answer to the INVITE'), { status: 200, reason: 'OK' });
    let changes = 0;
    call.onChange = () => changes++;
    const offer = sdp('sipway', 40000, 2, 'sendrecv');
    const started = Date.now();
    assert.deepEqual(await within(call.reinvite(offer), 'our re-INVITE'), { status: 200, reason: 'OK' });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2000, `answered without a glare retry of ours (${elapsed} ms)`);
    assert.equal(changes, 0, 'the peer\'s refused offer did not change the session');
    assert.equal(call.held, false, 'SIPp\'s a=sendonly offer was refused, not applied');
    assert.equal(call.localSdp, offer);
    assert.equal(call.remoteSdp, sippSdp('sipp-uas', 3, 'sendrecv'));
    assert.equal(await within(call.bye(), 'our BYE'), 200);
  });
});
