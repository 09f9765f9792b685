import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Subscriber } from '../store/index.js';
import { computeHa1 } from '../auth/digest.js';
import { parseUri } from '../message/index.js';
import { STORE_FLAGS, openCliStores } from './stores.js';
import { UsageError } from './usage-error.js';

export const USER_HELP = `Usage: sipway user <add|passwd|del|list> [options]

  sipway user add USER@DOMAIN --password SECRET [--groups g1,g2]
  sipway user passwd USER@DOMAIN --password SECRET
  sipway user del USER@DOMAIN
  sipway user list [DOMAIN]
  sipway user import FILE      one 'USER@DOMAIN PASSWORD [GROUPS]' per line ('-' reads stdin); adds or replaces

Only the digest hashes (HA1 for MD5 and SHA-256, realm = DOMAIN) are stored, never the password.
--password-stdin reads the password from standard input instead.

Store options (same as the server's):
  --config FILE   read data/store from this config file
  --data DIR      embedded store directory (default ./data)
  --store URL     redis://host:port to use a Redis store`;

/** Splits user@domain (an optional sip: prefix is accepted) and checks both parts. */
export function parseUserAddress(text: string | undefined): { username: string; domain: string } {
  if (!text) throw new UsageError('user: missing USER@DOMAIN');
  const uriText = /^sips?:/i.test(text) ? text : `sip:${text}`;
  let uri;
  try {
    uri = parseUri(uriText);
  } catch {
    throw new UsageError(`user: '${text}' is not a valid address of record (expected user@domain)`);
  }
  if (uri.type !== 'sip' || !uri.user || uri.password !== undefined || uri.port !== undefined || uri.params.size > 0) {
    throw new UsageError(`user: '${text}' is not a valid address of record (expected user@domain)`);
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
  if (typeof pw !== 'string' || pw.length === 0) throw new UsageError('user: --password (or --password-stdin) is required');
  return pw;
}

export async function userCommand(args: string[]): Promise<number> {
  const { values, positionals } = (() => {
    try {
      return parseArgs({
        args,
        strict: true,
        allowPositionals: true,
        options: {
          ...STORE_FLAGS,
          password: { type: 'string' },
          'password-stdin': { type: 'boolean' },
          groups: { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
      });
    } catch (e) {
      throw new UsageError((e as Error).message.split('\n')[0]!);
    }
  })();
  const [action, target, ...extra] = positionals;
  if (values.help || action === undefined) {
    console.log(USER_HELP);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw new UsageError(`user ${action}: unexpected argument '${extra[0]}'`);
  if (!['add', 'passwd', 'del', 'list', 'import'].includes(action)) throw new UsageError(`user: unknown action '${action}' (add, passwd, del, list, import)`);
  if (action === 'import') return importUsers(target, values);
  const addr = action === 'list' ? undefined : parseUserAddress(target);
  const secret = action === 'add' || action === 'passwd' ? await password(values) : undefined;
  const stores = await openCliStores(values);
  try {
    const subs = stores.subscribers;
    switch (action) {
      case 'add':
      case 'passwd': {
        const { username, domain } = addr!;
        const existing = await subs.get(username, domain);
        if (action === 'add' && existing) throw new UsageError(`user add: ${username}@${domain} already exists (use 'sipway user passwd')`);
        if (action === 'passwd' && !existing) throw new UsageError(`user passwd: no such user ${username}@${domain}`);
        const groups = typeof values.groups === 'string' ? values.groups.split(',').map((g) => g.trim()).filter(Boolean) : (existing?.groups ?? []);
        await subs.put(subscriber(username, domain, secret!, groups, existing?.createdAt));
        console.log(`${action === 'add' ? 'added' : 'password changed for'} ${username}@${domain}`);
        return 0;
      }
      case 'del': {
        const { username, domain } = addr!;
        if (!(await subs.remove(username, domain))) throw new UsageError(`user del: no such user ${username}@${domain}`);
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
    const [address, pw, groups] = t.split(/[\s,;]+/);
    if (!pw) throw new UsageError(`user import: line ${i + 1}: expected 'USER@DOMAIN PASSWORD [GROUPS]'`);
    let addr;
    try {
      addr = parseUserAddress(address);
    } catch (e) {
      throw new UsageError(`user import: line ${i + 1}: ${(e as Error).message.replace(/^user: /, '')}`);
    }
    rows.push(subscriber(addr.username, addr.domain, pw, groups ? groups.split('|').filter(Boolean) : []));
  });
  const stores = await openCliStores(values);
  try {
    for (const row of rows) await stores.subscribers.put(row);
  } finally {
    await stores.close();
  }
  console.log(`imported ${rows.length} users`);
  return 0;
}
