import { parseUint, UINT32_MAX } from './chars.js';
import { Scanner } from './scanner.js';

export interface CSeq {
  seq: number;
  method: string;
}

/** CSeq (§20.16): a 32-bit unsigned sequence number (RFC 4475 scalar02) and a method token. */
export function parseCSeq(value: string): CSeq {
  const sc = new Scanner(value, 'CSeq');
  sc.skipLws();
  const digits = sc.requireToken('sequence number');
  const seq = parseUint(digits, UINT32_MAX);
  if (seq < 0) sc.fail(`sequence number '${digits.slice(0, 20)}' is not a 32-bit unsigned integer`);
  const before = sc.pos;
  sc.skipLws();
  if (sc.pos === before) sc.fail('expected whitespace before method');
  const method = sc.requireToken('method');
  sc.skipLws();
  if (!sc.done) sc.fail('unexpected text after method');
  return { seq, method };
}
