import type { Logger } from './logger.js';

/** The message of the log line a last-resort catch writes; tests that run the server look for it (there must be none). */
export const UNCAUGHT_MESSAGE = 'uncaught error';

/**
 * The last resort for an error that reached the event loop: logged with its stack and counted, and the process goes on
 * serving. It is never the fix: every fault is to be handled where it occurs (a SIP answer, a counted drop, a closed
 * connection), so the count must stay 0; tests that run the server fail on the log line, and `count` is reported in
 * the server's stats. Without this a single such error ended the process (and every call it held).
 */
export class LastResort {
  private uncaught = 0;

  constructor(private readonly logger: Logger) {}

  get count(): number {
    return this.uncaught;
  }

  install(): this {
    process.on('uncaughtException', (err, origin) => this.record(err, origin));
    process.on('unhandledRejection', (reason) => this.record(reason, 'unhandledRejection'));
    return this;
  }

  private record(err: unknown, origin: string): void {
    this.uncaught++;
    try {
      this.logger.fatal({ err, origin, uncaught: this.uncaught }, UNCAUGHT_MESSAGE);
    } catch {
      // The logger itself failing must not turn into another uncaught error.
    }
  }
}
