import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  alawToLinear,
  decodeAlaw,
  decodeG711,
  decodeUlaw,
  encodeAlaw,
  encodeG711,
  encodeUlaw,
  G711_ALAW,
  G711_ULAW,
  g711Codec,
  linearToAlaw,
  linearToUlaw,
  pcmuDescription,
  pcmuTarget,
  readWav,
  ulawToLinear,
  WavFormatError,
  writeWav,
} from '../../src/media/index.js';

test('G.711 µ-law: the code points of the recommendation and a round trip within its quantisation step', () => {
  assert.equal(linearToUlaw(0), 0xff);
  assert.equal(linearToUlaw(32767), 0x80);
  assert.equal(linearToUlaw(-32768), 0x00);
  assert.equal(ulawToLinear(0xff), 0);
  assert.equal(ulawToLinear(0x80), 32124);
  assert.equal(ulawToLinear(0x00), -32124);
  for (let s = -32000; s <= 32000; s += 97) {
    const back = ulawToLinear(linearToUlaw(s));
    // The segment step doubles with the magnitude: the error stays within half of it (about 1/16 of the value, +4).
    assert.ok(Math.abs(back - s) <= Math.abs(s) / 16 + 8, `${s} -> ${back}`);
  }
  const pcm = Int16Array.from([0, 1000, -1000, 20000]);
  assert.deepEqual([...decodeUlaw(encodeUlaw(pcm))].map((v, i) => Math.abs(v - pcm[i]!) <= Math.abs(pcm[i]!) / 16 + 8), [true, true, true, true]);
});

test('G.711 A-law: the code points of the recommendation and a round trip within its quantisation step', () => {
  assert.equal(linearToAlaw(0), 0xd5);
  assert.equal(linearToAlaw(32767), 0xaa);
  assert.equal(linearToAlaw(-32768), 0x2a);
  assert.equal(linearToAlaw(-1), 0x55);
  assert.equal(linearToAlaw(40000), 0xaa, 'clipped');
  assert.equal(alawToLinear(0xd5), 8);
  assert.equal(alawToLinear(0x55), -8);
  assert.equal(alawToLinear(0xaa), 32256);
  assert.equal(alawToLinear(0x2a), -32256);
  // Every code decodes to a value that encodes to the same code: the reconstruction levels lie inside their steps.
  for (let code = 0; code < 256; code++) assert.equal(linearToAlaw(alawToLinear(code)), code, `code ${code}`);
  for (let s = -32000; s <= 32000; s += 97) {
    const back = alawToLinear(linearToAlaw(s));
    // Steps are 16 up to 511 and then double per segment: half a step is at most 1/32 of the value, +1 for negatives.
    assert.ok(Math.abs(back - s) <= Math.abs(s) / 32 + 9, `${s} -> ${back}`);
  }
  const pcm = Int16Array.from([0, 1000, -1000, 20000]);
  assert.deepEqual([...decodeAlaw(encodeAlaw(pcm))].map((v, i) => Math.abs(v - pcm[i]!) <= Math.abs(pcm[i]!) / 32 + 9), [true, true, true, true]);
});

test('G.711 laws: each law\'s payload type and silence code, and encodeG711/decodeG711 picking the law', () => {
  assert.deepEqual({ ...G711_ULAW }, { law: 'pcmu', payloadType: 0, encodingName: 'PCMU', silence: 0xff });
  assert.deepEqual({ ...G711_ALAW }, { law: 'pcma', payloadType: 8, encodingName: 'PCMA', silence: 0xd5 });
  assert.equal(g711Codec('pcma'), G711_ALAW);
  assert.equal(g711Codec('pcmu'), G711_ULAW);
  for (const codec of [G711_ULAW, G711_ALAW]) assert.deepEqual([...encodeG711(codec.law, new Int16Array(3))], [codec.silence, codec.silence, codec.silence]);
  const pcm = Int16Array.from([0, 1000, -1000, 20000]);
  assert.deepEqual(encodeG711('pcma', pcm), encodeAlaw(pcm));
  assert.deepEqual(encodeG711('pcmu', pcm), encodeUlaw(pcm));
  assert.deepEqual(decodeG711('pcma', encodeAlaw(pcm)), decodeAlaw(encodeAlaw(pcm)));
  assert.deepEqual(decodeG711('pcmu', encodeUlaw(pcm)), decodeUlaw(encodeUlaw(pcm)));
});

test('WAV: 16-bit mono 8 kHz written and read back; other formats refused naming what they are', () => {
  const samples = Int16Array.from([0, 1, -1, 32767, -32768]);
  assert.deepEqual([...readWav(writeWav(samples))], [...samples]);
  const stereo = writeWav(samples);
  stereo.writeUInt16LE(2, 22);
  assert.throws(() => readWav(stereo), (e: unknown) => e instanceof WavFormatError && /2 channel\(s\), 8000 Hz, 16-bit/.test(e.message));
  assert.throws(() => readWav(Buffer.from('not a wav file')), /not a RIFF\/WAVE file/);
  assert.throws(() => readWav(writeWav(samples).subarray(0, 36)), /no data chunk/);
});

test('a PCMU offer names our address and port; the peer\'s PCMU target is read back, and none is found without PCMU', () => {
  const offer = pcmuDescription('192.0.2.7', 40000, 1);
  assert.deepEqual(pcmuTarget(offer), { address: '192.0.2.7', port: 40000 });
  assert.equal(pcmuTarget(offer.replace('RTP/AVP 0', 'RTP/AVP 8')), undefined);
  assert.equal(pcmuTarget(offer.replace('m=audio 40000', 'm=audio 0')), undefined);
  assert.equal(pcmuTarget(undefined), undefined);
  assert.equal(pcmuTarget('garbage'), undefined);
});
