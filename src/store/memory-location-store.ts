import type { Clock } from '../util/clock.js';
import type { Binding } from './binding.js';
import { BindingIndex } from './binding-index.js';
import { type LocationStore, type LocationStoreOptions, SweepTimer, acceptNext } from './location-store.js';

/** Bindings in process memory only: for tests, labs and single-node setups that can lose them on restart. */
export class MemoryLocationStore implements LocationStore {
  private readonly index = new BindingIndex();
  private readonly sweeper: SweepTimer;

  constructor(
    private readonly clock: Clock,
    options: LocationStoreOptions = {},
  ) {
    this.sweeper = new SweepTimer(clock, () => this.index.sweep(clock.now()), options);
  }

  async lookup(aor: string): Promise<Binding[]> {
    return this.index.live(aor, this.clock.now());
  }

  async modify<T>(aor: string, mutate: (current: Binding[]) => { next: Binding[]; result: T }): Promise<T> {
    // Synchronous from read to write, so no other modify can interleave: atomic within the process.
    const now = this.clock.now();
    const { next, result } = mutate(this.index.live(aor, now));
    this.index.replace(aor, acceptNext(aor, next, now));
    return result;
  }

  async removeAor(aor: string): Promise<void> {
    this.index.replace(aor, []);
  }

  async listAors(): Promise<string[]> {
    return this.index.aors(this.clock.now());
  }

  async count(): Promise<number> {
    return this.index.count(this.clock.now());
  }

  async sweep(): Promise<number> {
    return this.index.sweep(this.clock.now());
  }

  async close(): Promise<void> {
    await this.sweeper.stop();
  }
}
