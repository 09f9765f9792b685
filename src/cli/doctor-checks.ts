import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { bindProblem } from '../util/errors.js';
import { SystemClock } from '../util/clock.js';
import { silentLogger } from '../util/logger.js';
import { parseUri, type SipUri } from '../message/index.js';
import { DnsSipResolver, formatListenSpec, hostPort, type ListenSpec } from '../transport/index.js';
import { DnsClient, parseDnsServer, systemDnsServers } from '../transport/dns-client.js';
import { inspectDatabase, pingRedis, SCHEMA_VERSION } from '../store/index.js';
import { PolicyLoader } from '../policy/index.js';
import type { ServerConfig } from '../server/config.js';

export type Level = 'ok' | 'warn' | 'FAIL';

/** One line of `sipway doctor`: what was checked (a setting, an address) and what was found. */
export interface Finding {
  level: Level;
  subject: string;
  text: string;
}

/** A certificate this close to its end is reported (phones refuse an expired one, and renewal takes time). */
const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;
/** Doctor waits this long at most for a DNS server or Redis: it is run by hand and in health checks. */
const NETWORK_TIMEOUT_MS = 2000;

/** Everything `sipway serve` with this config needs from the machine, checked without starting it. */
export async function runChecks(config: ServerConfig): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const listener of config.listen) findings.push(await portCheck('listen', listener));
  findings.push(...(await workerPortChecks(config)));
  if (config.admin) findings.push(await portCheck('admin', { transport: 'tcp', host: config.admin.host, port: config.admin.port }));
  else findings.push({ level: 'ok', subject: 'admin', text: "off ('sipway reload' cannot reach this server; send it SIGHUP)" });
  findings.push(await storeCheck(config));
  if (config.tls) findings.push(...tlsChecks(config.tls, config.domains));
  findings.push(...writableFileChecks(config));
  const dns = await dnsChecks(config);
  findings.push(...dns);
  findings.push(...(await domainChecks(config, dns.some((f) => f.level === 'ok'))));
  if (config.sipCgi) findings.push(sipCgiCheck(config.sipCgi));
  findings.push(await policyCheck(config.policy));
  return findings;
}

/** Binds what the server would bind, then lets go of it at once. */
async function portCheck(subject: string, spec: ListenSpec): Promise<Finding> {
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    if (spec.transport === 'udp') {
      const socket = dgram.createSocket(net.isIP(spec.host) === 6 ? 'udp6' : 'udp4');
      socket.once('error', (err) => resolve(err));
      socket.bind({ port: spec.port, address: spec.host, exclusive: true }, () => socket.close(() => resolve(undefined)));
    } else {
      const server = net.createServer();
      server.once('error', (err) => resolve(err));
      server.listen(spec.port, spec.host, () => server.close(() => resolve(undefined)));
    }
  });
  // The admin endpoint is HTTP, not a SIP transport: its address is shown as it is configured.
  const address = subject === 'admin' ? hostPort(spec.host, spec.port) : formatListenSpec(spec);
  return error ? { level: 'FAIL', subject, text: bindProblem(address, error) } : { level: 'ok', subject, text: `${address} is free` };
}

async function workerPortChecks(config: ServerConfig): Promise<Finding[]> {
  const base = config.transport.workerPorts;
  if (base === false || config.workers < 2) return [];
  const udp = config.listen.filter((l) => l.transport === 'udp');
  const out: Finding[] = [];
  for (let i = 0; i < udp.length * config.workers; i++) out.push(await portCheck('transport.workerPorts', { ...udp[Math.floor(i / config.workers)]!, port: base + i }));
  return out;
}

async function storeCheck(config: ServerConfig): Promise<Finding> {
  if (config.store !== 'sqlite') {
    const shown = config.store.replace(/\/\/[^@]*@/, '//***@');
    try {
      await pingRedis(config.store, NETWORK_TIMEOUT_MS);
      return { level: 'ok', subject: 'store', text: `${shown} answers PING` };
    } catch (e) {
      return { level: 'FAIL', subject: 'store', text: (e as { problem?: string }).problem ?? (e as Error).message };
    }
  }
  const dir = config.dataDir;
  try {
    const db = inspectDatabase(dir);
    if (db === undefined) {
      // The server creates the directory and the database: the nearest existing directory must let it.
      let parent = dir;
      while (!existsSync(parent)) parent = path.dirname(parent);
      if (!canAccess(parent, constants.W_OK | constants.X_OK)) return { level: 'FAIL', subject: 'data', text: `${dir} holds no sipway.db, and ${parent} is not writable to create it` };
      return { level: 'warn', subject: 'data', text: `${dir} holds no sipway.db yet: serve creates an empty store (no users; add them with 'sipway user add')` };
    }
    if (db.version > SCHEMA_VERSION) return { level: 'FAIL', subject: 'data', text: `${db.file} has schema version ${db.version}, newer than this sipway's ${SCHEMA_VERSION}; upgrade sipway` };
    if (!canAccess(dir, constants.W_OK | constants.X_OK) || !canAccess(db.file, constants.R_OK | constants.W_OK)) {
      return { level: 'FAIL', subject: 'data', text: `${db.file} or its directory is not writable (the server writes bindings and its WAL beside it)` };
    }
    const upgrade = db.version < SCHEMA_VERSION ? `; serve upgrades schema ${db.version} to ${SCHEMA_VERSION}` : '';
    const n = db.subscribers ?? 0;
    return { level: 'ok', subject: 'data', text: `${db.file}: readable and writable, ${n} ${n === 1 ? 'subscriber' : 'subscribers'}${upgrade}` };
  } catch (e) {
    return { level: 'FAIL', subject: 'data', text: (e as { problem?: string }).problem ?? (e as Error).message };
  }
}

function canAccess(file: string, mode: number): boolean {
  try {
    accessSync(file, mode);
    return true;
  } catch {
    return false;
  }
}

function tlsChecks(tls: { cert: string; key: string }, domains: string[]): Finding[] {
  let cert: X509Certificate;
  let key: ReturnType<typeof createPrivateKey>;
  try {
    cert = new X509Certificate(readFileSync(tls.cert));
  } catch (e) {
    return [{ level: 'FAIL', subject: 'tls.cert', text: `${tls.cert}: ${describeFileError(e, 'not a PEM certificate')}` }];
  }
  try {
    key = createPrivateKey(readFileSync(tls.key));
  } catch (e) {
    return [{ level: 'FAIL', subject: 'tls.key', text: `${tls.key}: ${describeFileError(e, 'not a PEM private key')}` }];
  }
  if (!cert.checkPrivateKey(key)) return [{ level: 'FAIL', subject: 'tls.key', text: `${tls.key} is not the key of the certificate ${tls.cert}` }];
  const now = Date.now();
  const until = new Date(cert.validTo);
  const days = Math.floor((until.getTime() - now) / DAY_MS);
  const out: Finding[] = [];
  if (new Date(cert.validFrom).getTime() > now) out.push({ level: 'FAIL', subject: 'tls.cert', text: `${tls.cert} is not valid before ${new Date(cert.validFrom).toISOString()}` });
  else if (until.getTime() <= now) out.push({ level: 'FAIL', subject: 'tls.cert', text: `${tls.cert} expired on ${until.toISOString()}` });
  else if (days < EXPIRY_WARNING_DAYS) out.push({ level: 'warn', subject: 'tls.cert', text: `${tls.cert} expires in ${days} days (${until.toISOString()})` });
  else out.push({ level: 'ok', subject: 'tls.cert', text: `${tls.cert}: ${cert.subject.replace(/\n/g, ', ')}, key matches, valid until ${until.toISOString()} (${days} days)` });
  const uncovered = domains.filter((d) => d !== 'localhost' && net.isIP(d) === 0 && cert.checkHost(d) === undefined);
  if (uncovered.length > 0) out.push({ level: 'warn', subject: 'tls.cert', text: `does not name the served domain(s) ${uncovered.join(', ')}: phones checking the name will refuse it` });
  return out;
}

function describeFileError(e: unknown, otherwise: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code !== undefined && code.startsWith('E') ? `cannot read (${code})` : otherwise;
}

/** Files the server appends to: their directory or the file itself must be writable. */
function writableFileChecks(config: ServerConfig): Finding[] {
  const files: Array<[string, string | undefined]> = [['log.file', config.log.file], ['accounting.jsonlFile', config.accounting.jsonlFile]];
  return files.flatMap(([subject, file]) => {
    if (file === undefined) return [];
    const ok = existsSync(file) ? canAccess(file, constants.W_OK) : canAccess(path.dirname(file), constants.W_OK | constants.X_OK);
    return [ok ? { level: 'ok', subject, text: `${file} is writable` } : { level: 'FAIL', subject, text: `${file} is not writable` }] as Finding[];
  });
}

/**
 * Each DNS server, asked for the first served domain: any answer, even "no such name", shows it reachable. A server
 * that does not answer is a warning, not a failure: the server starts and serves its own domains without DNS; only
 * calls to other domains (RFC 3263) need it.
 */
async function dnsChecks(config: ServerConfig): Promise<Finding[]> {
  const servers = config.dns.servers ? config.dns.servers.map(parseDnsServer) : systemDnsServers();
  const name = config.domains.find((d) => net.isIP(d) === 0) ?? 'localhost';
  return Promise.all(
    servers.map(async (server): Promise<Finding> => {
      const subject = `dns ${hostPort(server.address, server.port)}`;
      const client = new DnsClient({ servers: [server], timeoutMs: dnsTimeout(config), clock: new SystemClock(), logger: silentLogger() });
      try {
        await client.query(name, 'NAPTR');
        return { level: 'ok', subject, text: `answers (NAPTR ${name})` };
      } catch (e) {
        const refused = /rcode \d+/.exec((e as Error).message)?.[0];
        if (refused) return { level: 'warn', subject, text: `answers NAPTR ${name} with ${refused} (an error): calls to other domains may fail` };
        // DnsClient asks each server twice before it gives up.
        return { level: 'warn', subject, text: `no answer (asked twice, ${dnsTimeout(config)} ms each): calls to other domains will fail (dns.servers)` };
      }
    }),
  );
}

function dnsTimeout(config: ServerConfig): number {
  return Math.min(config.dns.timeoutMs, NETWORK_TIMEOUT_MS);
}

/** Information: where a phone resolving `sip:DOMAIN` (RFC 3263) would send its requests. */
async function domainChecks(config: ServerConfig, dnsAnswers: boolean): Promise<Finding[]> {
  const domains = config.domains.filter((d) => d !== 'localhost' && net.isIP(d) === 0);
  if (!dnsAnswers) return domains.map((d) => ({ level: 'warn', subject: `domain ${d}`, text: 'not looked up: no DNS server answers' }));
  const resolver = new DnsSipResolver({ servers: config.dns.servers, timeoutMs: dnsTimeout(config), blocklistMs: 0, clock: new SystemClock(), logger: silentLogger() });
  return Promise.all(
    domains.map(async (d): Promise<Finding> => {
      const subject = `domain ${d}`;
      try {
        const targets = await resolver.resolve(parseUri(`sip:${d}`) as SipUri);
        if (targets.length === 0) return { level: 'warn', subject, text: 'sip:' + d + ' resolves to nothing: phones must be given this server by address' };
        const shown = targets.slice(0, 4).map((t) => `${t.transport}:${hostPort(t.address, t.port)}`);
        return { level: 'ok', subject, text: `sip:${d} resolves to ${shown.join(', ')}${targets.length > 4 ? ', ...' : ''}` };
      } catch (e) {
        return { level: 'warn', subject, text: `sip:${d} does not resolve (${(e as Error).message}): phones must be given this server by address` };
      }
    }),
  );
}

function sipCgiCheck(cgi: NonNullable<ServerConfig['sipCgi']>): Finding {
  // With an interpreter the script is only read; alone it is executed.
  const mode = cgi.interpreter ? constants.R_OK : constants.X_OK;
  if (canAccess(cgi.script, mode)) return { level: 'ok', subject: 'sipCgi.script', text: `${cgi.script} is ${cgi.interpreter ? 'readable' : 'executable'}` };
  return { level: 'FAIL', subject: 'sipCgi.script', text: `${cgi.script} ${existsSync(cgi.script) ? `is not ${cgi.interpreter ? 'readable' : 'executable'}` : 'does not exist'}` };
}

async function policyCheck(file: string | undefined): Promise<Finding> {
  if (file === undefined) return { level: 'ok', subject: 'policy', text: 'none: the built-in routing (docs/policy.md)' };
  try {
    await new PolicyLoader().load(file);
    return { level: 'ok', subject: 'policy', text: `${file} loads${/\.m?ts$/.test(file) ? ' and type-checks' : ''}` };
  } catch (e) {
    const lines = (e as Error).message.split('\n');
    const more = lines.length > 1 ? ` (and ${lines.length - 1} more line(s); 'sipway serve' prints them all)` : '';
    return { level: 'FAIL', subject: 'policy', text: `${lines[0]}${more}` };
  }
}
