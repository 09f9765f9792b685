/** A command-line mistake: printed as one line, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A command that was understood but that the state of things refuses (no such user, an address already taken):
 * printed as one line, exit status 1, like any other failure at run time.
 */
export class CommandFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailed';
  }
}
