import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bindProblem, UnavailableError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { hostPort, type TransportStats } from '../transport/index.js';
import type { FloodGuardStats } from '../transport/flood-guard.js';
import type { TransactionStats } from '../transaction/index.js';
import type { ProxyStats } from '../proxy/index.js';
import type { AuthStats } from '../auth/index.js';

export type ReloadResult = { ok: true } | { ok: false; error: string };

export interface AdminOptions {
  reload(): Promise<ReloadResult>;
  /** The counters of every server process (one entry per worker; one in all for a single process). */
  stats(): Promise<StatsAnswer>;
  logger: Logger;
}

/** The counters of one server process (SipwayServer.stats()); `worker` is its index under `--workers N`. */
export interface ProcessStats {
  worker?: number;
  transport: TransportStats;
  transactions: TransactionStats;
  flood: FloodGuardStats;
  proxy?: ProxyStats;
  auth?: AuthStats;
}

export interface StatsAnswer {
  workers: ProcessStats[];
}

/**
 * The admin endpoint `sipway reload` talks to: HTTP on a loopback address (config.ts refuses others).
 * `POST /reload` is answered with the ReloadResult as JSON (200 when reloaded, 422 when the new policy was refused);
 * `GET /stats` with the StatsAnswer (200).
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
    const failed = (what: string) => (err: unknown): void => {
      this.options.logger.error({ err }, `${what} failed`);
      send(500, { ok: false, error: String(err) });
    };
    if (req.url === '/stats') {
      if (req.method !== 'GET') return send(405, { ok: false, error: 'use GET' });
      this.options.stats().then((stats) => send(200, stats), failed('stats'));
      return;
    }
    if (req.url !== '/reload') return send(404, { ok: false, error: 'unknown path (POST /reload, GET /stats)' });
    if (req.method !== 'POST') return send(405, { ok: false, error: 'use POST' });
    this.options.reload().then((result) => send(result.ok ? 200 : 422, result), failed('reload'));
  }
}
