import type { CplStore } from '../../store/index.js';
import { type CplLimits, parseCpl } from './parse.js';
import type { CplParseResult } from './types.js';

/**
 * Validates and stores a user's script: what the CLI and a REGISTER carrying `application/cpl+xml` both do. A
 * script that does not validate is not stored; the result carries its errors.
 */
export async function putCplScript(
  store: CplStore,
  user: { username: string; domain: string },
  xml: string,
  now: number,
  limits?: Partial<CplLimits>,
): Promise<CplParseResult> {
  const parsed = parseCpl(xml, limits);
  if (parsed.ok) await store.put({ ...user, script: xml, updatedAt: now });
  return parsed;
}

/**
 * A user's parsed script, or undefined if they have none. A stored script that no longer validates (stored by
 * an older sipway, or edited in the database) comes back with its errors, for the caller to log and ignore.
 */
export async function loadCplScript(
  store: CplStore,
  user: { username: string; domain: string },
  limits?: Partial<CplLimits>,
): Promise<CplParseResult | undefined> {
  const record = await store.get(user.username, user.domain);
  return record && parseCpl(record.script, limits);
}
