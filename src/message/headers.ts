import { canonicalHeaderName, headerSpelling, LIST_HEADERS } from './header-names.js';
import { trimLws } from './chars.js';
import { splitList } from './scanner.js';

/**
 * One header field. A parsed field points into the receive buffer (`lineStart..lineEnd` is the whole field as written,
 * folding included, without its CRLF), so a forwarded message copies it byte for byte; the value string is decoded
 * only when first read. A field created in code holds its value only.
 */
export class HeaderField {
  private decoded: string | undefined;

  constructor(
    /** Canonical name: lower-case long form. */
    readonly name: string,
    value: string | undefined,
    readonly source?: Buffer,
    readonly lineStart = 0,
    readonly lineEnd = 0,
    private readonly valueStart = 0,
  ) {
    this.decoded = value;
  }

  get value(): string {
    if (this.decoded === undefined) {
      const raw = this.source!.toString('utf8', this.valueStart, this.lineEnd);
      // Folding (§7.3.1): a CRLF followed by whitespace is equivalent to a single SP.
      this.decoded = trimLws(raw.indexOf('\n') >= 0 ? raw.replace(/\r?\n(?=[ \t])/g, ' ') : raw);
    }
    return this.decoded;
  }

  /** True when the field can be copied from the original bytes. */
  get isRaw(): boolean {
    return this.source !== undefined;
  }

  static of(name: string, value: string): HeaderField {
    return new HeaderField(canonicalHeaderName(name), value);
  }
}

/**
 * The ordered header fields of a message. This list is also the proxy's edit list: fields it does not touch stay
 * slices of the received bytes, and serialisation writes each once.
 */
export class Headers {
  /** Bumped on every change, so that typed views cached on the message know when to re-parse. */
  version = 0;

  constructor(readonly fields: HeaderField[] = []) {}

  get length(): number {
    return this.fields.length;
  }

  has(name: string): boolean {
    const n = canonicalHeaderName(name);
    return this.fields.some((f) => f.name === n);
  }

  /** The first field's value (whole field, not split at commas). */
  get(name: string): string | undefined {
    const n = canonicalHeaderName(name);
    for (const f of this.fields) if (f.name === n) return f.value;
    return undefined;
  }

  /** Every field's value, in order (fields are not split at commas). */
  getAll(name: string): string[] {
    const n = canonicalHeaderName(name);
    const out: string[] = [];
    for (const f of this.fields) if (f.name === n) out.push(f.value);
    return out;
  }

  /** Values of a list header, split at top-level commas and trimmed; empty elements dropped (§7.3.1). */
  list(name: string): string[] {
    const n = canonicalHeaderName(name);
    const out: string[] = [];
    for (const f of this.fields) {
      if (f.name !== n) continue;
      if (!LIST_HEADERS.has(n)) {
        out.push(f.value);
        continue;
      }
      for (const part of splitList(f.value)) {
        const t = trimLws(part);
        if (t.length > 0) out.push(t);
      }
    }
    return out;
  }

  count(name: string): number {
    const n = canonicalHeaderName(name);
    let c = 0;
    for (const f of this.fields) if (f.name === n) c++;
    return c;
  }

  /** Replaces all fields of this name with one field, at the position of the first (or at the end). */
  set(name: string, value: string): this {
    const field = HeaderField.of(name, value);
    const i = this.fields.findIndex((f) => f.name === field.name);
    if (i < 0) this.fields.push(field);
    else {
      this.fields[i] = field;
      for (let j = this.fields.length - 1; j > i; j--) if (this.fields[j]!.name === field.name) this.fields.splice(j, 1);
    }
    this.version++;
    return this;
  }

  append(name: string, value: string): this {
    this.fields.push(HeaderField.of(name, value));
    this.version++;
    return this;
  }

  /**
   * Inserts before the first field of the same name, as a proxy does with Via and Record-Route. Without one, a Via goes
   * on top and anything else right after the Vias, where a reader of a trace expects routing headers.
   */
  prepend(name: string, value: string): this {
    const field = HeaderField.of(name, value);
    let i = this.fields.findIndex((f) => f.name === field.name);
    if (i < 0 && field.name !== 'via') {
      for (let j = 0; j < this.fields.length; j++) if (this.fields[j]!.name === 'via') i = j + 1;
    }
    this.fields.splice(i < 0 ? 0 : i, 0, field);
    this.version++;
    return this;
  }

  remove(name: string): number {
    const n = canonicalHeaderName(name);
    const before = this.fields.length;
    for (let i = this.fields.length - 1; i >= 0; i--) if (this.fields[i]!.name === n) this.fields.splice(i, 1);
    if (this.fields.length !== before) this.version++;
    return before - this.fields.length;
  }

  /**
   * Removes the first value of a list header (e.g. the top Via of a response, or our own Route): drops the whole field
   * if it held one value, otherwise rewrites it without its first value.
   */
  removeFirstValue(name: string): string | undefined {
    const n = canonicalHeaderName(name);
    const i = this.fields.findIndex((f) => f.name === n);
    if (i < 0) return undefined;
    const field = this.fields[i]!;
    const parts = splitList(field.value);
    const first = trimLws(parts[0] ?? '');
    if (parts.length <= 1) this.fields.splice(i, 1);
    else this.fields[i] = new HeaderField(n, trimLws(parts.slice(1).join(',')));
    this.version++;
    return first;
  }

  clone(): Headers {
    return new Headers(this.fields.slice());
  }

  /** Spelling used when serialising fields created in code. */
  static spelling(canonical: string): string {
    return headerSpelling(canonical);
  }
}
