import { quote, TOKEN } from './chars.js';
import { Params, unquoteIfQuoted } from './params.js';
import { Scanner, splitList } from './scanner.js';
import { parseUri, type Uri } from './uri.js';

/**
 * name-addr / addr-spec with header parameters (§20.10, §25.1): From, To, Contact, Route, Record-Route, Path, ...
 * `angle` records whether the URI was in <>; it decides where URI parameters end (RFC 4475 cparam01/cparam02).
 */
export class NameAddr {
  constructor(
    public uri: Uri,
    public params: Params = new Params(),
    /** As written: a quoted-string keeps its quotes, a token sequence is kept verbatim. */
    public displayName: string | undefined = undefined,
    public angle = true,
  ) {}

  get tag(): string | undefined {
    const t = this.params.get('tag');
    return t ?? undefined;
  }

  set tag(value: string | undefined) {
    if (value === undefined) this.params.delete('tag');
    else this.params.set('tag', value);
  }

  get displayNameText(): string | undefined {
    return this.displayName === undefined ? undefined : unquoteIfQuoted(this.displayName);
  }

  clone(): NameAddr {
    return new NameAddr(this.uri.clone(), this.params.clone(), this.displayName, this.angle);
  }

  toString(): string {
    // A URI with ',', ';' or '?' must be in <> (§20), and so must one that carried header params as written.
    let s = '';
    if (this.displayName !== undefined && this.displayName.length > 0) s += this.displayName + ' ';
    const uri = this.uri.toString();
    if (this.angle || s.length > 0 || /[;,?]/.test(uri)) s += '<' + uri + '>';
    else s += uri;
    return s + this.params.toString();
  }
}

/** Makes a display name safe to serialise: tokens stay as they are, anything else is quoted. */
export function displayName(text: string): string {
  const tokens = text.split(' ');
  const plain = tokens.every((t) => t.length > 0 && [...t].every((c) => c.charCodeAt(0) < 128 && TOKEN[c.charCodeAt(0)] === 1));
  return plain ? text : quote(text);
}

/** Parses one name-addr or addr-spec with parameters. Throws HeaderSyntaxError. */
export function parseNameAddr(value: string, what: string): NameAddr {
  const sc = new Scanner(value, what);
  sc.skipLws();
  let display: string | undefined;
  let uriText: string;
  let angle = false;
  const lt = findTopLevelAngle(value, sc.pos);
  if (lt >= 0) {
    angle = true;
    if (sc.peek() === 0x22) {
      display = sc.quotedString();
      sc.skipLws();
      if (sc.pos !== lt) sc.fail('text between display name and <');
    } else if (sc.pos < lt) {
      // A token display name may touch the '<' (RFC 4475 lwsdisp; RFC 3261's grammar is acknowledged to be wrong there).
      const raw = value.slice(sc.pos, lt).trimEnd();
      for (let i = 0; i < raw.length; i++) {
        const c = raw.charCodeAt(i);
        if (c === 0x20 || c === 0x09) continue;
        if (c >= 128 || TOKEN[c] !== 1) sc.fail(`display name must be quoted (found '${raw[i]}')`);
      }
      display = raw;
    }
    const gt = value.indexOf('>', lt);
    if (gt < 0) sc.fail("missing '>'");
    uriText = value.slice(lt + 1, gt);
    sc.pos = gt + 1;
  } else {
    // addr-spec: the URI ends at the first ';' or LWS; what follows are header params (§20.10).
    const start = sc.pos;
    while (!sc.done) {
      const c = sc.peek();
      if (c === 0x3b || c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) break;
      sc.pos++;
    }
    uriText = value.slice(start, sc.pos);
    if (uriText.length === 0) sc.fail('missing URI');
    if (uriText.includes('?')) sc.fail('a URI with headers must be enclosed in <>');
  }
  let uri: Uri;
  try {
    uri = parseUri(uriText);
  } catch (e) {
    return sc.fail((e as Error).message);
  }
  const params = sc.params();
  sc.skipLws();
  if (!sc.done) sc.fail(`unexpected '${value.slice(sc.pos, sc.pos + 12)}'`);
  return new NameAddr(uri, params, display, angle);
}

/** Parses a comma-separated list of name-addrs (Contact, Route, Record-Route, Path, ...). Empty elements are errors. */
export function parseNameAddrList(value: string, what: string): NameAddr[] {
  const out: NameAddr[] = [];
  for (const part of splitList(value)) {
    if (part.trim().length === 0) new Scanner(part, what).fail('empty list element');
    out.push(parseNameAddr(part, what));
  }
  return out;
}

/** Position of the '<' that opens a name-addr, skipping quoted strings; -1 for the addr-spec form. */
function findTopLevelAngle(value: string, from: number): number {
  let inQuote = false;
  for (let i = from; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inQuote = false;
    } else if (c === 0x22) inQuote = true;
    else if (c === 0x3c) return i;
  }
  return -1;
}
