import http from 'node:http';
import { defaultConfig, loadConfigFile, parseAdminAddress } from '../server/config.js';
import { UsageError } from './usage-error.js';

/** The flags that say where a running server's admin endpoint is. */
export const ADMIN_FLAGS = { admin: { type: 'string' }, config: { type: 'string' } } as const;

/** --admin HOST:PORT, else the config file's admin address, else the default; a usage error when it is off. */
export function adminAddress(values: { admin?: unknown; config?: unknown }, what: string): { host: string; port: number } {
  const admin =
    typeof values.admin === 'string'
      ? parseAdminAddress(values.admin, '--admin')
      : (typeof values.config === 'string' ? loadConfigFile(values.config) : defaultConfig()).admin;
  if (!admin) throw new UsageError(`--config: the server's admin endpoint is off (admin: false); ${what}`);
  return admin;
}

/** One request to the admin endpoint: its HTTP status and JSON body (undefined when the body is not JSON). */
export function adminRequest(
  at: { host: string; port: number },
  method: 'GET' | 'POST',
  path: string,
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: at.host, port: at.port, path, method, timeout: 60_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: Record<string, unknown> | undefined;
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
