import { readFileSync } from 'node:fs';
import { type CplParseResult, formatCplError, parseCpl, putCplScript } from '../policy/cpl/index.js';
import { STORE_FLAGS, openCliStores } from './stores.js';
import { parseCommandLine } from './args.js';
import { CommandFailed, UsageError } from './usage-error.js';
import { parseUserAddress } from './user.js';

export const CPL_HELP = `Usage: sipway cpl <put|get|del|list|check> [options]

  sipway cpl put USER@DOMAIN FILE   validate a CPL script (RFC 3880) and store it as the user's ('-' reads stdin)
  sipway cpl get USER@DOMAIN        print the user's script
  sipway cpl del USER@DOMAIN        delete the user's script
  sipway cpl list [DOMAIN]          users with a script: size and when it was stored
  sipway cpl check FILE             validate a script without storing it

A script that does not validate is not stored; every problem is printed as FILE:LINE:COLUMN: message.
Scripts can also be uploaded in a REGISTER body (Content-Type: application/cpl+xml).

Store options (same as the server's):
  --config FILE   read data/store from this config file
  --data DIR      embedded store directory (default ./data)
  --store URL     redis://host:port to use a Redis store`;

/** Where the command writes; tests capture it. */
export interface CplCliIo {
  out(text: string): void;
  err(text: string): void;
  readStdin(): Promise<string>;
}

const processIo: CplCliIo = {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

const OPERANDS: Record<string, string[]> = { put: ['USER@DOMAIN', 'FILE'], get: ['USER@DOMAIN'], del: ['USER@DOMAIN'], list: [], check: ['FILE'] };

/** `sipway cpl ...`: returns the exit status; command-line mistakes throw UsageError (exit 2). */
export async function cplCommand(args: string[], io: CplCliIo = processIo): Promise<number> {
  const { values, positionals } = parseCommandLine('cpl', { args, allowPositionals: true, options: { ...STORE_FLAGS, help: { type: 'boolean', short: 'h' } } });
  const [action, ...operands] = positionals;
  if (values.help || action === undefined) {
    io.out(CPL_HELP);
    return values.help ? 0 : 2;
  }
  const names = OPERANDS[action];
  if (!names) throw new UsageError(`cpl: unknown action '${action}' (put, get, del, list, check)`);
  const max = action === 'list' ? 1 : names.length;
  if (operands.length < names.length) throw new UsageError(`cpl ${action}: missing ${names[operands.length]}`);
  if (operands.length > max) throw new UsageError(`cpl ${action}: unexpected argument '${operands[max]}'`);
  const [target, file] = operands;

  if (action === 'check') {
    const result = parseCpl(await readScript(target!, io));
    return report(result, target!, io, `${target}: valid CPL script`);
  }
  const user = action === 'list' ? undefined : parseUserAddress(target, `cpl ${action}`);
  const xml = action === 'put' ? await readScript(file!, io) : undefined;
  const stores = await openCliStores(values, action === 'put' ? 'create' : 'read');
  try {
    switch (action) {
      case 'put': {
        const result = await putCplScript(stores.cpl, user!, xml!, Date.now());
        return report(result, file!, io, `stored the CPL script of ${user!.username}@${user!.domain}`);
      }
      case 'get': {
        const r = await stores.cpl.get(user!.username, user!.domain);
        if (!r) throw new CommandFailed(`cpl get: ${user!.username}@${user!.domain} has no CPL script`);
        io.out(r.script.replace(/\n$/, ''));
        return 0;
      }
      case 'del':
        if (!(await stores.cpl.remove(user!.username, user!.domain))) throw new CommandFailed(`cpl del: ${user!.username}@${user!.domain} has no CPL script`);
        io.out(`deleted the CPL script of ${user!.username}@${user!.domain}`);
        return 0;
      default:
        for (const r of await stores.cpl.list(target)) {
          io.out(`${r.username}@${r.domain}\t${Buffer.byteLength(r.script, 'utf8')} bytes\t${new Date(r.updatedAt).toISOString()}`);
        }
        return 0;
    }
  } finally {
    await stores.close();
  }
}

async function readScript(file: string, io: CplCliIo): Promise<string> {
  try {
    return file === '-' ? await io.readStdin() : readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cpl: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Prints the outcome of validation: what the script holds, or each error with its position (exit 1). */
function report(result: CplParseResult, file: string, io: CplCliIo, success: string): number {
  const name = file === '-' ? '<stdin>' : file;
  if (!result.ok) {
    for (const e of result.errors) io.err(`sipway: cpl: ${formatCplError(name, e)}`);
    return 1;
  }
  const s = result.script;
  const parts = [s.incoming && 'incoming', s.outgoing && 'outgoing'].filter(Boolean);
  io.out(`${success} (${parts.length > 0 ? parts.join(' and ') : 'no incoming or outgoing action'})`);
  return 0;
}
