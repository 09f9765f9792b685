import { ADMIN_FLAGS, adminAddress, adminRequest } from './admin-client.js';
import { parseCommandLine } from './args.js';

export const RELOAD_HELP = `Usage: sipway reload [--admin HOST:PORT | --config FILE]

Asks the running server to read its gateways and routes from the store again and to load its routing policy again
(docs/policy.md, docs/gateways.md). The new policy takes over for new requests; calls in progress finish under the
old one. A policy that does not load or type-check is refused, the
old one keeps running, and this command prints the error and exits 1.

Options:
  --admin HOST:PORT   the server's admin endpoint (default: from --config, else 127.0.0.1:5090)
  --config FILE       the server's config file, for its admin address`;

export async function reloadCommand(args: string[]): Promise<number> {
  const { values } = parseCommandLine('reload', { args, options: { ...ADMIN_FLAGS, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(RELOAD_HELP);
    return 0;
  }
  const admin = adminAddress(values, 'send it SIGHUP instead');
  let answer: Awaited<ReturnType<typeof adminRequest>>;
  try {
    answer = await adminRequest(admin, 'POST', '/reload');
  } catch (e) {
    console.error(`sipway: no server answers on ${admin.host}:${admin.port}: ${(e as Error).message}`);
    return 1;
  }
  const result = answer.body ?? { ok: false, error: `unexpected answer (HTTP ${answer.status})` };
  if (result.ok === true) {
    console.log('routing policy reloaded');
    return 0;
  }
  console.error(`sipway: policy not reloaded, the previous one keeps running:\n${String(result.error)}`);
  return 1;
}
