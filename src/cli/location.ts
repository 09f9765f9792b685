import { parseCommandLine } from './args.js';
import { STORE_FLAGS, openCliStores } from './stores.js';
import { UsageError } from './usage-error.js';
import { parseUserAddress } from './user.js';

export const LOCATION_HELP = `Usage: sipway location [USER@DOMAIN] [--json] [store options]

Shows the current bindings of one address of record, or of all.
Store options: --config FILE, --data DIR, --store redis://...`;

export async function locationCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('location', { args, allowPositionals: true, options: { ...STORE_FLAGS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(LOCATION_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`location: unexpected argument '${positionals[1]}'`);
  const only = positionals[0] === undefined ? undefined : parseUserAddress(positionals[0], 'location');
  const stores = await openCliStores(values, 'read');
  try {
    const aors = only ? [`sip:${only.username}@${only.domain}`] : await stores.location.listAors();
    const now = Date.now();
    const rows = [];
    for (const aor of aors.sort()) {
      for (const b of await stores.location.lookup(aor)) {
        rows.push({ aor, contact: b.contact, expires: Math.max(0, Math.round((b.expiresAt - now) / 1000)), q: b.q, source: `${b.source.transport}:${b.source.address}:${b.source.port}`, userAgent: b.userAgent, instance: b.instanceId, regId: b.regId, path: b.path });
      }
    }
    if (values.json) console.log(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) console.log(only ? `no bindings for sip:${only.username}@${only.domain}` : 'no bindings');
    else for (const r of rows) console.log(`${r.aor}\t<${r.contact}>;expires=${r.expires}${r.q !== 1 ? `;q=${r.q}` : ''}\tfrom ${r.source}${r.userAgent ? `\t${r.userAgent}` : ''}`);
    return 0;
  } finally {
    await stores.close();
  }
}
