import { ConfigError } from '../util/errors.js';
import { runChecks, type Finding } from './doctor-checks.js';
import { buildServeConfig, SERVE_FLAGS_HELP } from './serve.js';

export const DOCTOR_HELP = `Usage: sipway doctor [options of 'sipway serve']

Checks a config and this machine for what 'sipway serve' with the same options needs, without starting it, and
prints one line per check: 'ok', 'warn' or 'FAIL', what was checked, and what was found.

  config         the config file and flags are valid
  listen         each listener's address and port can be bound (not in use, allowed to this user)
  admin          the admin endpoint's port is free
  data / store   the data directory holds a sipway.db this user can read and write (a missing one is a warning:
                 serve creates it), or Redis answers PING
  tls.cert/key   both readable, a certificate and its private key, not expired (warning within 30 days),
                 naming the served domains
  dns            each DNS server answers (a warning if not: only calls to other domains need DNS)
  domain         where sip:DOMAIN resolves for each served domain (information)
  policy         the routing policy loads and type-checks; sipCgi.script is executable
  log.file, accounting.jsonlFile   writable

Exit status 0 when no check fails, 1 otherwise (2: a flag doctor does not know). Run it as the user the server
runs as. While the server runs, its ports are in use: check a running server with 'sipway ping'.

Options (as for serve):
${SERVE_FLAGS_HELP}
  -h, --help           show this help`;

/** Where doctor writes; tests capture it. */
export interface DoctorIo {
  out(text: string): void;
}

const processIo: DoctorIo = { out: (text) => console.log(text) };

export async function doctorCommand(args: string[], io: DoctorIo = processIo): Promise<number> {
  let findings: Finding[];
  try {
    const setup = buildServeConfig(args, 'doctor');
    if (setup === 'help') {
      io.out(DOCTOR_HELP);
      return 0;
    }
    const { config } = setup;
    const source = config.configFile ?? 'defaults and flags';
    findings = [{ level: 'ok', subject: 'config', text: `${source}: ${config.listen.length} listener(s), domains ${config.domains.join(', ')}, ${config.workers} worker(s)` }];
    findings.push(...(await runChecks(config)));
  } catch (e) {
    // A config that does not validate is what doctor is there to find; unknown flags stay usage errors.
    if (!(e instanceof ConfigError)) throw e;
    findings = [{ level: 'FAIL', subject: 'config', text: e.message }];
  }
  for (const f of findings) io.out(`${f.level.padEnd(4)}  ${f.subject}: ${f.text}`);
  return findings.some((f) => f.level === 'FAIL') ? 1 : 0;
}
