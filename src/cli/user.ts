import { parseArgs } from 'node:util';
import { computeHa1 } from '../auth/digest.js';
import { parseUri } from '../message/index.js';
import { STORE_FLAGS, openCliStores } from './stores.js';
import { UsageError } from './usage-error.js';

export const USER_HELP = `Usage: sipway user <add|passwd|del|list> [options]

  sipway user add USER@DOMAIN --password SECRET [--groups g1,g2]
  sipway user passwd USER@DOMAIN --password SECRET
  sipway user del USER@DOMAIN
  sipway user list [DOMAIN]

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
  if (!['add', 'passwd', 'del', 'list'].includes(action)) throw new UsageError(`user: unknown action '${action}' (add, passwd, del, list)`);
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
        await subs.put({
          username,
          domain,
          ha1Md5: computeHa1(username, domain, secret!, 'MD5'),
          ha1Sha256: computeHa1(username, domain, secret!, 'SHA-256'),
          groups,
          createdAt: existing?.createdAt ?? Date.now(),
        });
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
