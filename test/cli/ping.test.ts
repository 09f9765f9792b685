import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, runCli, runCliAsync, startCliServer } from '../helpers/process.js';

test('sipway ping: a running server answers OPTIONS over UDP and TCP (exit 0); a stopped one is refused (exit 1)', async () => {
  const port = await freePort();
  const data = mkdtempSync(path.join(os.tmpdir(), 'sipway-ping-'));
  const server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--listen', `tcp:127.0.0.1:${port}`, '--data', data, '--workers', '1']);
  try {
    for (const transport of ['udp', 'tcp']) {
      const r = runCli(['ping', `${transport}:127.0.0.1:${port}`]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${transport}:127\\.0\\.0\\.1:${port}: 200 OK \\(\\d+ ms\\)\\n$`));
    }
  } finally {
    assert.equal(await server.stop(), 0);
    rmSync(data, { recursive: true, force: true });
  }
  for (const transport of ['udp', 'tcp']) {
    const r = runCli(['ping', `${transport}:127.0.0.1:${port}`]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), `sipway: ping: ${transport}:127.0.0.1:${port}: refused (nothing listens there)`);
  }
});

test('sipway ping: over UDP it resends after T1 and gives up at the timeout; a 503 is a failure', async () => {
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  const received: Buffer[] = [];
  silent.on('message', (m) => received.push(m));
  const port = silent.address().port;
  try {
    const r = await runCliAsync(['ping', `udp:127.0.0.1:${port}`, '--timeout', '1200']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), `sipway: ping: no answer from udp:127.0.0.1:${port} within 1200 ms`);
    // Sent at 0 ms, resent at 500 ms and 1500 ms (Timer A doubling) of which only the first two fit in 1200 ms.
    assert.equal(received.length, 2);
    assert.equal(received[0]!.toString(), received[1]!.toString(), 'a retransmission is the same request');
    assert.match(received[0]!.toString(), new RegExp(`^OPTIONS sip:127\\.0\\.0\\.1:${port} SIP/2\\.0\\r\\nVia: SIP/2\\.0/UDP 127\\.0\\.0\\.1:\\d+;branch=z9hG4bK`));

    silent.removeAllListeners('message');
    silent.on('message', (m, from) => {
      const text = m.toString();
      const header = (name: string): string => new RegExp(`^${name}: .*$`, 'm').exec(text)![0];
      const answer = ['SIP/2.0 503 Service Unavailable', header('Via'), header('From'), `${header('To')};tag=x`, header('Call-ID'), header('CSeq'), 'Content-Length: 0', '', ''].join('\r\n');
      silent.send(answer, from.port, from.address);
    });
    const busy = await runCliAsync(['ping', `udp:127.0.0.1:${port}`]);
    assert.equal(busy.status, 1);
    assert.match(busy.stderr.trim(), new RegExp(`^sipway: ping: udp:127\\.0\\.0\\.1:${port}: 503 Service Unavailable \\(\\d+ ms\\)$`));
  } finally {
    silent.close();
  }
});
