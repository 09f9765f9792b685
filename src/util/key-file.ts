import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.js';

/**
 * A secret kept in the data directory: the configured one, else 32 random bytes in `<dataDir>/<name>`, made once,
 * atomically (a temporary file linked into place), because the workers of a cluster start together and must all
 * read the same key, and tokens already handed out (in route sets of calls in progress) must verify after a restart.
 * Errors name `field`, the setting that would avoid the file.
 */
export function keyFromDataDir(dataDir: string, name: string, field: string, configured: string | undefined): string | Buffer {
  if (configured !== undefined) return configured;
  const file = path.join(dataDir, name);
  try {
    return readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(field, `cannot read ${file}: ${(e as Error).message}`);
  }
  mkdirSync(dataDir, { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, randomBytes(32), { mode: 0o600 });
  try {
    linkSync(temp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConfigError(field, `cannot write ${file}: ${(e as Error).message}`);
  } finally {
    unlinkSync(temp);
  }
  return readFileSync(file);
}
