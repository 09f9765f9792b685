import { buddyListUri } from '../presence/index.js';
import { aorOf } from '../registrar/index.js';
import { MAX_BUDDIES, type BuddyListMember } from '../store/index.js';
import { ConfigError } from '../util/errors.js';
import { adminAddress, adminRequest, ADMIN_FLAGS } from './admin-client.js';
import { parseCommandLine } from './args.js';
import { STORE_FLAGS, openCliStores } from './stores.js';
import { CommandFailed, UsageError } from './usage-error.js';
import { parseUserAddress } from './user.js';

export const BUDDIES_HELP = `Usage: sipway buddies <list|add|remove|clear> USER@DOMAIN [MEMBER...] [options]

  sipway buddies list USER@DOMAIN                  the user's buddy list: its URI and members
  sipway buddies add USER@DOMAIN MEMBER... [--name NAME]
                                                   add members (--name: how the phone shows the one MEMBER given)
  sipway buddies remove USER@DOMAIN MEMBER...      take members off the list
  sipway buddies clear USER@DOMAIN                 empty the list

The list is served as a resource list (RFC 4662) at sip:USER-buddies@DOMAIN: the user's phone subscribes to that
URI once (Event: presence, Supported: eventlist) and learns the presence of every member, as each member's watcher
rules let the user see it. Nobody else may subscribe to it. The running server is told through its admin endpoint
and sends the whole list again to the phones subscribed to it.

Options:
  --name NAME     the display name of the MEMBER being added (one MEMBER only)

Store options (same as the server's):
  --config FILE   read data/store from this config file (and the admin endpoint's address)
  --data DIR      embedded store directory (default ./data)
  --store URL     redis://host:port to use a Redis store
  --admin HOST:PORT  the running server's admin endpoint (default 127.0.0.1:5090)`;

/** A member as the list names it: the registrar's canonical AOR, so that it meets the member's presence. */
function memberAor(text: string): string {
  try {
    const user = parseUserAddress(text, 'MEMBER');
    return aorOf(user.username, user.domain);
  } catch (e) {
    throw new ConfigError('MEMBER', `'${text}' is not an address (bob@example.com): ${(e as Error).message}`);
  }
}

function displayName(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.length === 0 || value.length > 256 || /[\u0000-\u001f\u007f]/.test(value)) throw new ConfigError('--name', 'must be 1 to 256 characters without control characters');
  return value;
}

/** `sipway buddies ...`. */
export async function buddiesCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('buddies', { args, allowPositionals: true, options: { ...STORE_FLAGS, ...ADMIN_FLAGS, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  const [action, target, ...memberTexts] = positionals;
  if (values.help || action === undefined) {
    console.log(BUDDIES_HELP);
    return values.help ? 0 : 2;
  }
  if (!['list', 'add', 'remove', 'clear'].includes(action)) throw new UsageError(`buddies: unknown action '${action}' (list, add, remove, clear)`);
  const user = parseUserAddress(target, `buddies ${action}`);
  const aor = aorOf(user.username, user.domain);
  const listUri = buddyListUri(user.username, user.domain);
  if ((action === 'list' || action === 'clear') && memberTexts.length > 0) throw new UsageError(`buddies ${action}: unexpected argument '${memberTexts[0]}'`);
  if ((action === 'add' || action === 'remove') && memberTexts.length === 0) throw new UsageError(`buddies ${action}: the MEMBER (bob@example.com) is missing`);
  const name = displayName(values.name);
  if (name !== undefined && (action !== 'add' || memberTexts.length !== 1)) throw new ConfigError('--name', 'names the one MEMBER of a buddies add');
  const members = memberTexts.map(memberAor);
  const stores = await openCliStores(values, action === 'list' ? 'read' : 'create');
  let line: string;
  try {
    const record = (await stores.buddyLists.get(user.username, user.domain)) ?? { username: user.username, domain: user.domain, members: [] };
    if (action === 'list') {
      const shown = record.members.map((m) => (m.name === undefined ? m.uri : `${m.uri} "${m.name}"`));
      console.log([`${listUri} (buddy list of ${aor})${shown.length === 0 ? ': no members' : ''}`, ...shown].join('\n'));
      return 0;
    }
    if (action === 'clear') {
      await stores.buddyLists.remove(user.username, user.domain);
      line = `${listUri}: cleared`;
    } else if (action === 'remove') {
      const missing = members.find((m) => !record.members.some((r) => r.uri === m));
      if (missing !== undefined) throw new CommandFailed(`buddies remove: ${missing} is not on ${listUri}`);
      record.members = record.members.filter((r) => !members.includes(r.uri));
      await stores.buddyLists.put(record);
      line = `${listUri}: ${members.join(', ')} removed`;
    } else {
      const next: BuddyListMember[] = [...record.members];
      for (const uri of members) {
        const at = next.findIndex((m) => m.uri === uri);
        // Adding one already there renames it (or keeps it): the phone's order of the list stays.
        const entry: BuddyListMember = name === undefined ? (next[at] ?? { uri }) : { uri, name };
        if (at >= 0) next[at] = entry;
        else next.push(entry);
      }
      if (next.length > MAX_BUDDIES) throw new CommandFailed(`buddies add: ${listUri} would have ${next.length} members (at most ${MAX_BUDDIES})`);
      record.members = next;
      await stores.buddyLists.put(record);
      line = `${listUri}: ${members.join(', ')} added`;
    }
  } finally {
    await stores.close();
  }
  let told = 'no server told (subscribed phones see it when they refresh)';
  try {
    const answer = await adminRequest(adminAddress(values, 'subscribed phones see the change when they refresh'), 'POST', `/buddies?aor=${encodeURIComponent(aor)}`);
    if (answer.status === 200) told = 'subscribed phones told';
  } catch {
    // No server running: phones get the list at their next SUBSCRIBE or refresh.
  }
  console.log(`${line}; ${told}`);
  return 0;
}
