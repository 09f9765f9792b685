import { CDR_TYPES, type CdrQuery, type CdrRecord, type CdrType } from '../store/index.js';
import { parseCommandLine } from './args.js';
import { STORE_FLAGS, openCliCdrStore } from './stores.js';
import { UsageError } from './usage-error.js';
import { parseUserAddress } from './user.js';

export const CDR_HELP = `Usage: sipway cdr [--type call|missed|attempt] [--user USER@DOMAIN] [--since ISO] [--until ISO]
                  [--limit N] [--json] [--data DIR | --config FILE]

Shows call detail records, the most recent first: 'attempt' (every INVITE's final status), 'call' (answered
calls with duration and who hung up), 'missed' (calls to local users that were not answered, with the cause:
not-registered, busy, no-answer, cancelled, declined or failed).

  --type T       only records of this type
  --user AOR     only records where USER@DOMAIN is the caller or the callee
  --since ISO    records at or after this time (e.g. 2024-05-01 or 2024-05-01T08:00:00Z)
  --until ISO    records before this time
  --limit N      at most N records (default 50)
  --json         one JSON array instead of text lines

CDRs are kept by each node in its data directory (--data DIR, or the config file's), also when registrations
are shared through Redis.`;

const DEFAULT_LIMIT = 50;

export async function cdrCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('cdr', {
    args,
    allowPositionals: true,
    options: {
      ...STORE_FLAGS,
      type: { type: 'string' },
      user: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(CDR_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`cdr: unexpected argument '${positionals[0]}'`);
  if (values.store !== undefined) throw new UsageError('--store: CDRs are not kept there; each node keeps its own in --data DIR');
  const query = buildQuery(values);
  const { cdrs, close } = await openCliCdrStore(values);
  try {
    const records = await cdrs.query(query);
    if (values.json) console.log(JSON.stringify(records, null, 2));
    else if (records.length === 0) console.log('no records');
    else for (const r of records) console.log(formatRecord(r));
    return 0;
  } finally {
    close();
  }
}

function buildQuery(values: { type?: string; user?: string; since?: string; until?: string; limit?: string }): CdrQuery {
  const query: CdrQuery = { limit: DEFAULT_LIMIT };
  if (values.type !== undefined) {
    if (!CDR_TYPES.includes(values.type as CdrType)) throw new UsageError(`--type: must be one of ${CDR_TYPES.join(', ')} (got '${values.type}')`);
    query.type = values.type as CdrType;
  }
  if (values.user !== undefined) {
    const { username, domain } = parseUserAddress(values.user, '--user');
    query.user = `sip:${username}@${domain}`;
  }
  if (values.since !== undefined) query.since = parseTime('--since', values.since);
  if (values.until !== undefined) query.until = parseTime('--until', values.until);
  if (values.limit !== undefined) {
    const n = Number(values.limit);
    if (!/^\d+$/.test(values.limit) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`--limit: must be a positive integer (got '${values.limit}')`);
    query.limit = n;
  }
  return query;
}

function parseTime(flag: string, text: string): number {
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`${flag}: '${text}' is not an ISO 8601 date or time`);
  return t;
}

/** time, type, caller -> callee, status, then the duration and who hung up (calls) or the cause (missed); tab-separated. */
function formatRecord(r: CdrRecord): string {
  const fields = [new Date(r.time).toISOString(), r.type, `${r.caller} -> ${r.callee}`, `${r.status} ${r.reason}`];
  if (r.type === 'call') fields.push(`${r.durationS ?? 0}s`, `ended by ${r.endedBy ?? 'unknown'}`);
  if (r.type === 'missed' && r.cause !== undefined) fields.push(r.cause);
  fields.push(r.callId);
  return fields.join('\t');
}
