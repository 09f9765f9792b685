/**
 * An ordered parameter list (URI parameters, header parameters) that keeps names and values as written so that an
 * unmodified element serialises back byte for byte, while lookups are case-insensitive on the name (§7.3.1, §19.1.4).
 */
export class Params {
  private readonly list: Array<[string, string | null]>;

  constructor(list: Array<[string, string | null]> = []) {
    this.list = list;
  }

  get size(): number {
    return this.list.length;
  }

  private index(name: string): number {
    const lower = name.toLowerCase();
    for (let i = 0; i < this.list.length; i++) {
      const n = this.list[i]![0];
      if (n.length === lower.length && n.toLowerCase() === lower) return i;
    }
    return -1;
  }

  /** The value as written (quoted strings keep their quotes); null for a parameter without value; undefined if absent. */
  get(name: string): string | null | undefined {
    const i = this.index(name);
    return i < 0 ? undefined : this.list[i]![1];
  }

  /** The value with surrounding quotes and quoted-pairs removed. */
  getUnquoted(name: string): string | null | undefined {
    const v = this.get(name);
    if (v === null || v === undefined) return v;
    return unquoteIfQuoted(v);
  }

  has(name: string): boolean {
    return this.index(name) >= 0;
  }

  set(name: string, value: string | null): this {
    const i = this.index(name);
    if (i >= 0) this.list[i]![1] = value;
    else this.list.push([name, value]);
    return this;
  }

  delete(name: string): boolean {
    const i = this.index(name);
    if (i < 0) return false;
    this.list.splice(i, 1);
    return true;
  }

  entries(): ReadonlyArray<readonly [string, string | null]> {
    return this.list;
  }

  clone(): Params {
    return new Params(this.list.map(([n, v]) => [n, v]));
  }

  toString(): string {
    let out = '';
    for (const [n, v] of this.list) out += v === null ? `;${n}` : `;${n}=${v}`;
    return out;
  }
}

export function unquoteIfQuoted(v: string): string {
  if (v.length < 2 || v.charCodeAt(0) !== 0x22 || v.charCodeAt(v.length - 1) !== 0x22) return v;
  let out = '';
  for (let i = 1; i < v.length - 1; i++) {
    const c = v[i]!;
    if (c === '\\' && i + 1 < v.length - 1) {
      out += v[++i];
    } else out += c;
  }
  return out;
}
