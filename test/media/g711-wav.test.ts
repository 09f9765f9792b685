import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeUlaw, encodeUlaw, linearToUlaw, pcmuDescription, pcmuTarget, readWav, ulawToLinear, WavFormatError, writeWav } from '../../src/media/index.js';

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
