import type { SbcCallInfo } from '../sbc/index.js';
import { ADMIN_FLAGS, adminAddress, adminRequest } from './admin-client.js';
import { parseCommandLine } from './args.js';
import { UsageError } from './usage-error.js';

export const CALLS_HELP = `Usage: sipway calls [list] [--json] [--admin HOST:PORT | --config FILE]
       sipway calls end ID [--admin HOST:PORT | --config FILE]

Lists the calls going through the running server's SBC (docs/sbc.md): each with its ID, state, caller and callee,
the Call-IDs of both legs, its age, and per media stream the relay's port facing each party, where that party sends
from, and the RTP packets received from it. 'end' ends one call: BYE on both legs (CANCEL and 487 before the
answer). With several workers every worker is asked.

Options:
  --json              one JSON array instead of a table
  --admin HOST:PORT   the server's admin endpoint (default: from --config, else 127.0.0.1:5090)
  --config FILE       the server's config file, for its admin address`;

export async function callsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('calls', { args, allowPositionals: true, options: { ...ADMIN_FLAGS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(CALLS_HELP);
    return 0;
  }
  const [action = 'list', id, extra] = positionals;
  if (action !== 'list' && action !== 'end') throw new UsageError(`calls: unknown action '${action}' (list, end)`);
  if (action === 'end' && id === undefined) throw new UsageError('calls end: the ID of the call to end is missing (sipway calls lists them)');
  const unexpected = action === 'list' ? id : extra;
  if (unexpected !== undefined) throw new UsageError(`calls ${action}: unexpected argument '${unexpected}'`);
  const admin = adminAddress(values, 'its calls cannot be listed');
  let answer: Awaited<ReturnType<typeof adminRequest>>;
  try {
    answer = action === 'end' ? await adminRequest(admin, 'POST', `/calls/end?id=${encodeURIComponent(id!)}`) : await adminRequest(admin, 'GET', '/calls');
  } catch (e) {
    console.error(`sipway: no server answers on ${admin.host}:${admin.port}: ${(e as Error).message}`);
    return 1;
  }
  if (action === 'end') {
    if (answer.status === 200) {
      console.log(`call ${id} ended`);
      return 0;
    }
    console.error(`sipway: no call ${id} (sipway calls lists them)`);
    return 1;
  }
  if (answer.status !== 200) {
    console.error(`sipway: the server answered ${answer.status}: ${String(answer.body?.error ?? 'no calls')}`);
    return 1;
  }
  const calls = (answer.body?.calls ?? []) as SbcCallInfo[];
  if (values.json) {
    console.log(JSON.stringify(calls));
    return 0;
  }
  if (calls.length === 0) {
    console.log('no call goes through the SBC');
    return 0;
  }
  const now = Date.now();
  for (const c of calls.sort((x, y) => x.startedAt - y.startedAt)) {
    const age = Math.max(0, Math.round((now - c.startedAt) / 1000));
    console.log(`${c.id}  ${c.state.padEnd(8)} ${age} s  ${c.caller} -> ${c.callee}${c.worker !== undefined ? `  (worker ${c.worker})` : ''}`);
    console.log(`    leg a ${c.a.callId}${c.a.source ? ` from ${c.a.source}` : ''}`);
    console.log(`    leg b ${c.b.callId ?? '(not placed yet)'} to ${c.target}`);
    for (const stream of c.media?.streams ?? []) {
      const sides = stream.sides.map((s) => `port ${s.localPort} <- ${s.peer ? `${s.peer.address}:${s.peer.port}` : '?'} ${s.rtp.packets} pkts${s.latched ? '' : ' (not latched)'}`);
      console.log(`    ${stream.media} (${c.media!.engine}): ${sides.join(' | ')}`);
    }
  }
  return 0;
}
