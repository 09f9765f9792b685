/**
 * Call-ID steering on raw bytes: which bytes count as the Call-ID value, and that the string form used to generate
 * Call-IDs agrees with the byte form used to steer received datagrams.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { callIdHash, callIdOwner, callIdSpan, ownerWorker } from '../../src/message/steering.js';
import { parseMessage } from '../../src/message/parser.js';
import { readIndex } from '../helpers/conformance.js';
import { sharedPath } from '../helpers/paths.js';
import { seededRandom } from '../helpers/random.js';

const START = 'INVITE sip:bob@example.com SIP/2.0';
const VIA = 'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1';

/** The Call-ID the steering finds in `text`, as a string, or undefined. */
function found(text: string | Buffer): string | undefined {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  const span = callIdSpan(bytes);
  return span === undefined ? undefined : bytes.toString('utf8', span.start, span.end);
}

function request(...headers: string[]): string {
  return [START, VIA, ...headers, 'CSeq: 1 INVITE', '', ''].join('\r\n');
}

const WORD_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`\'~()<>:\\"/[]?{}';

function randomCallId(rand: () => number): string {
  const pick = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += WORD_CHARS[Math.floor(rand() * WORD_CHARS.length)];
    return s;
  };
  const local = pick(4 + Math.floor(rand() * 28));
  return rand() < 0.7 ? `${local}@${pick(3 + Math.floor(rand() * 12))}` : local;
}

test('the long form is found in any case', () => {
  for (const name of ['Call-ID', 'CALL-ID', 'call-id', 'Call-Id', 'cAlL-iD']) {
    assert.equal(found(request(`${name}: abc@host`)), 'abc@host', name);
  }
});

test('the compact form i is found in either case', () => {
  assert.equal(found(request('i: compact@host')), 'compact@host');
  assert.equal(found(request('I: upper@host')), 'upper@host');
});

test('whitespace before the colon and around the value is not part of the value', () => {
  assert.equal(found(request('Call-ID  \t: abc@host')), 'abc@host');
  assert.equal(found(request('Call-ID:\t  abc@host \t ')), 'abc@host');
  assert.equal(found(request('Call-ID:abc@host')), 'abc@host');
  assert.equal(found(request('i\t:\tabc')), 'abc');
});

test('bare LF line ends and a mix of LF and CRLF are handled', () => {
  assert.equal(found([START, VIA, 'Call-ID: lf@host  ', 'CSeq: 1 INVITE', '', ''].join('\n')), 'lf@host');
  assert.equal(found(`${START}\r\n${VIA}\nCall-ID: mixed@host\r\nCSeq: 1 INVITE\n\r\n`), 'mixed@host');
});

test('a folded value is taken whole and trimmed, so folding around the Call-ID does not change it', () => {
  assert.equal(found(request('Call-ID:\r\n  folded@host', 'Max-Forwards: 70')), 'folded@host');
  assert.equal(found(request('Call-ID: folded@host\r\n \t', 'Max-Forwards: 70')), 'folded@host');
  assert.equal(found([START, 'Call-ID:\n\tlf-folded@host', '', ''].join('\n')), 'lf-folded@host');
});

test('leading CRLFs before the start line are skipped, as the parser does', () => {
  assert.equal(found('\r\n\r\n' + request('Call-ID: after-crlf@host')), 'after-crlf@host');
});

test('the start line is never read as a header', () => {
  assert.equal(found('Call-ID: start-line\r\nVia: x\r\n\r\n'), undefined);
});

test('a Call-ID in the body is not the message Call-ID', () => {
  const text = [START, VIA, 'CSeq: 1 INVITE', 'Content-Type: message/sipfrag', '', 'Call-ID: in-body@host', 'i: also-body', ''].join('\r\n');
  assert.equal(found(text), undefined);
});

test('header names that merely contain or start like Call-ID do not match', () => {
  assert.equal(found(request('X-Call-ID: prefixed@host')), undefined);
  assert.equal(found(request('Call-Info: <http://example.com/x>;purpose=info')), undefined);
  assert.equal(found(request('Call-IDs: plural@host')), undefined);
  assert.equal(found(request('Call_ID: underscore@host')), undefined);
  assert.equal(found(request('Id: not-compact@host')), undefined);
  assert.equal(found(request('ii: doubled@host')), undefined);
  assert.equal(found(request('Call-ID x: spaced@host')), undefined);
  // ... and do not hide the real one that follows.
  assert.equal(found(request('X-Call-ID: prefixed@host', 'Call-Info: <http://a>', 'Call-ID: real@host')), 'real@host');
});

test('a header line without a colon is skipped, not taken for a Call-ID', () => {
  assert.equal(found(request('Call-ID abc@host')), undefined);
  assert.equal(found(request('Call-ID', 'i: next@host')), 'next@host');
  assert.equal(found(request('Call-ID\r\n : folded-colon@host')), undefined);
});

test('no Call-ID, or an empty one, gives undefined', () => {
  assert.equal(found(request('Max-Forwards: 70')), undefined);
  assert.equal(found(request('Call-ID:')), undefined);
  assert.equal(found(request('Call-ID:  \t ')), undefined);
  assert.equal(found(''), undefined);
  assert.equal(found('\r\n\r\n'), undefined);
  assert.equal(found('INVITE sip:x SIP/2.0'), undefined);
  assert.equal(ownerWorker(Buffer.from(request('Max-Forwards: 70')), 4), undefined);
});

test('only the first Call-ID counts', () => {
  assert.equal(found(request('Call-ID: first@host', 'i: second@host')), 'first@host');
});

test('a datagram without the empty line still yields a Call-ID on a complete line, but not on a cut-off one', () => {
  assert.equal(found(`${START}\r\n${VIA}\r\nCall-ID: no-blank@host\r\n`), 'no-blank@host');
  assert.equal(found(`${START}\r\n${VIA}\r\nCall-ID: cut-off@ho`), undefined);
});

test('responses are steered by the same header', () => {
  const ok = ['SIP/2.0 200 OK', VIA, 'To: <sip:bob@example.com>;tag=1', 'call-id: response@host', 'CSeq: 1 INVITE', '', ''].join('\r\n');
  assert.equal(found(ok), 'response@host');
  const bytes = Buffer.from(ok);
  assert.equal(ownerWorker(bytes, 5), callIdOwner('response@host', 5));
});

test('callIdHash is FNV-1a 32 over the span', () => {
  // Reference values of FNV-1a 32.
  assert.equal(callIdHash(Buffer.from(''), 0, 0), 0x811c9dc5);
  assert.equal(callIdHash(Buffer.from('a'), 0, 1), 0xe40c292c);
  assert.equal(callIdHash(Buffer.from('foobar'), 0, 6), 0xbf9cf968);
  assert.equal(callIdHash(Buffer.from('xxfoobaryy'), 2, 8), 0xbf9cf968);
  assert.throws(() => callIdHash(Buffer.from('abc'), 2, 4), RangeError);
  assert.throws(() => callIdHash(Buffer.from('abc'), 2, 1), RangeError);
});

test('a worker count that is not a positive integer is refused', () => {
  const bytes = Buffer.from(request('Call-ID: x@y'));
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => ownerWorker(bytes, bad), RangeError);
    assert.throws(() => callIdOwner('x@y', bad), RangeError);
  }
  assert.equal(ownerWorker(bytes, 1), 0);
});

test('callIdOwner agrees with ownerWorker on 1,000 random Call-IDs for N = 2..8', () => {
  const rand = seededRandom(4475);
  for (let i = 0; i < 1000; i++) {
    const callId = randomCallId(rand);
    const compact = rand() < 0.3;
    const bytes = Buffer.from(request(`${compact ? 'i' : 'Call-ID'}: ${callId}`));
    assert.equal(found(bytes), callId);
    for (let n = 2; n <= 8; n++) assert.equal(ownerWorker(bytes, n), callIdOwner(callId, n), `${callId} N=${n}`);
  }
});

test('callIdOwner hashes the UTF-8 bytes Buffer.from would produce, surrogates included', () => {
  const samples = ['caf\u00e9@h\u00f4te', '\u4e2d\u6587@example', '\u{1f4de}call@host', 'lone\ud800surrogate', 'end\udc00', 'x\u07ff\u0800\uffff'];
  for (const s of samples) {
    const utf8 = Buffer.from(s, 'utf8');
    for (let n = 2; n <= 8; n++) {
      assert.equal(callIdOwner(s, n), callIdHash(utf8, 0, utf8.length) % n, `${JSON.stringify(s)} N=${n}`);
    }
    const bytes = Buffer.from(request(`Call-ID: ${s}`));
    assert.equal(ownerWorker(bytes, 7), callIdOwner(s, 7));
  }
});

test('four workers each own 20-30 % of 10,000 random Call-IDs', () => {
  const rand = seededRandom(3261);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 10_000; i++) {
    const owner = ownerWorker(Buffer.from(request(`Call-ID: ${randomCallId(rand)}`)), 4);
    assert.ok(owner !== undefined);
    counts[owner]!++;
  }
  for (const [worker, count] of counts.entries()) {
    assert.ok(count >= 2000 && count <= 3000, `worker ${worker} owns ${count} of 10000 (${counts.join(', ')})`);
  }
});

test('every RFC 4475 torture message is scanned without throwing, and agrees with the parser when it parses', () => {
  const entries = readIndex('rfc4475');
  assert.ok(entries.length > 0);
  for (const e of entries) {
    const bytes = readFileSync(sharedPath('conformance', 'rfc4475', `${e.name}.dat`));
    const span = callIdSpan(bytes);
    for (let n = 1; n <= 8; n++) ownerWorker(bytes, n);
    const r = parseMessage(bytes);
    if (r.ok) {
      assert.ok(span, `${e.name}: parsed but no Call-ID span`);
      assert.equal(bytes.toString('utf8', span.start, span.end), r.message.callId, e.name);
    }
    // Truncated copies (a datagram cut anywhere) must not throw either.
    for (let cut = 0; cut < bytes.length; cut += 7) callIdSpan(bytes.subarray(0, cut));
  }
});
