import { randomBytes, randomFillSync } from 'node:crypto';

/** RFC 3261 §8.1.1.7: branches start with the magic cookie so that RFC 2543 peers can be told apart. */
export const MAGIC_COOKIE = 'z9hG4bK';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

// Ids are drawn from a pooled random buffer: crypto per id would dominate the cost of building a request.
let pool = randomBytes(4096);
let poolOffset = 0;

export function randomToken(length: number): string {
  if (poolOffset + length > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[pool[poolOffset + i]! % 36];
  poolOffset += length;
  return out;
}

export function newBranch(): string {
  return MAGIC_COOKIE + randomToken(16);
}

export function newTag(): string {
  return randomToken(12);
}

export function newCallId(host?: string): string {
  return host ? `${randomToken(20)}@${host}` : randomToken(24);
}

// Secret random bytes (nonces) come from a pool of their own, refilled from the CSPRNG: one randomBytes(12) per
// challenge cost 2.6 % of the server's busy time under a REGISTER load (profile of bench:e2e scenario 3). Every
// byte is handed out once.
const SECRET_POOL_BYTES = 4096;
let secretPool = Buffer.alloc(0);
let secretOffset = 0;

/** Writes `length` bytes from the CSPRNG into `target` at `at`. */
export function secureRandomInto(target: Buffer, at: number, length: number): void {
  if (length > SECRET_POOL_BYTES) {
    randomFillSync(target, at, length);
    return;
  }
  if (secretOffset + length > secretPool.length) {
    secretPool = randomFillSync(Buffer.allocUnsafe(SECRET_POOL_BYTES));
    secretOffset = 0;
  }
  secretPool.copy(target, at, secretOffset, secretOffset + length);
  secretPool.fill(0, secretOffset, secretOffset + length);
  secretOffset += length;
}
