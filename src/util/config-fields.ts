import { ConfigError } from './errors.js';

/** Readers of config values: each returns the value or throws a ConfigError naming the field and what it must be. */

export function configString(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, 'must be a non-empty string');
  return v;
}

export function configStringList(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) throw new ConfigError(field, 'must be a list of strings');
  return v.map((x, i) => configString(x, `${field}[${i}]`));
}
