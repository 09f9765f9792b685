import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError } from '../util/errors.js';
import { formatListenSpec } from './address.js';
import type { ClientTls } from './stream-client.js';
import type { ListenSpec, TlsOptions } from './types.js';

/**
 * The server side of TlsOptions for tls: and wss: listeners, checked at start (with the client side, so that a
 * bad CA bundle or client certificate stops the start rather than the first connection out). Undefined without
 * secure listeners.
 */
export function listenerSecureContext(listen: readonly ListenSpec[], tls: TlsOptions | undefined): SecureContext | undefined {
  if (tls) checkClientTls(tls);
  const secure = listen.filter((l) => l.transport === 'tls' || l.transport === 'wss');
  if (secure.length === 0) return undefined;
  const where = secure.map(formatListenSpec).join(', ');
  if (!tls?.cert) throw new ConfigError('tls.cert', `a PEM certificate is required for ${where}`);
  if (!tls.key) throw new ConfigError('tls.key', `a PEM private key is required for ${where}`);
  try {
    return createSecureContext({ cert: tls.cert, key: tls.key, ca: tls.ca, minVersion: tls.minVersion ?? 'TLSv1.2' });
  } catch (err) {
    throw new ConfigError('tls.cert', `the certificate and key cannot be used (${(err as Error).message})`);
  }
}

/** What tls.connect needs for the connections we open; `verifyOverride` wins over tls.verifyServer (tests, labs). */
export function clientTls(tls: TlsOptions | undefined, verifyOverride: boolean | undefined): ClientTls {
  const out: ClientTls = { rejectUnauthorized: verifyOverride ?? tls?.verifyServer ?? true };
  if (tls?.ca !== undefined) out.ca = tls.ca;
  if (tls?.clientCert !== undefined && tls.clientKey !== undefined) [out.cert, out.key] = [tls.clientCert, tls.clientKey];
  if (tls?.minVersion !== undefined) out.minVersion = tls.minVersion;
  return out;
}

function checkClientTls(tls: TlsOptions): void {
  if (tls.ca !== undefined) {
    // createSecureContext takes a bundle without a single certificate in it silently: read each one.
    const pems = tls.ca.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (pems.length === 0) throw new ConfigError('tls.ca', 'the CA bundle holds no PEM certificate');
    for (const pem of pems) {
      try {
        new X509Certificate(pem);
      } catch (err) {
        throw new ConfigError('tls.ca', `the CA bundle cannot be used (${(err as Error).message})`);
      }
    }
  }
  if (tls.clientCert !== undefined && tls.clientKey !== undefined) {
    try {
      createSecureContext({ cert: tls.clientCert, key: tls.clientKey });
    } catch (err) {
      throw new ConfigError('tls.clientCert', `the client certificate and key cannot be used (${(err as Error).message})`);
    }
  }
}
