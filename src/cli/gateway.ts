import { type GatewayStore, InvalidGatewayError } from '../store/index.js';
import { parseCommandLine } from './args.js';
import { STORE_FLAGS, type StoreAccess, type StoreFlags, openCliGatewayStore } from './stores.js';
import { CommandFailed, UsageError } from './usage-error.js';

const STORE_HELP = `Store options (same as the server's):
  --config FILE   read data/store from this config file
  --data DIR      embedded store directory (default ./data)
  --store URL     redis://host:port to use a Redis store

A running server picks the changes up at 'sipway reload' (see docs/gateways.md).`;

export const GATEWAY_HELP = `Usage: sipway gateway <add|del|enable|disable|list> [options]

  sipway gateway add ID URI --group GROUP [--weight N] [--disabled]
                                   add or replace a PSTN gateway; URI is sip:host[:port][;transport=...]
  sipway gateway del ID            delete a gateway
  sipway gateway enable ID         let a gateway take calls again
  sipway gateway disable ID        keep a gateway configured but send it no calls
  sipway gateway list              all gateways: id, URI, group, weight, state

${STORE_HELP}`;

export const ROUTE_HELP = `Usage: sipway route <add|del|list> [options]

  sipway route add PREFIX GROUP --cost N [--description TEXT]
                                   numbers starting with PREFIX (digits, optional leading '+'; 'default'
                                   matches every number) go to the gateways of GROUP
  sipway route del PREFIX GROUP    delete a route
  sipway route list                all routes: prefix, group, cost, description

The longest matching prefix is tried first, then shorter ones; among equal prefixes the lowest cost first.

${STORE_HELP}`;

/** Where the commands write; tests capture it. */
export interface GatewayCliIo {
  out(text: string): void;
}

const processIo: GatewayCliIo = { out: (text) => console.log(text) };

const GATEWAY_OPERANDS: Record<string, string[]> = { add: ['ID', 'URI'], del: ['ID'], enable: ['ID'], disable: ['ID'], list: [] };
const ROUTE_OPERANDS: Record<string, string[]> = { add: ['PREFIX', 'GROUP'], del: ['PREFIX', 'GROUP'], list: [] };

/** `sipway gateway ...`: returns the exit status; command-line mistakes throw UsageError (exit 2). */
export async function gatewayCommand(args: string[], io: GatewayCliIo = processIo): Promise<number> {
  const { values, action, operands } = parse('gateway', args, GATEWAY_OPERANDS, GATEWAY_HELP, io, {
    group: { type: 'string' },
    weight: { type: 'string' },
    disabled: { type: 'boolean' },
  });
  if (action === undefined) return values.help ? 0 : 2;
  const [id, uri] = operands as [string, string | undefined];
  return withStore('gateway', values, action === 'add' ? 'create' : 'read', async (store) => {
    switch (action) {
      case 'add': {
        if (typeof values.group !== 'string') throw new UsageError("--group: required by 'gateway add'");
        const weight = values.weight === undefined ? undefined : Number(values.weight);
        await store.putGateway({ id, uri: uri!, group: values.group, ...(weight !== undefined && { weight }), enabled: !values.disabled });
        io.out(`stored gateway ${id} (${uri}) in group ${values.group}${values.disabled ? ', disabled' : ''}`);
        return 0;
      }
      case 'del':
        if (!(await store.removeGateway(id))) throw new CommandFailed(`gateway del: no gateway '${id}'`);
        io.out(`deleted gateway ${id}`);
        return 0;
      case 'enable':
      case 'disable': {
        const g = (await store.load()).gateways.find((x) => x.id === id);
        if (!g) throw new CommandFailed(`gateway ${action}: no gateway '${id}'`);
        await store.putGateway({ ...g, enabled: action === 'enable' });
        io.out(`${action}d gateway ${id}`);
        return 0;
      }
      default:
        for (const g of (await store.load()).gateways) {
          io.out(`${g.id}\t${g.uri}\t${g.group}\t${g.weight === undefined ? '-' : `weight=${g.weight}`}\t${g.enabled ? 'enabled' : 'disabled'}`);
        }
        return 0;
    }
  });
}

/** `sipway route ...`: returns the exit status; command-line mistakes throw UsageError (exit 2). */
export async function routeCommand(args: string[], io: GatewayCliIo = processIo): Promise<number> {
  const { values, action, operands } = parse('route', args, ROUTE_OPERANDS, ROUTE_HELP, io, {
    cost: { type: 'string' },
    description: { type: 'string' },
  });
  if (action === undefined) return values.help ? 0 : 2;
  // Visual separators are accepted as in a dialled number (RFC 3966 §5.1.1).
  const prefix = operands[0] === 'default' ? '' : operands[0]?.replace(/[-.() ]/g, '');
  const group = operands[1];
  const shown = (p: string): string => (p === '' ? 'default' : p);
  return withStore('route', values, action === 'add' ? 'create' : 'read', async (store) => {
    switch (action) {
      case 'add': {
        if (typeof values.cost !== 'string') throw new UsageError("--cost: required by 'route add'");
        const cost = values.cost.trim() === '' ? NaN : Number(values.cost);
        const description = typeof values.description === 'string' ? values.description : undefined;
        await store.putRoute({ prefix: prefix!, group: group!, cost, ...(description !== undefined && { description }) });
        io.out(`stored route ${shown(prefix!)} -> ${group} (cost ${cost})`);
        return 0;
      }
      case 'del':
        if (!(await store.removeRoute(prefix!, group!))) throw new CommandFailed(`route del: no route ${shown(prefix!)} -> ${group}`);
        io.out(`deleted route ${shown(prefix!)} -> ${group}`);
        return 0;
      default:
        for (const r of (await store.load()).routes) io.out(`${shown(r.prefix)}\t${r.group}\t${r.cost}${r.description ? `\t${r.description}` : ''}`);
        return 0;
    }
  });
}

type Flags = Record<string, { type: 'string' | 'boolean' }>;

/** Parses flags and operands; action is undefined when only help is to be printed. */
function parse(
  command: string,
  args: string[],
  operandNames: Record<string, string[]>,
  help: string,
  io: GatewayCliIo,
  flags: Flags,
): { values: Record<string, string | boolean | undefined>; action: string | undefined; operands: string[] } {
  const parsed = parseCommandLine(command, { args, allowPositionals: true, options: { ...STORE_FLAGS, ...flags, help: { type: 'boolean', short: 'h' } } });
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const [action, ...operands] = parsed.positionals;
  if (values.help || action === undefined) {
    io.out(help);
    return { values, action: undefined, operands };
  }
  const names = operandNames[action];
  if (!names) throw new UsageError(`${command}: unknown action '${action}' (${Object.keys(operandNames).join(', ')})`);
  if (operands.length < names.length) throw new UsageError(`${command} ${action}: missing ${names[operands.length]}`);
  if (operands.length > names.length) throw new UsageError(`${command} ${action}: unexpected argument '${operands[names.length]}'`);
  return { values, action, operands };
}

/** Runs `fn` on the store the server would use; invalid data becomes a usage error naming the command. */
async function withStore(command: string, values: StoreFlags, access: StoreAccess, fn: (store: GatewayStore) => Promise<number>): Promise<number> {
  const opened = await openCliGatewayStore(values, access);
  try {
    return await fn(opened);
  } catch (e) {
    if (e instanceof InvalidGatewayError) throw new UsageError(`${command}: ${e.message}`);
    throw e;
  } finally {
    await opened.close();
  }
}
