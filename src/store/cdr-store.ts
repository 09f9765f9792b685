import { ConfigError } from '../util/errors.js';
import { openDatabase, type SqliteDatabase } from './sqlite.js';

/**
 * Call detail records, in the spirit of SER's acc module: one 'attempt' per INVITE that got a final response, one
 * 'call' per answered call once it has ended, one 'missed' per call to a local user that was not answered.
 */
export type CdrType = 'attempt' | 'call' | 'missed';

export const CDR_TYPES: readonly CdrType[] = ['attempt', 'call', 'missed'];

/** Who ended a call: a BYE from either party (§15.1), or sipway giving up on a call with no BYE. */
export type CallEnd = 'caller' | 'callee' | 'timeout';

/**
 * Why a local user missed a call: no binding at all ('not-registered'); busy (486, 600); no answer in time or
 * temporarily unavailable (408, 480); the caller hung up first (487); the callee declined (603); any other failure.
 */
export type MissedCause = 'not-registered' | 'busy' | 'no-answer' | 'cancelled' | 'declined' | 'failed';

export const MISSED_CAUSES: readonly MissedCause[] = ['not-registered', 'busy', 'no-answer', 'cancelled', 'declined', 'failed'];

export interface CdrRecord {
  type: CdrType;
  /** ms since the epoch: the final response of an attempt or missed call; the answer (start) of a call. */
  time: number;
  callId: string;
  /** From URI as an address of record ('sip:alice@example.com': no port, parameters or headers). */
  caller: string;
  /** To URI as an address of record. */
  callee: string;
  /** The Request-URI of the INVITE as received, in full. */
  requestUri: string;
  /** The final status: of the INVITE for attempts and calls, what the caller got for a missed call. */
  status: number;
  reason: string;
  /** Where the INVITE came from, `transport:host:port`. */
  source?: string;
  fromTag?: string;
  toTag?: string;
  /** Calls only: when the BYE got its final response (or the timeout sweep closed the call), ms since the epoch. */
  stopTime?: number;
  durationMs?: number;
  /** Whole seconds, rounded up: a started second counts, as billing counts it. */
  durationS?: number;
  endedBy?: CallEnd;
  /** Missed calls only: why the callee did not answer. */
  cause?: MissedCause;
  /** Calls through the SBC's media relay: what each party sent through it. */
  media?: CdrMedia;
}

/** What one party of a call sent through the media relay, over all its streams (RTP; RFC 3550 loss and jitter). */
export interface CdrMediaCounters {
  packets: number;
  bytes: number;
  lost: number;
  /** The largest interarrival jitter of its streams, ms. */
  jitterMs: number;
}

export interface CdrMedia {
  caller: CdrMediaCounters;
  callee: CdrMediaCounters;
}

export interface CdrQuery {
  type?: CdrType;
  /** Records at or after this time (ms since the epoch). */
  since?: number;
  /** Records before this time. */
  until?: number;
  /** An address of record: records where it is the caller or the callee. */
  user?: string;
  /** At most this many records, the most recent first. */
  limit: number;
}

/**
 * Where CDRs go. Each sipway node writes its own (the SQLite file in its data directory), even when nodes share
 * registrations through Redis: a CDR is written once, by the node that saw the call, and never read back on the
 * call path, so sharing buys nothing.
 */
export interface CdrStore {
  /** Rejects with InvalidCdrError on a malformed record. */
  add(record: CdrRecord): Promise<void>;
  /** Matching records, the most recent first. */
  query(q: CdrQuery): Promise<CdrRecord[]>;
  count(): Promise<number>;
}

export class InvalidCdrError extends Error {
  constructor(problem: string) {
    super(`invalid CDR: ${problem}`);
    this.name = 'InvalidCdrError';
  }
}

/** Returns what is wrong with a would-be record, or undefined. */
export function checkCdr(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'record is not an object';
  const r = value as Record<string, unknown>;
  if (!CDR_TYPES.includes(r.type as CdrType)) return `type must be one of ${CDR_TYPES.join(', ')}`;
  if (!Number.isSafeInteger(r.time)) return 'time must be an integer (ms since the epoch)';
  for (const field of ['callId', 'caller', 'callee', 'requestUri', 'reason'] as const) {
    if (typeof r[field] !== 'string') return `${field} must be a string`;
  }
  if (!Number.isInteger(r.status) || (r.status as number) < 100 || (r.status as number) > 699) return 'status must be 100..699';
  for (const field of ['source', 'fromTag', 'toTag'] as const) {
    if (r[field] !== undefined && typeof r[field] !== 'string') return `${field} must be a string`;
  }
  for (const field of ['stopTime', 'durationMs', 'durationS'] as const) {
    if (r[field] !== undefined && !Number.isSafeInteger(r[field])) return `${field} must be an integer`;
  }
  if (r.endedBy !== undefined && !['caller', 'callee', 'timeout'].includes(r.endedBy as string)) return 'endedBy must be caller, callee or timeout';
  if (r.cause !== undefined && !MISSED_CAUSES.includes(r.cause as MissedCause)) return `cause must be one of ${MISSED_CAUSES.join(', ')}`;
  if (r.media !== undefined) {
    const m = r.media as Record<string, unknown>;
    for (const party of ['caller', 'callee'] as const) {
      const c = (typeof m === 'object' && m !== null ? m[party] : undefined) as Record<string, unknown> | undefined;
      if (typeof c !== 'object' || c === null) return `media.${party} must be an object`;
      for (const field of ['packets', 'bytes', 'lost', 'jitterMs'] as const) {
        if (typeof c[field] !== 'number' || !Number.isFinite(c[field]) || (c[field] as number) < 0) return `media.${party}.${field} must be a number >= 0`;
      }
    }
  }
  return undefined;
}

function accept(record: CdrRecord): CdrRecord {
  const problem = checkCdr(record);
  if (problem) throw new InvalidCdrError(problem);
  return { ...record };
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) throw new InvalidCdrError(`query limit must be a positive integer (got ${limit})`);
}

export interface MemoryCdrStoreOptions {
  /** Records kept; beyond it the oldest go. Default 100000. */
  maxRecords?: number;
}

/** CDRs in process memory, bounded: for tests and labs. */
export class MemoryCdrStore implements CdrStore {
  private readonly records: CdrRecord[] = [];
  private readonly maxRecords: number;

  constructor(options: MemoryCdrStoreOptions = {}) {
    this.maxRecords = options.maxRecords ?? 100_000;
    if (!Number.isInteger(this.maxRecords) || this.maxRecords < 1) throw new ConfigError('maxRecords', 'must be a positive integer');
  }

  async add(record: CdrRecord): Promise<void> {
    this.records.push(accept(record));
    if (this.records.length > this.maxRecords) this.records.shift();
  }

  async query(q: CdrQuery): Promise<CdrRecord[]> {
    checkLimit(q.limit);
    const out: CdrRecord[] = [];
    // Newest first, like SQLite's `time DESC, id DESC`: walk back from the last added, then sort (stably) by
    // time, since a call is stamped with its start but added at its end.
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i]!;
      if (q.type !== undefined && r.type !== q.type) continue;
      if (q.since !== undefined && r.time < q.since) continue;
      if (q.until !== undefined && r.time >= q.until) continue;
      if (q.user !== undefined && r.caller !== q.user && r.callee !== q.user) continue;
      out.push({ ...r });
    }
    return out.sort((a, b) => b.time - a.time).slice(0, q.limit);
  }

  async count(): Promise<number> {
    return this.records.length;
  }
}

interface CdrRow {
  type: CdrType;
  time: number;
  call_id: string;
  caller: string;
  callee: string;
  request_uri: string;
  status: number;
  reason: string;
  source: string | null;
  from_tag: string | null;
  to_tag: string | null;
  stop_time: number | null;
  duration_ms: number | null;
  duration_s: number | null;
  ended_by: CallEnd | null;
  cause: MissedCause | null;
  media: string | null;
}

const COLUMNS =
  'type, time, call_id, caller, callee, request_uri, status, reason, source, from_tag, to_tag, stop_time, duration_ms, duration_s, ended_by, cause, media';

/** How long a CDR waits to be written with others, and how many wait at most (group commit). */
const BATCH_DELAY_MS = 20;
const BATCH_MAX = 256;

interface PendingCdr {
  record: CdrRecord;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * CDRs in the `cdrs` table of the sipway database: plain columns, so that billing scripts and the sqlite3 shell
 * can read them without sipway. Rows are only ever inserted, in batches: one SQLite transaction per batch costs
 * a fraction of one per record (a record waits at most BATCH_DELAY_MS; `add` resolves once it is written).
 */
export class SqliteCdrStore implements CdrStore {
  private readonly insert;
  private readonly total;
  private readonly insertAll;
  private pending: PendingCdr[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: SqliteDatabase) {
    this.insert = db.prepare(`INSERT INTO cdrs (${COLUMNS}) VALUES (${COLUMNS.split(', ').map(() => '?').join(', ')})`);
    this.total = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM cdrs');
    this.insertAll = db.transaction((records: CdrRecord[]) => {
      for (const r of records) {
        this.insert.run(
          r.type, r.time, r.callId, r.caller, r.callee, r.requestUri, r.status, r.reason, r.source ?? null, r.fromTag ?? null,
          r.toTag ?? null, r.stopTime ?? null, r.durationMs ?? null, r.durationS ?? null, r.endedBy ?? null, r.cause ?? null,
          r.media === undefined ? null : JSON.stringify(r.media),
        );
      }
    });
  }

  add(record: CdrRecord): Promise<void> {
    let r: CdrRecord;
    try {
      r = accept(record);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ record: r, resolve, reject });
      if (this.pending.length >= BATCH_MAX) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), BATCH_DELAY_MS);
    });
  }

  /** Writes what waits, now (queries, and closing, see every record added before). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    try {
      this.insertAll(batch.map((p) => p.record));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    for (const p of batch) p.resolve();
  }

  async query(q: CdrQuery): Promise<CdrRecord[]> {
    checkLimit(q.limit);
    this.flush();
    const where: string[] = [];
    const params: Array<string | number> = [];
    const clause = (sql: string, ...values: Array<string | number>): void => {
      where.push(sql);
      params.push(...values);
    };
    if (q.type !== undefined) clause('type = ?', q.type);
    if (q.since !== undefined) clause('time >= ?', q.since);
    if (q.until !== undefined) clause('time < ?', q.until);
    // An OR of two indexed columns: SQLite answers it with both indexes (a multi-index OR).
    if (q.user !== undefined) clause('(caller = ? OR callee = ?)', q.user, q.user);
    const sql = `SELECT ${COLUMNS} FROM cdrs${where.length ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY time DESC, id DESC LIMIT ?`;
    return this.db.prepare<Array<string | number>, CdrRow>(sql).all(...params, q.limit).map(fromRow);
  }

  async count(): Promise<number> {
    this.flush();
    return this.total.get()!.n;
  }
}

function fromRow(row: CdrRow): CdrRecord {
  const r: CdrRecord = {
    type: row.type,
    time: row.time,
    callId: row.call_id,
    caller: row.caller,
    callee: row.callee,
    requestUri: row.request_uri,
    status: row.status,
    reason: row.reason,
  };
  if (row.source !== null) r.source = row.source;
  if (row.from_tag !== null) r.fromTag = row.from_tag;
  if (row.to_tag !== null) r.toTag = row.to_tag;
  if (row.stop_time !== null) r.stopTime = row.stop_time;
  if (row.duration_ms !== null) r.durationMs = row.duration_ms;
  if (row.duration_s !== null) r.durationS = row.duration_s;
  if (row.ended_by !== null) r.endedBy = row.ended_by;
  if (row.cause !== null) r.cause = row.cause;
  if (row.media !== null) r.media = JSON.parse(row.media) as CdrMedia;
  return r;
}

export interface OpenCdrStore {
  cdrs: SqliteCdrStore;
  close(): void;
}

/**
 * The CDR store of a node: `<dataDir>/sipway.db`, the same file as the embedded location store (WAL lets both
 * connections work side by side), also when registrations live in Redis. Throws UnavailableError('dataDir') as
 * openDatabase does.
 */
export function openCdrStore(dataDir: string): OpenCdrStore {
  const db = openDatabase(dataDir);
  const cdrs = new SqliteCdrStore(db);
  return {
    cdrs,
    close: () => {
      cdrs.flush();
      db.close();
    },
  };
}
