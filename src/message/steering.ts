/**
 * Call-ID steering for `serve --workers N`: the kernel hands a UDP datagram to any worker sharing the socket, so
 * each worker must find the worker owning the message's call before paying for a full parse (a misdirected message
 * would otherwise be parsed twice). Everything here works on the raw bytes: no regex, no string of the message,
 * no allocation beyond the returned span.
 *
 * The scan mirrors the parser's line rules so that, for any message the parser accepts, the span's bytes are exactly
 * the Call-ID value it reports: only LF-terminated lines count (an optional CR before the LF), leading CR/LF before
 * the start line are skipped, a line starting with SP/HTAB continues the previous field (§7.3.1). A datagram may lack
 * the empty line after the headers; its complete header lines are still scanned, a cut-off last line is not.
 */

import { FNV_OFFSET_BASIS, FNV_PRIME } from '../util/hash.js';
import { isLws } from './chars.js';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

export interface ByteSpan {
  start: number;
  end: number;
}

/**
 * The byte range of the first Call-ID (or compact `i`) header value, trimmed of surrounding whitespace. A folded
 * value is taken whole, from the first non-blank byte after the colon to the last non-blank byte of the field, so
 * `Call-ID:\r\n abc@host` yields `abc@host` (a Call-ID has no inner whitespace, so folding only ever surrounds it).
 * Undefined when there is no Call-ID among the complete header lines or its value is empty.
 */
export function callIdSpan(bytes: Buffer): ByteSpan | undefined {
  const length = bytes.length;
  let pos = 0;
  while (pos < length && (bytes[pos] === CR || bytes[pos] === LF)) pos++;
  let lf = bytes.indexOf(LF, pos);
  if (lf < 0) return undefined;
  pos = lf + 1; // past the start line

  while (pos < length) {
    lf = bytes.indexOf(LF, pos);
    if (lf < 0) return undefined; // a cut-off line is not a header
    const first = bytes[pos]!;
    if (first === LF || (first === CR && lf === pos + 1)) return undefined; // the empty line: end of headers
    if (first !== SP && first !== HTAB && isCallIdName(bytes, pos, lf)) return valueSpan(bytes, pos, lf);
    pos = lf + 1;
  }
  return undefined;
}

/** True when the line at `pos` (its LF at `lf`) is `Call-ID` or `i`, any case, then optional SP/HTAB, then a colon. */
function isCallIdName(bytes: Buffer, pos: number, lf: number): boolean {
  let end = pos;
  while (end < lf) {
    const c = bytes[end]!;
    if (c === COLON || c === SP || c === HTAB || c === CR) break;
    end++;
  }
  const nameLength = end - pos;
  if (nameLength === 1) {
    if ((bytes[pos]! | 0x20) !== 0x69) return false; // i
  } else if (nameLength === 7) {
    // OR-ing 0x20 folds ASCII letters to lower case; the hyphen is compared exactly.
    if (
      (bytes[pos]! | 0x20) !== 0x63 || // c
      (bytes[pos + 1]! | 0x20) !== 0x61 || // a
      (bytes[pos + 2]! | 0x20) !== 0x6c || // l
      (bytes[pos + 3]! | 0x20) !== 0x6c || // l
      bytes[pos + 4] !== 0x2d || // -
      (bytes[pos + 5]! | 0x20) !== 0x69 || // i
      (bytes[pos + 6]! | 0x20) !== 0x64 // d
    ) {
      return false;
    }
  } else return false;
  while (end < lf && (bytes[end] === SP || bytes[end] === HTAB)) end++;
  return bytes[end] === COLON && end < lf;
}

/** The trimmed value of the field whose name starts at `pos` and whose first line ends at `lf`. */
function valueSpan(bytes: Buffer, pos: number, lf: number): ByteSpan | undefined {
  const length = bytes.length;
  let start = bytes.indexOf(COLON, pos) + 1;
  // The field runs on through continuation lines, each complete (LF-terminated) like every header line.
  let fieldEnd = lf;
  while (fieldEnd + 1 < length && (bytes[fieldEnd + 1] === SP || bytes[fieldEnd + 1] === HTAB)) {
    const next = bytes.indexOf(LF, fieldEnd + 1);
    if (next < 0) break;
    fieldEnd = next;
  }
  let end = fieldEnd;
  while (start < end && isLws(bytes[start]!)) start++;
  while (end > start && isLws(bytes[end - 1]!)) end--;
  return start < end ? { start, end } : undefined;
}

/** FNV-1a, 32 bits, unsigned, over `bytes[start..end)`. */
export function callIdHash(bytes: Buffer, start: number, end: number): number {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= bytes.length)) {
    throw new RangeError(`callIdHash: span ${start}..${end} is outside the ${bytes.length}-byte buffer`);
  }
  let h = FNV_OFFSET_BASIS;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h >>> 0;
}

/** The worker (0..workers-1) owning the message's call, or undefined when it has no usable Call-ID. */
export function ownerWorker(bytes: Buffer, workers: number): number | undefined {
  checkWorkers(workers);
  const span = callIdSpan(bytes);
  return span === undefined ? undefined : callIdHash(bytes, span.start, span.end) % workers;
}

/**
 * The worker owning a Call-ID given as a string: the same hash over its UTF-8 bytes, so a worker can generate
 * Call-IDs that come back to itself. Encodes on the fly (lone surrogates as U+FFFD, as Buffer.from does), allocating nothing.
 */
export function callIdOwner(callId: string, workers: number): number {
  checkWorkers(workers);
  let h = FNV_OFFSET_BASIS;
  const n = callId.length;
  for (let i = 0; i < n; i++) {
    let cp = callId.charCodeAt(i);
    if (cp < 0x80) {
      h = Math.imul(h ^ cp, FNV_PRIME);
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const low = i + 1 < n ? callId.charCodeAt(i + 1) : 0;
      if (cp <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else cp = 0xfffd;
    }
    if (cp < 0x800) {
      h = Math.imul(h ^ (0xc0 | (cp >> 6)), FNV_PRIME);
    } else if (cp < 0x10000) {
      h = Math.imul(h ^ (0xe0 | (cp >> 12)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME);
    } else {
      h = Math.imul(h ^ (0xf0 | (cp >> 18)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | ((cp >> 12) & 0x3f)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME);
    }
    h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME);
  }
  return (h >>> 0) % workers;
}

function checkWorkers(workers: number): void {
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer (got ${workers})`);
}
