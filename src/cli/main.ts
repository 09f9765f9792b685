#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../util/errors.js';
import { applyConfigObject, defaultConfig, finishConfig, loadConfigFile, parseListen, type ServerConfig } from '../server/config.js';
import { SipwayServer } from '../server/server.js';
import { isClusterWorker, runPrimary, runWorker, WorkerStartError } from '../server/cluster.js';
import { UsageError } from './usage-error.js';
import { LastResort } from '../util/last-resort.js';
import { USER_HELP, userCommand } from './user.js';
import { LOCATION_HELP, locationCommand } from './location.js';
import { CDR_HELP, cdrCommand } from './cdr.js';
import { CPL_HELP, cplCommand } from './cpl.js';
import { RELOAD_HELP, reloadCommand } from './reload.js';
import { GATEWAY_HELP, ROUTE_HELP, gatewayCommand, routeCommand } from './gateway.js';

const VERSION = '0.1.0';

const MAIN_HELP = `sipway ${VERSION} - SIP registrar, proxy and server platform

Usage: sipway <command> [options]

Commands:
  serve            start the SIP server
  user             add, change, delete and list subscribers (digest credentials)
  location         show registered bindings
  cdr              show call detail records (calls, attempts, missed calls)
  cpl              upload, show, delete and list per-user CPL scripts (RFC 3880)
  gateway          add, delete, enable, disable and list PSTN gateways
  route            add, delete and list prefix routes to gateway groups (least-cost routing)
  reload           load the running server's routing policy and gateways again
  help [command]   show help for a command

Options:
  -h, --help       show this help
  -v, --version    print the version

Run 'sipway serve --help' for the server's options.`;

const SERVE_HELP = `Usage: sipway serve [options]

Starts the SIP server. Flags override the config file; with no flags it listens on UDP and TCP
0.0.0.0:5060 and serves 'localhost' plus this machine's hostname.

Options:
  --config FILE        JSON config file (see docs/configuration.md)
  --listen SPEC        transport:host:port to listen on; repeatable. Transports: udp, tcp, tls, ws, wss.
                       IPv6 as udp:[::1]:5060. Example: --listen udp:127.0.0.1:5060 --listen tcp:127.0.0.1:5060
  --domain NAME        a domain this server is responsible for; repeatable
  --data DIR           where the embedded store lives (default ./data)
  --store URL          redis://host:port to share bindings and users between nodes (default: embedded)
  --node-id NAME       this node's name in bindings (default: the hostname)
  --no-auth            REGISTER without digest authentication (labs only)
  --log-level LEVEL    fatal, error, warn, info, debug, trace or silent (default info)
  --tls-cert FILE      PEM certificate for tls:/wss: listeners
  --tls-key FILE       PEM private key for tls:/wss: listeners
  --force-rport        answer requests at their source port even without ;rport (NAT, RFC 3581)
  --policy FILE        routing policy module, .ts or .js (docs/policy.md); SIGHUP or 'sipway reload' reloads it
  --admin HOST:PORT    loopback address of the admin endpoint for 'sipway reload' (default 127.0.0.1:5090)
  --workers N|auto     worker processes sharing the listeners (default auto: one per CPU core; 1: one process)
  -h, --help           show this help`;

function parse(args: string[], options: ParseArgsConfig['options']): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    // Node's messages name the flag; keep them to one line.
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
}

export function buildServeConfig(args: string[]): ServerConfig | 'help' {
  const { values, positionals } = parse(args, {
    config: { type: 'string' },
    listen: { type: 'string', multiple: true },
    domain: { type: 'string', multiple: true },
    data: { type: 'string' },
    store: { type: 'string' },
    'no-auth': { type: 'boolean' },
    'node-id': { type: 'string' },
    'log-level': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'force-rport': { type: 'boolean' },
    policy: { type: 'string' },
    admin: { type: 'string' },
    workers: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`serve: unexpected argument '${positionals[0]}'`);
  let config = typeof values.config === 'string' ? loadConfigFile(values.config) : defaultConfig();
  const overrides: Record<string, unknown> = {};
  if (Array.isArray(values.listen)) {
    values.listen.forEach((s, i) => parseListen(String(s), `--listen[${i}]`));
    overrides.listen = values.listen;
  }
  if (Array.isArray(values.domain)) overrides.domains = values.domain;
  if (typeof values.data === 'string') overrides.data = values.data;
  if (typeof values.store === 'string') overrides.store = values.store;
  if (typeof values['node-id'] === 'string') overrides.nodeId = values['node-id'];
  if (values['no-auth']) overrides.auth = { register: false };
  if (typeof values['log-level'] === 'string') overrides.log = { level: values['log-level'] };
  if (values['tls-cert'] !== undefined || values['tls-key'] !== undefined) {
    // The flags replace the files; the config file's other TLS settings (ca, verification) stay.
    overrides.tls = { ...config.tls, cert: values['tls-cert'] ?? config.tls?.cert, key: values['tls-key'] ?? config.tls?.key };
  }
  if (values['force-rport']) overrides.transport = { forceRport: true };
  if (typeof values.policy === 'string') overrides.policy = values.policy;
  if (typeof values.admin === 'string') overrides.admin = { listen: values.admin };
  if (typeof values.workers === 'string') {
    const w = values.workers;
    if (w !== 'auto' && !/^\d+$/.test(w)) throw new UsageError(`--workers: '${w}' is not a number or 'auto'`);
    overrides.workers = w === 'auto' ? w : Number(w);
  }
  config = applyConfigObject(config, overrides, 'flags');
  return finishConfig(config);
}

async function serve(args: string[]): Promise<number> {
  const config = buildServeConfig(args);
  if (config === 'help') {
    console.log(SERVE_HELP);
    return 0;
  }
  if (isClusterWorker()) {
    await runWorker(config);
    return -1;
  }
  if (config.workers > 1) {
    await runPrimary(config, config.workers);
    return -1;
  }
  const server = new SipwayServer(config);
  new LastResort(server.logger).install();
  await server.start();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, 'shutting down');
    server
      .stop()
      .then(() => process.exit(0))
      .catch((e: unknown) => {
        console.error(`sipway: shutdown failed: ${(e as Error).message}`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // reloadPolicy logs the outcome (and keeps the old policy on failure).
  process.on('SIGHUP', () => void server.reloadPolicy());
  return -1;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
      console.log(MAIN_HELP);
      return 0;
    case 'help':
      console.log(rest[0] === 'serve' ? SERVE_HELP : rest[0] === 'user' ? USER_HELP : rest[0] === 'location' ? LOCATION_HELP : rest[0] === 'cdr' ? CDR_HELP : rest[0] === 'cpl' ? CPL_HELP : rest[0] === 'reload' ? RELOAD_HELP : rest[0] === 'gateway' ? GATEWAY_HELP : rest[0] === 'route' ? ROUTE_HELP : MAIN_HELP);
      return 0;
    case '-v':
    case '--version':
      console.log(VERSION);
      return 0;
    case 'serve':
      return serve(rest);
    case 'user':
      return userCommand(rest);
    case 'location':
      return locationCommand(rest);
    case 'cdr':
      return cdrCommand(rest);
    case 'cpl':
      return cplCommand(rest);
    case 'reload':
      return reloadCommand(rest);
    case 'gateway':
      return gatewayCommand(rest);
    case 'route':
      return routeCommand(rest);
    default:
      throw new UsageError(`unknown command '${command}' (run 'sipway --help')`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof ConfigError || e instanceof UsageError || e instanceof WorkerStartError) console.error(`sipway: ${e.message}`);
    else console.error(`sipway: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
