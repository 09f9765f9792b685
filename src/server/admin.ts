import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bindProblem, UnavailableError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { hostPort, type TransportStats } from '../transport/index.js';
import type { FloodGuardStats } from '../transport/flood-guard.js';
import type { TransactionStats } from '../transaction/index.js';
import type { ProxyStats } from '../proxy/index.js';
import type { AuthStats } from '../auth/index.js';
import type { SbcCallInfo } from '../sbc/index.js';
import type { PresenceStats } from '../presence/index.js';

export type ReloadResult = { ok: true } | { ok: false; error: string };

/** A source the flood guard has banned (docs/security.md), as the admin endpoint lists it. */
export interface BanEntry {
  address: string;
  /** When the ban ends (ms since the epoch). */
  until: number;
  refused: number;
}

/** What the admin endpoint acts on: one server, or the cluster primary speaking for its workers. */
export interface AdminTarget {
  reload(): Promise<ReloadResult>;
  bans(): Promise<BanEntry[]>;
  /** Lifts the ban of `address`; resolves with how many processes had it banned. */
  lift(address: string): Promise<number>;
  /** The counters of every server process (one entry per worker; one in all for a single process). */
  stats(): Promise<StatsAnswer>;
  /** The mailbox of `aor` was changed in the store: its message-summary watchers are told (every process). */
  mailboxChanged(aor: string): Promise<void>;
  /** The watcher rules of `aor` were changed in the store: its watchers are decided again (every process). */
  watcherRulesChanged(aor: string): Promise<void>;
  /** The buddy list of `aor` was changed in the store: its list subscriptions get the full state (every process). */
  buddiesChanged(aor: string): Promise<void>;
  /** The calls through the SBC (every process). */
  calls(): Promise<SbcCallInfo[]>;
  /** Ends the SBC call `id`; resolves with how many processes had it (0 or 1). */
  endCall(id: string): Promise<number>;
}

/** What one server process answers for itself (the cluster's primary asks every worker instead). */
export interface ProcessControl {
  reloadPolicy(): Promise<ReloadResult>;
  readonly flood: { bans(): BanEntry[]; lift(address: string): boolean };
  stats(): ProcessStats;
  mailboxChanged(aor: string): void;
  watcherRulesChanged(aor: string): Promise<void>;
  buddiesChanged(aor: string): void;
  sbcCalls(): Promise<SbcCallInfo[]>;
  endSbcCall(id: string): boolean;
}

/** The admin target of a server that is the only process. */
export function singleProcessTarget(p: ProcessControl): AdminTarget {
  return {
    reload: () => p.reloadPolicy(),
    bans: async () => p.flood.bans(),
    lift: async (address) => (p.flood.lift(address) ? 1 : 0),
    mailboxChanged: async (aor) => p.mailboxChanged(aor),
    watcherRulesChanged: (aor) => p.watcherRulesChanged(aor),
    buddiesChanged: async (aor) => p.buddiesChanged(aor),
    calls: () => p.sbcCalls(),
    endCall: async (id) => (p.endSbcCall(id) ? 1 : 0),
    stats: async () => ({ workers: [p.stats()] }),
  };
}

export interface AdminOptions extends AdminTarget {
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
  presence?: PresenceStats;
}

export interface StatsAnswer {
  workers: ProcessStats[];
}

/**
 * The admin endpoint the CLI talks to: HTTP on a loopback address (config.ts refuses others), JSON answers.
 * - `POST /reload`: the ReloadResult (200 when reloaded, 422 when the new policy was refused);
 * - `GET /bans`: the banned sources, `{ bans: BanEntry[] }`;
 * - `POST /bans/lift?address=A`: `{ lifted: N }` (404 when A was not banned).
 * - `GET /stats`: the StatsAnswer.
 * - `POST /mwi?aor=AOR`: the mailbox of AOR changed (sipway mwi set): its watchers get a NOTIFY.
 * - `POST /watchers?aor=AOR`: the watcher rules of AOR changed (sipway watchers): its watchers are decided again.
 * - `POST /buddies?aor=AOR`: the buddy list of AOR changed (sipway buddies): its subscriptions get the whole list.
 * - `GET /calls`: the calls through the SBC, `{ calls: SbcCallInfo[] }` (sipway calls).
 * - `POST /calls/end?id=ID`: ends that call, `{ ended: N }` (404 when no process has it).
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
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = ROUTES.find((r) => r.path === url.pathname);
    if (!route) return send(404, { ok: false, error: `unknown path (${ROUTES.map((r) => `${r.method} ${r.path}`).join(', ')})` });
    if (req.method !== route.method) return send(405, { ok: false, error: `use ${route.method}` });
    route.run(this.options, url.searchParams).then(
      ([status, body]) => send(status, body),
      (err: unknown) => {
        this.options.logger.error({ err, path: url.pathname }, 'admin request failed');
        send(500, { ok: false, error: String(err) });
      },
    );
  }
}

interface Route {
  method: 'GET' | 'POST';
  path: string;
  run(target: AdminTarget, query: URLSearchParams): Promise<[status: number, body: unknown]>;
}

/** `POST PATH?aor=AOR`: something of a user changed in the store; the server acts on it. */
function aorRoute(path: string, act: (t: AdminTarget, aor: string) => Promise<void>): Route {
  return {
    method: 'POST',
    path,
    run: async (t, q) => {
      const aor = q.get('aor');
      if (!aor) return [400, { ok: false, error: `aor missing (POST ${path}?aor=sip:user@domain)` }];
      await act(t, aor);
      return [200, { ok: true }];
    },
  };
}

const ROUTES: Route[] = [
  {
    method: 'POST',
    path: '/reload',
    run: async (t) => {
      const result = await t.reload();
      return [result.ok ? 200 : 422, result];
    },
  },
  { method: 'GET', path: '/bans', run: async (t) => [200, { bans: await t.bans() }] },
  { method: 'GET', path: '/stats', run: async (t) => [200, await t.stats()] },
  aorRoute('/mwi', (t, aor) => t.mailboxChanged(aor)),
  aorRoute('/watchers', (t, aor) => t.watcherRulesChanged(aor)),
  aorRoute('/buddies', (t, aor) => t.buddiesChanged(aor)),
  { method: 'GET', path: '/calls', run: async (t) => [200, { calls: await t.calls() }] },
  {
    method: 'POST',
    path: '/calls/end',
    run: async (t, q) => {
      const id = q.get('id');
      if (!id) return [400, { ok: false, error: 'id missing (POST /calls/end?id=ID)' }];
      const ended = await t.endCall(id);
      return [ended > 0 ? 200 : 404, { ended }];
    },
  },
  {
    method: 'POST',
    path: '/bans/lift',
    run: async (t, q) => {
      const address = q.get('address');
      if (!address) return [400, { ok: false, error: 'address missing (POST /bans/lift?address=A)' }];
      const lifted = await t.lift(address);
      return [lifted > 0 ? 200 : 404, { lifted }];
    },
  },
];
