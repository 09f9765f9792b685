/**
 * What every fault-injection test asks of the server after the fault: it still answers, and what the fault held
 * (transactions, sockets, watched paths, memory) is given back.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { SipwayServer } from '../../src/server/server.js';
import { wire } from '../helpers/messages.js';
import { optionsRequest, UdpClient } from '../helpers/server.js';
import { unique, type TestUa } from '../proxy/ua.js';

/** An OPTIONS to the server itself is answered 200: the fault took nothing down. */
export async function assertAnswers(port: number, what = 'after the fault'): Promise<void> {
  const client = new UdpClient();
  await client.bind();
  try {
    const res = await client.request(optionsRequest(port, client.port), port, 2000);
    assert.equal(res?.status, 200, `the server answers OPTIONS ${what}`);
  } finally {
    client.close();
  }
}

/**
 * Waits (bounded) until the server holds no client transaction, no UDP probe, no watched path and no more
 * connections than `connections`: what a fault took is released.
 */
export async function assertReleased(server: SipwayServer, connections = 0, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const t = server.transactions.stats();
    const s = server.transport.stats();
    const held = { clientTransactions: t.clientTransactions, udpProbesOpen: s.udpProbesOpen, pathsWatched: s.pathsWatched, connectionsOpen: s.connectionsOpen };
    const released = held.clientTransactions === 0 && held.udpProbesOpen === 0 && held.pathsWatched === 0 && held.connectionsOpen <= connections;
    if (released) return;
    if (Date.now() > deadline) assert.fail(`still held ${ms} ms after the fault: ${JSON.stringify(held)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let gc: (() => void) | undefined;

/** Heap in use after a full collection, in MB. */
export function heapAfterGc(): number {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** Milliseconds since `start` (performance.now()). */
export function since(start: number): number {
  return Math.round(performance.now() - start);
}

/** One REGISTER of `user` from `ua`, and its final answer, whatever it is. */
export async function registerOnce(ua: TestUa, port: number, user: string): Promise<string> {
  const callId = unique('reg');
  const lines = [
    'REGISTER sip:sipway.test SIP/2.0',
    `Via: ${ua.via};branch=${unique('z9hG4bKreg')};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@sipway.test>;tag=${unique('r')}`,
    `To: <sip:${user}@sipway.test>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 REGISTER',
    `Contact: <${ua.contact(user)}>`,
    'Expires: 3600',
  ];
  ua.send(wire(lines), port);
  const res = await ua.response(callId, undefined, 5000);
  return `${res.status} ${res.reason}`;
}
