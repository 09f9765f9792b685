import { normalizeAddress } from './address.js';
import type { TransportError } from './types.js';
import type { PathFault } from './udp-probes.js';

/**
 * Who waits on which connection (by flow id or by peer), so that a connection lost before its peer answered fails
 * the transactions that sent over it at once instead of at Timer B or F. Each watcher is told once.
 */
export class PathWatchers {
  private readonly byKey = new Map<string, Set<PathFault>>();

  get size(): number {
    return this.byKey.size;
  }

  /** Watches every key until the returned function is called or one of them fails. */
  add(keys: readonly string[], fault: PathFault): () => void {
    let done = false;
    const once: PathFault = (err) => {
      if (done) return;
      stop();
      fault(err);
    };
    const stop = (): void => {
      done = true;
      for (const key of keys) {
        const set = this.byKey.get(key);
        if (!set) continue;
        set.delete(once);
        if (set.size === 0) this.byKey.delete(key);
      }
    };
    for (const key of keys) {
      let set = this.byKey.get(key);
      if (!set) this.byKey.set(key, (set = new Set()));
      set.add(once);
    }
    return stop;
  }

  /** Tells every watcher of these keys. */
  fail(keys: readonly string[], err: TransportError): void {
    for (const key of keys) {
      const set = this.byKey.get(key);
      if (set) for (const w of [...set]) w(err);
    }
  }
}

export const noop = (): void => undefined;

/** What a stream path is known by: its peer, and its flow id when named. */
export function pathKeys(transport: string, address: string, port: number, flowId: string | undefined): string[] {
  const keys = [`peer ${transport}|${normalizeAddress(address)}|${port}`];
  if (flowId !== undefined) keys.push(`flow ${flowId}`);
  return keys;
}
