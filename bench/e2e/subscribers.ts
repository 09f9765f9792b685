/**
 * Kamailio's `subscriber` table (schema of Kamailio 5.6, version 7) in an SQLite file, with HA1 precomputed
 * (realm = domain) as sipway's embedded store keeps it, for auth_db with `calculate_ha1 no`.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';

export interface Subscriber {
  user: string;
  domain: string;
  password: string;
}

export function writeKamailioSubscribers(file: string, users: Iterable<Subscriber>): void {
  const db = new Database(file);
  try {
    db.exec(`CREATE TABLE version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_table_name_idx UNIQUE (table_name));
      INSERT INTO version (table_name, table_version) VALUES ('subscriber', 7);
      CREATE TABLE subscriber (id INTEGER PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL, password VARCHAR(64) DEFAULT '' NOT NULL, ha1 VARCHAR(128) DEFAULT '' NOT NULL, ha1b VARCHAR(128) DEFAULT '' NOT NULL, CONSTRAINT subscriber_account_idx UNIQUE (username, domain));
      CREATE INDEX subscriber_username_idx ON subscriber (username);`);
    const insert = db.prepare('INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?, ?, ?, ?, ?)');
    db.transaction(() => {
      for (const { user, domain, password } of users) {
        const ha1 = createHash('md5').update(`${user}:${domain}:${password}`).digest('hex');
        const ha1b = createHash('md5').update(`${user}@${domain}:${domain}:${password}`).digest('hex');
        insert.run(user, domain, password, ha1, ha1b);
      }
    })();
  } finally {
    db.close();
  }
}
