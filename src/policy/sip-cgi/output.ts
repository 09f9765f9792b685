import {
  canonicalHeaderName,
  createResponse,
  isDigits,
  isToken,
  reasonPhrase,
  trimLws,
  tryParseUri,
  type SipRequest,
  type SipResponse,
  type Uri,
} from '../../message/index.js';

/**
 * One header edit of a CGI-PROXY-REQUEST or CGI-FORWARD-RESPONSE block: the fields of `name` in the message are
 * replaced by `values` in order (an empty list removes them).
 */
export interface HeaderEdit {
  /** Canonical (lower-case, long form) header name. */
  name: string;
  values: string[];
}

/** What the script asked the server to do, in the order it asked. */
export type SipCgiAction =
  /** Send this response upstream for the request (a Status-Line block). */
  | { type: 'respond'; response: SipResponse }
  /** Proxy the request to `uri` with the edits applied; several proxy actions fork. `body` replaces the body when set. */
  | { type: 'proxy'; uri: Uri; edits: HeaderEdit[]; body?: Buffer }
  /** Forward the response named by `token` (a RESPONSE_TOKEN the script was given) with the edits applied. */
  | { type: 'forward-response'; token: string; edits: HeaderEdit[]; body?: Buffer }
  /**
   * The script named no message action: the server does what it would have done without a script (RFC 3050 default
   * action): a request is proxied as it is by the server's own routing, a response is forwarded by the normal §16.7 rules.
   */
  | { type: 'default' };

export interface SipCgiOutput {
  actions: SipCgiAction[];
  /** CGI-SET-COOKIE: handed back as SCRIPT_COOKIE on the next invocation for this transaction. */
  cookie?: string;
  /** CGI-AGAIN: whether the script wants to see the further responses of this transaction. No unless it says yes. */
  again: boolean;
}

export type Invocation = 'request' | 'response';

/** A fault in the script's output; `line` is 1-based. */
export class SipCgiOutputError extends Error {
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(`line ${line}: ${problem}`);
    this.name = 'SipCgiOutputError';
  }
}

/**
 * Headers that identify the transaction and dialog (§8.1.1, §16.6 leaves them alone): a script that changed them
 * would break the matching of responses to the request. Via is the server's own business (§16.6 step 8, §16.7 step 3).
 */
const PROTECTED = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

/** Response headers that §8.2.6.2 copies from the request; a script's copies are ignored rather than trusted. */
const COPIED_FROM_REQUEST = new Set(['via', 'from', 'call-id', 'cseq']);

interface Field {
  name: string;
  value: string;
  line: number;
}

interface Block {
  startLine: string;
  line: number;
  fields: Field[];
  /** Undefined when the block has no Content-Length: "no body" for a response, "keep the body" for an edit. */
  body: Buffer | undefined;
}

/**
 * Parses what a SIP-CGI script wrote on stdout (RFC 3050, data output): a sequence of blocks, each an action line,
 * header lines and a blank line, then as many body bytes as its Content-Length says. The action lines are a SIP
 * Status-Line, `CGI-PROXY-REQUEST <Request-URI> SIP/2.0`, `CGI-FORWARD-RESPONSE <token> SIP/2.0`,
 * `CGI-SET-COOKIE <token> SIP/2.0` and `CGI-AGAIN yes|no SIP/2.0`. Bare LF line ends are accepted (shell scripts), and
 * the end of the output may stand for the last blank line. Anything else is a SipCgiOutputError naming the line.
 */
export function parseSipCgiOutput(output: Buffer, request: SipRequest, invocation: Invocation): SipCgiOutput {
  const actions: SipCgiAction[] = [];
  let cookie: string | undefined;
  let again: boolean | undefined;
  let finalLine = 0;
  let proxyLine = 0;
  for (const block of blocks(output)) {
    const { startLine, line } = block;
    if (startLine.startsWith('SIP/')) {
      const response = statusBlock(block, request);
      if (response.status >= 200) {
        if (finalLine) throw new SipCgiOutputError(line, `a second final response (the first is on line ${finalLine})`);
        if (proxyLine) throw new SipCgiOutputError(line, `a final response cannot be sent for a request proxied on line ${proxyLine}`);
        finalLine = line;
      } else if (finalLine) throw new SipCgiOutputError(line, `a provisional response after the final response on line ${finalLine}`);
      actions.push({ type: 'respond', response });
      continue;
    }
    const [keyword, argument] = actionLine(startLine, line);
    switch (keyword) {
      case 'CGI-PROXY-REQUEST': {
        if (finalLine) throw new SipCgiOutputError(line, `cannot proxy a request answered with a final response on line ${finalLine}`);
        const uri = tryParseUri(argument);
        if (!uri) throw new SipCgiOutputError(line, `'${argument}' is not a valid Request-URI`);
        proxyLine ||= line;
        actions.push({ type: 'proxy', uri, ...edits(block) });
        break;
      }
      case 'CGI-FORWARD-RESPONSE':
        if (invocation === 'request') throw new SipCgiOutputError(line, 'CGI-FORWARD-RESPONSE in a request invocation: there is no response to forward');
        actions.push({ type: 'forward-response', token: token(argument, keyword, line), ...edits(block) });
        break;
      case 'CGI-SET-COOKIE':
        if (cookie !== undefined) throw new SipCgiOutputError(line, 'CGI-SET-COOKIE given twice');
        noFields(block, keyword);
        cookie = token(argument, keyword, line);
        break;
      case 'CGI-AGAIN': {
        if (again !== undefined) throw new SipCgiOutputError(line, 'CGI-AGAIN given twice');
        noFields(block, keyword);
        const answer = argument.toLowerCase();
        if (answer !== 'yes' && answer !== 'no') throw new SipCgiOutputError(line, `CGI-AGAIN takes "yes" or "no", not '${argument}'`);
        again = answer === 'yes';
        break;
      }
      default:
        throw new SipCgiOutputError(line, `unknown action '${keyword}'`);
    }
  }
  if (actions.length === 0) actions.push({ type: 'default' });
  return cookie === undefined ? { actions, again: again ?? false } : { actions, cookie, again: again ?? false };
}

/** Splits `KEYWORD SP argument SP SIP/2.0`, exactly one SP apart like a Request-Line (§25.1). */
function actionLine(text: string, line: number): [keyword: string, argument: string] {
  const parts = text.split(' ');
  if (parts.length !== 3 || !parts[0]!.startsWith('CGI-')) {
    throw new SipCgiOutputError(
      line,
      `'${excerpt(text)}' is not an action line (a SIP Status-Line or CGI-PROXY-REQUEST, CGI-FORWARD-RESPONSE, CGI-SET-COOKIE, ` +
        'CGI-AGAIN followed by one argument and SIP/2.0; a body needs a Content-Length)',
    );
  }
  if (parts[2] !== 'SIP/2.0') throw new SipCgiOutputError(line, `${parts[0]} must end with SIP/2.0, not '${excerpt(parts[2]!)}'`);
  return [parts[0]!, parts[1]!];
}

function token(argument: string, keyword: string, line: number): string {
  if (!isToken(argument)) throw new SipCgiOutputError(line, `${keyword} takes a token, not '${excerpt(argument)}'`);
  return argument;
}

function noFields(block: Block, keyword: string): void {
  const first = block.fields[0];
  if (first) throw new SipCgiOutputError(first.line, `${keyword} takes no header fields`);
  if (block.body !== undefined && block.body.length > 0) throw new SipCgiOutputError(block.line, `${keyword} takes no body`);
}

/** Status-Line block: the script's response to the request, completed per §8.2.6 from the request. */
function statusBlock(block: Block, request: SipRequest): SipResponse {
  const m = /^SIP\/2\.0 ([1-6]\d\d)(?: (.*))?$/.exec(block.startLine);
  if (!m) throw new SipCgiOutputError(block.line, `malformed Status-Line '${excerpt(block.startLine)}' (want SIP/2.0 <100-699> <reason>)`);
  const status = Number(m[1]);
  const headers: Array<[string, string]> = [];
  let to: string | undefined;
  for (const f of block.fields) {
    if (f.name === 'to') to = f.value;
    else if (!COPIED_FROM_REQUEST.has(f.name) && f.name !== 'content-length') headers.push([f.name, f.value]);
  }
  const response = createResponse(request, status, {
    reason: m[2] || reasonPhrase(status),
    headers,
    ...(block.body ? { body: block.body } : {}),
  });
  // A script may pick the To tag itself (a service that answers several requests of one dialog must keep it).
  if (to !== undefined) response.headers.set('to', to);
  return response;
}

/**
 * The header lines of a proxy or forward block. A field replaces every field of its name in the message (several
 * fields of one name replace them together, in order); `CGI-Remove: Name` removes them. A Content-Length gives the block
 * a body that replaces the message's.
 */
function edits(block: Block): { edits: HeaderEdit[]; body?: Buffer } {
  const byName = new Map<string, HeaderEdit>();
  const removed = new Set<string>();
  for (const f of block.fields) {
    if (f.name === 'content-length') continue;
    let target: string;
    if (f.name === 'cgi-remove') {
      if (!isToken(f.value)) throw new SipCgiOutputError(f.line, `CGI-Remove takes one header name, not '${excerpt(f.value)}'`);
      target = canonicalHeaderName(f.value);
    } else if (f.name.startsWith('cgi-')) {
      throw new SipCgiOutputError(f.line, `unknown CGI header field '${f.name}'`);
    } else target = f.name;
    if (PROTECTED.has(target)) throw new SipCgiOutputError(f.line, `${target} cannot be changed by a script: it identifies the transaction`);
    const edit = byName.get(target);
    if (f.name === 'cgi-remove') {
      if (edit && !removed.has(target)) throw new SipCgiOutputError(f.line, `${target} is both set and removed`);
      removed.add(target);
      byName.set(target, { name: target, values: [] });
    } else {
      if (removed.has(target)) throw new SipCgiOutputError(f.line, `${target} is both set and removed`);
      if (edit) edit.values.push(f.value);
      else byName.set(target, { name: target, values: [f.value] });
    }
  }
  const list = [...byName.values()];
  return block.body === undefined ? { edits: list } : { edits: list, body: block.body };
}

/** Splits the output into blocks, reading bodies by Content-Length. */
function* blocks(output: Buffer): Generator<Block> {
  const reader = new LineReader(output);
  for (;;) {
    let start = reader.next();
    // Blank lines between blocks carry nothing (like the CRLFs a SIP parser skips before a start line, §7.5).
    while (start !== undefined && start.text === '') start = reader.next();
    if (start === undefined) return;
    const fields: Field[] = [];
    let terminated = false;
    for (let l = reader.next(); l !== undefined; l = reader.next()) {
      if (l.text === '') {
        terminated = true;
        break;
      }
      const first = l.text.charCodeAt(0);
      if (first === 0x20 || first === 0x09) {
        // Folding (§7.3.1): the line continues the previous field.
        const prev = fields[fields.length - 1];
        if (!prev) throw new SipCgiOutputError(l.line, 'continuation line without a header field');
        prev.value = trimLws(`${prev.value} ${trimLws(l.text)}`);
        continue;
      }
      const colon = l.text.indexOf(':');
      const name = colon < 0 ? '' : trimLws(l.text.slice(0, colon));
      if (!isToken(name)) throw new SipCgiOutputError(l.line, `'${excerpt(l.text)}' is not a header field (Name: value)`);
      fields.push({ name: canonicalHeaderName(name), value: trimLws(l.text.slice(colon + 1)), line: l.line });
    }
    yield { startLine: start.text, line: start.line, fields, body: body(reader, fields, terminated, start.line) };
  }
}

function body(reader: LineReader, fields: Field[], terminated: boolean, line: number): Buffer | undefined {
  const lengths = fields.filter((f) => f.name === 'content-length');
  if (lengths.length === 0) return undefined;
  const cl = lengths[0]!;
  if (lengths.length > 1) throw new SipCgiOutputError(lengths[1]!.line, 'more than one Content-Length');
  if (!isDigits(cl.value) || cl.value.length > 9) throw new SipCgiOutputError(cl.line, `bad Content-Length '${excerpt(cl.value)}'`);
  const length = Number(cl.value);
  if (length === 0) return Buffer.alloc(0);
  if (!terminated) throw new SipCgiOutputError(line, 'the output ends before the blank line that precedes the body');
  const bytes = reader.take(length);
  if (bytes.length < length) throw new SipCgiOutputError(cl.line, `Content-Length ${length} but only ${bytes.length} bytes follow`);
  return bytes;
}

class LineReader {
  private pos = 0;
  private line = 0;

  constructor(private readonly buf: Buffer) {}

  /** The next line without its CRLF (or bare LF); the last line may lack one. */
  next(): { text: string; line: number } | undefined {
    if (this.pos >= this.buf.length) return undefined;
    const lf = this.buf.indexOf(0x0a, this.pos);
    const end = lf < 0 ? this.buf.length : lf;
    const textEnd = end > this.pos && this.buf[end - 1] === 0x0d ? end - 1 : end;
    const text = this.buf.toString('utf8', this.pos, textEnd);
    this.pos = lf < 0 ? this.buf.length : lf + 1;
    return { text, line: ++this.line };
  }

  /** Up to `n` raw bytes; the lines they contain are counted so that later line numbers stay right. */
  take(n: number): Buffer {
    const bytes = this.buf.subarray(this.pos, this.pos + n);
    for (const b of bytes) if (b === 0x0a) this.line++;
    this.pos += bytes.length;
    return bytes;
  }
}

function excerpt(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}
