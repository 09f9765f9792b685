import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secureRandomInto } from '../../src/util/ids.js';

test('secureRandomInto fills exactly the range asked, never hands out the same bytes twice, and spans pool refills', () => {
  const seen = new Set<string>();
  // 2,000 x 12 bytes crosses several 4 KB pools.
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.alloc(20, 0xaa);
    secureRandomInto(b, 6, 12);
    assert.ok(b.subarray(0, 6).every((x) => x === 0xaa) && b.subarray(18).every((x) => x === 0xaa), 'outside the range untouched');
    seen.add(b.subarray(6, 18).toString('hex'));
  }
  assert.equal(seen.size, 2000);
  // Larger than the pool: straight from the CSPRNG.
  const big = Buffer.alloc(5000);
  secureRandomInto(big, 0, 5000);
  assert.ok(big.some((x) => x !== 0));
  // Roughly uniform: every byte value shows up among 24,000 bytes.
  const values = new Set<number>();
  for (const hex of seen) for (const x of Buffer.from(hex, 'hex')) values.add(x);
  assert.equal(values.size, 256);
});
