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

/** One line about one setting: the field (config path or flag) and what is wrong with it. */
abstract class SettingError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** Configuration or command-line errors: a value that is wrong in itself (the CLI exits 2). */
export class ConfigError extends SettingError {
  override readonly name = 'ConfigError';
}

/**
 * A setting that is valid but names something this machine cannot give now: a port another process holds, a store
 * that does not exist or cannot be opened, a Redis server that does not answer (the CLI exits 1: the same command
 * may work later, unlike a ConfigError).
 */
export class UnavailableError extends SettingError {
  override readonly name = 'UnavailableError';
}

/** Why a socket could not be bound to `address`, in words an operator can act on. */
export function bindProblem(address: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return `${address} is in use (another sipway?)`;
    case 'EACCES':
      return `${address}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL':
      return `${address}: no interface of this machine has that address`;
    default:
      return `${address}: ${err.message}`;
  }
}
