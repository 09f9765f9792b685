import http from 'node:http';
import { defaultConfig, loadConfigFile, parseAdminAddress } from '../server/config.js';
import { parseCommandLine } from './args.js';
import { UsageError } from './usage-error.js';

export const RELOAD_HELP = `Usage: sipway reload [--admin HOST:PORT | --config FILE]

Asks the running server to read its gateways and routes from the store again and to load its routing policy again
(docs/policy.md, docs/gateways.md). The new policy takes over for new requests; calls in progress finish under the
old one. A policy that does not load or type-check is refused, the
old one keeps running, and this command prints the error and exits 1.

Options:
  --admin HOST:PORT   the server's admin endpoint (default: from --config, else 127.0.0.1:5090)
  --config FILE       the server's config file, for its admin address`;

export async function reloadCommand(args: string[]): Promise<number> {
  const { values } = parseCommandLine('reload', { args, options: { admin: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(RELOAD_HELP);
    return 0;
  }
  const admin = values.admin !== undefined ? parseAdminAddress(values.admin, '--admin') : (values.config !== undefined ? loadConfigFile(values.config) : defaultConfig()).admin;
  if (!admin) throw new UsageError("--config: the server's admin endpoint is off (admin: false); send it SIGHUP instead");
  let answer: { status: number; body: string };
  try {
    answer = await post(admin.host, admin.port, '/reload');
  } catch (e) {
    console.error(`sipway: no server answers on ${admin.host}:${admin.port}: ${(e as Error).message}`);
    return 1;
  }
  let result: { ok?: unknown; error?: unknown };
  try {
    result = JSON.parse(answer.body) as typeof result;
  } catch {
    result = { ok: false, error: `unexpected answer (HTTP ${answer.status})` };
  }
  if (result.ok === true) {
    console.log('routing policy reloaded');
    return 0;
  }
  console.error(`sipway: policy not reloaded, the previous one keeps running:\n${String(result.error)}`);
  return 1;
}

function post(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, method: 'POST', timeout: 60_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
