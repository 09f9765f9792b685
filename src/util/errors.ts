/**
 * Errors that carry the SIP status to answer with. Bad input is a value, not an exception flying out of a
 * socket callback: layers return these or throw them only inside code paths that catch and answer.
 */
export class SipError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly code: string,
    readonly extraHeaders: ReadonlyArray<readonly [string, string]> = [],
  ) {
    super(`${status} ${reason}`);
    this.name = 'SipError';
  }
}

/** Configuration or command-line errors: one line naming the field and what is wrong. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'ConfigError';
  }
}
