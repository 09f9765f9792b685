/** Stored data that does not decode: written by something other than sipway, or damaged on disk. */
export class CorruptRecordError extends Error {
  constructor(
    readonly where: string,
    problem: string,
  ) {
    super(`corrupt record ${where}: ${problem}`);
    this.name = 'CorruptRecordError';
  }
}

/** Parses and checks a stored JSON record; `check` returns what is wrong or undefined. */
export function parseRecord<T>(json: string, where: string, check: (value: unknown) => string | undefined): T {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new CorruptRecordError(where, (err as Error).message);
  }
  const problem = check(value);
  if (problem) throw new CorruptRecordError(where, problem);
  return value as T;
}
