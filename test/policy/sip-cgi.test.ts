import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseMessage, serialize, SipRequest, SipResponse } from '../../src/message/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { GATEWAY_INTERFACE, SipCgiRunner, type SipCgiConfig, type SipCgiContext, type SipCgiResult } from '../../src/policy/sip-cgi/index.js';
import { projectRoot } from '../helpers/paths.js';
import { requireTool, skipWithout } from '../helpers/process.js';
import { wire, INVITE_LINES, OK_LINES, SDP_BODY } from '../helpers/messages.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cgi-'));
const runners: SipCgiRunner[] = [];
after(async () => {
  await Promise.all(runners.map((r) => r.close()));
  rmSync(dir, { recursive: true, force: true });
});

let scriptCount = 0;
function script(text: string, mode = 0o755): string {
  const file = path.join(dir, `script-${++scriptCount}`);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

function runner(config: SipCgiConfig): SipCgiRunner {
  const r = new SipCgiRunner(config);
  runners.push(r);
  return r;
}

const ctx: SipCgiContext = { serverName: 'proxy.example.com', serverPort: 5060, transport: 'udp', remoteAddress: '192.0.2.7', remotePort: 5072 };

function invite(extra: string[] = [], lines = INVITE_LINES): SipRequest {
  const r = parseMessage(wire([...lines, ...extra], SDP_BODY));
  assert.ok(r.ok && r.message instanceof SipRequest);
  return r.message;
}

function response(lines: string[], body = ''): SipResponse {
  const r = parseMessage(wire(lines, body));
  assert.ok(r.ok && r.message instanceof SipResponse);
  return r.message;
}

function actions(r: SipCgiResult): Extract<SipCgiResult, { kind: 'actions' }> {
  assert.equal(r.kind, 'actions', r.kind === 'error' ? r.reason : '');
  return r as Extract<SipCgiResult, { kind: 'actions' }>;
}

function failure(r: SipCgiResult, status: number, pattern: RegExp): void {
  assert.equal(r.kind, 'error', 'expected an error result');
  assert.ok(r.kind === 'error');
  assert.equal(r.status, status);
  assert.match(r.reason, pattern);
}

/** Alive and not a zombie (a zombie has ended; only its parent has not collected it yet). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits for a script to write "$$ $!" (its own pid and its background child's) into `file`. */
async function pidsIn(file: string): Promise<number[]> {
  await waitFor(`pids in ${file}`, () => existsSync(file) && /^\d+ \d+\n$/.test(readFileSync(file, 'utf8')));
  return readFileSync(file, 'utf8').trim().split(' ').map(Number);
}

/** Writes back the environment and stdin as JSON in a 200 body. */
const ECHO_PY = `import json, os, sys
data = sys.stdin.buffer.read()
body = json.dumps({"env": dict(os.environ), "stdin": data.decode("utf-8")}).encode()
sys.stdout.buffer.write(b"SIP/2.0 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
`;

function echoed(r: SipCgiResult): { env: Record<string, string>; stdin: string } {
  const a = actions(r);
  const first = a.actions[0]!;
  assert.equal(first.type, 'respond');
  assert.ok(first.type === 'respond');
  return JSON.parse(first.response.body.toString()) as { env: Record<string, string>; stdin: string };
}

test('a request invocation gets the RFC 3050 metavariables and the request, byte for byte, on stdin', { skip: skipWithout('python3') }, async () => {
  requireTool('python3');
  const cgi = runner({ script: script(ECHO_PY), interpreter: ['python3'], env: { SERVICE_MODE: 'lab', GATEWAY_INTERFACE: 'overridden?' } });
  const req = invite([
    'Authorization: Digest username="alice", realm="example.com", nonce="n", uri="sip:bob@biloxi.example.com", response="0123"',
    's: Lunch?',
    'X-Custom.Thing: 42',
    'Route: <sip:p1.example.com;lr>',
    'Route: <sip:p2.example.com;lr>',
  ]);
  const r = await cgi.runForRequest(req, { ...ctx, authUser: 'alice@example.com', authType: 'Digest', registrations: ['<sip:bob@192.0.2.4>', '<sip:bob@192.0.2.5>'] });
  const { env, stdin } = echoed(r);
  assert.equal(stdin, serialize(req).toString());
  const expected: Record<string, string> = {
    GATEWAY_INTERFACE,
    SERVER_SOFTWARE: 'sipway',
    SERVER_NAME: 'proxy.example.com',
    SERVER_PORT: '5060',
    SERVER_PROTOCOL: 'SIP/2.0',
    SERVER_TRANSPORT: 'UDP',
    REMOTE_ADDR: '192.0.2.7',
    REMOTE_HOST: '192.0.2.7',
    REMOTE_PORT: '5072',
    REQUEST_METHOD: 'INVITE',
    REQUEST_URI: 'sip:bob@biloxi.example.com',
    AUTH_TYPE: 'Digest',
    REMOTE_USER: 'alice@example.com',
    REGISTRATIONS: '<sip:bob@192.0.2.4>, <sip:bob@192.0.2.5>',
    CONTENT_LENGTH: String(Buffer.byteLength(SDP_BODY)),
    CONTENT_TYPE: 'application/sdp',
    SIP_VIA: 'SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport',
    SIP_MAX_FORWARDS: '70',
    SIP_FROM: 'Alice <sip:alice@atlanta.example.com>;tag=1928301774',
    SIP_TO: 'Bob <sip:bob@biloxi.example.com>',
    SIP_CALL_ID: 'a84b4c76e66710@pc33.atlanta.example.com',
    SIP_CSEQ: '314159 INVITE',
    SIP_CONTACT: '<sip:alice@pc33.atlanta.example.com>',
    SIP_SUBJECT: 'Lunch?',
    SIP_X_CUSTOM_THING: '42',
    SIP_ROUTE: '<sip:p1.example.com;lr>, <sip:p2.example.com;lr>',
    SERVICE_MODE: 'lab',
  };
  for (const [name, value] of Object.entries(expected)) assert.equal(env[name], value, name);
  for (const absent of ['SIP_AUTHORIZATION', 'SIP_CONTENT_LENGTH', 'SIP_CONTENT_TYPE', 'RESPONSE_STATUS', 'RESPONSE_REASON', 'RESPONSE_TOKEN', 'SCRIPT_COOKIE']) {
    assert.equal(env[absent], undefined, absent);
  }
  assert.ok(env.PATH, 'PATH is passed so that the script finds its tools');
  // The server's own environment is not handed to scripts.
  for (const name of ['HOME', 'NODE_OPTIONS', 'npm_lifecycle_event']) if (process.env[name] !== undefined) assert.equal(env[name], undefined, name);
});

test('a response invocation gets the response on stdin, RESPONSE_* and SCRIPT_COOKIE; the request still names the transaction', { skip: skipWithout('python3') }, async () => {
  requireTool('python3');
  const cgi = runner({ script: script(ECHO_PY), interpreter: ['python3'] });
  const req = invite();
  const res = response(['SIP/2.0 486 Busy Here', ...OK_LINES.slice(1, 9)], 'later');
  const r = await cgi.runForResponse(req, res, 'state-7', { ...ctx, remoteAddress: '192.0.2.4', remotePort: 5060, responseToken: 'resp-3' });
  const { env, stdin } = echoed(r);
  assert.equal(stdin, serialize(res).toString());
  assert.equal(env.RESPONSE_STATUS, '486');
  assert.equal(env.RESPONSE_REASON, 'Busy Here');
  assert.equal(env.RESPONSE_TOKEN, 'resp-3');
  assert.equal(env.SCRIPT_COOKIE, 'state-7');
  assert.equal(env.REQUEST_METHOD, 'INVITE');
  assert.equal(env.REQUEST_URI, 'sip:bob@biloxi.example.com');
  assert.equal(env.REMOTE_ADDR, '192.0.2.4');
  assert.equal(env.SIP_CONTACT, '<sip:bob@192.0.2.4>');
  assert.equal(env.SIP_TO, 'Bob <sip:bob@biloxi.example.com>;tag=a6c85cf');
  assert.equal(env.CONTENT_LENGTH, '5');
  assert.equal(env.SIP_VIA?.split(', ').length, 3);
});

test('cookie and CGI-AGAIN round trip: forward on busy, then pass the final response on', async () => {
  const cgi = runner({
    script: script(`#!/bin/sh
if [ -z "$RESPONSE_STATUS" ]; then
  printf 'CGI-SET-COOKIE tries-1 SIP/2.0\\r\\n\\r\\nCGI-AGAIN yes SIP/2.0\\r\\n\\r\\nCGI-PROXY-REQUEST sip:desk@example.com SIP/2.0\\r\\n\\r\\n'
elif [ "$RESPONSE_STATUS" = 486 ] && [ "$SCRIPT_COOKIE" = tries-1 ]; then
  printf 'SIP/2.0 181 Call Is Being Forwarded\\r\\n\\r\\n'
  printf 'CGI-SET-COOKIE tries-2 SIP/2.0\\r\\n\\r\\nCGI-AGAIN yes SIP/2.0\\r\\n\\r\\n'
  printf 'CGI-PROXY-REQUEST sip:voicemail@example.com SIP/2.0\\r\\nX-Forwarded-Because: busy\\r\\n\\r\\n'
else
  printf 'CGI-FORWARD-RESPONSE %s SIP/2.0\\r\\n\\r\\n' "$RESPONSE_TOKEN"
fi
`),
  });
  const req = invite();
  const first = actions(await cgi.runForRequest(req, ctx));
  assert.equal(first.cookie, 'tries-1');
  assert.equal(first.again, true);
  assert.deepEqual(first.actions.map((a) => (a.type === 'proxy' ? a.uri.toString() : a.type)), ['sip:desk@example.com']);

  const busy = response(['SIP/2.0 486 Busy Here', ...OK_LINES.slice(3, 9)]);
  const second = actions(await cgi.runForResponse(req, busy, first.cookie, { ...ctx, responseToken: 'r1' }));
  assert.equal(second.cookie, 'tries-2');
  assert.equal(second.again, true);
  const [ringing, proxy] = second.actions;
  assert.ok(ringing?.type === 'respond' && ringing.response.status === 181);
  assert.equal(ringing.response.callId, req.callId);
  assert.ok(proxy?.type === 'proxy');
  assert.equal(proxy.uri.toString(), 'sip:voicemail@example.com');
  assert.deepEqual(proxy.edits, [{ name: 'x-forwarded-because', values: ['busy'] }]);

  const answered = response(OK_LINES);
  const third = actions(await cgi.runForResponse(req, answered, second.cookie, { ...ctx, responseToken: 'r2' }));
  assert.deepEqual(third.actions, [{ type: 'forward-response', token: 'r2', edits: [] }]);
  assert.equal(third.again, false);
  assert.equal(third.cookie, undefined);
});

test('a script that hangs is answered 500 at its timeout and its whole process group is killed', async () => {
  const clock = new FakeClock();
  const pidFile = path.join(dir, 'hang.pids');
  const cgi = runner({ script: script('#!/bin/sh\nsleep 30 &\necho "$$ $!" > "$PIDFILE"\nwait\n'), clock, timeoutMs: 5000, env: { PIDFILE: pidFile } });
  const pending = cgi.runForRequest(invite(), ctx);
  const pids = await pidsIn(pidFile);
  assert.ok(pids.every(alive));
  assert.equal(cgi.active, 1);
  let answered = false;
  void pending.then(() => (answered = true));
  clock.advance(4999);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(answered, false, 'not before the timeout');
  clock.advance(1);
  failure(await pending, 500, /timed out after 5000 ms/);
  await waitFor('the script and its child to be gone', () => !pids.some(alive));
  await waitFor('the slot to be free', () => cgi.active === 0);
});

test('the timeout holds in real time too: sleep 30 is answered within timeoutMs plus a margin', async () => {
  const pidFile = path.join(dir, 'sleep.pids');
  const cgi = runner({ script: script('#!/bin/sh\nsleep 30 &\necho "$$ $!" > "$PIDFILE"\nwait\n'), timeoutMs: 300, env: { PIDFILE: pidFile } });
  const started = Date.now();
  const r = await cgi.runForRequest(invite(), ctx);
  const elapsed = Date.now() - started;
  failure(r, 500, /timed out after 300 ms/);
  assert.ok(elapsed >= 290 && elapsed < 1300, `answered after ${elapsed} ms`);
  const pids = await pidsIn(pidFile);
  await waitFor('the script and its child to be gone', () => !pids.some(alive));
});

test('a script that ignores SIGTERM is killed with SIGKILL after the grace time', async () => {
  const clock = new FakeClock();
  const pidFile = path.join(dir, 'stubborn.pids');
  const cgi = runner({
    script: script("#!/bin/sh\ntrap '' TERM\nsleep 30 &\necho \"$$ $!\" > \"$PIDFILE\"\nwait\n"),
    clock,
    timeoutMs: 1000,
    killGraceMs: 2000,
    env: { PIDFILE: pidFile },
  });
  const pending = cgi.runForRequest(invite(), ctx);
  const pids = await pidsIn(pidFile);
  clock.advance(1000);
  failure(await pending, 500, /timed out/);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(pids.every(alive), 'SIGTERM is ignored');
  assert.equal(cgi.active, 1, 'the slot is held while the process lives');
  clock.advance(2000);
  await waitFor('the script and its child to be gone', () => !pids.some(alive));
  await waitFor('the slot to be free', () => cgi.active === 0);
});

test('a crashing script is answered 500 naming its exit status or signal and its first stderr line', async () => {
  const exit1 = runner({ script: script('#!/bin/sh\necho "blocklist missing" >&2\necho "SIP/2.0 200 OK"\nexit 1\n') });
  failure(await exit1.runForRequest(invite(), ctx), 500, /script exited with status 1 \(blocklist missing\)/);
  const segv = runner({ script: script('#!/bin/sh\nkill -SEGV $$\n') });
  failure(await segv.runForRequest(invite(), ctx), 500, /killed by SIGSEGV/);
});

test('garbage output is answered 500 with the line that is wrong', async () => {
  const cgi = runner({ script: script("#!/bin/sh\nprintf 'CGI-AGAIN yes SIP/2.0\\n\\nthis is not SIP\\n'\n") });
  failure(await cgi.runForRequest(invite(), ctx), 500, /unparsable script output: line 3: 'this is not SIP' is not an action line/);
});

test('output over maxOutputBytes is answered 500 and the script is stopped', async () => {
  const pidFile = path.join(dir, 'yes.pids');
  const cgi = runner({ script: script('#!/bin/sh\nyes SIP &\necho "$$ $!" > "$PIDFILE"\nwait\n'), maxOutputBytes: 4096, env: { PIDFILE: pidFile } });
  failure(await cgi.runForRequest(invite(), ctx), 500, /output larger than 4096 bytes/);
  const pids = await pidsIn(pidFile);
  await waitFor('the script and its child to be gone', () => !pids.some(alive));
});

test('beyond maxConcurrent a message is answered 503 at once; close() kills what runs', async () => {
  const cgi = runner({ script: script('#!/bin/sh\nexec sleep 30\n'), maxConcurrent: 2 });
  const a = cgi.runForRequest(invite(), ctx);
  const b = cgi.runForRequest(invite(), ctx);
  assert.equal(cgi.active, 2);
  failure(await cgi.runForRequest(invite(), ctx), 503, /2 SIP-CGI scripts already running/);
  await cgi.close();
  assert.equal(cgi.active, 0);
  failure(await a, 500, /closed/);
  failure(await b, 500, /closed/);
  failure(await cgi.runForRequest(invite(), ctx), 500, /closed/);
});

test('a script that does not read its input still works; one that cannot start is a 500', async () => {
  const quick = runner({ script: script("#!/bin/sh\nprintf 'SIP/2.0 200 OK\\r\\n\\r\\n'\n") });
  const big = new SipRequest('MESSAGE', invite().uri, invite().headers.clone(), Buffer.alloc(512 * 1024, 0x61));
  const r = actions(await quick.runForRequest(big, ctx));
  assert.ok(r.actions[0]?.type === 'respond' && r.actions[0].response.status === 200);
  const missing = runner({ script: script('unused'), interpreter: [path.join(dir, 'no-such-interpreter')] });
  failure(await missing.runForRequest(invite(), ctx), 500, /cannot start .*no-such-interpreter.*ENOENT/);
});

test('configuration faults are ConfigErrors naming the field', () => {
  assert.throws(() => new SipCgiRunner({ script: path.join(dir, 'absent') }), (e: unknown) => e instanceof ConfigError && /sipCgi.script: .*no such file/.test(e.message));
  const plain = script('#!/bin/sh\n', 0o644);
  assert.throws(() => new SipCgiRunner({ script: plain }), /sipCgi.script: .*not executable/);
  assert.doesNotThrow(() => new SipCgiRunner({ script: plain, interpreter: ['/bin/sh'] }));
  assert.throws(() => new SipCgiRunner({ script: plain, interpreter: [] }), /sipCgi.interpreter/);
  assert.throws(() => new SipCgiRunner({ script: plain, interpreter: ['/bin/sh'], timeoutMs: 0 }), /sipCgi.timeoutMs: must be a positive integer/);
  assert.throws(() => new SipCgiRunner({ script: plain, interpreter: ['/bin/sh'], maxConcurrent: 1.5 }), /sipCgi.maxConcurrent/);
});

for (const example of [
  { file: 'screen.py', interpreter: ['python3'] },
  { file: 'screen.sh', interpreter: ['/bin/sh'] },
]) {
  test(`examples/sip-cgi/${example.file} refuses blocklisted callers and proxies the others`, { skip: example.interpreter[0] === 'python3' ? skipWithout('python3') : undefined }, async () => {
    if (example.interpreter[0] === 'python3') requireTool('python3');
    const blocklist = path.join(dir, `blocklist-${example.file}.txt`);
    writeFileSync(blocklist, '# test list\nmallory@evil.example.com\n\n  Trudy@Evil.Example.com  # mixed case\n');
    const cgi = runner({
      script: path.join(projectRoot, 'examples', 'sip-cgi', example.file),
      interpreter: example.interpreter,
      env: { SCREEN_BLOCKLIST: blocklist, SCREEN_TARGET: 'sip:reception@pbx.example.com' },
    });
    const from = (value: string): SipRequest => invite([], INVITE_LINES.map((l) => (l.startsWith('From:') ? `From: ${value}` : l)));

    for (const caller of ['"M" <sip:Mallory@EVIL.example.com:5060;transport=tcp>;tag=9', 'sip:trudy@evil.example.com;tag=8']) {
      const r = actions(await cgi.runForRequest(from(caller), ctx));
      assert.equal(r.actions.length, 1, caller);
      const a = r.actions[0]!;
      assert.ok(a.type === 'respond', caller);
      assert.equal(a.response.status, 403);
      assert.equal(a.response.reason, 'Forbidden');
    }

    const allowed = actions(await cgi.runForRequest(from('Alice <sip:alice@atlanta.example.com>;tag=1928301774'), ctx));
    assert.deepEqual(allowed.actions.map((a) => (a.type === 'proxy' ? [a.uri.toString(), a.edits] : a.type)), [
      ['sip:reception@pbx.example.com', [{ name: 'x-screened', values: ['passed'] }]],
    ]);

    const options = invite([], INVITE_LINES.map((l) => l.replace('INVITE', 'OPTIONS')).map((l) => (l.startsWith('From:') ? 'From: <sip:mallory@evil.example.com>;tag=1' : l)));
    assert.deepEqual(actions(await cgi.runForRequest(options, ctx)).actions, [{ type: 'default' }]);
  });
}
