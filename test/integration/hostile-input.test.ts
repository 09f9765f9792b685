/** Inputs that once went unanswered or took the server down (issue 14), each answered now. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, UdpClient } from '../helpers/server.js';

test('a Via with port 0 (PROTOS-style) is answered at the datagram’s source', async () => {
  const ts = await startTestServer();
  const client = new UdpClient();
  try {
    await client.bind();
    const options = [
      'OPTIONS sip:sipway.test SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:0;branch=z9hG4bK-port0',
      'Max-Forwards: 70',
      'From: <sip:a@sipway.test>;tag=p0',
      'To: <sip:sipway.test>',
      'Call-ID: port-zero-1',
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const res = await client.request(Buffer.from(options), ts.port, 2000);
    assert.equal(res?.status, 200);
    assert.equal(res?.callId, 'port-zero-1');
  } finally {
    client.close();
    await ts.stop();
  }
});
