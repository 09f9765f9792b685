import { readFileSync } from 'node:fs';
import type { Subscriber } from '../store/index.js';
import { computeHa1 } from '../auth/digest.js';
import { parseUri } from '../message/index.js';
import { STORE_FLAGS, openCliStores } from './stores.js';
import { parseCommandLine } from './args.js';
import { CommandFailed, UsageError } from './usage-error.js';

export const USER_HELP = `Usage: sipway user <add|passwd|del|list|import> [options]

  sipway user add USER@DOMAIN --password SECRET [--groups g1,g2]
  sipway user passwd USER@DOMAIN --password SECRET
  sipway user del USER@DOMAIN
  sipway user list [DOMAIN]
  sipway user import FILE      one 'USER@DOMAIN PASSWORD [GROUPS]' per line ('-' reads stdin); adds or replaces

Only the digest hashes (HA1 for MD5 and SHA-256, realm = DOMAIN) are stored, never the password.
--password-stdin reads the password from standard input instead.

Import file: fields separated by spaces or tabs; GROUPS is g1,g2 (or g1|g2); '#' starts a comment line. A password
with spaces, or starting with '"', is written in double quotes, with \\" for a quote and \\\\ for a backslash:
  alice@example.com  "correct horse"  intl,vip
A line that does not read cleanly (a quote left open, a stray quote, a field too many) stops the import before
anything is written, naming its line.

Store options (same as the server's):
  --config FILE   read data/store from this config file
  --data DIR      embedded store directory (default ./data)
  --store URL     redis://host:port to use a Redis store`;

/**
 * Splits user@domain (an optional sip: prefix is accepted) and checks both parts; `where` (a command, a flag)
 * starts the error message.
 */
export function parseUserAddress(text: string | undefined, where = 'user'): { username: string; domain: string } {
  if (!text) throw new UsageError(`${where}: missing USER@DOMAIN`);
  const uriText = /^sips?:/i.test(text) ? text : `sip:${text}`;
  let uri;
  try {
    uri = parseUri(uriText);
  } catch {
    uri = undefined;
  }
  if (uri?.type !== 'sip' || !uri.user || uri.password !== undefined || uri.port !== undefined || uri.params.size > 0) {
    throw new UsageError(`${where}: '${text}' is not a valid address of record (expected user@domain)`);
  }
  return { username: uri.userUnescaped!, domain: uri.host.toLowerCase() };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function password(values: { password?: unknown; 'password-stdin'?: unknown }): Promise<string> {
  const pw = values['password-stdin'] ? await readStdin() : values.password;
  if (typeof pw !== 'string' || pw.length === 0) throw new UsageError(values['password-stdin'] ? '--password-stdin: read an empty password' : '--password: required (or --password-stdin)');
  return pw;
}

export async function userCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('user', {
    args,
    allowPositionals: true,
    options: {
      ...STORE_FLAGS,
      password: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      groups: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [action, target, ...extra] = positionals;
  if (values.help || action === undefined) {
    console.log(USER_HELP);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw new UsageError(`user ${action}: unexpected argument '${extra[0]}'`);
  if (!['add', 'passwd', 'del', 'list', 'import'].includes(action)) throw new UsageError(`user: unknown action '${action}' (add, passwd, del, list, import)`);
  if (action === 'import') return importUsers(target, values);
  const addr = action === 'list' ? undefined : parseUserAddress(target, `user ${action}`);
  const secret = action === 'add' || action === 'passwd' ? await password(values) : undefined;
  const stores = await openCliStores(values, action === 'add' ? 'create' : 'read');
  try {
    const subs = stores.subscribers;
    switch (action) {
      case 'add':
      case 'passwd': {
        const { username, domain } = addr!;
        const existing = await subs.get(username, domain);
        if (action === 'add' && existing) throw new CommandFailed(`user add: ${username}@${domain} already exists (use 'sipway user passwd')`);
        if (action === 'passwd' && !existing) throw new CommandFailed(`user passwd: no such user ${username}@${domain}`);
        const groups = typeof values.groups === 'string' ? values.groups.split(',').map((g) => g.trim()).filter(Boolean) : (existing?.groups ?? []);
        await subs.put(subscriber(username, domain, secret!, groups, existing?.createdAt));
        console.log(`${action === 'add' ? 'added' : 'password changed for'} ${username}@${domain}`);
        return 0;
      }
      case 'del': {
        const { username, domain } = addr!;
        if (!(await subs.remove(username, domain))) throw new CommandFailed(`user del: no such user ${username}@${domain}`);
        console.log(`deleted ${username}@${domain}`);
        return 0;
      }
      default: {
        const list = await subs.list(target?.toLowerCase());
        for (const s of list) console.log(`${s.username}@${s.domain}${s.groups.length ? `\tgroups=${s.groups.join(',')}` : ''}`);
        return 0;
      }
    }
  } finally {
    await stores.close();
  }
}

function subscriber(username: string, domain: string, secret: string, groups: string[], createdAt = Date.now()): Subscriber {
  return {
    username,
    domain,
    ha1Md5: computeHa1(username, domain, secret, 'MD5'),
    ha1Sha256: computeHa1(username, domain, secret, 'SHA-256'),
    groups,
    createdAt,
  };
}

/** Bulk provisioning: every line is validated before anything is written, so a bad file changes nothing. */
async function importUsers(file: string | undefined, values: Parameters<typeof openCliStores>[0]): Promise<number> {
  if (!file) throw new UsageError('user import: missing FILE (or - for standard input)');
  let text: string;
  try {
    text = file === '-' ? await readStdin() : readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`user import: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const rows: Subscriber[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    try {
      const [address, pw, groups, extra] = importFields(t);
      if (pw === undefined) throw new Error("expected 'USER@DOMAIN PASSWORD [GROUPS]'");
      if (pw === '') throw new Error('the password is empty');
      // Not echoed: the fields may be pieces of a password.
      if (extra !== undefined) throw new Error(`${importFields(t).length} fields where 2 or 3 are expected (a password with spaces goes in double quotes: "two words")`);
      const addr = parseUserAddress(address, 'address');
      rows.push(subscriber(addr.username, addr.domain, pw, groups ? groups.split(/[,|]/).map((g) => g.trim()).filter(Boolean) : []));
    } catch (e) {
      throw new UsageError(`user import: line ${i + 1}: ${(e as Error).message}`);
    }
  });
  const stores = await openCliStores(values, 'create');
  try {
    for (const row of rows) await stores.subscribers.put(row);
  } finally {
    await stores.close();
  }
  console.log(`imported ${rows.length} ${rows.length === 1 ? 'user' : 'users'}`);
  return 0;
}

/**
 * The fields of an import line: separated by blanks; a field in double quotes may hold blanks, `\"` and `\\`.
 * A quote anywhere else is refused rather than guessed at: a password read wrongly would fail only at the phone.
 */
export function importFields(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ' || line[i] === '\t') {
      i++;
      continue;
    }
    if (line[i] !== '"') {
      const end = line.slice(i).search(/[ \t]/);
      const field = end < 0 ? line.slice(i) : line.slice(i, i + end);
      if (field.includes('"')) throw new Error(`field ${fields.length + 1} has a quote inside; put the whole field in double quotes and write \\" for the quote`);
      fields.push(field);
      i += field.length;
      continue;
    }
    let field = '';
    for (i++; ; i++) {
      if (i >= line.length) throw new Error('a quoted field has no closing quote');
      if (line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) field += line[++i];
      else if (line[i] === '"') break;
      else field += line[i];
    }
    i++;
    if (i < line.length && line[i] !== ' ' && line[i] !== '\t') throw new Error(`field ${fields.length + 1} goes on after its closing quote; put a space after it`);
    fields.push(field);
  }
  return fields;
}
