import { readFileSync } from 'node:fs';
import { ConfigError } from '../util/errors.js';
import type { TlsOptions } from '../transport/types.js';
import type { TlsConfig } from './config.js';

/** The PEM files of the `tls` settings, read once at start; a file that cannot be read is named by its setting. */
export function readTls(tls: TlsConfig): TlsOptions {
  const read = (file: string, field: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new ConfigError(field, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const out: TlsOptions = {
    cert: read(tls.cert, 'tls.cert'),
    key: read(tls.key, 'tls.key'),
    verifyClient: tls.verifyClient,
    verifyServer: tls.verifyServer,
    minVersion: tls.minVersion,
  };
  if (tls.ca !== undefined) out.ca = read(tls.ca, 'tls.ca');
  if (tls.clientCert !== undefined && tls.clientKey !== undefined) {
    out.clientCert = read(tls.clientCert, 'tls.clientCert');
    out.clientKey = read(tls.clientKey, 'tls.clientKey');
  }
  return out;
}
