/**
 * Bad input is a value. Every fault found while reading a message carries a stable code (for counters and logs),
 * the status a server answers with when the message is a request it can answer, and the byte offset where
 * the fault was seen.
 */
export class ParseError {
  constructor(
    readonly code: ParseErrorCode,
    readonly reason: string,
    readonly status: 400 | 505 | 513 = 400,
    readonly offset = -1,
  ) {}

  toString(): string {
    return `${this.code}: ${this.reason}${this.offset >= 0 ? ` at byte ${this.offset}` : ''}`;
  }
}

export type ParseErrorCode =
  | 'START_LINE'
  | 'VERSION'
  | 'STATUS_CODE'
  | 'REQUEST_URI'
  | 'HEADER_SYNTAX'
  | 'HEADER_TERMINATOR'
  | 'CONTENT_LENGTH'
  | 'BODY_TRUNCATED'
  | 'MISSING_HEADER'
  | 'DUPLICATE_HEADER'
  | 'VIA'
  | 'CSEQ'
  | 'CALL_ID'
  | 'FROM'
  | 'TO'
  | 'MAX_FORWARDS'
  | 'CONTACT'
  | 'ROUTE'
  | 'DATE'
  | 'TOO_LARGE'
  | 'TOO_MANY_HEADERS'
  | 'HEADER_TOO_LONG'
  | 'TOO_MANY_VIAS'
  | 'BODY_TOO_LARGE';

/** Thrown inside header parsers and caught at the message boundary; never escapes the message layer's entry points. */
export class HeaderSyntaxError extends Error {
  constructor(message: string) {
    // A malformed header is input, not a bug: no stack trace to capture (it cost ~4 % of the CPU of a fuzzed server).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = 'HeaderSyntaxError';
  }
}
