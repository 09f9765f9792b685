import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, UnavailableError } from '../util/errors.js';
import { SystemClock } from '../util/clock.js';
import { DATABASE_FILE, openCdrStore, openGatewayStore, openStores, type GatewayStore, type OpenCdrStore, type StoreConfig, type Stores } from '../store/index.js';
import { defaultConfig, loadConfigFile } from '../server/config.js';
import { fileSettings, renamed, settingNamer } from './fields.js';

/** Store selection flags shared by the commands that read or write the store. */
export const STORE_FLAGS = {
  config: { type: 'string' },
  data: { type: 'string' },
  store: { type: 'string' },
} as const;

export interface StoreFlags {
  config?: unknown;
  data?: unknown;
  store?: unknown;
}

/**
 * `read`: the command finds or changes entries that must already be there, so a store that does not exist is a
 * mistake (a mistyped --data, a command run from another directory) and is refused rather than created empty.
 * `create`: the command adds entries and may create the store.
 */
export type StoreAccess = 'read' | 'create';

interface ChosenStore {
  config: StoreConfig;
  /** How the user knows a setting (settingNamer): --data or the config file's data, ... */
  name: (field: string) => string;
  /** Neither --data nor the config file chose the directory: ./data of wherever the command runs. */
  defaultDataDir: boolean;
}

/** The store the server would use: --store URL, else --data DIR, else the config file's, else ./data. */
function chooseStore(values: StoreFlags): ChosenStore {
  const file = typeof values.config === 'string' ? values.config : undefined;
  const config = file !== undefined ? loadConfigFile(file) : defaultConfig();
  const inFile = fileSettings(file);
  const typed = new Set((['data', 'store'] as const).filter((f) => typeof values[f] === 'string').map((f) => `--${f}`));
  const name = settingNamer(typed, inFile);
  const store = typeof values.store === 'string' ? values.store : config.store;
  if (store !== 'sqlite' && !/^rediss?:\/\//.test(store)) throw new ConfigError(name('store'), `'${store}' is neither 'sqlite' nor a redis:// URL`);
  const defaultDataDir = !typed.has('--data') && !inFile.has('data');
  if (store !== 'sqlite') return { config: { redisUrl: store }, name, defaultDataDir };
  return { config: { dataDir: typeof values.data === 'string' ? path.resolve(values.data) : config.dataDir }, name, defaultDataDir };
}

function requireExisting(dataDir: string, { name, defaultDataDir }: ChosenStore): void {
  if (existsSync(path.join(dataDir, DATABASE_FILE))) return;
  const hint = defaultDataDir ? 'the default, ./data; pass --data DIR or --config FILE' : `no ${DATABASE_FILE} there; 'sipway serve' and 'sipway user add' create one`;
  throw new UnavailableError(name('data'), `no sipway store in ${dataDir} (${hint})`);
}

/** Opens the chosen store; its failures (Redis down, a file that is not a database) name the flag or field. */
async function open<T>(values: StoreFlags, access: StoreAccess, opener: (config: StoreConfig) => T | Promise<T>): Promise<T> {
  const chosen = chooseStore(values);
  if (access === 'read' && 'dataDir' in chosen.config) requireExisting(chosen.config.dataDir, chosen);
  try {
    return await opener(chosen.config);
  } catch (e) {
    throw renamed(e, chosen.name);
  }
}

export function openCliStores(values: StoreFlags, access: StoreAccess): Promise<Stores> {
  // The CLI runs briefly: no periodic sweep needed beyond the store's own.
  return open(values, access, (config) => openStores(config, new SystemClock()));
}

export function openCliGatewayStore(values: StoreFlags, access: StoreAccess): Promise<GatewayStore> {
  return open(values, access, (config) => openGatewayStore(config));
}

/** CDRs live in each node's own database, also when registrations are in Redis: only --data or the config's data. */
export function openCliCdrStore(values: StoreFlags): Promise<OpenCdrStore> {
  return open({ ...values, store: 'sqlite' }, 'read', (config) => openCdrStore((config as { dataDir: string }).dataDir));
}
