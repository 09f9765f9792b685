import { parseUri } from '../message/index.js';
import { parseListen } from '../server/config.js';
import { hostPort, type Destination, type ListenSpec } from '../transport/index.js';
import { ConfigError } from '../util/errors.js';
import { UserAgent } from '../ua/index.js';
import { parseCommandLine } from './args.js';
import { CommandFailed, UsageError } from './usage-error.js';

const ACCOUNT_HELP = `  --proxy TARGET   where requests go: udp:HOST:PORT or tcp:HOST:PORT (required)
  --user NAME      the digest user name (default: the user part of the address-of-record)
  --password PW    the digest password; better in the environment as SIPWAY_PASSWORD (flags show in ps)
  --listen SPEC    our listener (default: the proxy's transport on any free port; on loopback when the proxy is)`;

export const REGISTER_HELP = `Usage: sipway register AOR --proxy TARGET [--expires S] [account options]

Registers this machine's listener as a Contact of AOR (sip:alice@example.com) at the registrar, answering a digest
challenge, prints what the registrar granted and exits; the binding stays until it expires. --expires 0 removes it.
Exit 0 on a 2xx, 1 with the status otherwise (or when nothing answers).

  --expires S      seconds asked for (default 3600)
${ACCOUNT_HELP}`;

export const MESSAGE_HELP = `Usage: sipway message URI TEXT --from AOR --proxy TARGET [account options]

Sends TEXT in a MESSAGE (RFC 3428, text/plain) to URI from AOR, answering a digest challenge, and prints the final
status. Exit 0 on a 2xx, 1 with the status otherwise (or when nothing answers).

  --from AOR       our address-of-record (sip:alice@example.com)
${ACCOUNT_HELP}`;

const ACCOUNT_OPTIONS = {
  proxy: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  listen: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Account {
  aor: string;
  proxy: Destination;
  listen: ListenSpec;
  username: string;
  password: string | undefined;
}

function account(command: string, aor: string, values: { proxy?: string; user?: string; password?: string; listen?: string }, field = 'AOR'): Account {
  let uri;
  try {
    uri = parseUri(aor);
  } catch (e) {
    throw new ConfigError(field, `'${aor}' is not a SIP URI (${(e as Error).message})`);
  }
  if (uri.type !== 'sip' || uri.user === undefined) throw new ConfigError(field, `'${aor}' is not a sip: address-of-record with a user (sip:alice@example.com)`);
  if (values.proxy === undefined) throw new UsageError(`${command}: --proxy is required (udp:HOST:PORT or tcp:HOST:PORT)`);
  const target = parseListen(values.proxy, '--proxy');
  if (target.transport !== 'udp' && target.transport !== 'tcp') throw new ConfigError('--proxy', `${command} speaks udp and tcp, not ${target.transport}`);
  return {
    aor,
    proxy: { transport: target.transport, address: target.host, port: target.port },
    // A proxy on loopback reaches us on loopback; any other gets the address the machine chooses for a wildcard.
    listen: values.listen === undefined ? { transport: target.transport, host: isLoopback(target.host) ? target.host : target.host.includes(':') ? '::' : '0.0.0.0', port: 0 } : parseListen(values.listen, '--listen'),
    username: values.user ?? uri.user,
    password: values.password ?? process.env.SIPWAY_PASSWORD,
  };
}

async function userAgentFor(a: Account): Promise<UserAgent> {
  return UserAgent.start({
    aor: a.aor,
    proxy: a.proxy,
    listen: a.listen,
    credentials: a.password === undefined ? undefined : { username: a.username, password: a.password },
  });
}

function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host === '[::1]';
}

function shown(d: Destination): string {
  return `${d.transport}:${hostPort(d.address, d.port)}`;
}

/** `sipway register AOR --proxy TARGET`. */
export async function registerCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('register', { args, allowPositionals: true, options: { ...ACCOUNT_OPTIONS, expires: { type: 'string' } } });
  if (values.help) {
    console.log(REGISTER_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`register: needs exactly one AOR (run 'sipway register --help')`);
  const expires = values.expires === undefined ? 3600 : Number(values.expires);
  if (!/^\d+$/.test(values.expires ?? '0') || expires > 2 ** 31 - 1) throw new ConfigError('--expires', `'${values.expires}' is not a number of seconds`);
  const a = account('register', positionals[0]!, values);
  const ua = await userAgentFor(a);
  try {
    const registration = ua.registration({ expires });
    const r = expires === 0 ? await registration.unregister() : await registration.register();
    registration.stop();
    if (r.status < 200 || r.status >= 300) throw new CommandFailed(`register: ${a.aor} at ${shown(a.proxy)}: ${r.status} ${r.reason}`);
    console.log(expires === 0 ? `unregistered ${ua.contact} of ${a.aor} at ${shown(a.proxy)} (${r.status} ${r.reason})` : `registered ${ua.contact} for ${a.aor} at ${shown(a.proxy)} for ${r.expires} s (${r.status} ${r.reason})`);
    return 0;
  } finally {
    await ua.stop();
  }
}

/** `sipway message URI TEXT --from AOR --proxy TARGET`. */
export async function messageCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('message', { args, allowPositionals: true, options: { ...ACCOUNT_OPTIONS, from: { type: 'string' } } });
  if (values.help) {
    console.log(MESSAGE_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`message: needs URI and TEXT (run 'sipway message --help')`);
  const [to, text] = positionals as [string, string];
  try {
    parseUri(to);
  } catch (e) {
    throw new ConfigError('URI', `'${to}' is not a SIP URI (${(e as Error).message})`);
  }
  if (values.from === undefined) throw new UsageError(`message: --from is required (our address-of-record)`);
  const a = account('message', values.from, values, '--from');
  const ua = await userAgentFor(a);
  try {
    const r = await ua.request('MESSAGE', to, { body: Buffer.from(text, 'utf8'), contentType: 'text/plain;charset=utf-8' });
    if (r.status < 200 || r.status >= 300) throw new CommandFailed(`message: to ${to}: ${r.status} ${r.reason}`);
    console.log(`${to}: ${r.status} ${r.reason}`);
    return 0;
  } finally {
    await ua.stop();
  }
}
