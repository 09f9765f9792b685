import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonceManager } from '../../src/auth/nonce.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';

const SECRET = 'a cluster-wide secret of enough length';

test('a nonce is valid for its lifetime, then stale', () => {
  const clock = new FakeClock();
  const nonces = new NonceManager({ clock, lifetimeMs: 300_000 });
  const nonce = nonces.issue('example.com');
  assert.match(nonce, /^[A-Za-z0-9_-]+$/);
  assert.notEqual(nonces.issue('example.com'), nonce);
  assert.equal(nonces.verify(nonce, 'example.com'), 'valid');
  clock.advance(300_000);
  assert.equal(nonces.verify(nonce, 'example.com'), 'valid');
  clock.advance(1);
  assert.equal(nonces.verify(nonce, 'example.com'), 'stale');
});

test('forged, garbled, foreign-realm and foreign-secret nonces are invalid', () => {
  const clock = new FakeClock();
  const nonces = new NonceManager({ clock });
  const nonce = nonces.issue('example.com');
  const flipped = nonce.slice(0, 10) + (nonce[10] === 'A' ? 'B' : 'A') + nonce.slice(11);
  for (const bad of [flipped, '', 'x', nonce + 'A', nonce.slice(1), `${nonce.slice(0, -1)}=`, 'ü'.repeat(nonce.length)]) {
    assert.equal(nonces.verify(bad, 'example.com'), 'invalid', bad);
  }
  assert.equal(nonces.verify(nonce, 'other.example.com'), 'invalid');
  assert.equal(new NonceManager({ clock }).verify(nonce, 'example.com'), 'invalid');
});

test('only the canonical base64url spelling of a nonce is accepted', () => {
  const nonces = new NonceManager({ clock: new FakeClock() });
  const nonce = nonces.issue('r');
  // 50 bytes leave 2 unused low bits in the last character; setting them decodes to the same bytes.
  const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const alias = nonce.slice(0, -1) + last[last.indexOf(nonce.at(-1)!) | 1]!;
  assert.notEqual(alias, nonce);
  assert.deepEqual(Buffer.from(alias, 'base64url'), Buffer.from(nonce, 'base64url'));
  assert.equal(nonces.verify(alias, 'r'), 'invalid');
});

test('cluster nodes sharing the secret accept each other’s nonces; clock skew never extends a lifetime', () => {
  const clockA = new FakeClock();
  const a = new NonceManager({ clock: clockA, secret: SECRET, lifetimeMs: 60_000 });
  const fromA = a.issue('r');
  const behindBy = (ms: number): NonceManager =>
    new NonceManager({ clock: new FakeClock(clockA.now() - ms), secret: Buffer.from(SECRET), lifetimeMs: 60_000 });
  assert.equal(behindBy(10_000).verify(fromA, 'r'), 'valid');
  assert.equal(behindBy(60_001).verify(fromA, 'r'), 'stale');
});

test('configuration is checked', () => {
  const clock = new FakeClock();
  assert.throws(() => new NonceManager({ clock, secret: 'short' }), ConfigError);
  assert.throws(() => new NonceManager({ clock, lifetimeMs: 0 }), ConfigError);
  assert.throws(() => new NonceManager({ clock, maxTrackedNonces: 0 }), ConfigError);
});

test('nonce counts must strictly increase per nonce', () => {
  const nonces = new NonceManager({ clock: new FakeClock() });
  const n1 = nonces.issue('r');
  const n2 = nonces.issue('r');
  assert.equal(nonces.checkNonceCount(n1, '00000001'), 'accepted');
  assert.equal(nonces.checkNonceCount(n1, '00000001'), 'replayed');
  assert.equal(nonces.checkNonceCount(n1, '00000003'), 'accepted');
  assert.equal(nonces.checkNonceCount(n1, '00000002'), 'replayed');
  assert.equal(nonces.checkNonceCount(n1, '0000000A'), 'accepted');
  assert.equal(nonces.checkNonceCount(n2, '00000001'), 'accepted');
  assert.equal(nonces.checkNonceCount(nonces.issue('r'), '00000000'), 'replayed');
  assert.equal(nonces.checkNonceCount('garbage', '00000001'), 'stale');
  assert.equal(nonces.checkNonceCount(n2, 'zz'), 'stale');
});

test('a nonce forgotten under memory pressure is answered stale, never reopened to replay', () => {
  const clock = new FakeClock();
  const nonces = new NonceManager({ clock, maxTrackedNonces: 2 });
  const n1 = nonces.issue('r');
  clock.advance(1);
  const n2 = nonces.issue('r');
  clock.advance(1);
  const n3 = nonces.issue('r');
  assert.equal(nonces.checkNonceCount(n1, '00000001'), 'accepted');
  assert.equal(nonces.checkNonceCount(n2, '00000001'), 'accepted');
  assert.equal(nonces.checkNonceCount(n1, '00000002'), 'accepted'); // n1 is now the most recently used
  assert.equal(nonces.checkNonceCount(n3, '00000001'), 'accepted'); // evicts n2
  assert.equal(nonces.trackedNonces, 2);
  assert.equal(nonces.checkNonceCount(n2, '00000001'), 'stale');
  assert.equal(nonces.checkNonceCount(n2, '00000009'), 'stale');
  // Issued after the newest forgotten nonce, so it cannot have been tracked before.
  clock.advance(1);
  assert.equal(nonces.checkNonceCount(nonces.issue('r'), '00000001'), 'accepted');
});

test('expired entries are dropped without waiting for the tracker to fill', () => {
  const clock = new FakeClock();
  const nonces = new NonceManager({ clock, lifetimeMs: 1_000 });
  for (let i = 0; i < 3; i++) assert.equal(nonces.checkNonceCount(nonces.issue('r'), '00000001'), 'accepted');
  clock.advance(500);
  const middle = nonces.issue('r');
  assert.equal(nonces.checkNonceCount(middle, '00000001'), 'accepted');
  clock.advance(501);
  const fresh = nonces.issue('r');
  assert.equal(nonces.checkNonceCount(fresh, '00000001'), 'accepted');
  assert.equal(nonces.trackedNonces, 2);
  assert.equal(nonces.checkNonceCount(middle, '00000001'), 'replayed');
});
