import { ConfigError } from '../util/errors.js';
import { SystemClock } from '../util/clock.js';
import { openStores, type Stores } from '../store/index.js';
import { defaultConfig, loadConfigFile } from '../server/config.js';

/** Store selection flags shared by the user and location commands. */
export const STORE_FLAGS = {
  config: { type: 'string' },
  data: { type: 'string' },
  store: { type: 'string' },
} as const;

/** Opens the same store the server would use: --store URL, else --data DIR, else the config file's, else ./data. */
export async function openCliStores(values: { config?: unknown; data?: unknown; store?: unknown }): Promise<Stores> {
  const config = typeof values.config === 'string' ? loadConfigFile(values.config) : defaultConfig();
  const store = typeof values.store === 'string' ? values.store : config.store;
  if (store !== 'sqlite' && !/^rediss?:\/\//.test(store)) throw new ConfigError('--store', `'${store}' is neither 'sqlite' nor a redis:// URL`);
  const dataDir = typeof values.data === 'string' ? values.data : config.dataDir;
  // The CLI runs briefly: no periodic sweep needed beyond the store's own.
  return store === 'sqlite' ? openStores({ dataDir }, new SystemClock()) : openStores({ redisUrl: store }, new SystemClock());
}
