import { ADMIN_FLAGS, adminAddress, adminRequest } from './admin-client.js';
import { parseCommandLine } from './args.js';
import { UsageError } from './usage-error.js';

export const BANS_HELP = `Usage: sipway bans [list] [--json] [--admin HOST:PORT | --config FILE]
       sipway bans lift ADDRESS [--admin HOST:PORT | --config FILE]

Shows the source addresses the running server has banned for flooding (docs/security.md): every message from them
is dropped unread until the ban ends. 'lift' ends the ban of one address at once (and forgets its history).

Options:
  --json              one JSON array instead of a table
  --admin HOST:PORT   the server's admin endpoint (default: from --config, else 127.0.0.1:5090)
  --config FILE       the server's config file, for its admin address`;

interface Ban {
  address: string;
  until: number;
  refused: number;
}

export async function bansCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('bans', { args, allowPositionals: true, options: { ...ADMIN_FLAGS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(BANS_HELP);
    return 0;
  }
  const [action = 'list', address, extra] = positionals;
  if (action !== 'list' && action !== 'lift') throw new UsageError(`bans: unknown action '${action}' (list, lift)`);
  if (action === 'lift' && address === undefined) throw new UsageError('bans lift: the ADDRESS to lift is missing');
  const unexpected = action === 'list' ? address : extra;
  if (unexpected !== undefined) throw new UsageError(`bans ${action}: unexpected argument '${unexpected}'`);
  const admin = adminAddress(values, 'bans are in its log');
  let answer: Awaited<ReturnType<typeof adminRequest>>;
  try {
    answer = action === 'lift' ? await adminRequest(admin, 'POST', `/bans/lift?address=${encodeURIComponent(address!)}`) : await adminRequest(admin, 'GET', '/bans');
  } catch (e) {
    console.error(`sipway: no server answers on ${admin.host}:${admin.port}: ${(e as Error).message}`);
    return 1;
  }
  if (action === 'lift') {
    if (answer.status === 200) {
      console.log(`ban of ${address} lifted`);
      return 0;
    }
    console.error(`sipway: ${address} is not banned`);
    return 1;
  }
  const bans = (answer.body?.bans ?? []) as Ban[];
  if (values.json) {
    console.log(JSON.stringify(bans));
    return 0;
  }
  if (bans.length === 0) {
    console.log('no source is banned');
    return 0;
  }
  const now = Date.now();
  console.log('ADDRESS                                  ENDS IN   REFUSED');
  for (const b of bans.sort((x, y) => x.address.localeCompare(y.address))) {
    console.log(`${b.address.padEnd(40)} ${`${Math.max(0, Math.ceil((b.until - now) / 1000))} s`.padStart(8)}  ${String(b.refused).padStart(7)}`);
  }
  return 0;
}
