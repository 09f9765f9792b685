import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WsFrameTracker } from '../../src/transport/ws-frames.js';

/** A masked client frame (RFC 6455 §5.2) with a payload of `length` octets. */
function frame(opcode: number, fin: boolean, length: number): Buffer {
  const head = length < 126 ? [length | 0x80] : length < 65536 ? [126 | 0x80, length >> 8, length & 0xff] : [127 | 0x80, 0, 0, 0, 0, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff];
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, ...head, 1, 2, 3, 4]), Buffer.alloc(length, 0x41)]);
}

test('knows whether a message is unfinished, whatever the frame lengths and wherever the reads are cut', () => {
  const stream = Buffer.concat([frame(1, true, 5), frame(2, true, 300), frame(1, true, 70_000)]);
  const ends = new Set([frame(1, true, 5).length, frame(1, true, 5).length + frame(2, true, 300).length, stream.length]);
  const tracker = new WsFrameTracker();
  for (let i = 0; i < stream.length; i++) {
    tracker.push(stream.subarray(i, i + 1));
    assert.equal(tracker.inMessage, !ends.has(i + 1), `after octet ${i + 1}`);
  }
});

test('a fragmented message stays unfinished across its fragments and the control frames between them', () => {
  const tracker = new WsFrameTracker();
  tracker.push(frame(1, false, 10));
  assert.equal(tracker.inMessage, true);
  tracker.push(frame(9, true, 0));
  assert.equal(tracker.inMessage, true, 'a ping between fragments does not end the message');
  tracker.push(frame(0, true, 10));
  assert.equal(tracker.inMessage, false);
});
