import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { UdpProbes } from '../../src/transport/udp-probes.js';
import type { TransportError } from '../../src/transport/types.js';
import { closedUdpPort } from '../helpers/process.js';

function fault(): { promise: Promise<TransportError>; report: (e: TransportError) => void } {
  let report!: (e: TransportError) => void;
  const promise = new Promise<TransportError>((r) => (report = r));
  return { promise, report };
}

test('a destination a probe found unreachable is told at once to whoever watches it next (the kernel rate-limits ICMP)', { timeout: 10000 }, async () => {
  const listener = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => listener.bind(0, '127.0.0.1', r));
  const local = listener.address();
  const probes = new UdpProbes('udp4', () => ({ address: local.address, port: local.port }), () => undefined, (address, port, bytes, done) => listener.send(bytes, port, address, done));
  try {
    const port = await closedUdpPort();
    const first = fault();
    probes.watch('127.0.0.1', port, first.report);
    assert.ok(probes.send('127.0.0.1', port, Buffer.from('OPTIONS'), () => undefined), 'sent through the probe');
    const error = await first.promise;
    assert.equal(error.kind, 'unreachable');
    assert.match(error.message, new RegExp(`port unreachable \\(udp:127\\.0\\.0\\.1:${port}\\)`));
    assert.equal(probes.size, 0, 'the probe is closed once it has told its watchers');

    // A later watcher learns it without a datagram of its own (whose ICMP error the kernel may not send), on the next
    // turn of the event loop; one that stops watching first is not told.
    const second = fault();
    const started = performance.now();
    probes.watch('127.0.0.1', port, second.report);
    let toldThird = false;
    const stopThird = probes.watch('127.0.0.1', port, () => (toldThird = true));
    stopThird();
    assert.equal((await second.promise).message, error.message);
    assert.ok(performance.now() - started < 100);
    await new Promise((r) => setImmediate(r));
    assert.equal(toldThird, false);
    assert.equal(probes.size, 0, 'no probe made for a destination known to be unreachable');
  } finally {
    probes.closeAll();
    listener.close();
  }
});

test('datagrams the kernel queued on a probe are still handed on when it stops watching', { timeout: 10000 }, async () => {
  const heard: string[] = [];
  const listener = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  listener.on('message', (bytes) => heard.push(`listener:${bytes}`));
  await new Promise<void>((r) => listener.bind(0, '127.0.0.1', r));
  const local = listener.address();
  const probes = new UdpProbes('udp4', () => ({ address: local.address, port: local.port }), (bytes) => heard.push(`probe:${bytes}`), (address, port, bytes, done) => listener.send(bytes, port, address, done));
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
  try {
    const stop = probes.watch('127.0.0.1', peer.address().port, () => undefined);
    // What the probe sends waits for its connect: once the peer has it, the kernel gives the peer's datagrams to the probe.
    const reached = new Promise((r) => peer.once('message', r));
    probes.send('127.0.0.1', peer.address().port, Buffer.from('ping'), () => undefined);
    await reached;
    await new Promise<void>((r) => peer.connect(local.port, '127.0.0.1', r));

    // A connected socket sends at once: these are in the probe's queue, unread, when it stops watching.
    const count = 50;
    const waitFor = async (n: number): Promise<void> => {
      const deadline = performance.now() + 2000;
      while (heard.length < n && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    };
    for (let i = 0; i < count; i++) peer.send(`m${i}`);
    stop();
    await waitFor(count);
    assert.equal(heard.length, count, `${heard.length} of ${count} datagrams handed on`);
    assert.equal(probes.size, 0);

    // Once the probe has let go, the peer's datagrams reach the listener again.
    await new Promise((r) => setTimeout(r, 50));
    heard.length = 0;
    for (let i = 0; i < count; i++) peer.send(`n${i}`);
    await waitFor(count);
    assert.deepEqual(heard, Array.from({ length: count }, (_, i) => `listener:n${i}`));
  } finally {
    probes.closeAll();
    peer.close();
    listener.close();
  }
});
