import { pino, destination, type Logger as PinoLogger, type LoggerOptions } from 'pino';

export type Logger = PinoLogger;

export interface LoggerConfig {
  level?: string;
  /** Destination file descriptor or path; stdout by default. */
  destination?: number | string;
}

export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = { level: config.level ?? 'info', base: { app: 'sipway' } };
  if (config.destination === undefined) return pino(options);
  return pino(options, destination({ dest: config.destination, sync: false }));
}

/** A logger that discards everything; the default for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
