import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { StreamFramer, parseMessage, resolveLimits, type ParseError } from '../../src/message/index.js';
import { wire, INVITE_LINES, OK_LINES, SDP_BODY } from '../helpers/messages.js';
import { sharedPath } from '../helpers/paths.js';

interface Collected {
  messages: Buffer[];
  pings: number;
  errors: Array<{ error: ParseError; head: Buffer | undefined }>;
}

function collector(limits = resolveLimits()): { framer: StreamFramer; out: Collected } {
  const out: Collected = { messages: [], pings: 0, errors: [] };
  const framer = new StreamFramer(
    {
      message: (b) => out.messages.push(Buffer.from(b)),
      ping: () => out.pings++,
      error: (error, head) => out.errors.push({ error, head }),
    },
    limits,
  );
  return { framer, out };
}

const invite = wire(INVITE_LINES, SDP_BODY);
const ok = wire(OK_LINES, SDP_BODY);
// mpart01 has NULs and bare CR/LF inside its body: framing must go by Content-Length, never by scanning lines.
const mpart = readFileSync(sharedPath('conformance', 'rfc4475', 'mpart01.dat'));
const stream = Buffer.concat([invite, Buffer.from('\r\n\r\n'), ok, mpart, invite]);

test('frames a stream split at every byte offset into two chunks', () => {
  for (let cut = 0; cut <= stream.length; cut++) {
    const { framer, out } = collector();
    framer.push(stream.subarray(0, cut));
    framer.push(stream.subarray(cut));
    assert.equal(out.messages.length, 4, `cut at ${cut}`);
    assert.deepEqual(out.messages[0], invite);
    assert.deepEqual(out.messages[1], ok);
    assert.deepEqual(out.messages[2], mpart);
    assert.deepEqual(out.messages[3], invite);
    assert.equal(out.pings, 1, `cut at ${cut}`);
    assert.equal(framer.pendingBytes, 0);
  }
});

test('frames a stream delivered one byte at a time', () => {
  const { framer, out } = collector();
  for (let i = 0; i < stream.length; i++) framer.push(stream.subarray(i, i + 1));
  assert.equal(out.messages.length, 4);
  for (const m of out.messages) assert.ok(parseMessage(m, { stream: true }).ok);
});

test('a single CRLF is a pong, a double CRLF a ping (RFC 5626 §4.4.1)', () => {
  const { framer, out } = collector();
  framer.push(Buffer.from('\r\n'));
  assert.equal(out.pings, 0);
  framer.push(Buffer.from('\r\n'));
  assert.equal(out.pings, 1);
  framer.push(Buffer.from('\r\n\r\n\r\n\r\n'));
  assert.equal(out.pings, 3);
});

test('bad, negative or conflicting Content-Length makes the stream unframeable (RFC 4475 ncl, mcl01)', () => {
  for (const name of ['ncl', 'mcl01']) {
    const { framer, out } = collector();
    framer.push(readFileSync(sharedPath('conformance', 'rfc4475', `${name}.dat`)));
    assert.equal(out.messages.length, 0, name);
    assert.equal(out.errors.length, 1, name);
    assert.equal(out.errors[0]!.error.code, 'CONTENT_LENGTH');
    assert.ok(out.errors[0]!.head && out.errors[0]!.head.length > 0, 'the header section is handed over for a 400');
    framer.push(invite);
    assert.equal(out.messages.length, 0, 'nothing is framed after a framing error');
  }
});

test('a header section or body over the limits is an error, not unbounded buffering', () => {
  const limits = resolveLimits({ maxMessageSize: 400, maxBodySize: 100 });
  const a = collector(limits);
  a.framer.push(Buffer.from('INVITE sip:a@b SIP/2.0\r\n' + 'X: y\r\n'.repeat(100)));
  assert.equal(a.out.errors[0]?.error.status, 513);
  const b = collector(limits);
  b.framer.push(wire(INVITE_LINES.slice(0, 3), 'x'.repeat(200)));
  assert.equal(b.out.errors[0]?.error.status, 513);
});

test('a message trickled one byte per read is held in one buffer that never outgrows the limit', () => {
  const limits = resolveLimits();
  const { framer, out } = collector(limits);
  let largest = 0;
  for (let i = 0; i < stream.length; i++) {
    framer.push(stream.subarray(i, i + 1));
    assert.ok(framer.heldBuffers <= 1, `${framer.heldBuffers} buffers held after byte ${i}`);
    largest = Math.max(largest, framer.heldBytes);
  }
  assert.equal(out.messages.length, 4);
  assert.deepEqual(out.messages[2], mpart);
  assert.ok(largest <= Math.max(invite.length, ok.length, mpart.length) * 2, `${largest} bytes held for messages under ${mpart.length}`);
  assert.equal(framer.heldBuffers, 0, 'nothing is held between messages');
  assert.equal(framer.heldBytes, 0);
});

test('a header section trickled past the limit is refused at the limit with its lines for a 513', () => {
  const limits = resolveLimits();
  const { framer, out } = collector(limits);
  const start = Buffer.from('INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP client.example.com;branch=z9hG4bK-big\r\n');
  for (let i = 0; i < start.length; i++) framer.push(start.subarray(i, i + 1));
  const filler = Buffer.from('X-Filler: ' + 'y'.repeat(80) + '\r\n');
  let pushed = start.length;
  while (out.errors.length === 0) {
    for (let i = 0; i < filler.length && out.errors.length === 0; i++, pushed++) {
      framer.push(filler.subarray(i, i + 1));
      assert.ok(framer.heldBuffers <= 1 && framer.heldBytes <= limits.maxMessageSize, `held ${framer.heldBuffers} buffers, ${framer.heldBytes} bytes`);
    }
  }
  assert.equal(pushed, limits.maxMessageSize + 1, 'refused at the first byte over the limit');
  const { error, head } = out.errors[0]!;
  assert.equal(error.status, 513);
  assert.equal(error.reason, `header section larger than the limit of ${limits.maxMessageSize} bytes`);
  assert.ok(head, 'the complete lines are handed over for an answer');
  assert.ok(head.subarray(0, start.length).equals(start));
  assert.equal(head[head.length - 1], 0x0a, 'only complete lines');
  assert.equal(framer.heldBytes, 0, 'nothing is held after the error');
});

test('a message in one read is handed on in place; one in pieces is copied once into a buffer of its size', () => {
  const raw: Buffer[] = [];
  const framer = new StreamFramer({ message: (b) => raw.push(b), ping: () => undefined, error: () => undefined });
  const whole = Buffer.concat([invite, ok]);
  framer.push(whole);
  assert.equal(raw.length, 2);
  assert.ok(raw.every((m) => m.buffer === whole.buffer), 'slices of the read, not copies');
  assert.equal(framer.heldBuffers, 0);
  const pieces = collector();
  pieces.framer.push(invite.subarray(0, 10));
  pieces.framer.push(invite.subarray(10, invite.length - 5));
  assert.equal(pieces.framer.heldBytes, invite.length, 'sized to the message once Content-Length is known');
  pieces.framer.push(invite.subarray(invite.length - 5));
  assert.deepEqual(pieces.out.messages[0], invite);
});
