/**
 * A REGISTER written over TCP and the connection reset at once (RFC 793 RST, `socket.resetAndDestroy()`): the server
 * either knows where it came from and processes it, or drops it; it never processes it from nowhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { pino } from 'pino';
import { startTestServer } from '../helpers/server.js';

const DOMAIN = 'sipway.test';

function registerOverTcp(user: string, port: number): Buffer {
  return Buffer.from(
    [
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/TCP 127.0.0.1:${port};branch=z9hG4bK-${user}-reset;rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@${DOMAIN}>;tag=${user}1`,
      `To: <sip:${user}@${DOMAIN}>`,
      `Call-ID: ${user}-reset@test`,
      'CSeq: 1 REGISTER',
      `Contact: <sip:${user}@127.0.0.1:${port};transport=tcp>`,
      'Expires: 600',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

interface LogLine {
  level: number;
  msg: string;
  err?: unknown;
  src?: string;
}

async function serverWithLogs() {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
  const ts = await startTestServer({ domains: [DOMAIN], auth: { register: false } }, { logger });
  return { ts, logs };
}

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('a REGISTER reset after the server accepted the connection creates its binding, with its source', async () => {
  const { ts, logs } = await serverWithLogs();
  try {
    const socket = connect(ts.tcpPort!, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    await until('the accept', () => ts.server.transport.stats().connectionsOpen === 1);
    const localPort = socket.localPort!;
    socket.write(registerOverTcp('carol', localPort));
    socket.resetAndDestroy();
    await until('the binding', async () => (await ts.server.registrar.lookup(`sip:carol@${DOMAIN}`)).targets.length === 1);
    const [target] = (await ts.server.registrar.lookup(`sip:carol@${DOMAIN}`)).targets;
    assert.equal(target!.binding.source.address, '127.0.0.1');
    assert.equal(target!.binding.source.port, localPort);
    assert.ok(!logs.some((l) => /null/.test(JSON.stringify(l.err ?? ''))), 'no error about a null');
  } finally {
    await ts.stop();
  }
});

test('a REGISTER reset before the server accepted the connection is dropped without an error', async () => {
  const { ts, logs } = await serverWithLogs();
  try {
    // The client runs while this process is blocked: connection, bytes and reset are all queued before the accept.
    const client = `const s=require('net').connect(${ts.tcpPort},'127.0.0.1',()=>{s.write(Buffer.from(process.argv[1],'base64'));s.resetAndDestroy()});s.on('error',()=>{});`;
    execFileSync(process.execPath, ['-e', client, registerOverTcp('dave', 5999).toString('base64')], { timeout: 5000 });
    await until('the reset connection to be seen', () => ts.server.transport.stats().connectionsLostBeforeAccept === 1 || logs.some((l) => l.msg === 'request'));
    assert.deepEqual(
      logs.filter((l) => l.level >= 40 || l.msg === 'request').map((l) => `${l.msg} ${JSON.stringify(l.err ?? l.src ?? '')}`),
      [],
      'nothing processed from an empty source, nothing logged as failed',
    );
    assert.equal((await ts.server.registrar.lookup(`sip:dave@${DOMAIN}`)).targets.length, 0);
  } finally {
    await ts.stop();
  }
});
