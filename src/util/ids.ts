import { randomBytes } from 'node:crypto';

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
