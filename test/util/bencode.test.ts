import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  BencodeError,
  bencodeText,
  decodeBencode,
  decodeBencodeDict,
  encodeBencode,
  isBencodeDict,
  type BencodeInput,
  type BencodeValue,
} from '../../src/util/bencode.js';

const text = (v: BencodeInput): string => encodeBencode(v).toString('latin1');

/** Deep equality of decoded values: dictionaries have no prototype, so compare them as entries. */
function plain(v: BencodeValue): unknown {
  if (Buffer.isBuffer(v)) return { buffer: v.toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  if (isBencodeDict(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

test('the BEP 3 examples encode and decode exactly', () => {
  assert.equal(text('spam'), '4:spam');
  assert.equal(text(''), '0:');
  assert.equal(text(3), 'i3e');
  assert.equal(text(-3), 'i-3e');
  assert.equal(text(0), 'i0e');
  assert.equal(text(-0), 'i0e');
  assert.equal(text(['spam', 'eggs']), 'l4:spam4:eggse');
  assert.equal(text({ cow: 'moo', spam: 'eggs' }), 'd3:cow3:moo4:spam4:eggse');
  assert.equal(text({ spam: ['a', 'b'] }), 'd4:spaml1:a1:bee');
  assert.equal(text([]), 'le');
  assert.equal(text({}), 'de');
  assert.deepEqual(plain(decodeBencode('d3:cow3:moo4:spam4:eggse', { strings: 'utf8' })), { cow: 'moo', spam: 'eggs' });
  assert.deepEqual(plain(decodeBencode('l4:spami42ee')), [{ buffer: Buffer.from('spam').toString('hex') }, 42]);
});

test('round trips: nested values, binary strings, UTF-8, the largest safe integers, bigints', () => {
  const binary = Buffer.from([0, 1, 2, 0xff, 0x20, 0x3a, 0x65]);
  const values: BencodeInput[] = [
    { command: 'offer', 'call-id': 'a84b4c76e66710@pc33', flags: ['trust address', 'symmetric'], replace: ['origin'], codec: { strip: ['all'], except: ['PCMU'] } },
    [1, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, [[[]]], {}],
    { blob: binary, 'ünïcødé ключ': 'значение ✓', empty: '' },
    'x'.repeat(70_000),
  ];
  for (const v of values) {
    const encoded = encodeBencode(v);
    const again = encodeBencode(decodeBencode(encoded) as BencodeInput);
    assert.ok(again.equals(encoded), 'encode(decode(encode(v))) is encode(v)');
  }
  const decoded = decodeBencodeDict(encodeBencode({ blob: binary, text: 'é' }));
  assert.ok(Buffer.isBuffer(decoded.blob) && decoded.blob.equals(binary), 'binary strings come back byte for byte');
  assert.equal(bencodeText(decoded.text), 'é');
  assert.equal(bencodeText(decodeBencodeDict(encodeBencode({ text: 'é' }), { strings: 'utf8' }).text), 'é');
  assert.equal(text(12345678901234567890n), 'i12345678901234567890e');
  assert.equal(bencodeText(42), undefined);
});

test('a decoded Buffer is a copy: the input can be reused (a socket buffer) without changing what was decoded', () => {
  const input = Buffer.from('d1:a3:xyze');
  const d = decodeBencodeDict(input);
  input.fill(0x41);
  assert.equal(bencodeText(d.a), 'xyz');
});

test('dictionary keys may come in any order (rtpengine does not sort them); encoding sorts them by their bytes', () => {
  const sorted = decodeBencodeDict('d6:result2:ok3:sdp3:v=0e', { strings: 'utf8' });
  const unsorted = decodeBencodeDict('d3:sdp3:v=06:result2:oke', { strings: 'utf8' });
  assert.deepEqual(plain(sorted), plain(unsorted));
  assert.deepEqual(plain(unsorted), { sdp: 'v=0', result: 'ok' });
  assert.equal(text({ b: 1, a: 2, B: 3, aa: 4 }), 'd1:Bi3e1:ai2e2:aai4e1:bi1ee');
  // Undefined values are left out, so optional keys can be written as they are.
  assert.equal(encodeBencode({ a: 1, b: undefined }).toString(), 'd1:ai1ee');
});

test('__proto__ and constructor are ordinary keys of a decoded dictionary (no prototype pollution)', () => {
  const d = decodeBencodeDict('d9:__proto__d8:pollutedi1ee11:constructori2ee', { strings: 'utf8' });
  assert.equal(Object.getPrototypeOf(d), null);
  assert.ok(isBencodeDict(d.__proto__));
  assert.equal(d.constructor, 2);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('malformed input is a BencodeError with the offset, never another error and never a partial value', () => {
  const bad: Array<[string | Buffer, RegExp]> = [
    ['', /empty/],
    ['i', /ends inside/],
    ['ie', /without digits/],
    ['i-e', /without digits/],
    ['i03e', /leading zero/],
    ['i-0e', /negative zero/],
    ['i1.5e', /non-digit/],
    ['i 1e', /non-digit/],
    ['i+1e', /non-digit/],
    ['i12', /ends inside/],
    ['i99999999999999999e', /too large/],
    ['i9007199254740993e', /too large/],
    ['5:abc', /runs past the end/],
    ['05:abcde', /leading zero/],
    ['-1:a', /unexpected byte/],
    ['3abc', /non-digit/],
    ['4294967297:x', /longer than/],
    [':', /unexpected byte/],
    ['l', /ends inside/],
    ['li1e', /ends inside/],
    ['d', /ends inside/],
    ['d1:a', /ends inside/],
    ['di1ei2ee', /key is not a string/],
    ['dl1:ae1:be', /key is not a string/],
    ['d1:ai1e1:ai2ee', /key 'a' twice/],
    ['i1ei2e', /data after/],
    ['le ', /data after/],
    ['x', /unexpected byte 0x78/],
    ['e', /unexpected byte/],
    [Buffer.from([0xff]), /unexpected byte 0xff/],
  ];
  for (const [input, reason] of bad) {
    assert.throws(
      () => decodeBencode(input),
      (err: unknown) => err instanceof BencodeError && reason.test(err.message) && err.offset >= 0,
      `${JSON.stringify(input.toString())} is refused with ${reason}`,
    );
  }
  assert.throws(() => decodeBencodeDict('l1:ae'), /not a dictionary/);
  assert.throws(() => decodeBencodeDict('4:spam'), BencodeError);
});

test('nesting deeper than maxDepth is refused before it recurses (decoding and encoding, cycles too)', () => {
  const deep = (n: number): string => 'l'.repeat(n) + 'e'.repeat(n);
  assert.doesNotThrow(() => decodeBencode(deep(32)));
  assert.throws(() => decodeBencode(deep(33)), /nested deeper than 32/);
  assert.throws(() => decodeBencode(deep(5), { maxDepth: 4 }), /nested deeper than 4/);
  // Far deeper than the JS stack would take: still a BencodeError, not a RangeError.
  assert.throws(() => decodeBencode(deep(200_000)), BencodeError);
  assert.throws(() => decodeBencode('d1:a'.repeat(40) + 'i1e' + 'e'.repeat(40)), /nested deeper/);
  let nested: BencodeInput = 'leaf';
  for (let i = 0; i < 40; i++) nested = [nested];
  assert.throws(() => encodeBencode(nested), /nested deeper than 32/);
  const cyclic: Record<string, BencodeInput> = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeBencode(cyclic), BencodeError);
});

test('length limits: input, strings, number of values', () => {
  assert.throws(() => decodeBencode(Buffer.alloc(100, 0x30), { maxInputLength: 99 }), /input of 100 bytes is longer than 99/);
  assert.throws(() => decodeBencode('11:hello world', { maxStringLength: 10 }), /string longer than 10 bytes/);
  assert.doesNotThrow(() => decodeBencode('10:helloworld', { maxStringLength: 10 }));
  assert.throws(() => decodeBencode(`l${'i1e'.repeat(11)}e`, { maxItems: 10 }), /more than 10 values/);
  assert.throws(() => encodeBencode('x'.repeat(11), { maxStringLength: 10 }), /string longer than 10 bytes/);
});

test('values bencoding cannot carry are refused when encoding', () => {
  for (const v of [1.5, NaN, Infinity, 2 ** 53, null, true, () => 1, Symbol('s')]) {
    assert.throws(() => encodeBencode(v as unknown as BencodeInput), BencodeError, String(v));
  }
  assert.throws(() => encodeBencode({ a: [1, null] } as unknown as BencodeInput), /cannot bencode null/);
});

test('fuzz: random bytes and mutations of valid messages decode or throw BencodeError, nothing else', () => {
  const valid = encodeBencode({
    command: 'offer',
    'call-id': 'abc',
    sdp: 'v=0\r\nm=audio 4000 RTP/AVP 0\r\n',
    flags: ['symmetric', 'port latching'],
    codec: { strip: ['all'], except: ['PCMU'] },
    limit: 32,
  });
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    let input: Buffer;
    if (i % 2 === 0) {
      input = randomBytes(1 + (i % 40));
    } else {
      input = Buffer.from(valid);
      const r = randomBytes(4);
      const at = ((r[0]! << 8) | r[1]!) % input.length;
      if (r[2]! % 3 === 0) input = input.subarray(0, at);
      else if (r[2]! % 3 === 1) input[at] = r[3]!;
      else input = Buffer.concat([input.subarray(0, at), Buffer.from([r[3]!]), input.subarray(at)]);
    }
    try {
      decodeBencode(input, { strings: i % 4 === 1 ? 'utf8' : 'buffer' });
      decoded++;
    } catch (err) {
      assert.ok(err instanceof BencodeError, `${input.toString('hex')}: ${String(err)}`);
    }
  }
  assert.ok(decoded < 20_000);
});
