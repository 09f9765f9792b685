import { isLws, TOKEN } from './chars.js';
import { HeaderSyntaxError } from './parse-error.js';
import { Params } from './params.js';

/**
 * A cursor over one (unfolded) header value. Header grammars of §25.1 allow LWS around separators
 * (SEMI, EQUAL, SLASH, COLON, COMMA; RFC 4475 wsinv), which `skipLws` absorbs.
 */
export class Scanner {
  pos: number;
  constructor(
    readonly s: string,
    readonly what: string,
    start = 0,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.s.length;
  }

  peek(): number {
    return this.pos < this.s.length ? this.s.charCodeAt(this.pos) : -1;
  }

  fail(problem: string): never {
    throw new HeaderSyntaxError(`${this.what}: ${problem}`);
  }

  skipLws(): void {
    while (this.pos < this.s.length && isLws(this.s.charCodeAt(this.pos))) this.pos++;
  }

  /** Consumes `ch` (with LWS on both sides) if it is next; returns whether it was. */
  eat(ch: number): boolean {
    const save = this.pos;
    this.skipLws();
    if (this.peek() === ch) {
      this.pos++;
      this.skipLws();
      return true;
    }
    this.pos = save;
    return false;
  }

  token(): string {
    const start = this.pos;
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c >= 128 || TOKEN[c] !== 1) break;
      this.pos++;
    }
    return this.s.slice(start, this.pos);
  }

  requireToken(what: string): string {
    const t = this.token();
    if (t.length === 0) this.fail(`expected ${what}${this.done ? '' : ` at '${this.s.slice(this.pos, this.pos + 10)}'`}`);
    return t;
  }

  /** A quoted-string including its quotes (as written). Quoted-pairs may escape any octet but CR/LF (§25.1). */
  quotedString(): string {
    const start = this.pos;
    if (this.peek() !== 0x22) this.fail('expected quoted string');
    this.pos++;
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x5c) {
        const n = this.s.charCodeAt(this.pos + 1);
        if (this.pos + 1 >= this.s.length || n === 0x0d || n === 0x0a) this.fail('bad quoted-pair');
        this.pos += 2;
        continue;
      }
      this.pos++;
      if (c === 0x22) return this.s.slice(start, this.pos);
    }
    return this.fail('unterminated quoted string');
  }

  /**
   * Generic header parameters (§25.1 generic-param): `;name[=token|host|quoted-string]`, LWS around ';' and '='.
   * IPv6 references are allowed as values (received=[...], RFC 5118 §4.5), and so are bare IPv6 addresses, whose colons
   * are not separators there.
   */
  params(): Params {
    const params = new Params();
    while (this.eat(0x3b)) {
      const name = this.requireToken('parameter name');
      let value: string | null = null;
      if (this.eat(0x3d)) {
        const c = this.peek();
        if (c === 0x22) value = this.quotedString();
        else if (c === 0x5b) {
          const close = this.s.indexOf(']', this.pos);
          if (close < 0) this.fail('unterminated IPv6 reference');
          value = this.s.slice(this.pos, close + 1);
          this.pos = close + 1;
        } else {
          const start = this.pos;
          while (this.pos < this.s.length) {
            const ch = this.s.charCodeAt(this.pos);
            if (ch >= 128 || (TOKEN[ch] !== 1 && ch !== 0x3a)) break;
            this.pos++;
          }
          value = this.s.slice(start, this.pos);
          if (value.length === 0) this.fail(`empty value for parameter '${name}'`);
        }
      }
      params.set(name, value);
    }
    return params;
  }
}

/** Splits a header value at commas outside quoted strings and <...> (§7.3.1). Empty elements are kept (callers reject them). */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inQuote = false;
    } else if (c === 0x22) inQuote = true;
    else if (c === 0x3c) inAngle = true;
    else if (c === 0x3e) inAngle = false;
    else if (c === 0x2c && !inAngle) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}
