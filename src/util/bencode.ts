/**
 * Bencoding (the BitTorrent encoding, BEP 3), as rtpengine's ng control protocol speaks it: byte strings
 * (`4:spam`), integers (`i42e`), lists (`l...e`) and dictionaries (`d...e`, string keys).
 *
 * Decoding is strict and bounded, because its input comes from the network: anything that is not exactly one
 * well-formed value (leading zeros, `-0`, a string running past the end, a non-string key, a key twice, bytes after
 * the value), nesting deeper than `maxDepth`, a string longer than `maxStringLength`, more than `maxItems` values or
 * an input longer than `maxInputLength` throws a `BencodeError`, never anything else. Callers turn it into a
 * handled error (a counted drop, a failed request). Dictionary keys may come in any order (rtpengine does not sort
 * them); encoding sorts them by their bytes, as BEP 3 asks.
 */

/** A decoded string is a Buffer (`strings: 'buffer'`, the default) or a JS string (`strings: 'utf8'`). */
export type BencodeValue = string | Buffer | number | BencodeValue[] | BencodeDict;

/** A dictionary: decoded ones have no prototype, so any key (`__proto__` too) is an ordinary own property. */
export interface BencodeDict {
  [key: string]: BencodeValue;
}

/** What `encodeBencode` takes: decoded values, plus Uint8Arrays, and `undefined` dictionary values (skipped). */
export type BencodeInput = string | Uint8Array | number | bigint | readonly BencodeInput[] | { readonly [key: string]: BencodeInput | undefined };

export class BencodeError extends Error {
  constructor(
    message: string,
    /** Where in the input the problem is (decoding), or -1 (encoding). */
    readonly offset: number,
  ) {
    super(offset >= 0 ? `${message} at byte ${offset}` : message);
    this.name = 'BencodeError';
  }
}

export interface BencodeLimits {
  /** Lists and dictionaries inside each other: the top-level one is depth 1. Default 32. */
  maxDepth?: number;
  /** Longest byte string. Default 1 MiB. */
  maxStringLength?: number;
  /** Longest input (decoding). Default 4 MiB. */
  maxInputLength?: number;
  /** Values in all (strings, integers, lists, dictionaries, dictionary keys not counted). Default 100,000. */
  maxItems?: number;
}

export interface DecodeOptions extends BencodeLimits {
  /** Byte strings as Buffers (default, exact) or as UTF-8 JS strings (invalid sequences become U+FFFD). */
  strings?: 'buffer' | 'utf8';
}

export const BENCODE_DEFAULT_LIMITS: Readonly<Required<BencodeLimits>> = Object.freeze({
  maxDepth: 32,
  maxStringLength: 1 << 20,
  maxInputLength: 4 << 20,
  maxItems: 100_000,
});

const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_COLON = 0x3a;
const CH_MINUS = 0x2d;
const CH_d = 0x64;
const CH_e = 0x65;
const CH_i = 0x69;
const CH_l = 0x6c;
/** Digits of an integer: 2^53 has 16, so 17 with a sign covers every safe integer (longer ones are refused). */
const MAX_INT_DIGITS = 16;

class Decoder {
  private pos = 0;
  private items = 0;
  private readonly maxDepth: number;
  private readonly maxStringLength: number;
  private readonly maxItems: number;
  private readonly utf8: boolean;

  constructor(
    private readonly buf: Buffer,
    options: DecodeOptions,
  ) {
    this.maxDepth = options.maxDepth ?? BENCODE_DEFAULT_LIMITS.maxDepth;
    this.maxStringLength = options.maxStringLength ?? BENCODE_DEFAULT_LIMITS.maxStringLength;
    this.maxItems = options.maxItems ?? BENCODE_DEFAULT_LIMITS.maxItems;
    this.utf8 = options.strings === 'utf8';
  }

  decodeAll(): BencodeValue {
    if (this.buf.length === 0) throw new BencodeError('empty input', 0);
    const value = this.value(1);
    if (this.pos !== this.buf.length) throw new BencodeError('data after the value', this.pos);
    return value;
  }

  private peek(): number {
    if (this.pos >= this.buf.length) throw new BencodeError('input ends inside a value', this.pos);
    return this.buf[this.pos]!;
  }

  private count(): void {
    if (++this.items > this.maxItems) throw new BencodeError(`more than ${this.maxItems} values`, this.pos);
  }

  private value(depth: number): BencodeValue {
    const c = this.peek();
    if (c === CH_i) return this.integer();
    if (c >= CH_0 && c <= CH_9) {
      this.count();
      const bytes = this.bytes();
      return this.utf8 ? bytes.toString('utf8') : Buffer.from(bytes);
    }
    if (c === CH_l || c === CH_d) {
      if (depth > this.maxDepth) throw new BencodeError(`nested deeper than ${this.maxDepth}`, this.pos);
      this.count();
      this.pos++;
      return c === CH_l ? this.list(depth) : this.dict(depth);
    }
    throw new BencodeError(`unexpected byte 0x${c.toString(16).padStart(2, '0')}`, this.pos);
  }

  private integer(): number {
    this.count();
    const start = this.pos;
    this.pos++; // 'i'
    let negative = false;
    if (this.peek() === CH_MINUS) {
      negative = true;
      this.pos++;
    }
    const digitsStart = this.pos;
    while (this.peek() !== CH_e) {
      const d = this.buf[this.pos]!;
      if (d < CH_0 || d > CH_9) throw new BencodeError('integer with a non-digit', this.pos);
      this.pos++;
    }
    const digits = this.pos - digitsStart;
    this.pos++; // 'e'
    if (digits === 0) throw new BencodeError('integer without digits', start);
    if (digits > 1 && this.buf[digitsStart] === CH_0) throw new BencodeError('integer with a leading zero', start);
    if (negative && digits === 1 && this.buf[digitsStart] === CH_0) throw new BencodeError('negative zero', start);
    if (digits > MAX_INT_DIGITS) throw new BencodeError('integer too large', start);
    const n = Number(this.buf.toString('latin1', digitsStart, digitsStart + digits));
    if (!Number.isSafeInteger(n)) throw new BencodeError('integer too large', start);
    return negative ? -n : n;
  }

  /** A byte string's bytes (a view into the input). */
  private bytes(): Buffer {
    const start = this.pos;
    let length = 0;
    while (this.peek() !== CH_COLON) {
      const d = this.buf[this.pos]!;
      if (d < CH_0 || d > CH_9) throw new BencodeError('string length with a non-digit', this.pos);
      if (this.pos > start && this.buf[start] === CH_0) throw new BencodeError('string length with a leading zero', start);
      length = length * 10 + (d - CH_0);
      if (length > this.maxStringLength) throw new BencodeError(`string longer than ${this.maxStringLength} bytes`, start);
      this.pos++;
    }
    if (this.pos === start) throw new BencodeError('string without a length', start);
    this.pos++; // ':'
    if (this.pos + length > this.buf.length) throw new BencodeError(`string of ${length} bytes runs past the end`, start);
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  private list(depth: number): BencodeValue[] {
    const out: BencodeValue[] = [];
    while (this.peek() !== CH_e) out.push(this.value(depth + 1));
    this.pos++;
    return out;
  }

  private dict(depth: number): BencodeDict {
    const out: BencodeDict = Object.create(null) as BencodeDict;
    while (this.peek() !== CH_e) {
      const at = this.pos;
      const c = this.buf[at]!;
      if (c < CH_0 || c > CH_9) throw new BencodeError('dictionary key is not a string', at);
      const key = this.bytes().toString('utf8');
      if (Object.prototype.hasOwnProperty.call(out, key)) throw new BencodeError(`dictionary key '${printable(key)}' twice`, at);
      out[key] = this.value(depth + 1);
    }
    this.pos++;
    return out;
  }
}

function printable(s: string): string {
  const cut = s.length > 40 ? `${s.slice(0, 40)}...` : s;
  return cut.replace(/[^\x20-\x7e]/g, '?');
}

/** Exactly one bencoded value, the whole of `input`; throws BencodeError on anything else (see the module comment). */
export function decodeBencode(input: Buffer | Uint8Array | string, options: DecodeOptions = {}): BencodeValue {
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const maxInput = options.maxInputLength ?? BENCODE_DEFAULT_LIMITS.maxInputLength;
  if (buf.length > maxInput) throw new BencodeError(`input of ${buf.length} bytes is longer than ${maxInput}`, 0);
  return new Decoder(buf, options).decodeAll();
}

/** A dictionary, the whole of `input` (the ng protocol's messages are one each); throws BencodeError otherwise. */
export function decodeBencodeDict(input: Buffer | Uint8Array | string, options: DecodeOptions = {}): BencodeDict {
  const v = decodeBencode(input, options);
  if (!isBencodeDict(v)) throw new BencodeError('not a dictionary', 0);
  return v;
}

export function isBencodeDict(v: unknown): v is BencodeDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Uint8Array);
}

/**
 * The bencoding of `value`: strings as their UTF-8 bytes, Uint8Arrays as they are, integers (numbers that are safe
 * integers, or bigints), lists, and dictionaries (plain objects; keys sorted by their bytes, `undefined` values
 * left out). Throws BencodeError for anything else (a fraction, NaN, null, a function), for nesting deeper than
 * `maxDepth` (a cycle too) and for a string longer than `maxStringLength`.
 */
export function encodeBencode(value: BencodeInput, limits: BencodeLimits = {}): Buffer {
  const chunks: Buffer[] = [];
  const maxDepth = limits.maxDepth ?? BENCODE_DEFAULT_LIMITS.maxDepth;
  const maxString = limits.maxStringLength ?? BENCODE_DEFAULT_LIMITS.maxStringLength;
  const str = (b: Uint8Array): void => {
    if (b.byteLength > maxString) throw new BencodeError(`string longer than ${maxString} bytes`, -1);
    chunks.push(Buffer.from(`${b.byteLength}:`, 'latin1'), Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  };
  const walk = (v: unknown, depth: number): void => {
    if (typeof v === 'string') return str(Buffer.from(v, 'utf8'));
    if (v instanceof Uint8Array) return str(v);
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new BencodeError(`${v} is not an integer bencoding can carry exactly`, -1);
      chunks.push(Buffer.from(`i${Object.is(v, -0) ? 0 : v}e`, 'latin1'));
      return;
    }
    if (typeof v === 'bigint') {
      chunks.push(Buffer.from(`i${v}e`, 'latin1'));
      return;
    }
    if (typeof v !== 'object' || v === null) throw new BencodeError(`cannot bencode ${v === null ? 'null' : typeof v}`, -1);
    if (depth > maxDepth) throw new BencodeError(`nested deeper than ${maxDepth}`, -1);
    if (Array.isArray(v)) {
      chunks.push(Buffer.from('l'));
      for (const item of v) walk(item, depth + 1);
      chunks.push(Buffer.from('e'));
      return;
    }
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => [Buffer.from(k, 'utf8'), x] as const)
      .sort((a, b) => Buffer.compare(a[0], b[0]));
    chunks.push(Buffer.from('d'));
    for (const [k, x] of entries) {
      str(k);
      walk(x, depth + 1);
    }
    chunks.push(Buffer.from('e'));
  };
  walk(value, 1);
  return Buffer.concat(chunks);
}

/** A decoded value as text: strings and Buffers (UTF-8), undefined for anything else. */
export function bencodeText(v: BencodeValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}
