import { readFileSync } from 'node:fs';
import { ConfigError, UnavailableError } from '../util/errors.js';

/** The config setting each flag of serve (and of the store commands) sets. */
const FLAG_OF_SETTING: Record<string, string> = {
  listen: '--listen',
  domains: '--domain',
  data: '--data',
  store: '--store',
  nodeId: '--node-id',
  'auth.register': '--no-auth',
  'log.level': '--log-level',
  'tls.cert': '--tls-cert',
  'tls.key': '--tls-key',
  'transport.forceRport': '--force-rport',
  policy: '--policy',
  'admin.listen': '--admin',
  workers: '--workers',
};

/** Field names of the layers below that are not the config file's spelling. */
const SETTING_OF_FIELD: Record<string, string> = { dataDir: 'data', redisUrl: 'store', admin: 'admin.listen' };

/** Top-level settings a config file gives (loadConfigFile has read and checked it already). */
export function fileSettings(file: string | undefined): Set<string> {
  if (file === undefined) return new Set();
  return new Set(Object.keys(JSON.parse(readFileSync(file, 'utf8')) as object));
}

/**
 * How an error should name a setting: by its flag when the flag was typed, or when the config file does not give
 * the setting (its default then stands, and the flag is the way to change it); otherwise by the config file's
 * field path, which is where the user has to look.
 */
export function settingNamer(typedFlags: ReadonlySet<string>, inFile: ReadonlySet<string>): (field: string) => string {
  return (field) => {
    const bare = field.replace(/\[\d+\]$/, '');
    const setting = SETTING_OF_FIELD[bare] ?? bare;
    const flag = FLAG_OF_SETTING[setting];
    if (flag !== undefined && (typedFlags.has(flag) || !inFile.has(setting.split('.')[0]!))) return flag;
    return SETTING_OF_FIELD[bare] !== undefined ? setting : field;
  };
}

/** What to do about a setting naming something in use, in the terms the user gave it. */
const IN_USE_HINTS: Record<string, string> = {
  '--admin': 'pass --admin HOST:PORT or --admin off',
  'admin.listen': 'set another admin.listen, or admin: false',
};

/** The error again, naming the setting as the user knows it (see settingNamer). */
export function renamed(e: unknown, name: (field: string) => string): unknown {
  if (e instanceof ConfigError) return new ConfigError(name(e.field), e.problem);
  if (!(e instanceof UnavailableError)) return e;
  const field = name(e.field);
  const hint = / is in use/.test(e.problem) ? IN_USE_HINTS[field] : undefined;
  return new UnavailableError(field, hint === undefined ? e.problem : `${e.problem}; ${hint}`);
}
