import { aorOf } from '../registrar/index.js';
import { ConfigError } from '../util/errors.js';
import { adminAddress, adminRequest, ADMIN_FLAGS } from './admin-client.js';
import { parseCommandLine } from './args.js';
import { STORE_FLAGS, openCliStores } from './stores.js';
import { UsageError } from './usage-error.js';
import { parseUserAddress } from './user.js';

export const MWI_HELP = `Usage: sipway mwi <set|get|clear> USER@DOMAIN [options]

  sipway mwi set USER@DOMAIN --new N [--old N] [--urgent-new N] [--urgent-old N]
                                    set the user's message-waiting counts (RFC 3842)
  sipway mwi get USER@DOMAIN        print them as a phone sees them (simple-message-summary)
  sipway mwi clear USER@DOMAIN      nothing waiting any more

Phones that subscribed to message-summary at the server get a NOTIFY with the new counts (through the running
server's admin endpoint; without one they see them at their next refresh). The counts are stored with the user.

Store options (same as the server's):
  --config FILE   read data/store from this config file (and the admin endpoint's address)
  --data DIR      embedded store directory (default ./data)
  --store URL     redis://host:port to use a Redis store
  --admin HOST:PORT  the running server's admin endpoint (default 127.0.0.1:5090)`;

function count(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  if (!/^\d{1,7}$/.test(value) || Number(value) > 1_000_000) throw new ConfigError(flag, `'${value}' is not a number of messages (0 to 1000000)`);
  return Number(value);
}

/** `sipway mwi ...`. */
export async function mwiCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('mwi', {
    args,
    allowPositionals: true,
    options: { ...STORE_FLAGS, ...ADMIN_FLAGS, new: { type: 'string' }, old: { type: 'string' }, 'urgent-new': { type: 'string' }, 'urgent-old': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [action, target, ...extra] = positionals;
  if (values.help || action === undefined) {
    console.log(MWI_HELP);
    return values.help ? 0 : 2;
  }
  if (!['set', 'get', 'clear'].includes(action)) throw new UsageError(`mwi: unknown action '${action}' (set, get, clear)`);
  if (extra.length > 0) throw new UsageError(`mwi ${action}: unexpected argument '${extra[0]}'`);
  const user = parseUserAddress(target, `mwi ${action}`);
  const aor = aorOf(user.username, user.domain);
  if (action === 'set' && values.new === undefined) throw new UsageError('mwi set: --new is required (the number of new messages)');
  const counts = {
    newMessages: count(values.new, '--new'),
    oldMessages: count(values.old, '--old'),
    urgentNew: count(values['urgent-new'], '--urgent-new'),
    urgentOld: count(values['urgent-old'], '--urgent-old'),
  };
  if (counts.urgentNew > counts.newMessages) throw new ConfigError('--urgent-new', 'cannot exceed --new');
  if (counts.urgentOld > counts.oldMessages) throw new ConfigError('--urgent-old', 'cannot exceed --old');
  const stores = await openCliStores(values, action === 'get' ? 'read' : 'create');
  try {
    if (action === 'get') {
      const box = await stores.mailboxes.get(user.username, user.domain);
      const b = box ?? { newMessages: 0, oldMessages: 0, urgentNew: 0, urgentOld: 0 };
      console.log(`${aor}: Messages-Waiting: ${b.newMessages > 0 ? 'yes' : 'no'}; Voice-Message: ${b.newMessages}/${b.oldMessages} (${b.urgentNew}/${b.urgentOld})`);
      return 0;
    }
    if (action === 'clear') await stores.mailboxes.remove(user.username, user.domain);
    else await stores.mailboxes.put({ username: user.username, domain: user.domain, ...counts, updatedAt: Date.now() });
  } finally {
    await stores.close();
  }
  const what = action === 'clear' ? 'cleared' : `set to ${counts.newMessages}/${counts.oldMessages} (${counts.urgentNew}/${counts.urgentOld})`;
  let told = 'no server told (its watchers see it at their next refresh)';
  try {
    const answer = await adminRequest(adminAddress(values, 'watchers see the change at their next refresh'), 'POST', `/mwi?aor=${encodeURIComponent(aor)}`);
    if (answer.status === 200) told = 'watchers told';
  } catch {
    // No server running (or its admin endpoint elsewhere): stored all the same.
  }
  console.log(`${aor}: message-waiting ${what}; ${told}`);
  return 0;
}
