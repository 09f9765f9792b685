import { DEFAULT_LIMITS, type MessageLimits } from './limits.js';
import { ParseError } from './parse-error.js';

export interface FramerSink {
  /** One complete message (start line, headers, exactly Content-Length body octets). */
  message(bytes: Buffer): void;
  /** A double-CRLF keep-alive ping (RFC 5626 §4.4.1); the transport answers with a single CRLF. */
  ping(): void;
  /**
   * The stream cannot be framed any further (bad or conflicting Content-Length, header section or body over the
   * limits). `head` holds the header section when there is one (for a header section over the limit, its complete
   * lines up to the limit), so that a 400/513 can still be answered before the transport closes the connection
   * (RFC 4475 ncl, mcl01).
   */
  error(error: ParseError, head: Buffer | undefined): void;
}

const CR = 0x0d;
const LF = 0x0a;
/** First allocation for a message that arrives in pieces; doubled as it grows, up to the message size limit. */
const INITIAL_CAPACITY = 256;

/**
 * Frames SIP messages on a byte stream (§18.3): find the empty line that ends the header section, read Content-Length,
 * then wait for exactly that many body octets.
 *
 * A message that arrives whole in one read is handed on as a slice of that read, without a copy. One that arrives in
 * pieces is copied into a single buffer that grows by doubling (exactly to the message's size once Content-Length is
 * known) and never past `maxMessageSize`: a peer writing one byte at a time costs one buffer, not one object per
 * read. The buffer is handed on with the message and not reused, since the parsed message keeps slices of it.
 */
export class StreamFramer {
  private buffer: Buffer | undefined;
  private buffered = 0;
  /** Recent bytes of the header scan: the state of the CRLFCRLF / LFLF search. */
  private tail = 0;
  /** Length of the header section including the empty line, once found. */
  private headLength = -1;
  private bodyLength = 0;
  /** CR/LF octets seen between messages (keep-alives). */
  private interMessageNewlines = 0;
  private framed = 0;
  private failed = false;

  constructor(
    private readonly sink: FramerSink,
    private readonly limits: MessageLimits = DEFAULT_LIMITS,
  ) {}

  /** Octets of a message begun but not complete; 0 between messages. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Octets allocated for the pending message (0 between messages and for messages that arrive whole). */
  get heldBytes(): number {
    return this.buffer?.length ?? 0;
  }

  /** Buffers held for the pending message: 0 or 1, however many reads it arrived in. */
  get heldBuffers(): number {
    return this.buffer === undefined ? 0 : 1;
  }

  /** Messages framed so far. */
  get messagesFramed(): number {
    return this.framed;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    let offset = 0;
    while (offset < chunk.length && !this.failed) {
      if (this.buffered === 0) {
        // Between messages: absorb keep-alive CRLFs (a double CRLF is a ping, a single one a pong).
        while (offset < chunk.length && (chunk[offset] === CR || chunk[offset] === LF)) {
          if (chunk[offset] === LF && ++this.interMessageNewlines === 2) {
            this.interMessageNewlines = 0;
            this.sink.ping();
          }
          offset++;
        }
        if (offset >= chunk.length) return;
        this.interMessageNewlines = 0;
      }
      offset = this.consume(chunk, offset);
    }
  }

  /** Consumes bytes of the current message from `chunk` starting at `offset`; returns the new offset. */
  private consume(chunk: Buffer, offset: number): number {
    const start = offset;
    if (this.headLength < 0) {
      const end = this.scanHead(chunk, offset);
      const headPart = (end < 0 ? chunk.length : end) - offset;
      if (this.buffered + headPart > this.limits.maxMessageSize) return this.headTooLarge(chunk, offset, end);
      if (end < 0) {
        this.append(chunk, offset, chunk.length);
        return chunk.length;
      }
      // A header section whole in this read is read in place; otherwise it is completed in the buffer.
      let head: Buffer;
      if (this.buffered === 0) head = chunk.subarray(offset, end);
      else {
        this.append(chunk, offset, end);
        head = this.buffer!.subarray(0, this.buffered);
      }
      this.headLength = head.length;
      offset = end;
      const cl = readContentLength(head, this.headLength);
      if (cl instanceof ParseError) {
        this.fail(cl, head);
        return chunk.length;
      }
      const total = this.headLength + cl;
      if (cl > this.limits.maxBodySize || total > this.limits.maxMessageSize) {
        this.fail(new ParseError('TOO_LARGE', `message larger than the limit of ${this.limits.maxMessageSize} bytes (${total})`, 513), head);
        return chunk.length;
      }
      this.bodyLength = cl;
      if (this.buffered === 0) {
        if (chunk.length - start >= total) {
          // The common case: the whole message in one read, handed on without a copy.
          this.reset();
          this.framed++;
          this.sink.message(chunk.subarray(start, start + total));
          return start + total;
        }
        this.append(chunk, start, offset);
      }
    }
    const total = this.headLength + this.bodyLength;
    const take = Math.min(total - this.buffered, chunk.length - offset);
    this.append(chunk, offset, offset + take);
    if (this.buffered === total) {
      const bytes = this.buffer!.subarray(0, total);
      this.reset();
      this.framed++;
      this.sink.message(bytes);
    }
    return offset + take;
  }

  /** A header section over the limit: answered (513) from its complete lines up to the limit, never buffered past it. */
  private headTooLarge(chunk: Buffer, offset: number, end: number): number {
    let head: Buffer | undefined;
    if (this.buffered === 0 && end >= 0) head = chunk.subarray(offset, end);
    else {
      this.append(chunk, offset, offset + Math.min(this.limits.maxMessageSize - this.buffered, chunk.length - offset));
      head = this.completeLines();
    }
    this.fail(new ParseError('TOO_LARGE', `header section larger than the limit of ${this.limits.maxMessageSize} bytes`, 513), head);
    return chunk.length;
  }

  /** Scans for the empty line that ends the header section; returns the offset just past it, or -1. */
  private scanHead(chunk: Buffer, offset: number): number {
    let tail = this.tail;
    for (let i = offset; i < chunk.length; i++) {
      const c = chunk[i]!;
      // tail remembers whether the previous line was empty: an LF that ends an empty line ends the head.
      if (c === LF && ((tail & 0xff) === CR ? ((tail >>> 8) & 0xff) === LF : (tail & 0xff) === LF)) {
        this.tail = 0;
        return i + 1;
      }
      tail = ((tail << 8) | c) & 0xffffff;
    }
    this.tail = tail;
    return -1;
  }

  private append(chunk: Buffer, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    const needed = this.buffered + n;
    if (this.buffer === undefined || this.buffer.length < needed) {
      // Once Content-Length is known the message's size is too: one last allocation of exactly that.
      const size =
        this.headLength >= 0 ? this.headLength + this.bodyLength : Math.min(this.limits.maxMessageSize, Math.max(needed, INITIAL_CAPACITY, (this.buffer?.length ?? 0) * 2));
      // Not from Node's shared pool: a slow peer's small buffer would keep a whole 8 KB pool slab alive.
      const grown = Buffer.allocUnsafeSlow(Math.max(size, needed));
      if (this.buffer !== undefined) this.buffer.copy(grown, 0, 0, this.buffered);
      this.buffer = grown;
    }
    chunk.copy(this.buffer, this.buffered, from, to);
    this.buffered = needed;
  }

  /** The pending header section up to its last complete line, for answering a header section over the limit. */
  private completeLines(): Buffer | undefined {
    if (this.buffer === undefined) return undefined;
    const end = this.buffer.lastIndexOf(LF, this.buffered - 1);
    return end < 0 ? undefined : this.buffer.subarray(0, end + 1);
  }

  private reset(): void {
    this.buffer = undefined;
    this.buffered = 0;
    this.tail = 0;
    this.headLength = -1;
    this.bodyLength = 0;
  }

  private fail(error: ParseError, head: Buffer | undefined): void {
    this.failed = true;
    this.reset();
    this.sink.error(error, head);
  }
}

/**
 * Reads Content-Length from a header section without building the message. Absent means 0 here (the parser then
 * answers the missing header); negative, non-numeric or conflicting values make the stream unframeable (RFC 4475 ncl, mcl01).
 */
function readContentLength(head: Buffer, length: number): number | ParseError {
  const text = head.toString('latin1', 0, length);
  let value = -1;
  const re = /(?:^|\n)(content-length|l)[ \t]*:[ \t]*([^\r\n]*)/gi;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const raw = m[2]!.trim();
    if (!/^\d{1,9}$/.test(raw)) return new ParseError('CONTENT_LENGTH', `bad Content-Length '${raw.slice(0, 20)}'`, 400);
    const v = Number(raw);
    if (value >= 0 && v !== value) return new ParseError('CONTENT_LENGTH', 'conflicting Content-Length values', 400);
    value = v;
  }
  return value < 0 ? 0 : value;
}
