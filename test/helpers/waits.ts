/** Bounded waits for tests that drive real peers: every wait ends, and a timeout says what was awaited. */

/** `promise`, or a rejection naming `what` after `ms`. */
export async function within<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` (sync or async) every `everyMs` (10) until it holds; false when `ms` passed first. */
export async function until(condition: () => boolean | Promise<boolean>, ms: number, everyMs = 10): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}
