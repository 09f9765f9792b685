import { aorOf } from '../registrar/index.js';
import { WATCHER_RULES, type WatcherRule } from '../store/index.js';
import { ConfigError } from '../util/errors.js';
import { adminAddress, adminRequest, ADMIN_FLAGS } from './admin-client.js';
import { parseCommandLine } from './args.js';
import { STORE_FLAGS, openCliStores } from './stores.js';
import { CommandFailed, UsageError } from './usage-error.js';
import { parseUserAddress } from './user.js';

export const WATCHERS_HELP = `Usage: sipway watchers <list|allow|block|polite-block|confirm|forget> USER@DOMAIN [WATCHER] [options]

  sipway watchers list USER@DOMAIN                the user's rules about who may see their presence
  sipway watchers allow USER@DOMAIN WATCHER       WATCHER sees the user's presence
  sipway watchers block USER@DOMAIN WATCHER       WATCHER's subscriptions are refused (403) or ended (rejected)
  sipway watchers polite-block USER@DOMAIN WATCHER  WATCHER is accepted but always sees the user offline
  sipway watchers confirm USER@DOMAIN WATCHER     WATCHER waits (pending) until another rule is set
  sipway watchers forget USER@DOMAIN WATCHER      back to the default for WATCHER

WATCHER is an address (alice@example.com) or a whole domain (*@example.com). Without a rule, watchers of the user's
own domain are allowed and others wait (pending): the user sees them in presence.winfo (RFC 3857) and decides here.
The running server is told through its admin endpoint and decides the current watchers again at once.

Store options (same as the server's):
  --config FILE   read data/store from this config file (and the admin endpoint's address)
  --data DIR      embedded store directory (default ./data)
  --store URL     redis://host:port to use a Redis store
  --admin HOST:PORT  the running server's admin endpoint (default 127.0.0.1:5090)`;

/** A watcher as the rules name it: a canonical AOR, or `*@domain`. */
function watcherKey(text: string | undefined): string {
  if (!text) throw new UsageError('watchers: the WATCHER (alice@example.com or *@example.com) is missing');
  const domain = /^\*@([^@\s]+)$/.exec(text);
  if (domain) return `*@${domain[1]!.toLowerCase()}`;
  try {
    const user = parseUserAddress(text, 'WATCHER');
    return aorOf(user.username, user.domain);
  } catch (e) {
    throw new ConfigError('WATCHER', `'${text}' is not an address (alice@example.com) or a domain (*@example.com): ${(e as Error).message}`);
  }
}

/** `sipway watchers ...`. */
export async function watchersCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('watchers', { args, allowPositionals: true, options: { ...STORE_FLAGS, ...ADMIN_FLAGS, help: { type: 'boolean', short: 'h' } } });
  const [action, target, watcherText, ...extra] = positionals;
  if (values.help || action === undefined) {
    console.log(WATCHERS_HELP);
    return values.help ? 0 : 2;
  }
  const rule = WATCHER_RULES.includes(action as WatcherRule) ? (action as WatcherRule) : undefined;
  if (action !== 'list' && action !== 'forget' && rule === undefined) throw new UsageError(`watchers: unknown action '${action}' (list, ${WATCHER_RULES.join(', ')}, forget)`);
  if (extra.length > 0) throw new UsageError(`watchers ${action}: unexpected argument '${extra[0]}'`);
  const user = parseUserAddress(target, `watchers ${action}`);
  const aor = aorOf(user.username, user.domain);
  const stores = await openCliStores(values, action === 'list' ? 'read' : 'create');
  let line: string;
  try {
    const record = (await stores.watcherRules.get(user.username, user.domain)) ?? { username: user.username, domain: user.domain, rules: {} };
    if (action === 'list') {
      const entries = Object.entries(record.rules).sort(([a], [b]) => (a < b ? -1 : 1));
      console.log(entries.length === 0 ? `${aor}: no rules (own domain allowed, others pending)` : entries.map(([w, r]) => `${w} ${r}`).join('\n'));
      return 0;
    }
    const watcher = watcherKey(watcherText);
    if (action === 'forget') {
      if (!(watcher in record.rules)) throw new CommandFailed(`watchers forget: ${aor} has no rule for ${watcher}`);
      delete record.rules[watcher];
    } else record.rules[watcher] = rule!;
    await stores.watcherRules.put(record);
    line = `${aor}: ${watcher} ${action === 'forget' ? 'back to the default' : rule}`;
  } finally {
    await stores.close();
  }
  let told = 'no server told (current watchers are decided again when they refresh)';
  try {
    const answer = await adminRequest(adminAddress(values, 'current watchers are decided again when they refresh'), 'POST', `/watchers?aor=${encodeURIComponent(aor)}`);
    if (answer.status === 200) told = 'watchers decided again';
  } catch {
    // No server running: the rules apply from the next subscription.
  }
  console.log(`${line}; ${told}`);
  return 0;
}
