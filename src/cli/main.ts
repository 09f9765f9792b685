#!/usr/bin/env node
import { ConfigError, UnavailableError } from '../util/errors.js';
import { WorkerStartError } from '../server/cluster.js';
import { CommandFailed, UsageError } from './usage-error.js';
import { SERVE_HELP, serveCommand } from './serve.js';
import { USER_HELP, userCommand } from './user.js';
import { LOCATION_HELP, locationCommand } from './location.js';
import { CDR_HELP, cdrCommand } from './cdr.js';
import { CPL_HELP, cplCommand } from './cpl.js';
import { MWI_HELP, mwiCommand } from './mwi.js';
import { WATCHERS_HELP, watchersCommand } from './watchers.js';
import { BUDDIES_HELP, buddiesCommand } from './buddies.js';
import { RELOAD_HELP, reloadCommand } from './reload.js';
import { GATEWAY_HELP, ROUTE_HELP, gatewayCommand, routeCommand } from './gateway.js';
import { DOCTOR_HELP, doctorCommand } from './doctor.js';
import { PING_HELP, pingCommand } from './ping.js';
import { BANS_HELP, bansCommand } from './bans.js';
import { CALLS_HELP, callsCommand } from './calls.js';
import { ANSWER_HELP, CALL_HELP, MESSAGE_HELP, OPTIONS_HELP, REGISTER_HELP, TRANSFER_HELP, answerCommand, callCommand, messageCommand, optionsCommand, registerCommand, transferCommand } from './ua-commands.js';

const VERSION = '0.1.0';

const MAIN_HELP = `sipway ${VERSION} - SIP registrar, proxy and server platform

Usage: sipway <command> [options]

Commands:
  serve            start the SIP server
  doctor           check a config and this machine before serving (ports, store, TLS, DNS, policy)
  ping             send OPTIONS to a SIP server and report its answer (health checks)
  user             add, change, delete and list subscribers (digest credentials)
  location         show registered bindings
  cdr              show call detail records (calls, attempts, missed calls)
  cpl              upload, show, delete and list per-user CPL scripts (RFC 3880)
  mwi              set, show and clear a user's message-waiting counts (RFC 3842); phones are told
  watchers         who may see a user's presence: allow, block, polite-block, confirm (pending)
  buddies          a user's buddy list, one subscription for all of it (RFC 4662 resource list)
  gateway          add, delete, enable, disable and list PSTN gateways
  route            add, delete and list prefix routes to gateway groups (least-cost routing)
  reload           load the running server's routing policy and gateways again
  bans             list the sources the running server has banned for flooding, or lift a ban
  calls            list the calls through the running server's SBC (legs, media ports, packets), or end one
  register         register an address-of-record at a registrar as a user agent would (digest answered)
  message          send a MESSAGE (RFC 3428) as a user agent (digest answered)
  call             call a URI as a user agent, with G.711 audio from/to WAV files
  answer           register and answer calls as a user agent, with G.711 audio from/to WAV files
  options          ask a URI what it allows and supports (OPTIONS) as a user agent
  transfer         call a URI and transfer it to another (REFER; blind or --attended)
  help [command]   show help for a command

Options:
  -h, --help       show this help
  -v, --version    print the version

Errors are one line, 'sipway: <flag or config field>: <what is wrong>'. Exit status: 0 done, 1 failed (a port
in use, no such user, a store that does not exist, a server that does not answer), 2 a usage error (an unknown
command or option, a bad value in a flag or in the config file).

Run 'sipway serve --help' for the server's options.`;

type Command = { help: string; run: (args: string[]) => Promise<number> };

const COMMANDS: Record<string, Command> = {
  serve: { help: SERVE_HELP, run: serveCommand },
  doctor: { help: DOCTOR_HELP, run: doctorCommand },
  ping: { help: PING_HELP, run: pingCommand },
  user: { help: USER_HELP, run: userCommand },
  location: { help: LOCATION_HELP, run: locationCommand },
  cdr: { help: CDR_HELP, run: cdrCommand },
  cpl: { help: CPL_HELP, run: (args) => cplCommand(args) },
  mwi: { help: MWI_HELP, run: mwiCommand },
  watchers: { help: WATCHERS_HELP, run: watchersCommand },
  buddies: { help: BUDDIES_HELP, run: buddiesCommand },
  gateway: { help: GATEWAY_HELP, run: (args) => gatewayCommand(args) },
  route: { help: ROUTE_HELP, run: (args) => routeCommand(args) },
  reload: { help: RELOAD_HELP, run: reloadCommand },
  bans: { help: BANS_HELP, run: bansCommand },
  calls: { help: CALLS_HELP, run: callsCommand },
  register: { help: REGISTER_HELP, run: registerCommand },
  message: { help: MESSAGE_HELP, run: messageCommand },
  call: { help: CALL_HELP, run: callCommand },
  answer: { help: ANSWER_HELP, run: answerCommand },
  options: { help: OPTIONS_HELP, run: optionsCommand },
  transfer: { help: TRANSFER_HELP, run: transferCommand },
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
      console.log(MAIN_HELP);
      return 0;
    case '-v':
    case '--version':
      console.log(VERSION);
      return 0;
    case 'help': {
      const [topic, extra] = rest;
      if (extra !== undefined) throw new UsageError(`help: unexpected argument '${extra}'`);
      if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) throw new UsageError(`help: unknown command '${topic}' (run 'sipway --help')`);
      console.log(topic === undefined ? MAIN_HELP : COMMANDS[topic]!.help);
      return 0;
    }
  }
  if (Object.hasOwn(COMMANDS, command)) return COMMANDS[command]!.run(rest);
  if (command.startsWith('-')) throw new UsageError(`unknown option '${command}' (run 'sipway --help')`);
  throw new UsageError(`unknown command '${command}' (run 'sipway --help')`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    const usage = e instanceof UsageError || e instanceof ConfigError;
    const failure = e instanceof UnavailableError || e instanceof CommandFailed || e instanceof WorkerStartError;
    console.error(`sipway: ${usage || failure ? (e as Error).message : ((e as Error).stack ?? String(e))}`);
    process.exitCode = usage ? 2 : 1;
  },
);
