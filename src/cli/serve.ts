import { ConfigError } from '../util/errors.js';
import { applyConfigObject, defaultConfig, finishConfig, loadConfigFile, parseListen, type ServerConfig } from '../server/config.js';
import { LastResort } from '../util/last-resort.js';
import { warmUp } from '../server/warm-up.js';
import { SipwayServer } from '../server/server.js';
import { isClusterWorker, runPrimary, runWorker } from '../server/cluster.js';
import { PolicyLoadError } from '../policy/index.js';
import { parseCommandLine } from './args.js';
import { fileSettings, renamed, settingNamer } from './fields.js';
import { UsageError } from './usage-error.js';

export const SERVE_FLAGS_HELP = `  --config FILE        JSON config file (see docs/configuration.md)
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
  --admin HOST:PORT    loopback address of the admin endpoint for 'sipway reload' (default 127.0.0.1:5090);
                       'off' for none. A second server on one host needs its own, or off.
  --workers N|auto     worker processes sharing the listeners (default auto: one per CPU core; 1: one process)`;

export const SERVE_HELP = `Usage: sipway serve [options]

Starts the SIP server. Flags override the config file; with no flags it listens on UDP and TCP
0.0.0.0:5060 and serves 'localhost' plus this machine's hostname. A setting it cannot use (a port in use, a
store it cannot open) stops the start with one line naming it, exit 1; a bad flag or config value exits 2.

Options:
${SERVE_FLAGS_HELP}
  -h, --help           show this help`;

/** The flags of serve; doctor takes the same, to check what serve would run with. */
export const SERVE_OPTIONS = {
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
} as const;

export interface ServeSetup {
  config: ServerConfig;
  /** How errors should name a setting: by the flag typed, else by the config file's field (settingNamer). */
  name: (field: string) => string;
}

/** The config `sipway serve ARGS` runs with; errors name the flag as typed or the config file's field. */
export function buildServeConfig(args: string[], command = 'serve'): ServeSetup | 'help' {
  const { values, positionals } = parseCommandLine(command, { args, allowPositionals: true, options: SERVE_OPTIONS });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`${command}: unexpected argument '${positionals[0]}' (run 'sipway ${command} --help')`);
  let config = values.config !== undefined ? loadConfigFile(values.config) : defaultConfig();
  const flags: Array<[string, unknown]> = [];
  if (values.listen) {
    values.listen.forEach((s) => parseListen(s, '--listen'));
    flags.push(['--listen', { listen: values.listen }]);
  }
  if (values.domain) flags.push(['--domain', { domains: values.domain }]);
  if (values.data !== undefined) flags.push(['--data', { data: values.data }]);
  if (values.store !== undefined) flags.push(['--store', { store: values.store }]);
  if (values['node-id'] !== undefined) flags.push(['--node-id', { nodeId: values['node-id'] }]);
  if (values['no-auth']) flags.push(['--no-auth', { auth: { register: false } }]);
  if (values['log-level'] !== undefined) flags.push(['--log-level', { log: { level: values['log-level'] } }]);
  const cert = values['tls-cert'] ?? config.tls?.cert;
  const key = values['tls-key'] ?? config.tls?.key;
  if (values['tls-cert'] !== undefined && key === undefined) throw new ConfigError('--tls-key', 'needed with --tls-cert (the PEM private key)');
  if (values['tls-key'] !== undefined && cert === undefined) throw new ConfigError('--tls-cert', 'needed with --tls-key (the PEM certificate)');
  // The flags replace the files; the config file's other TLS settings (ca, verification) stay.
  if (values['tls-cert'] !== undefined) flags.push(['--tls-cert', { tls: { ...config.tls, cert, key } }]);
  if (values['tls-key'] !== undefined) flags.push(['--tls-key', { tls: { ...config.tls, cert, key } }]);
  if (values['force-rport']) flags.push(['--force-rport', { transport: { forceRport: true } }]);
  if (values.policy !== undefined) flags.push(['--policy', { policy: values.policy }]);
  if (values.admin !== undefined) flags.push(['--admin', { admin: values.admin === 'off' ? false : { listen: values.admin } }]);
  if (values.workers !== undefined) {
    const w = values.workers;
    if (w !== 'auto' && !/^\d+$/.test(w)) throw new ConfigError('--workers', `'${w}' is not a number or 'auto'`);
    flags.push(['--workers', { workers: w === 'auto' ? w : Number(w) }]);
  }
  // One flag at a time, so that an error names the flag rather than the setting it maps to.
  for (const [flag, setting] of flags) {
    try {
      config = applyConfigObject(config, setting, flag);
    } catch (e) {
      throw e instanceof ConfigError ? new ConfigError(flag, e.problem) : e;
    }
  }
  const name = settingNamer(new Set(flags.map(([flag]) => flag)), fileSettings(values.config));
  try {
    return { config: finishConfig(config), name };
  } catch (e) {
    throw renamed(e, name);
  }
}

/** `sipway serve`: runs until a signal stops it (-1: the process exits by itself), or fails to start. */
export async function serveCommand(args: string[]): Promise<number> {
  const setup = buildServeConfig(args);
  if (setup === 'help') {
    console.log(SERVE_HELP);
    return 0;
  }
  const { config, name } = setup;
  try {
    if (isClusterWorker()) {
      warmUpQuietly();
      await runWorker(config);
    } else if (config.workers > 1) await runPrimary(config, config.workers);
    else {
      warmUpQuietly();
      await serveAlone(config);
    }
    return -1;
  } catch (e) {
    // A policy that does not load is a mistake in a file the user named, like a bad config value.
    throw renamed(e instanceof PolicyLoadError ? new ConfigError('policy', e.message) : e, name);
  }
}

/** In each process that handles SIP (not a cluster's primary); the server starts as well without it. */
function warmUpQuietly(): void {
  try {
    warmUp();
  } catch (e) {
    console.error(`sipway: warm-up skipped: ${(e as Error).message}`);
  }
}

async function serveAlone(config: ServerConfig): Promise<void> {
  const server = new SipwayServer(config);
  new LastResort(server.logger).install();
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
  // After the handlers: a signal that arrives as soon as the start line is out (a supervisor, a test) is handled.
  await server.start();
}
