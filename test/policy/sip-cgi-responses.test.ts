/**
 * SIP-CGI on a running server beyond the request: each proxy action's header edits reach its own fork only, and a
 * script that said CGI-AGAIN yes is run for the responses of its transaction (RFC 3050) with its cookie and a
 * response token, and forwards them edited, replaces them, forks anew, stops, or hangs without losing them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SipRequest } from '../../src/message/index.js';
import { startProxy, type ProxyHarness } from '../proxy/harness.js';
import { invite, TestUa } from '../proxy/ua.js';

/** One service per Request-URI user; the request run proxies to $ONE (both $ONE and $TWO for "fork"). */
const SCRIPT = String.raw`#!/bin/sh
user=${'$'}{REQUEST_URI#sip:}; user=${'$'}{user%%@*}
if [ -z "$RESPONSE_STATUS" ]; then
  case $user in
    fork) printf 'CGI-PROXY-REQUEST %s SIP/2.0\r\nX-Fork: one\r\n\r\nCGI-PROXY-REQUEST %s SIP/2.0\r\nX-Fork: two\r\nX-Only-Two: yes\r\n\r\n' "$ONE" "$TWO" ;;
    *) printf 'CGI-PROXY-REQUEST %s SIP/2.0\r\n\r\nCGI-SET-COOKIE c0 SIP/2.0\r\n\r\nCGI-AGAIN yes SIP/2.0\r\n\r\n' "$ONE" ;;
  esac
  exit 0
fi
echo "$RESPONSE_STATUS $SCRIPT_COOKIE $RESPONSE_TOKEN" >> "$LOG_DIR/$user.log"
case $user in
  again) printf 'CGI-SET-COOKIE c%s SIP/2.0\r\n\r\n' "$RESPONSE_STATUS" ;;
  edit) printf 'CGI-FORWARD-RESPONSE %s SIP/2.0\r\nX-Edited: %s\r\n\r\n' "$RESPONSE_TOKEN" "$RESPONSE_STATUS" ;;
  busy) [ "$RESPONSE_STATUS" != 486 ] || printf 'SIP/2.0 480 Gone Fishing\r\nX-Replaced: 486\r\n\r\n' ;;
  voicemail) [ "$RESPONSE_STATUS" != 486 ] || printf 'CGI-PROXY-REQUEST %s SIP/2.0\r\nX-Voicemail: yes\r\n\r\n' "$TWO" ;;
  keep) [ "$RESPONSE_STATUS" != 200 ] || printf 'SIP/2.0 603 Decline\r\n\r\n' ;;
  stop) printf 'CGI-AGAIN no SIP/2.0\r\n\r\n'; exit 0 ;;
  hang) sleep 30 ;;
esac
printf 'CGI-AGAIN yes SIP/2.0\r\n\r\n'
`;

const TIMEOUT_MS = 2500;
const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-cgi-responses-'));
let h: ProxyHarness;
let one: TestUa;
let two: TestUa;

before(async () => {
  one = await TestUa.udp('one');
  two = await TestUa.udp('two');
  const script = path.join(dir, 'service.sh');
  writeFileSync(script, SCRIPT);
  h = await startProxy(
    {},
    {
      sipCgi: {
        script,
        interpreter: ['/bin/sh'],
        timeoutMs: TIMEOUT_MS,
        env: { ONE: `sip:one@127.0.0.1:${one.port}`, TWO: `sip:two@127.0.0.1:${two.port}`, LOG_DIR: dir },
      },
    },
  );
});

after(async () => {
  one.close();
  two.close();
  await h.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** An INVITE from a new caller to `user`@sipway.test, sent. */
async function call(user: string): Promise<{ alice: TestUa; inv: SipRequest }> {
  const alice = await h.ua('alice');
  const inv = invite(alice, { to: `sip:${user}@sipway.test` });
  alice.send(inv, h.port);
  return { alice, inv };
}

async function inviteAt(ua: TestUa, callId: string): Promise<SipRequest> {
  return (await ua.waitFor('INVITE', (m) => m.isRequest && m.method === 'INVITE' && m.callId === callId, 5000)).message as SipRequest;
}

/** What the script's response runs saw: "status cookie token" per run. */
function runs(user: string): string[] {
  const file = path.join(dir, `${user}.log`);
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
}

test('each CGI-PROXY-REQUEST\'s header edits reach its own fork only', async () => {
  one.serve({ status: 486 });
  two.serve({ status: 486 });
  const { alice, inv } = await call('fork');
  const atOne = await inviteAt(one, inv.callId);
  const atTwo = await inviteAt(two, inv.callId);
  assert.deepEqual(atOne.headers.getAll('x-fork'), ['one']);
  assert.equal(atOne.headers.has('x-only-two'), false);
  assert.deepEqual(atTwo.headers.getAll('x-fork'), ['two']);
  assert.equal(atTwo.headers.get('x-only-two'), 'yes');
  assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 486);
});

test('CGI-AGAIN yes: the script sees the 180 and the 200 with its last cookie and a token for each', async () => {
  one.serve({ status: 200 });
  const { alice, inv } = await call('again');
  await alice.response(inv.callId, 180, 5000);
  assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 200);
  assert.deepEqual(runs('again'), ['180 c0 r1', '200 c180 r2']);
});

test('CGI-FORWARD-RESPONSE with a header line forwards the response edited', async () => {
  one.serve({ status: 200 });
  const { alice, inv } = await call('edit');
  assert.equal((await alice.response(inv.callId, 180, 5000)).headers.get('x-edited'), '180');
  const ok = await alice.response(inv.callId, undefined, 5000);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('x-edited'), '200');
});

test('a Status-Line from a response run replaces the failure response', async () => {
  one.serve({ status: 486 });
  const { alice, inv } = await call('busy');
  const final = await alice.response(inv.callId, undefined, 5000);
  assert.equal(final.status, 480);
  assert.equal(final.reason, 'Gone Fishing');
  assert.equal(final.headers.get('x-replaced'), '486');
  assert.deepEqual(runs('busy').map((r) => r.split(' ')[0]), ['180', '486']);
});

test('a CGI-PROXY-REQUEST from a response run forks anew with its own edits: busy goes to voicemail', async () => {
  one.serve({ status: 486 });
  two.serve({ status: 200 });
  const { alice, inv } = await call('voicemail');
  const atTwo = await inviteAt(two, inv.callId);
  assert.equal(atTwo.headers.get('x-voicemail'), 'yes');
  assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 200);
});

test('a response run cannot hold back or replace a 2xx to an INVITE (RFC 3261 §16.7 step 5)', async () => {
  one.serve({ status: 200 });
  const { alice, inv } = await call('keep');
  assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 200);
  assert.deepEqual(runs('keep').map((r) => r.split(' ')[0]), ['180', '200']);
});

test('CGI-AGAIN no stops the response runs; the rest is forwarded as usual', async () => {
  one.serve({ status: 200 });
  const { alice, inv } = await call('stop');
  await alice.response(inv.callId, 180, 5000);
  assert.equal((await alice.response(inv.callId, undefined, 5000)).status, 200);
  assert.deepEqual(runs('stop'), ['180 c0 r1']);
});

test('a hanging response run: after its timeout the 180 and then the 200 are forwarded, in order', async () => {
  one.serve({ status: 200 });
  const started = Date.now();
  const { alice, inv } = await call('hang');
  const ringing = await alice.waitFor('180', (m) => !m.isRequest && m.callId === inv.callId && m.status === 180, TIMEOUT_MS + 10_000);
  const ok = await alice.waitFor('200', (m) => !m.isRequest && m.callId === inv.callId && m.status === 200, 10_000);
  assert.ok(Date.now() - started >= TIMEOUT_MS - 100, 'held until the script timed out');
  assert.ok(ringing.at <= ok.at, '180 before 200');
  assert.deepEqual(runs('hang'), ['180 c0 r1'], 'a failed run is not followed by another');
});
