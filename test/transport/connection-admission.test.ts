import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionAdmission, type AdmissionLimits, type AdmissionSlot } from '../../src/transport/connection-admission.js';
import { FakeClock } from '../../src/util/clock.js';

function admission(limits: Partial<AdmissionLimits> = {}, clock = new FakeClock()) {
  const counters = { connectionsRejected: 0, connectionsEvicted: 0 };
  const a = new ConnectionAdmission({ maxConnections: 4, maxConnectionsPerSource: 10, reservedConnections: 0, ...limits }, clock, counters);
  const evicted: string[] = [];
  const open = (source: string | undefined, name = source ?? 'out'): AdmissionSlot | undefined => a.admit(source, () => evicted.push(name));
  return { a, counters, evicted, open, clock };
}

test('a full table gives way to a newcomer: the oldest unestablished socket of the address holding the most', () => {
  const { a, counters, evicted, open } = admission();
  open('10.0.0.1', 'b1');
  open('10.0.0.2', 'a1');
  open('10.0.0.2', 'a2');
  open('10.0.0.1', 'b2')!.established();
  assert.ok(open('10.0.0.3', 'c1'), 'a newcomer finds room');
  assert.deepEqual(evicted, ['a1'], '10.0.0.2 held two unestablished sockets, 10.0.0.1 one');
  assert.equal(a.sockets, 4);
  assert.equal(counters.connectionsEvicted, 1);
});

test('an address cannot displace its own sockets, nor those of an address holding no more than it', () => {
  const { counters, evicted, open } = admission();
  open('10.0.0.1');
  open('10.0.0.1');
  open('10.0.0.2');
  open('10.0.0.2');
  assert.equal(open('10.0.0.1'), undefined, 'two against two');
  assert.deepEqual(evicted, []);
  assert.equal(counters.connectionsRejected, 1);
  assert.ok(open('10.0.0.3'), 'one holding none may');
});

test('established sockets are never displaced; outbound ones are established from the start', () => {
  const { a, counters, open } = admission({ maxConnections: 2 });
  open(undefined);
  open('10.0.0.1')!.established();
  assert.equal(a.unestablished, 0);
  assert.equal(open('10.0.0.2'), undefined);
  assert.equal(open(undefined), undefined);
  assert.equal(counters.connectionsRejected, 2);
});

test('the per-source limit refuses the socket over it', () => {
  const { counters, open } = admission({ maxConnectionsPerSource: 2, maxConnections: 100 });
  open('10.0.0.1');
  open('10.0.0.1');
  assert.equal(open('10.0.0.1'), undefined);
  assert.equal(counters.connectionsRejected, 1);
  assert.ok(open('10.0.0.2'));
});

test('the reserve is for addresses with an established flow, open or closed within the hour', () => {
  const { a, open, clock } = admission({ maxConnections: 4, reservedConnections: 2 });
  open('10.0.0.9')!.established();
  const phone = open('10.0.0.1')!;
  phone.established();
  assert.equal(open('10.0.0.2'), undefined, 'two of four taken: the rest is reserved');
  const second = open('10.0.0.1')!;
  assert.ok(second, 'an address with an established flow may use the reserve');
  second.established();
  second.release();
  phone.release();
  phone.release();
  assert.equal(a.sockets, 1, 'release is idempotent');
  open('10.0.0.8')!.established();
  assert.equal(open('10.0.0.2'), undefined);
  clock.advance(59 * 60 * 1000);
  assert.ok(open('10.0.0.1'), 'remembered after its flows closed');
});

test('an address remembered from a closed flow is forgotten after an hour', () => {
  const { open, clock } = admission({ maxConnections: 3, reservedConnections: 2 });
  const phone = open('10.0.0.1')!;
  phone.established();
  phone.release();
  open('10.0.0.9')!.established();
  clock.advance(60 * 60 * 1000);
  assert.equal(open('10.0.0.1'), undefined);
});

test('a slot evicted is freed at once; its socket close event later changes nothing', () => {
  const { a, open } = admission({ maxConnections: 1 });
  const first = open('10.0.0.1')!;
  assert.ok(open('10.0.0.2'));
  first.release();
  first.established();
  assert.equal(a.sockets, 1);
  assert.equal(a.unestablished, 1);
});
