/** CPL scripts uploaded in a REGISTER body (application/cpl+xml): validated, stored for the AOR's user, or refused. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startTestServer, UdpClient, type TestServer } from '../helpers/server.js';
import { registerBytes } from '../helpers/register.js';
import { projectRoot } from '../helpers/paths.js';

let ts: TestServer;
let client: UdpClient;

before(async () => {
  ts = await startTestServer({ domains: ['sipway.test'], auth: { register: false } });
  client = new UdpClient();
  await client.bind();
});

after(async () => {
  client.close();
  await ts.stop();
});

function withBody(bytes: Buffer, body: string): Buffer {
  const head = bytes.toString('latin1').replace(/Content-Length: 0\r\n\r\n$/, '');
  return Buffer.concat([Buffer.from(`${head}Content-Type: application/cpl+xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`, 'latin1'), Buffer.from(body)]);
}

test('a valid script in a REGISTER body is stored for the user and the registration succeeds', async () => {
  const script = readFileSync(path.join(projectRoot, 'examples', 'cpl', 'forward-unconditional.xml'), 'utf8');
  const req = withBody(registerBytes(client, { user: 'alice', domain: 'sipway.test', expires: 600, callId: 'cpl-1' }), script);
  const res = await client.request(req, ts.port);
  assert.equal(res?.status, 200, res?.reason);
  const stored = await ts.server.cplScripts.get('alice', 'sipway.test');
  assert.equal(stored?.script, script);
  assert.equal((await ts.server.registrar.lookup('sip:alice@sipway.test')).targets.length, 1);
});

test('an invalid script is refused with 400 naming line and column, and nothing changes', async () => {
  const bad = '<?xml version="1.0"?>\n<cpl xmlns="urn:ietf:params:xml:ns:cpl">\n  <incoming><nonsense/></incoming>\n</cpl>\n';
  const req = withBody(registerBytes(client, { user: 'bob', domain: 'sipway.test', expires: 600, callId: 'cpl-2' }), bad);
  const res = await client.request(req, ts.port);
  assert.equal(res?.status, 400);
  assert.match(res.reason, /^Bad Request - CPL script:3:\d+: /);
  assert.equal(await ts.server.cplScripts.get('bob', 'sipway.test'), undefined);
  assert.equal((await ts.server.registrar.lookup('sip:bob@sipway.test')).targets.length, 0, 'no binding either');
});
