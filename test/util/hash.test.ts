import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hash64Hex } from '../../src/util/hash.js';

test('hash64Hex: 16 hex digits, the same for the same parts', () => {
  const h = hash64Hex(['a1b2', 'call-1@host', '1', 'sip:bob@example.com', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1']);
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.equal(hash64Hex(['a1b2', 'call-1@host', '1', 'sip:bob@example.com', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1']), h);
});

test('hash64Hex: where the parts split matters, and so does every character', () => {
  assert.notEqual(hash64Hex(['ab', 'c']), hash64Hex(['a', 'bc']));
  assert.notEqual(hash64Hex(['abc']), hash64Hex(['abc', '']));
  assert.notEqual(hash64Hex(['']), hash64Hex([]));
  const base = 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabcdef';
  const seen = new Set([hash64Hex([base])]);
  for (let i = 0; i < base.length; i++) {
    const changed = base.slice(0, i) + String.fromCharCode(base.charCodeAt(i) ^ 1) + base.slice(i + 1);
    seen.add(hash64Hex([changed]));
  }
  assert.equal(seen.size, base.length + 1);
});

test('hash64Hex: no collision among 200,000 Call-IDs that differ in a counter, and both halves vary', () => {
  const seen = new Set<string>();
  const halves = [new Set<string>(), new Set<string>()];
  for (let i = 0; i < 200_000; i++) {
    const h = hash64Hex(['tag', `${i}-4711@127.0.0.1`, '1']);
    seen.add(h);
    halves[0]!.add(h.slice(0, 8));
    halves[1]!.add(h.slice(8));
  }
  assert.equal(seen.size, 200_000);
  // Each 32-bit half alone should collide rarely (birthday bound: about 5 expected among 200,000).
  assert.ok(halves[0]!.size > 199_900 && halves[1]!.size > 199_900, `${halves[0]!.size} / ${halves[1]!.size}`);
});
