/**
 * What the verifier needs from a user database. Stores keep HA1 = H(username:realm:password) per algorithm
 * (RFC 7616 §3.4.2), never the password: a leaked HA1 still authenticates in that realm, but it does not reveal a
 * password the user may reuse elsewhere.
 */
import { computeHa1 } from './digest.js';

export interface Credentials {
  username: string;
  realm: string;
  ha1Md5: string;
  ha1Sha256: string;
  groups?: string[];
}

export interface CredentialStore {
  /** Resolves undefined for an unknown user; rejects only when the store itself fails. */
  getCredentials(username: string, realm: string): Promise<Credentials | undefined>;
}

/** Builds a store record from a password, e.g. for provisioning tools or static configuration. */
export function credentialsFromPassword(
  username: string,
  realm: string,
  password: string,
  groups?: string[],
): Credentials {
  const credentials: Credentials = {
    username,
    realm,
    ha1Md5: computeHa1(username, realm, password, 'MD5'),
    ha1Sha256: computeHa1(username, realm, password, 'SHA-256'),
  };
  if (groups) credentials.groups = groups;
  return credentials;
}

/** A store held in memory: for static user lists in the configuration, and for tests. */
export class MemoryCredentialStore implements CredentialStore {
  private readonly entries = new Map<string, Credentials>();

  constructor(credentials: Iterable<Credentials> = []) {
    for (const c of credentials) this.set(c);
  }

  set(credentials: Credentials): void {
    this.entries.set(key(credentials.username, credentials.realm), credentials);
  }

  delete(username: string, realm: string): boolean {
    return this.entries.delete(key(username, realm));
  }

  async getCredentials(username: string, realm: string): Promise<Credentials | undefined> {
    return this.entries.get(key(username, realm));
  }
}

// Usernames and realms compare case-sensitively (RFC 7235 §2.2 for realm); JSON keeps the pair unambiguous.
function key(username: string, realm: string): string {
  return JSON.stringify([username, realm]);
}
