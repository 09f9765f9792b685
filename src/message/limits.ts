/**
 * Every limit is named and has a default. A message over a limit is answered 513 Message Too Large (RFC 3261 §21.5.14)
 * when it can be answered, or dropped / its stream closed, never parsed into unbounded memory.
 */
export interface MessageLimits {
  /** Whole message (start line + headers + body), bytes. UDP cannot carry more than 65,507 anyway. */
  maxMessageSize: number;
  /** Header fields (lines, after unfolding). */
  maxHeaders: number;
  /** One header field including folded continuation lines, bytes. */
  maxHeaderLineLength: number;
  /** Via values in one message, counted across all Via header fields. */
  maxVias: number;
  /** Body, bytes. */
  maxBodySize: number;
}

export const DEFAULT_LIMITS: Readonly<MessageLimits> = Object.freeze({
  maxMessageSize: 65535,
  maxHeaders: 256,
  maxHeaderLineLength: 16384,
  maxVias: 64,
  maxBodySize: 60000,
});

export function resolveLimits(partial?: Partial<MessageLimits>): MessageLimits {
  return { ...DEFAULT_LIMITS, ...partial };
}
