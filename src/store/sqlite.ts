import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { UnavailableError } from '../util/errors.js';

export type SqliteDatabase = Database.Database;

export const DATABASE_FILE = 'sipway.db';

/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many have run. Append only: a shipped
 * migration is never edited, a change is a new entry.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE bindings (
     aor         TEXT    NOT NULL,
     binding_key TEXT    NOT NULL,
     expires_at  INTEGER NOT NULL,
     binding     TEXT    NOT NULL,
     PRIMARY KEY (aor, binding_key)
   ) WITHOUT ROWID;
   CREATE INDEX bindings_by_expiry ON bindings (expires_at);
   CREATE TABLE subscribers (
     domain      TEXT    NOT NULL,
     username    TEXT    NOT NULL,
     ha1_md5     TEXT    NOT NULL,
     ha1_sha256  TEXT    NOT NULL,
     groups      TEXT    NOT NULL,
     created_at  INTEGER NOT NULL,
     PRIMARY KEY (domain, username)
   ) WITHOUT ROWID;`,
  `CREATE TABLE cdrs (
     id          INTEGER PRIMARY KEY,
     type        TEXT    NOT NULL,
     time        INTEGER NOT NULL,
     call_id     TEXT    NOT NULL,
     caller      TEXT    NOT NULL,
     callee      TEXT    NOT NULL,
     request_uri TEXT    NOT NULL,
     status      INTEGER NOT NULL,
     reason      TEXT    NOT NULL,
     source      TEXT,
     from_tag    TEXT,
     to_tag      TEXT,
     stop_time   INTEGER,
     duration_ms INTEGER,
     duration_s  INTEGER,
     ended_by    TEXT
   );
   CREATE INDEX cdrs_by_time ON cdrs (time);
   CREATE INDEX cdrs_by_caller ON cdrs (caller, time);
   CREATE INDEX cdrs_by_callee ON cdrs (callee, time);`,
  // Per-user CPL scripts (src/store/cpl-store.ts). A rowid table, not WITHOUT ROWID: rows hold whole XML
  // documents, far above the size for which SQLite recommends WITHOUT ROWID.
  `CREATE TABLE cpl_scripts (
     domain      TEXT    NOT NULL,
     username    TEXT    NOT NULL,
     script      TEXT    NOT NULL,
     updated_at  INTEGER NOT NULL,
     PRIMARY KEY (domain, username)
   );`,
  // PSTN gateways and the prefix routes to their groups (src/store/gateway-store.ts).
  `CREATE TABLE gateways (
     id          TEXT    NOT NULL PRIMARY KEY,
     uri         TEXT    NOT NULL,
     group_name  TEXT    NOT NULL,
     weight      INTEGER,
     enabled     INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE gateway_routes (
     prefix      TEXT    NOT NULL,
     group_name  TEXT    NOT NULL,
     cost        REAL    NOT NULL,
     description TEXT,
     PRIMARY KEY (prefix, group_name)
   ) WITHOUT ROWID;`,
  // Why a missed call was missed (CdrRecord.cause); NULL for other records and for missed calls written before.
  `ALTER TABLE cdrs ADD COLUMN cause TEXT;`,
  // Message-waiting counts per user (src/store/mailbox-store.ts, RFC 3842).
  `CREATE TABLE mailboxes (
     domain       TEXT    NOT NULL,
     username     TEXT    NOT NULL,
     new_messages INTEGER NOT NULL,
     old_messages INTEGER NOT NULL,
     urgent_new   INTEGER NOT NULL,
     urgent_old   INTEGER NOT NULL,
     updated_at   INTEGER NOT NULL,
     PRIMARY KEY (domain, username)
   ) WITHOUT ROWID;`,
  // Instant messages kept for offline users (src/store/message-box-store.ts, RFC 3428): a JSON array per user.
  `CREATE TABLE message_boxes (
     domain       TEXT    NOT NULL,
     username     TEXT    NOT NULL,
     messages     TEXT    NOT NULL,
     PRIMARY KEY (domain, username)
   );`,
  // Presentities' rules about their watchers (src/store/watcher-rules-store.ts, RFC 5025 sub-handling).
  `CREATE TABLE watcher_rules (
     domain       TEXT    NOT NULL,
     username     TEXT    NOT NULL,
     rules        TEXT    NOT NULL,
     PRIMARY KEY (domain, username)
   );`,
  // Presence state that outlives a process and is shared by workers (src/store/presence-state-store.ts).
  `CREATE TABLE presence_publications (
     event        TEXT    NOT NULL,
     resource     TEXT    NOT NULL,
     etag         TEXT    NOT NULL,
     content_type TEXT    NOT NULL,
     body         TEXT    NOT NULL,
     at           INTEGER NOT NULL,
     expires_at   INTEGER NOT NULL,
     PRIMARY KEY (event, resource, etag)
   );
   CREATE INDEX presence_publications_by_expiry ON presence_publications (expires_at);
   CREATE TABLE presence_subscriptions (
     key          TEXT    NOT NULL PRIMARY KEY,
     call_id      TEXT    NOT NULL,
     expires_at   INTEGER NOT NULL,
     data         TEXT    NOT NULL
   );`,
  // Users' buddy lists, served as RFC 4662 resource lists (src/store/buddy-list-store.ts): a JSON array per user.
  `CREATE TABLE buddy_lists (
     domain       TEXT    NOT NULL,
     username     TEXT    NOT NULL,
     members      TEXT    NOT NULL,
     PRIMARY KEY (domain, username)
   );`,
  // What each party of a call through the SBC sent through the media relay (CdrRecord.media), as JSON.
  `ALTER TABLE cdrs ADD COLUMN media TEXT;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Opens (creating if needed) `<dataDir>/sipway.db` and brings its schema up to date. The worker processes of one
 * sipway server (`serve --workers`) may each open it: the SQLite stores keep no in-memory copy that another
 * process's writes would leave stale, and busy_timeout makes a writer wait for another's lock instead of failing.
 */
export function openDatabase(dataDir: string): SqliteDatabase {
  const file = join(dataDir, DATABASE_FILE);
  let db: SqliteDatabase | undefined;
  try {
    mkdirSync(dataDir, { recursive: true });
    db = new Database(file);
    // WAL lets readers (backups, the sqlite3 shell) work while sipway writes; NORMAL syncs at checkpoints, so a
    // power cut may lose the last few registrations but never corrupts the file, and UAs re-register anyway.
    // busy_timeout first: switching to WAL takes a lock another process opening the file may hold.
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db);
    return db;
  } catch (err) {
    db?.close();
    if (err instanceof UnavailableError) throw err;
    throw new UnavailableError('dataDir', `cannot open ${file}: ${(err as Error).message}${writable(dataDir) ? '' : ' (the directory is read-only: sipway writes the database and its WAL there)'}`);
  }
}

/**
 * What `<dataDir>/sipway.db` holds, read without changing it (no migration, no WAL switch): its schema version and
 * number of subscribers; undefined when there is no such file. Throws an UnavailableError when it cannot be read.
 */
export function inspectDatabase(dataDir: string): { file: string; version: number; subscribers: number | undefined } | undefined {
  const file = join(dataDir, DATABASE_FILE);
  if (!existsSync(file)) return undefined;
  let db: SqliteDatabase | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    // Version 0 is a file no sipway has written to: it has no subscribers table yet.
    const subscribers = version >= 1 ? (db.prepare('SELECT count(*) AS n FROM subscribers').get() as { n: number }).n : undefined;
    return { file, version, subscribers };
  } catch (err) {
    throw new UnavailableError('dataDir', `cannot read ${file}: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

function migrate(db: SqliteDatabase): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new UnavailableError(
      'dataDir',
      `${db.name} has schema version ${version}, newer than this sipway supports (${SCHEMA_VERSION}); upgrade sipway`,
    );
  }
  if (version === SCHEMA_VERSION) return;
  // Under the write lock, reading the version again: another process opening the file at the same moment may have
  // migrated it in between, and must not have its migration applied twice.
  db.transaction(() => {
    for (let v = db.pragma('user_version', { simple: true }) as number; v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }
  }).immediate();
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
