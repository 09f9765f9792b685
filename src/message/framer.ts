import { DEFAULT_LIMITS, type MessageLimits } from './limits.js';
import { ParseError } from './parse-error.js';

export interface FramerSink {
  /** One complete message (start line, headers, exactly Content-Length body octets). */
  message(bytes: Buffer): void;
  /** A double-CRLF keep-alive ping (RFC 5626 §4.4.1); the transport answers with a single CRLF. */
  ping(): void;
  /**
   * The stream cannot be framed any further (bad or conflicting Content-Length, header section or body over the
   * limits). `head` holds the header section when there is one, so that a 400/513 can still be answered before the
   * transport closes the connection (RFC 4475 ncl, mcl01).
   */
  error(error: ParseError, head: Buffer | undefined): void;
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Frames SIP messages on a byte stream (§18.3): find the empty line that ends the header section, read Content-Length,
 * then wait for exactly that many body octets. Received chunks are kept as a list and joined once per message, not
 * once per chunk, so a message arriving in many small segments costs one copy.
 */
export class StreamFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of the pending message examined while looking for the end of the header section. */
  private scanned = 0;
  /** Recent bytes of the header scan: the state of the CRLFCRLF / LFLF search. */
  private tail = 0;
  /** Length of the header section including the empty line, once found. */
  private headLength = -1;
  private bodyLength = 0;
  /** CR/LF octets seen between messages (keep-alives). */
  private interMessageNewlines = 0;
  private failed = false;

  constructor(
    private readonly sink: FramerSink,
    private readonly limits: MessageLimits = DEFAULT_LIMITS,
  ) {}

  get pendingBytes(): number {
    return this.buffered;
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
    if (this.headLength < 0) {
      let i = offset;
      let tail = this.tail;
      for (; i < chunk.length; i++) {
        const c = chunk[i]!;
        if (c === LF) {
          // tail remembers whether the previous line was empty: an LF that ends an empty line ends the head.
          if ((tail & 0xff) === CR ? (tail >>> 8 & 0xff) === LF : (tail & 0xff) === LF) {
            this.headLength = this.scanned + (i - offset) + 1;
            i++;
            break;
          }
        }
        tail = ((tail << 8) | c) & 0xffffff;
      }
      this.tail = tail;
      this.scanned += i - offset;
      this.append(chunk.subarray(offset, i));
      if (this.headLength < 0) {
        if (this.buffered > this.limits.maxMessageSize) this.fail(new ParseError('TOO_LARGE', 'header section too large', 513), undefined);
        return chunk.length;
      }
      const head = this.join();
      const cl = readContentLength(head, this.headLength);
      if (cl instanceof ParseError) {
        this.fail(cl, head.subarray(0, this.headLength));
        return chunk.length;
      }
      if (cl > this.limits.maxBodySize || this.headLength + cl > this.limits.maxMessageSize) {
        this.fail(new ParseError('TOO_LARGE', `message larger than the limit (${this.headLength + cl} bytes)`, 513), head.subarray(0, this.headLength));
        return chunk.length;
      }
      this.bodyLength = cl;
      offset = i;
    }
    const need = this.headLength + this.bodyLength - this.buffered;
    const take = Math.min(need, chunk.length - offset);
    if (take > 0) this.append(chunk.subarray(offset, offset + take));
    if (this.buffered === this.headLength + this.bodyLength) {
      const bytes = this.join();
      this.reset();
      this.sink.message(bytes);
    }
    return offset + take;
  }

  private append(b: Buffer): void {
    if (b.length === 0) return;
    // Keep a reference only: the socket does not reuse its chunk buffers.
    this.chunks.push(b);
    this.buffered += b.length;
  }

  private join(): Buffer {
    if (this.chunks.length === 1) return this.chunks[0]!;
    const joined = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [joined];
    return joined;
  }

  private reset(): void {
    this.chunks = [];
    this.buffered = 0;
    this.scanned = 0;
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
