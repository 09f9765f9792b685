/**
 * What a store's failure says in a reason phrase, or undefined for an error that is not a store's: the embedded
 * database refusing a write (read-only, disk full, I/O error) or Redis out of reach. An operator reading the 500 (or
 * the caller's UA showing it) learns that the data layer failed, not that the request was wrong.
 */
export function storeFailure(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (err.name === 'SqliteError' && typeof code === 'string') return `store failed: ${SQLITE_FAULTS[code] ?? code}`;
  if (err.name === 'MaxRetriesPerRequestError' || /^Connection is closed|^Stream isn't writeable/.test(err.message)) return 'store unavailable (Redis)';
  return undefined;
}

/** The SQLite result codes a running server meets when its disk turns against it. */
const SQLITE_FAULTS: Record<string, string> = {
  SQLITE_READONLY: 'database is read-only',
  SQLITE_READONLY_DIRECTORY: 'database directory is read-only',
  SQLITE_READONLY_DBMOVED: 'database file was moved',
  SQLITE_FULL: 'disk full',
  SQLITE_IOERR: 'I/O error',
  SQLITE_CANTOPEN: 'database cannot be opened',
  SQLITE_BUSY: 'database busy',
  SQLITE_CORRUPT: 'database corrupt',
};
