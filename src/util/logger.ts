import { pino, destination, type Logger as PinoLogger, type LoggerOptions } from 'pino';

export type Logger = PinoLogger;

export interface LoggerConfig {
  level?: string;
  /** Destination file descriptor or path; stdout by default. */
  destination?: number | string;
}

export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = { level: config.level ?? 'info', base: { app: 'sipway' } };
  // Asynchronous writes: a line per request must not cost a write(2) on the signalling path. `flush()` on shutdown.
  return pino(options, destination({ dest: config.destination ?? 1, sync: false }));
}

/** A logger that discards everything; the default for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
