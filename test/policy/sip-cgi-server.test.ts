/**
 * SIP-CGI in the request pipeline: the example screening script (examples/sip-cgi/screen.sh) configured on a running
 * server refuses a blocklisted caller with 403 and proxies the others, with its header edit, to the target it names.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startProxy, type ProxyHarness } from '../proxy/harness.js';
import { invite, outOfDialog, TestUa } from '../proxy/ua.js';
import { projectRoot } from '../helpers/paths.js';

let h: ProxyHarness;
let reception: TestUa;

before(async () => {
  reception = await TestUa.udp('reception');
  reception.serve();
  // The script's settings come from sipCgi.env (scripts get no other environment than PATH and the CGI variables).
  const script = path.join(projectRoot, 'examples', 'sip-cgi', 'screen.sh');
  h = await startProxy({}, { sipCgi: { script, interpreter: ['/bin/sh'], timeoutMs: 3000, env: { SCREEN_TARGET: `sip:reception@127.0.0.1:${reception.port}` } } });
});

after(async () => {
  reception.close();
  await h.stop();
});

test('a blocklisted caller gets the script\'s 403', async () => {
  const ua = await h.ua('spam');
  const inv = invite(ua, { to: 'sip:bob@sipway.test', from: 'sip:spam@telemarketing.example.com' });
  ua.send(inv, h.port);
  assert.equal((await ua.response(inv.callId, 403, 5000)).status, 403);
});

test('other callers are proxied where the script says, with its X-Screened header', async () => {
  const alice = await h.ua('alice');
  const inv = invite(alice, { to: 'sip:bob@sipway.test' });
  alice.send(inv, h.port);
  const atReception = (await reception.request('INVITE', 5000)).message;
  assert.equal(atReception.headers.get('x-screened'), 'passed');
  assert.equal(atReception.callId, inv.callId);
  assert.equal((await alice.response(inv.callId, 200, 5000)).status, 200);
});

test('a method the script leaves alone (no output) takes the default routing', async () => {
  const alice = await h.ua('alice');
  const msg = outOfDialog(alice, 'MESSAGE', 'sip:nobody@sipway.test');
  alice.send(msg, h.port);
  const res = await alice.response(msg.callId, undefined, 5000);
  assert.ok(res.status === 404 || res.status === 480, `default routing for an unknown user: ${res.status}`);
});
