import type { Redis } from 'ioredis';
import { tryParseUri } from '../message/uri.js';
import { parseRecord } from './record.js';
import type { SqliteDatabase } from './sqlite.js';

/**
 * PSTN gateways and the routes (number prefix -> gateway group) that reach them. The store keeps the tables; the
 * routing decisions (longest prefix, cost, failover) are the policy layer's (src/policy/gateways.ts).
 */
export interface Gateway {
  /** Unique name, also the stable tie-breaker inside a group. */
  id: string;
  /** Where calls go: a sip:/sips: URI without user part (the dialled number becomes the user), e.g. sip:gw1.example.net:5060;transport=tcp. */
  uri: string;
  /** The group routes point at. */
  group: string;
  /** Load share inside the group (RFC 2782 semantics, 0-65535); groups with no weights keep a fixed order. */
  weight?: number;
  /** A disabled gateway stays configured but receives no calls. */
  enabled: boolean;
}

export interface Route {
  /** Digits with an optional leading '+'; '' is the default route, matching every number. */
  prefix: string;
  group: string;
  /** Lower is tried first among routes of equal prefix length. */
  cost: number;
  description?: string;
}

/** Both tables as read in one consistent step. */
export interface GatewayTables {
  gateways: Gateway[];
  routes: Route[];
}

export interface GatewayStore {
  /** Gateways ordered by id, routes by prefix then group, read atomically: a reload never sees half an edit. */
  load(): Promise<GatewayTables>;
  /** Adds or replaces by id; rejects with InvalidGatewayError. */
  putGateway(g: Gateway): Promise<void>;
  removeGateway(id: string): Promise<boolean>;
  /** Adds or replaces by (prefix, group); rejects with InvalidGatewayError. */
  putRoute(r: Route): Promise<void>;
  removeRoute(prefix: string, group: string): Promise<boolean>;
  close(): Promise<void>;
}

export class InvalidGatewayError extends Error {
  constructor(problem: string) {
    super(`invalid gateway data: ${problem}`);
    this.name = 'InvalidGatewayError';
  }
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** E.164 numbers have at most 15 digits (ITU-T E.164 §6); room is left for national and access prefixes. */
export const MAX_PREFIX_LENGTH = 32;
const PREFIX = new RegExp(`^(?=.{0,${MAX_PREFIX_LENGTH}}$)\\+?[0-9]*$`);
const MAX_URI_LENGTH = 512;
const MAX_DESCRIPTION_LENGTH = 200;

/** Returns what is wrong with a would-be gateway, or undefined. */
export function checkGateway(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const g = value as Record<string, unknown>;
  if (typeof g.id !== 'string' || !NAME.test(g.id)) return 'id must be 1-64 letters, digits, ".", "_" or "-"';
  if (typeof g.uri !== 'string' || g.uri.length > MAX_URI_LENGTH) return `uri must be a string of at most ${MAX_URI_LENGTH} characters`;
  const uri = tryParseUri(g.uri);
  if (uri?.type !== 'sip') return `uri '${g.uri}' is not a sip: or sips: URI`;
  if (uri.user !== undefined) return `uri '${g.uri}' must have no user part: the dialled number is put there`;
  if (typeof g.group !== 'string' || !NAME.test(g.group)) return 'group must be 1-64 letters, digits, ".", "_" or "-"';
  if (g.weight !== undefined && !(Number.isInteger(g.weight) && (g.weight as number) >= 0 && (g.weight as number) <= 65535)) {
    return 'weight must be an integer from 0 to 65535';
  }
  if (typeof g.enabled !== 'boolean') return 'enabled must be true or false';
  return undefined;
}

/** Returns what is wrong with a would-be route, or undefined. */
export function checkRoute(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const r = value as Record<string, unknown>;
  if (typeof r.prefix !== 'string' || !PREFIX.test(r.prefix)) return `prefix must be digits with an optional leading '+', at most ${MAX_PREFIX_LENGTH} characters ('' for the default route)`;
  if (typeof r.group !== 'string' || !NAME.test(r.group)) return 'group must be 1-64 letters, digits, ".", "_" or "-"';
  if (typeof r.cost !== 'number' || !Number.isFinite(r.cost) || r.cost < 0) return 'cost must be a number >= 0';
  if (r.description !== undefined && (typeof r.description !== 'string' || r.description.length > MAX_DESCRIPTION_LENGTH)) {
    return `description must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters`;
  }
  return undefined;
}

/** The validated copy a store keeps: only the known fields, nothing shared with the caller. */
export function acceptGateway(g: Gateway): Gateway {
  const problem = checkGateway(g);
  if (problem) throw new InvalidGatewayError(problem);
  return { id: g.id, uri: g.uri, group: g.group, ...(g.weight !== undefined && { weight: g.weight }), enabled: g.enabled };
}

export function acceptRoute(r: Route): Route {
  const problem = checkRoute(r);
  if (problem) throw new InvalidGatewayError(problem);
  return { prefix: r.prefix, group: r.group, cost: r.cost, ...(r.description !== undefined && { description: r.description }) };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function byGatewayId(a: Gateway, b: Gateway): number {
  return compare(a.id, b.id);
}

export function byRouteKey(a: Route, b: Route): number {
  return compare(a.prefix, b.prefix) || compare(a.group, b.group);
}

/** A route is named by its prefix and group; NUL cannot occur in either. */
function routeKey(prefix: string, group: string): string {
  return `${prefix}\0${group}`;
}

/** Gateways and routes in process memory (tests, labs). */
export class MemoryGatewayStore implements GatewayStore {
  private readonly gateways = new Map<string, Gateway>();
  private readonly routes = new Map<string, Route>();

  async load(): Promise<GatewayTables> {
    return {
      gateways: [...this.gateways.values()].map((g) => ({ ...g })).sort(byGatewayId),
      routes: [...this.routes.values()].map((r) => ({ ...r })).sort(byRouteKey),
    };
  }

  async putGateway(g: Gateway): Promise<void> {
    const kept = acceptGateway(g);
    this.gateways.set(kept.id, kept);
  }

  async removeGateway(id: string): Promise<boolean> {
    return this.gateways.delete(id);
  }

  async putRoute(r: Route): Promise<void> {
    const kept = acceptRoute(r);
    this.routes.set(routeKey(kept.prefix, kept.group), kept);
  }

  async removeRoute(prefix: string, group: string): Promise<boolean> {
    return this.routes.delete(routeKey(prefix, group));
  }

  async close(): Promise<void> {}
}

interface GatewayRow {
  id: string;
  uri: string;
  group_name: string;
  weight: number | null;
  enabled: number;
}

interface RouteRow {
  prefix: string;
  group_name: string;
  cost: number;
  description: string | null;
}

/** Gateways and routes in the `gateways` and `gateway_routes` tables of the sipway database. */
export class SqliteGatewayStore implements GatewayStore {
  private readonly readBoth;
  private readonly upsertGateway;
  private readonly deleteGateway;
  private readonly upsertRoute;
  private readonly deleteRoute;

  /** `release` runs on close: given when the store owns its database handle. */
  constructor(
    db: SqliteDatabase,
    private readonly release: () => void = () => {},
  ) {
    const selectGateways = db.prepare<[], GatewayRow>('SELECT id, uri, group_name, weight, enabled FROM gateways ORDER BY id');
    const selectRoutes = db.prepare<[], RouteRow>('SELECT prefix, group_name, cost, description FROM gateway_routes ORDER BY prefix, group_name');
    // One read transaction: a provisioning tool editing both tables at once is seen before or after, never between.
    this.readBoth = db.transaction((): GatewayTables => ({
      gateways: selectGateways.all().map(gatewayFromRow),
      routes: selectRoutes.all().map(routeFromRow),
    }));
    this.upsertGateway = db.prepare<[string, string, string, number | null, number]>(
      'INSERT OR REPLACE INTO gateways (id, uri, group_name, weight, enabled) VALUES (?, ?, ?, ?, ?)',
    );
    this.deleteGateway = db.prepare<[string]>('DELETE FROM gateways WHERE id = ?');
    this.upsertRoute = db.prepare<[string, string, number, string | null]>(
      'INSERT OR REPLACE INTO gateway_routes (prefix, group_name, cost, description) VALUES (?, ?, ?, ?)',
    );
    this.deleteRoute = db.prepare<[string, string]>('DELETE FROM gateway_routes WHERE prefix = ? AND group_name = ?');
  }

  async load(): Promise<GatewayTables> {
    return this.readBoth.deferred();
  }

  async putGateway(g: Gateway): Promise<void> {
    const k = acceptGateway(g);
    this.upsertGateway.run(k.id, k.uri, k.group, k.weight ?? null, k.enabled ? 1 : 0);
  }

  async removeGateway(id: string): Promise<boolean> {
    return this.deleteGateway.run(id).changes > 0;
  }

  async putRoute(r: Route): Promise<void> {
    const k = acceptRoute(r);
    this.upsertRoute.run(k.prefix, k.group, k.cost, k.description ?? null);
  }

  async removeRoute(prefix: string, group: string): Promise<boolean> {
    return this.deleteRoute.run(prefix, group).changes > 0;
  }

  async close(): Promise<void> {
    this.release();
  }
}

function gatewayFromRow(row: GatewayRow): Gateway {
  return { id: row.id, uri: row.uri, group: row.group_name, ...(row.weight !== null && { weight: row.weight }), enabled: row.enabled !== 0 };
}

function routeFromRow(row: RouteRow): Route {
  return { prefix: row.prefix, group: row.group_name, cost: row.cost, ...(row.description !== null && { description: row.description }) };
}

export interface RedisGatewayStoreOptions {
  /** Prepended to every key; 'sipway:' by default. */
  prefix?: string;
}

/**
 * Gateways and routes shared by a cluster. Layout: `<prefix>gateways` is a hash id -> gateway JSON;
 * `<prefix>gateway-routes` is a hash "<prefix>NUL<group>" -> route JSON. Both are small (a deployment has tens of
 * gateways, thousands of routes at most), so `load` reads them whole in one MULTI.
 */
export class RedisGatewayStore implements GatewayStore {
  private readonly gatewaysKey: string;
  private readonly routesKey: string;

  /** `release` runs on close: given when the store owns its connection. */
  constructor(
    private readonly redis: Redis,
    options: RedisGatewayStoreOptions = {},
    private readonly release: () => Promise<unknown> = async () => {},
  ) {
    const prefix = options.prefix ?? 'sipway:';
    this.gatewaysKey = `${prefix}gateways`;
    this.routesKey = `${prefix}gateway-routes`;
  }

  async load(): Promise<GatewayTables> {
    const results = await this.redis.multi().hgetall(this.gatewaysKey).hgetall(this.routesKey).exec();
    const [gateways, routes] = (results ?? []).map(([err, value]) => {
      if (err) throw err;
      return value as Record<string, string>;
    });
    return {
      gateways: Object.entries(gateways ?? {})
        .map(([id, json]) => parseRecord<Gateway>(json, `at ${this.gatewaysKey} field ${id}`, checkGateway))
        .sort(byGatewayId),
      routes: Object.entries(routes ?? {})
        .map(([key, json]) => parseRecord<Route>(json, `at ${this.routesKey} field ${JSON.stringify(key)}`, checkRoute))
        .sort(byRouteKey),
    };
  }

  async putGateway(g: Gateway): Promise<void> {
    const kept = acceptGateway(g);
    await this.redis.hset(this.gatewaysKey, kept.id, JSON.stringify(kept));
  }

  async removeGateway(id: string): Promise<boolean> {
    return (await this.redis.hdel(this.gatewaysKey, id)) === 1;
  }

  async putRoute(r: Route): Promise<void> {
    const kept = acceptRoute(r);
    await this.redis.hset(this.routesKey, routeKey(kept.prefix, kept.group), JSON.stringify(kept));
  }

  async removeRoute(prefix: string, group: string): Promise<boolean> {
    return (await this.redis.hdel(this.routesKey, routeKey(prefix, group))) === 1;
  }

  async close(): Promise<void> {
    await this.release();
  }
}
