import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { MessageSource } from '../../src/message/index.js';
import { callIdOwner } from '../../src/message/index.js';
import { flowOwner, ownedCallId, WorkerBus, type FlowInfo, type WorkerBusHandler } from '../../src/transport/worker-bus.js';

interface Heard {
  delivered: Array<{ bytes: string; source: MessageSource; stream: boolean }>;
  writes: Array<{ flowId: string; bytes: string }>;
  flows: Array<{ open: boolean; flow: FlowInfo }>;
  changed: number[][];
}

function listen(bus: WorkerBus): Heard {
  const heard: Heard = { delivered: [], writes: [], flows: [], changed: [] };
  const handler: WorkerBusHandler = {
    delivered: (bytes, source, stream) => heard.delivered.push({ bytes: bytes.toString(), source, stream }),
    write: (flowId, bytes) => heard.writes.push({ flowId, bytes: bytes.toString() }),
    flow: (open, flow) => heard.flows.push({ open, flow }),
    peersChanged: (changed) => heard.changed.push(changed),
  };
  bus.setHandler(handler);
  return heard;
}

async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`no ${what} within 2 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('the worker bus carries messages with their source, writes for connections, and flow announcements', async () => {
  const a = new WorkerBus(0, 2, 'abc');
  const b = new WorkerBus(1, 2, 'abc');
  const ports = [await a.bind(), await b.bind()];
  a.setPeers(ports);
  b.setPeers(ports);
  const atB = listen(b);
  const atA = listen(a);
  try {
    const source: MessageSource = { transport: 'tcp', address: '::1', port: 5070, localAddress: '::1', localPort: 5060, flowId: 'tcp-w0.xyz', receivedAt: 1 };
    assert.equal(a.deliver(1, Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n'), source, true), true);
    assert.equal(a.deliver(0, Buffer.from('x'), source, true), false, 'never to itself');
    a.write(1, 'tcp-w1.abc', Buffer.from('SIP/2.0 200 OK\r\n\r\n'));
    a.announceFlow(true, { flowId: 'tcp-w0.xyz', transport: 'tcp', address: '127.0.0.1', port: 40000 });
    await until('frames at b', () => atB.delivered.length === 1 && atB.writes.length === 1 && atB.flows.length === 1);
    assert.equal(atB.delivered[0]!.bytes, 'OPTIONS sip:x SIP/2.0\r\n\r\n');
    assert.deepEqual({ ...atB.delivered[0]!.source, receivedAt: 0 }, { ...source, receivedAt: 0 });
    assert.equal(atB.delivered[0]!.stream, true);
    assert.deepEqual(atB.writes[0], { flowId: 'tcp-w1.abc', bytes: 'SIP/2.0 200 OK\r\n\r\n' });
    assert.deepEqual(atB.flows[0], { open: true, flow: { flowId: 'tcp-w0.xyz', transport: 'tcp', address: '127.0.0.1', port: 40000 } });

    // Too large for one datagram: refused, so that the receiving worker handles it itself.
    assert.equal(a.deliver(1, Buffer.alloc(65_500), source, false), false);

    // A replaced worker (new bus port) is reported to the others.
    b.setPeers([...ports]);
    assert.deepEqual(atB.changed, [], 'same ports: nobody was replaced');
    a.setPeers([ports[0]!, ports[1]! + 1]);
    assert.deepEqual(atA.changed, [[1]]);
  } finally {
    a.close();
    b.close();
  }
});

test('the worker bus ignores frames from any port that is not a worker of this server', async () => {
  const b = new WorkerBus(1, 2, 'abc');
  const port = await b.bind();
  const stranger = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.1', resolve));
  b.setPeers([port + 1, port]);
  const heard = listen(b);
  try {
    const frame = Buffer.concat([Buffer.from([2, 3]), Buffer.from('abcSIP/2.0 200 OK\r\n\r\n')]);
    stranger.send(frame, port, '127.0.0.1');
    await until('the frame to be dropped', () => b.dropped === 1);
    assert.equal(heard.writes.length, 0);
  } finally {
    stranger.close();
    b.close();
  }
});

test('flow ids name the worker holding the connection; owned Call-IDs hash to their worker', () => {
  assert.equal(flowOwner('tcp-w3.k2j4h5'), 3);
  assert.equal(flowOwner('tcp-abcdefgh'), undefined);
  assert.equal(flowOwner('udp-0a1b2c-0'), undefined);
  for (let w = 0; w < 4; w++) for (let i = 0; i < 50; i++) assert.equal(callIdOwner(ownedCallId(w, 4), 4), w);
});
