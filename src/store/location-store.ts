import type { Clock, TimerHandle } from '../util/clock.js';
import { type Binding, bindingKey, checkBinding, copyBinding } from './binding.js';

/**
 * The location service of RFC 3261 §10.2 / §16.5: AOR -> bindings. The registrar applies the §10.3 rules inside
 * `modify`; proxies and the policy layer read with `lookup`. AORs are opaque keys here: the registrar
 * canonicalises them before calling.
 *
 * Expiry costs nothing per idle binding: reads filter on `expiresAt > clock.now()` and one periodic sweep per
 * store purges what has expired. Every binding a store returns is the caller's own copy.
 */
export interface LocationStore {
  /** Unexpired bindings of `aor` (expiresAt > now, to the ms), highest q first, then most recently registered. */
  lookup(aor: string): Promise<Binding[]>;
  /**
   * Atomic read-modify-write of all bindings of `aor`. `mutate` receives the unexpired bindings and returns the
   * complete new set (bindings that have expired by then are dropped; an empty set removes the AOR) and a result
   * to hand back. If `mutate` throws, nothing changes and the error propagates. Shared stores may call `mutate`
   * more than once when another node wrote the AOR concurrently, so it must not have side effects.
   */
  modify<T>(aor: string, mutate: (current: Binding[]) => { next: Binding[]; result: T }): Promise<T>;
  removeAor(aor: string): Promise<void>;
  /** AORs with at least one unexpired binding. */
  listAors(): Promise<string[]>;
  /** Number of unexpired bindings. */
  count(): Promise<number>;
  /**
   * Optional, for stores that can walk all bindings cheaply: up to `limit` unexpired bindings in a stable order,
   * resuming after `cursor` (undefined: from the start); the returned cursor is undefined after the last page.
   * Walkers (NAT keep-alive) use it instead of listAors + lookup per AOR, and yield between pages.
   */
  page?(cursor: string | undefined, limit: number): Promise<{ bindings: Binding[]; cursor: string | undefined }>;
  /** Purges expired entries now (the periodic sweep calls this); resolves to how many it removed. */
  sweep(): Promise<number>;
  /** Stops the sweep. Does not close the database or Redis connection the store was given. */
  close(): Promise<void>;
}

export interface LocationStoreOptions {
  /** Period of the expiry sweep; 30 s by default. Reads never depend on it, only memory/disk reclamation does. */
  sweepIntervalMs?: number;
  /** Told about a sweep that failed (e.g. Redis unreachable); the next period tries again. */
  onSweepError?: (err: unknown) => void;
}

export const DEFAULT_SWEEP_INTERVAL_MS = 30_000;

/** A `next` set returned by `mutate` that the store refuses; `modify` rejects with it and changes nothing. */
export class InvalidBindingError extends Error {
  constructor(
    readonly aor: string,
    problem: string,
  ) {
    super(`invalid binding for ${aor}: ${problem}`);
    this.name = 'InvalidBindingError';
  }
}

/**
 * Validates what `mutate` returned and keeps the copies that are still unexpired at `now`. A set that names the
 * same binding twice (by `bindingKey`) is refused: it would make §10.3 step 7 updates ambiguous.
 */
export function acceptNext(aor: string, next: readonly Binding[], now: number): Binding[] {
  if (!Array.isArray(next)) throw new InvalidBindingError(aor, 'mutate must return { next: Binding[] }');
  const keys = new Set<string>();
  const live: Binding[] = [];
  for (const b of next) {
    const problem = checkBinding(b);
    if (problem) throw new InvalidBindingError(aor, problem);
    if (b.aor !== aor) throw new InvalidBindingError(aor, `binding belongs to ${b.aor}`);
    const key = bindingKey(b);
    if (keys.has(key)) throw new InvalidBindingError(aor, `two bindings for ${b.contact}`);
    keys.add(key);
    if (b.expiresAt > now) live.push(copyBinding(b));
  }
  return live;
}

/**
 * The one timer per store that reclaims expired bindings. `sweep` may be synchronous (in-process index) or
 * return a promise (Redis); asynchronous sweeps never overlap: a period that finds one still running skips.
 */
export class SweepTimer {
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly sweep: () => unknown,
    private readonly options: LocationStoreOptions,
  ) {
    this.arm();
  }

  private arm(): void {
    this.timer = this.clock.setTimer(this.options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS, () => {
      this.arm();
      if (!this.running) this.run();
    });
  }

  private run(): void {
    const onError = (err: unknown): void => this.options.onSweepError?.(err);
    let outcome: unknown;
    try {
      outcome = this.sweep();
    } catch (err) {
      onError(err);
      return;
    }
    if (!(outcome instanceof Promise)) return;
    this.running = outcome.then(() => undefined, onError).finally(() => {
      this.running = undefined;
    });
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    await this.running;
  }
}
