import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bindProblem, UnavailableError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { hostPort } from '../transport/index.js';

export type ReloadResult = { ok: true } | { ok: false; error: string };

export interface AdminOptions {
  reload(): Promise<ReloadResult>;
  logger: Logger;
}

/**
 * The admin endpoint `sipway reload` talks to: HTTP on a loopback address (config.ts refuses others), one
 * operation, `POST /reload`, answered with the ReloadResult as JSON (200 when reloaded, 422 when the new policy
 * was refused).
 */
export class AdminEndpoint {
  private readonly server: http.Server;

  constructor(private readonly options: AdminOptions) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  /** Rejects with an UnavailableError naming admin.listen when the address cannot be had (another sipway holds it). */
  start(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new UnavailableError('admin.listen', bindProblem(hostPort(host, port), err)));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url !== '/reload') return send(404, { ok: false, error: 'unknown path (POST /reload)' });
    if (req.method !== 'POST') return send(405, { ok: false, error: 'use POST' });
    this.options.reload().then(
      (result) => send(result.ok ? 200 : 422, result),
      (err: unknown) => {
        this.options.logger.error({ err }, 'reload failed');
        send(500, { ok: false, error: String(err) });
      },
    );
  }
}
