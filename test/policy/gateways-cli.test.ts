import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GATEWAY_HELP, ROUTE_HELP, gatewayCommand, routeCommand } from '../../src/cli/gateway.js';
import { CommandFailed, UsageError } from '../../src/cli/usage-error.js';
import { DEFAULT_GATEWAY_CONFIG, GatewayRouting } from '../../src/policy/gateways.js';
import { openGatewayStore } from '../../src/store/index.js';

interface Result {
  status: number;
  stdout: string;
  error?: string;
}

/**
 * Calls a command function as `sipway` would, turning a UsageError into its one-line message and exit 2, and a
 * CommandFailed (the store has no such entry) into its message and exit 1.
 */
async function run(command: typeof gatewayCommand, args: string[]): Promise<Result> {
  let stdout = '';
  const io = { out: (t: string) => (stdout += t + '\n') };
  try {
    return { status: await command(args, io), stdout };
  } catch (e) {
    if (!(e instanceof UsageError) && !(e instanceof CommandFailed)) throw e;
    return { status: e instanceof UsageError ? 2 : 1, stdout, error: e.message };
  }
}

describe('sipway gateway / sipway route (command functions)', () => {
  let dir: string;
  let data: string;
  const gateway = (...args: string[]): Promise<Result> => run(gatewayCommand, [...args, '--data', data]);
  const route = (...args: string[]): Promise<Result> => run(routeCommand, [...args, '--data', data]);
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-gateway-cli-'));
    data = path.join(dir, 'data');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('adds, lists, disables, enables and deletes gateways', async () => {
    assert.deepEqual(await gateway('add', 'gw1', 'sip:gw1.example.net;transport=tcp', '--group', 'de'), {
      status: 0,
      stdout: 'stored gateway gw1 (sip:gw1.example.net;transport=tcp) in group de\n',
    });
    assert.equal((await gateway('add', 'gw2', 'sip:192.0.2.2:5080', '--group', 'de', '--weight', '5', '--disabled')).status, 0);
    assert.equal(
      (await gateway('list')).stdout,
      'gw1\tsip:gw1.example.net;transport=tcp\tde\t-\tenabled\ngw2\tsip:192.0.2.2:5080\tde\tweight=5\tdisabled\n',
    );
    assert.equal((await gateway('enable', 'gw2')).stdout, 'enabled gateway gw2\n');
    assert.equal((await gateway('disable', 'gw1')).stdout, 'disabled gateway gw1\n');
    assert.match((await gateway('list')).stdout, /^gw1\t.*\tdisabled\ngw2\t.*\tenabled\n$/);
    assert.equal((await gateway('del', 'gw1')).stdout, 'deleted gateway gw1\n');
    assert.deepEqual(await gateway('del', 'gw1'), { status: 1, stdout: '', error: "gateway del: no gateway 'gw1'" });
    assert.deepEqual(await gateway('enable', 'gw1'), { status: 1, stdout: '', error: "gateway enable: no gateway 'gw1'" });
  });

  it('adds, lists and deletes routes; "default" names the empty prefix', async () => {
    assert.equal((await route('add', '+49 (30)', 'berlin', '--cost', '0.5', '--description', 'Berlin')).stdout, 'stored route +4930 -> berlin (cost 0.5)\n');
    assert.equal((await route('add', 'default', 'world', '--cost', '2')).stdout, 'stored route default -> world (cost 2)\n');
    assert.equal((await route('list')).stdout, 'default\tworld\t2\n+4930\tberlin\t0.5\tBerlin\n');
    assert.equal((await route('del', '+4930', 'berlin')).stdout, 'deleted route +4930 -> berlin\n');
    assert.deepEqual(await route('del', '+4930', 'berlin'), { status: 1, stdout: '', error: 'route del: no route +4930 -> berlin' });
  });

  it('writes what a running server loads on reload', async () => {
    await gateway('add', 'gw9', 'sip:gw9.example.net', '--group', 'g9');
    await route('add', '0049', 'g9', '--cost', '0');
    const store = await openGatewayStore({ dataDir: data });
    try {
      const routing = await GatewayRouting.open(DEFAULT_GATEWAY_CONFIG, store);
      assert.deepEqual(routing.dialplan.route('004930123').map((c) => c.gateway.id), ['gw9']);
    } finally {
      await store.close();
    }
  });

  it('reads the data directory from --config', async () => {
    const configFile = path.join(dir, 'sipway.json');
    writeFileSync(configFile, JSON.stringify({ data: path.join(dir, 'from-config') }));
    assert.equal((await run(routeCommand, ['add', '1', 'g', '--cost', '1', '--config', configFile])).status, 0);
    const store = await openGatewayStore({ dataDir: path.join(dir, 'from-config') });
    try {
      assert.deepEqual((await store.load()).routes, [{ prefix: '1', group: 'g', cost: 1 }]);
    } finally {
      await store.close();
    }
  });

  it('reports command-line mistakes and invalid data as usage errors (exit 2)', async () => {
    const cases: Array<[typeof gatewayCommand, string[], string]> = [
      [gatewayCommand, ['add', 'gw1', 'sip:gw.example.net'], "--group: required by 'gateway add'"],
      [gatewayCommand, ['add', 'gw1'], 'gateway add: missing URI'],
      [gatewayCommand, ['del', 'gw1', 'extra'], "gateway del: unexpected argument 'extra'"],
      [gatewayCommand, ['frob'], "gateway: unknown action 'frob' (add, del, enable, disable, list)"],
      [gatewayCommand, ['list', '--bogus'], "gateway: unknown option '--bogus' (run 'sipway gateway --help')"],
      [gatewayCommand, ['add', 'gw1', 'sip:5551234@gw.example.net', '--group', 'g'], "gateway: invalid gateway data: uri 'sip:5551234@gw.example.net' must have no user part: the dialled number is put there"],
      [gatewayCommand, ['add', 'gw1', 'sip:gw.example.net', '--group', 'g', '--weight', 'heavy'], 'gateway: invalid gateway data: weight must be an integer from 0 to 65535'],
      [routeCommand, ['add', '49', 'g'], "--cost: required by 'route add'"],
      [routeCommand, ['add', '49', 'g', '--cost', ''], 'route: invalid gateway data: cost must be a number >= 0'],
      [routeCommand, ['add', '49x', 'g', '--cost', '1'], "route: invalid gateway data: prefix must be digits with an optional leading '+', at most 32 characters ('' for the default route)"],
    ];
    for (const [command, args, error] of cases) {
      const r = await run(command, [...args, '--data', data]);
      assert.equal(r.status, 2, args.join(' '));
      assert.equal(r.error, error, args.join(' '));
    }
  });

  it('prints help with --help (exit 0) and without an action (exit 2)', async () => {
    assert.deepEqual(await run(gatewayCommand, ['--help']), { status: 0, stdout: GATEWAY_HELP + '\n' });
    assert.deepEqual(await run(routeCommand, []), { status: 2, stdout: ROUTE_HELP + '\n' });
  });
});
