import { MAGIC_COOKIE } from '../util/ids.js';
import { Params } from './params.js';
import { Scanner, splitList } from './scanner.js';
import { HOSTCHAR } from './chars.js';
import { hostKind, type HostKind } from './uri.js';

/** One Via value (§20.42, §18.2.1, RFC 3581 rport). */
export class Via {
  constructor(
    /** Upper-case transport: UDP, TCP, TLS, SCTP, WS, WSS or an extension token (RFC 4475 transports). */
    public transport: string,
    /** As written; IPv6 references keep their brackets. */
    public host: string,
    public port: number | undefined,
    public params: Params = new Params(),
    public protocol = 'SIP/2.0',
  ) {}

  get branch(): string | undefined {
    return this.params.get('branch') ?? undefined;
  }

  /** RFC 3261 §8.1.1.7: only a branch with the magic cookie and something after it identifies a transaction. */
  get hasRfc3261Branch(): boolean {
    const b = this.branch;
    return b !== undefined && b.length > MAGIC_COOKIE.length && b.startsWith(MAGIC_COOKIE);
  }

  get received(): string | undefined {
    const r = this.params.get('received');
    if (!r) return undefined;
    // RFC 5118 §4.5: tolerate a bracketed IPv6 received value.
    return r.charCodeAt(0) === 0x5b ? r.slice(1, -1) : r;
  }

  /** RFC 3581: null when the client asked for rport (no value yet), a number once filled in, undefined if absent. */
  get rport(): number | null | undefined {
    const r = this.params.get('rport');
    if (r === undefined) return undefined;
    if (r === null || r === '') return null;
    const n = Number(r);
    return Number.isInteger(n) && n > 0 && n <= 65535 ? n : null;
  }

  get maddr(): string | undefined {
    return this.params.get('maddr') ?? undefined;
  }

  get hostKind(): HostKind {
    return hostKind(this.host);
  }

  get hostname(): string {
    return this.host.charCodeAt(0) === 0x5b ? this.host.slice(1, -1) : this.host;
  }

  get sentBy(): string {
    return this.port === undefined ? this.host : `${this.host}:${this.port}`;
  }

  clone(): Via {
    return new Via(this.transport, this.host, this.port, this.params.clone(), this.protocol);
  }

  toString(): string {
    return `${this.protocol}/${this.transport} ${this.sentBy}${this.params.toString()}`;
  }
}

/** Parses a Via header field value (one or more comma-separated via-parms). Throws HeaderSyntaxError. */
export function parseViaList(value: string): Via[] {
  const out: Via[] = [];
  for (const part of splitList(value)) out.push(parseVia(part));
  return out;
}

export function parseVia(value: string): Via {
  const sc = new Scanner(value, 'Via');
  sc.skipLws();
  const name = sc.requireToken('protocol name');
  if (!sc.eat(0x2f)) sc.fail("expected '/' after protocol name");
  const version = sc.requireToken('protocol version');
  if (!sc.eat(0x2f)) sc.fail("expected '/' after protocol version");
  const transport = sc.requireToken('transport').toUpperCase();
  const before = sc.pos;
  sc.skipLws();
  if (sc.pos === before) sc.fail('expected whitespace before sent-by');
  let host: string;
  if (sc.peek() === 0x5b) {
    const close = value.indexOf(']', sc.pos);
    if (close < 0) sc.fail('unterminated IPv6 reference');
    host = value.slice(sc.pos, close + 1);
    sc.pos = close + 1;
  } else {
    const start = sc.pos;
    while (!sc.done) {
      const c = sc.peek();
      if (c >= 128 || HOSTCHAR[c] !== 1) break;
      sc.pos++;
    }
    host = value.slice(start, sc.pos);
    if (host.length === 0) sc.fail('missing sent-by host');
  }
  let port: number | undefined;
  if (sc.eat(0x3a)) {
    const digits = sc.token();
    const n = /^\d{1,5}$/.test(digits) ? Number(digits) : NaN;
    if (!(n >= 0 && n <= 65535)) sc.fail('bad sent-by port');
    port = n;
  }
  const params = sc.params();
  sc.skipLws();
  if (!sc.done) sc.fail(`unexpected '${value.slice(sc.pos, sc.pos + 12)}'`);
  return new Via(transport, host, port, params, `${name.toUpperCase()}/${version}`);
}
