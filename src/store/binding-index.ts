import { type Binding, copyBinding, liveBindings } from './binding.js';

const MAX_SHARED_STRINGS = 4096;

/**
 * The in-process AOR -> bindings map behind the memory and SQLite stores. Entries are never handed out, only
 * copies of them, and expired ones linger harmlessly until `sweep` because every read filters on the time.
 */
export class BindingIndex {
  private readonly byAor = new Map<string, Binding[]>();
  /** Canonical copies of values that repeat across many bindings; bounded, so hostile variety cannot grow it. */
  private readonly shared = new Map<string, string>();

  /** Copies of the live bindings of `aor`, best first. */
  live(aor: string, now: number): Binding[] {
    const stored = this.byAor.get(aor);
    return stored ? liveBindings(stored, now).map(copyBinding) : [];
  }

  /** Takes ownership of `bindings` (already validated, all of `aor`); an empty set forgets the AOR. */
  replace(aor: string, bindings: Binding[]): void {
    if (bindings.length === 0) {
      this.byAor.delete(aor);
      return;
    }
    // At ~100k bindings duplicated strings add up (bench/store-memory.ts: ~12% of the index): share the AOR
    // with the map key, and the few distinct user agents, node names, transports, local addresses and Paths.
    for (const b of bindings) {
      b.aor = aor;
      if (b.userAgent !== undefined) b.userAgent = this.share(b.userAgent);
      if (b.node !== undefined) b.node = this.share(b.node);
      b.source.transport = this.share(b.source.transport);
      if (b.source.localAddress !== undefined) b.source.localAddress = this.share(b.source.localAddress);
      b.path = b.path.map((hop) => this.share(hop));
    }
    this.byAor.set(aor, bindings);
  }

  private share(value: string): string {
    const known = this.shared.get(value);
    if (known !== undefined) return known;
    if (this.shared.size < MAX_SHARED_STRINGS) this.shared.set(value, value);
    return value;
  }

  aors(now: number): string[] {
    const out: string[] = [];
    for (const [aor, bindings] of this.byAor) if (bindings.some((b) => b.expiresAt > now)) out.push(aor);
    return out;
  }

  count(now: number): number {
    let n = 0;
    for (const bindings of this.byAor.values()) for (const b of bindings) if (b.expiresAt > now) n++;
    return n;
  }

  /** Drops expired bindings; returns how many. */
  sweep(now: number): number {
    let removed = 0;
    for (const [aor, bindings] of this.byAor) {
      const kept = bindings.filter((b) => b.expiresAt > now);
      if (kept.length === bindings.length) continue;
      removed += bindings.length - kept.length;
      if (kept.length === 0) this.byAor.delete(aor);
      else this.byAor.set(aor, kept);
    }
    return removed;
  }
}
