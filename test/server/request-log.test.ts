import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { optionsRequest, startTestServer, UdpClient } from '../../src/testing/index.js';

interface RequestLine {
  msg: string;
  method?: string;
  status?: number;
  callId?: string;
  ms?: number;
  src?: string;
}

test('one request log line per request, at its final response, whoever answers it (core, registrar, proxy)', async () => {
  const lines: RequestLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as RequestLine) });
  const ts = await startTestServer({ auth: { register: false } }, { logger });
  const client = new UdpClient();
  const port = await client.bind();
  try {
    const options = await client.request(optionsRequest(ts.port, port), ts.port);
    assert.equal(options?.status, 200);
    const register = request('REGISTER', 'sip:sipway.test', 'alice', port);
    assert.equal((await client.request(register, ts.port))?.status, 200);
    const invite = request('INVITE', 'sip:nobody@sipway.test', 'nobody', port);
    const notFound = await client.request(invite, ts.port);
    assert.ok(notFound && notFound.status >= 400, `INVITE to an unknown user: ${notFound?.status}`);
    // The same REGISTER again is a retransmission, answered by its transaction: no second line.
    client.send(register, ts.port);
    await client.next(300);
    await new Promise<void>((resolve) => ts.server.logger.flush(() => resolve()));
    const requests = lines.filter((l) => l.msg === 'request');
    assert.deepEqual(
      requests.map((l) => [l.method, l.status]),
      [['OPTIONS', 200], ['REGISTER', 200], ['INVITE', notFound!.status]],
    );
    for (const l of requests) {
      assert.equal(l.src, `udp:127.0.0.1:${port}`);
      assert.ok(typeof l.ms === 'number' && l.ms >= 0, `ms from the request's arrival: ${l.ms}`);
    }
  } finally {
    client.close();
    await ts.stop();
  }
});

function request(method: string, ruri: string, toUser: string, port: number): Buffer {
  const id = `reqlog-${method.toLowerCase()}`;
  return Buffer.from(
    [
      `${method} ${ruri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${id};rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@sipway.test>;tag=${id}`,
      `To: <sip:${toUser}@sipway.test>`,
      `Call-ID: ${id}@test`,
      `CSeq: 1 ${method}`,
      `Contact: <sip:alice@127.0.0.1:${port}>`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}
