/**
 * Grammar-aware mutation of SIP messages for the fuzzer: operators that know the start line, header fields (name,
 * value, parameters, comma lists) and the body with its Content-Length, and operators on the raw octets (truncation,
 * random bytes, NULs, CRLF games). Each message gets a few stacked mutations; whether Content-Length is then fixed
 * up is itself a draw, so that some mutants pass framing and reach the deeper checks and some do not.
 * For streams, `streamChunks` pipelines several messages into one byte stream and cuts it at random offsets.
 */
import { Rng } from './rng.js';
import { canonical, cloneShape, fieldsNamed, fixContentLength, isRequestLine, readShape, writeShape, type Field, type Shape } from './shape.js';

/** Numbers that break parsers: limits of 8/16/31/32/53/64-bit integers, beyond them, and not quite numbers. */
const HUGE = [
  '65535',
  '65536',
  '99999',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '9007199254740991',
  '9007199254740993',
  '18446744073709551616',
  '99999999999999999999999999999999',
  '1' + '0'.repeat(400),
  '000000000000000000000000000001',
  '1e309',
  'Infinity',
  'NaN',
  '0x7fffffff',
  '1.5',
  '+1',
  ' 1',
  '',
];
const NEGATIVE = ['-1', '-0', '-65536', '-2147483648', '-2147483649', '-4294967296', '-9007199254740993', '-1e309', '--1', '-'];
const BAD_ESCAPES = ['%', '%4', '%G1', '%zz', '%00', '%0d%0a', '%0D%0A%0D%0A', '%25', '%ff%fe', '%C0%80', '%%', '%2', '%%41', '%u0041', '%E2%80%AE'];
const METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE', 'REFER', 'INFO', 'PRACK', 'UPDATE', 'PUBLISH'];
const GARBAGE_METHODS = ['invite', 'INVITE\u0000', 'IN VITE', 'INV\tITE', '', '!interesting-Method0123456789_*+`.%indeed\'~', 'X'.repeat(5000), '\u00ff\u00fe', 'GET', 'HTTP/1.1', 'REGISTER;x', 'ACK@'];
const VERSIONS = ['SIP/2.1', 'SIP/3.0', 'SIP/2', 'sip/2.0', 'SIP/2.0 ', 'SIP /2.0', 'HTTP/1.1', 'SIP/20.0', 'SIP/2.00', 'SIP/-2.0', 'SIP/7.99999999999', '', 'SIP/2.0\u0000', 'SIP/99999999999999999999.0'];
const STATUS = ['000', '099', '100', '180', '183', '199', '200', '202', '299', '300', '302', '401', '407', '408', '481', '487', '500', '503', '600', '699', '700', '999', '1000', '20', '-200', '2OO', '', '200 ', '18446744073709551616'];
const URIS = [
  'sip:',
  'sip:@',
  'sip:@@host',
  'sip:user@',
  'sip:[::1',
  'sip:[::1]:',
  'sip:[2001:db8:::1]',
  'sip:[::ffff:127.0.0.1]:5060',
  'sip:user@host:99999999',
  'sip:user@host:-1',
  'sip:user@host:0',
  'sip:user@host:',
  'sip:user:pass:word@host',
  'sip:user@host;;;',
  'sip:user@host;maddr=',
  'sip:user@host;transport=',
  'sip:user@host;lr=x;lr;lr',
  'sip:user@host?',
  'sip:user@host?&&=',
  'sips:user@host;transport=udp',
  'tel:',
  'tel:+',
  'tel:+1-555-0100;phone-context=;isub=%',
  'tel:1234;ext=',
  'http://host/',
  'mailto:a@b',
  '*',
  '<sip:a@b>',
  'sip:a b@c',
  'sip:%@host',
  'sip:host.' + 'a.'.repeat(2000) + 'com',
  'sip:' + 'u'.repeat(20000) + '@host',
  'sip:user@1.2.3.4.5',
  'sip:user@256.256.256.256',
  'sip:user@-host-.example',
  'urn:service:sos',
  'x:',
  ':',
];
/** Header names the server acts on, with values that stress their grammars. */
const EXTRA_FIELDS: Array<[string, string[]]> = [
  ['Route', ['<sip:127.0.0.1;lr>', '<sip:a@b;lr', '<>', 'sip:x', '<sip:[::1]:0;lr>,<sip:x;lr>', '<sip:h;lr>;;', '<sips:unknown.invalid;lr>']],
  ['Record-Route', ['<sip:p1.example.com;lr>', '<sip:', '<sip:a>,,<sip:b>', '<sip:x;lr>;foo="']],
  ['Proxy-Require', ['foo', '', ',', 'a,b,,c']],
  ['Require', ['100rel', 'timer,gruu,outbound,path', 'nonsense', '']],
  ['Supported', ['', 'path,outbound,gruu,100rel,timer,replaces,,', '"']],
  ['Expires', ['0', '3600', '-1', '4294967296', 'abc', '', '99999999999999999999']],
  ['Contact', ['*', '<sip:a@127.8.7.6>;expires=-1', '<sip:a@b>;q=2.0', '<sip:a@b>;q=0.0001', '<sip:a@b>;q=-1', '<sip:a@b>;q=1e309', '*, <sip:a@b>', '"unterminated <sip:a@b>', '<sip:a@b>;+sip.instance="<urn:uuid:', '<sip:a@b>;reg-id=99999999999999999999']],
  ['Authorization', ['Digest username="alice", realm="sipway.test", nonce="", uri="sip:sipway.test", response="00"', 'Digest ,,,', 'Digest username="a\\', 'Basic YWxhZGRpbjpvcGVuc2VzYW1l', 'Digest nc=zzzzzzzz, qop=auth, cnonce=""', 'Digest algorithm=SHA-256-sess, nonce="' + 'n'.repeat(9000) + '"', '']],
  ['Proxy-Authorization', ['Digest username="bob", response="x"', 'Digest', 'Digest username=bob=bob']],
  ['Event', ['presence', 'reg;id=', 'dialog;;;', '', 'x'.repeat(3000)]],
  ['Subscription-State', ['active;expires=-1', 'terminated;reason=', 'pending;retry-after=99999999999999']],
  ['Refer-To', ['<sip:a@b?Replaces=x%3Bto-tag%3D1>', '<sip:', 'sip:a@b?a=%']],
  ['Replaces', ['abc;to-tag=;from-tag=', ';;', '@']],
  ['Path', ['<sip:edge.example.com;lr;ob>', '<sip:', '<sip:x;lr>,<>']],
  ['Session-Expires', ['90;refresher=uac', '-90', '4294967296', 'x']],
  ['Min-SE', ['90', '-1', '']],
  ['RAck', ['1 1 INVITE', '4294967296 1 INVITE', '-1 -1 X', '']],
  ['RSeq', ['1', '-1', '4294967296']],
  ['Date', ['Sat, 13 Nov 2010 23:29:00 GMT', 'Thu, 44 Dec 19999 16:00:00 EDT', '']],
  ['Timestamp', ['54', '1.5 0.2', '-1', 'x y z']],
  ['Retry-After', ['18000;duration=3600', '-1', '99999999999999999999']],
  ['Max-Breadth', ['0', '60', '-1', '99999999999']],
  ['Accept', ['application/sdp', '*/*;q=2', ',,', 'a/b;q=']],
  ['Content-Encoding', ['gzip', 'deflate', '']],
  ['Content-Type', ['application/sdp', 'multipart/mixed;boundary=', 'multipart/mixed;boundary="unterminated', 'text/plain;charset=', '/', '']],
  ['P-Asserted-Identity', ['<sip:a@b>', '<tel:+1>', '<']],
  ['Reason', ['SIP;cause=200;text="Call completed elsewhere"', 'Q.850;cause=-1', 'SIP;text="']],
  ['Allow-Events', ['presence, reg, , ', '']],
  ['Privacy', ['id;header;user', '']],
  ['Security-Client', ['ipsec-3gpp;spi-c=99999999999;port-c=99999', '']],
  ['Identity', ['"' + 'A'.repeat(4000) + '"']],
];
const NAME_GAMES = ['', ' ', 'X Y', 'Via\u0000', 'V', 'i', 'm', 'l', 'f', 't', 'v', 'c', 'e', 'k', 's', 'o', 'u', 'CONTENT-LENGTH', 'content-length', 'Call-Id', 'ViA', 'From ', 'To\t', 'X-' + 'n'.repeat(300), 'Via;', '@', '\u00e9t\u00e9'];
const VIA_GAMES = [
  'SIP/2.0/UDP 127.8.7.6:0;branch=z9hG4bKport0',
  'SIP/2.0/UDP 127.8.7.6:65536;branch=z9hG4bKbig',
  'SIP/2.0/UDP 127.8.7.6:99999999999;branch=z9hG4bKhuge',
  'SIP/2.0/UDP 127.8.7.6:-5060;branch=z9hG4bKneg',
  'SIP/2.0/UDP 127.8.7.6',
  'SIP/2.0/UDP 127.8.7.6;branch=',
  'SIP/2.0/UDP 127.8.7.6;branch=z9hG4bK',
  'SIP/2.0/UDP 127.8.7.6;rport=99999999999;branch=z9hG4bKrp',
  'SIP/2.0/UDP 127.8.7.6;rport=0;branch=z9hG4bKrp0',
  'SIP/2.0/UDP 127.8.7.6;rport=-1;branch=z9hG4bKrpn',
  'SIP/2.0/UDP 127.8.7.6;received=1.2.3.4.5;branch=z9hG4bKrc',
  'SIP/2.0/UDP 127.8.7.6;received=;branch=z9hG4bKrc',
  'SIP/2.0/UDP 127.8.7.6;maddr=255.255.255.255;ttl=999999;branch=z9hG4bKm',
  'SIP/2.0/UDP [::1;branch=z9hG4bKv6',
  'SIP/2.0/UDP [::ffff:127.8.7.6]:5060;branch=z9hG4bKv6m',
  'SIP/2.0/UDP :5060;branch=z9hG4bKnohost',
  'SIP/2.0/UDP ;branch=z9hG4bKempty',
  'SIP/2.0/FOO 127.8.7.6;branch=z9hG4bKfoo',
  'SIP/3.0/UDP 127.8.7.6;branch=z9hG4bKv3',
  'SIP/2.0 127.8.7.6;branch=z9hG4bKnot',
  'SIP/2.0/UDP 127.8.7.6;branch=z9hG4bK' + 'b'.repeat(10000),
  'SIP/2.0/TCP 127.8.7.6:5060;branch=z9hG4bKt;alias',
  'SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws',
  'SIP/2.0/UDP 127.8.7.6;branch=z9hG4bKa;branch=z9hG4bKb',
  'SIP/2.0/UDP 127.8.7.6,,,',
  'SIP/2.0/UDP 127.8.7.6;branch=z9hG4bKx, SIP/2.0/UDP',
];
const SDP_LINES = ['m=audio 99999999 RTP/AVP 0', 'm=audio -1 RTP/AVP 0', 'm=audio 0/99999 RTP/AVP', 'm=', 'c=IN IP4', 'c=IN IP6 [::1', 'c=IN IP4 224.2.1.1/999/99999', 'o=- x x IN IP4 h', 'a=rtpmap:999999 x/-1', 'a=rtpmap:', 'b=AS:-1', 't=99999999999999999999 0', 'v=9', 'k=prompt', 'z=1 -1h', 'a=' + 'x'.repeat(9000), '=', ''];

type ShapeOperator = (shape: Shape, ctx: Context) => void;
type ByteOperator = (bytes: Buffer, ctx: Context) => Buffer;

interface Context {
  rng: Rng;
  /** Set by operators that break Content-Length on purpose: the fix-up must then leave it alone. */
  lengthTouched: boolean;
  /** Other seeds, for splicing. */
  seeds: readonly Shape[];
}

function randomField(shape: Shape, rng: Rng): Field | undefined {
  return shape.fields.length === 0 ? undefined : rng.pick(shape.fields);
}

/** A field, preferring those the server reads on every message. */
function hotField(shape: Shape, rng: Rng): Field | undefined {
  const hot = shape.fields.filter((f) => HOT.has(canonical(f)));
  return hot.length > 0 && rng.chance(0.7) ? rng.pick(hot) : randomField(shape, rng);
}
const HOT = new Set(['via', 'cseq', 'call-id', 'from', 'to', 'max-forwards', 'content-length', 'contact', 'expires', 'route', 'record-route', 'authorization', 'event']);

/** Replaces the `which`-th match of `re` in `s` (a random one) with `by`. */
function replaceMatch(s: string, re: RegExp, by: (m: string) => string, rng: Rng): string {
  const matches = [...s.matchAll(re)];
  if (matches.length === 0) return s;
  const m = rng.pick(matches);
  return s.slice(0, m.index) + by(m[0]) + s.slice(m.index! + m[0].length);
}

function insertAt(s: string, at: number, what: string): string {
  return s.slice(0, at) + what + s.slice(at);
}

/** The text an operator edits: a field's value, or the start line. */
function editTarget(shape: Shape, rng: Rng, preferHot = true): { get: () => string; set: (v: string) => void } {
  const f = rng.chance(0.15) ? undefined : preferHot ? hotField(shape, rng) : randomField(shape, rng);
  if (!f) return { get: () => shape.startLine, set: (v) => (shape.startLine = v) };
  return { get: () => f.value, set: (v) => (f.value = v) };
}

const shapeOperators: Record<string, ShapeOperator> = {
  duplicateField(shape, { rng }) {
    const f = hotField(shape, rng);
    if (!f) return;
    const copies = rng.chance(0.1) ? rng.range(2, 300) : 1;
    for (let i = 0; i < copies; i++) shape.fields.splice(rng.int(shape.fields.length + 1), 0, { ...f });
  },
  removeField(shape, ctx) {
    const f = hotField(shape, ctx.rng);
    if (!f) return;
    shape.fields.splice(shape.fields.indexOf(f), 1);
    if (canonical(f) === 'content-length') ctx.lengthTouched = true;
  },
  reorderFields(shape, { rng }) {
    if (rng.chance(0.5)) {
      for (let i = shape.fields.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [shape.fields[i], shape.fields[j]] = [shape.fields[j]!, shape.fields[i]!];
      }
    } else if (shape.fields.length > 1) {
      const i = rng.int(shape.fields.length);
      const j = rng.int(shape.fields.length);
      [shape.fields[i], shape.fields[j]] = [shape.fields[j]!, shape.fields[i]!];
    }
  },
  swapNames(shape, ctx) {
    const a = hotField(shape, ctx.rng);
    const b = randomField(shape, ctx.rng);
    if (!a || !b) return;
    [a.name, b.name] = [b.name, a.name];
    ctx.lengthTouched = true;
  },
  renameField(shape, ctx) {
    const f = hotField(shape, ctx.rng);
    if (!f) return;
    f.name = ctx.rng.pick(NAME_GAMES);
    if (ctx.rng.chance(0.3)) f.separator = ctx.rng.pick([':', ' : ', '\t:\t', '::', ': \r\n ', '', ' ', ':\u0000']);
    ctx.lengthTouched = true;
  },
  crossValue(shape, { rng }) {
    const a = hotField(shape, rng);
    const b = randomField(shape, rng);
    if (a && b) a.value = b.value;
  },
  hugeNumber(shape, { rng }) {
    const t = numericTarget(shape, rng);
    t.set(replaceMatch(t.get(), /\d+(?:\.\d+)?/g, () => rng.pick(HUGE), rng));
  },
  negativeNumber(shape, { rng }) {
    const t = numericTarget(shape, rng);
    t.set(replaceMatch(t.get(), /\d+(?:\.\d+)?/g, () => rng.pick(NEGATIVE), rng));
  },
  badEscape(shape, { rng }) {
    const t = editTarget(shape, rng);
    const v = t.get();
    const at = rng.chance(0.5) && v.includes('@') ? v.indexOf('@') : rng.int(v.length + 1);
    t.set(insertAt(v, at, rng.pick(BAD_ESCAPES)));
  },
  overlong(shape, ctx) {
    const t = editTarget(shape, ctx.rng, false);
    const size = ctx.rng.pick([300, 1024, 8192, 16385, 20000, 66000]);
    const unit = ctx.rng.pick(['a', ';p=v', ',', ' ', '<', '"', '\\', '%', '@', 'z9hG4bK', '1', ';']);
    t.set(insertAt(t.get(), ctx.rng.int(t.get().length + 1), unit.repeat(Math.ceil(size / unit.length))));
  },
  paramGame(shape, { rng }) {
    const t = editTarget(shape, rng);
    const params = [';', ';;;;', ';=', ';=x', ';a=', ';a="unterminated', ';tag=', ';tag=a;tag=b', ';branch=', ';branch=z9hG4bK;branch=z9hG4bK2', ';lr=foo', ';transport=xyz', ';maddr=', ';received=garbage', ';rport=', ';rport=99999999999', ';q=1.0001', ';expires=-5', ';ttl=256', ';method=', ';user=phone', ';ob', ';gr=', ';+sip.instance=', ';reg-id=-1', ';a=b'.repeat(rng.range(50, 2000)), ';"x"', '; a = "b\\"'];
    const v = t.get();
    const semi = v.lastIndexOf(';');
    const at = rng.chance(0.5) || semi < 0 ? v.length : semi;
    t.set(insertAt(v, at, rng.pick(params)));
  },
  listGame(shape, { rng }) {
    const f = hotField(shape, rng);
    if (!f) return;
    const v = f.value;
    switch (rng.int(5)) {
      case 0:
        f.value = ',' + v;
        break;
      case 1:
        f.value = v + ',';
        break;
      case 2:
        f.value = v + ',,,' + v;
        break;
      case 3:
        f.value = Array.from({ length: rng.range(2, 200) }, () => v).join(rng.pick([',', ', ', ' ,\t']));
        break;
      default:
        f.value = insertAt(v, rng.int(v.length + 1), rng.pick(['","', ',', '","<sip:a,b>', '\\,']));
    }
  },
  quoteGame(shape, { rng }) {
    const t = editTarget(shape, rng);
    const v = t.get();
    t.set(insertAt(v, rng.int(v.length + 1), rng.pick(['"', '\\', '<', '>', '<<', '>>', '"\\', '\\"', '"a"b"', '(', ')', '[', ']', ':', '@'])));
  },
  viaGame(shape, { rng }) {
    const vias = fieldsNamed(shape, 'via');
    const game = rng.pick(VIA_GAMES);
    if (vias.length > 0 && rng.chance(0.8)) vias[0]!.value = game;
    else shape.fields.splice(rng.int(shape.fields.length + 1), 0, { name: 'Via', separator: ': ', value: game });
  },
  contentLengthGame(shape, ctx) {
    const { rng } = ctx;
    ctx.lengthTouched = true;
    const cl = fieldsNamed(shape, 'content-length');
    const length = shape.body.length;
    const values = [String(length + rng.range(1, 5)), String(Math.max(0, length - rng.range(1, 5))), '0', '-1', rng.pick(HUGE), String(length) + ' ' + String(length), `${length}, ${length}`, 'x', ''];
    const value = rng.pick(values);
    if (cl.length === 0 || rng.chance(0.35)) {
      shape.fields.splice(rng.int(shape.fields.length + 1), 0, { name: rng.pick(['Content-Length', 'l', 'content-length']), separator: ': ', value });
    } else {
      rng.pick(cl).value = value;
    }
  },
  wrongBody(shape, ctx) {
    const { rng } = ctx;
    ctx.lengthTouched = rng.chance(0.5);
    const b = shape.body;
    switch (rng.int(4)) {
      case 0:
        shape.body = b.slice(0, rng.int(b.length + 1));
        break;
      case 1:
        shape.body = b + b;
        break;
      case 2:
        shape.body = b + 'x'.repeat(rng.pick([1, 100, 60001, 70000]));
        break;
      default:
        shape.body = '';
    }
  },
  sdpGame(shape, { rng }) {
    const lines = shape.body.split(/\r?\n/);
    const line = rng.pick(SDP_LINES);
    if (lines.length > 1 && rng.chance(0.6)) lines[rng.int(lines.length)] = line;
    else lines.splice(rng.int(lines.length + 1), 0, line);
    shape.body = lines.join(rng.chance(0.9) ? '\r\n' : '\n');
    if (!fieldsNamed(shape, 'content-type').length && rng.chance(0.5)) shape.fields.push({ name: 'Content-Type', separator: ': ', value: 'application/sdp' });
  },
  methodGame(shape, ctx) {
    const { rng } = ctx;
    if (!isRequestLine(shape.startLine)) return shapeOperators.statusGame!(shape, ctx);
    const parts = shape.startLine.split(' ');
    const method = rng.chance(0.5) ? rng.pick(METHODS) : rng.pick(GARBAGE_METHODS);
    parts[0] = method;
    shape.startLine = parts.join(' ');
    // Half the time the CSeq keeps up (a plausible request of another method), half it does not (§8.1.1.5 mismatch).
    if (rng.chance(0.5)) for (const f of fieldsNamed(shape, 'cseq')) f.value = f.value.replace(/[A-Za-z!%*_+`'~.-]+$/, method);
  },
  versionGame(shape, { rng }) {
    const line = shape.startLine;
    const version = rng.pick(VERSIONS);
    shape.startLine = isRequestLine(line) ? line.replace(/ [^ ]*$/, ' ' + version) : line.replace(/^[^ ]*/, version);
  },
  statusGame(shape, { rng }) {
    if (isRequestLine(shape.startLine)) return;
    const reason = rng.pick(['OK', '', ' ', 'Ringing', '\u00ff\u00fe\u0000', 'x'.repeat(5000), 'Multiple  Spaces ']);
    shape.startLine = `SIP/2.0 ${rng.pick(STATUS)} ${reason}`;
  },
  requestUriGame(shape, { rng }) {
    if (!isRequestLine(shape.startLine)) return;
    const parts = shape.startLine.split(' ');
    if (parts.length < 2) return;
    parts[1] = rng.chance(0.8) ? rng.pick(URIS) : parts[1] + rng.pick(BAD_ESCAPES);
    shape.startLine = parts.join(' ');
  },
  uriInField(shape, { rng }) {
    const f = fieldsNamed(shape, rng.pick(['from', 'to', 'contact', 'route', 'record-route']))[0];
    if (!f) return;
    const uri = rng.pick(URIS);
    f.value = f.value.replace(/<[^>]*>|sips?:[^;>,\s]*/, rng.chance(0.7) ? `<${uri}>` : uri);
  },
  addField(shape, ctx) {
    const [name, values] = ctx.rng.pick(EXTRA_FIELDS);
    shape.fields.splice(ctx.rng.int(shape.fields.length + 1), 0, { name, separator: ': ', value: ctx.rng.pick(values) });
  },
  splice(shape, ctx) {
    const other = ctx.rng.pick(ctx.seeds);
    if (other.fields.length === 0) return;
    const f = ctx.rng.pick(other.fields);
    shape.fields.splice(ctx.rng.int(shape.fields.length + 1), 0, { ...f });
    if (ctx.rng.chance(0.2)) shape.body = other.body;
  },
  compactForms(shape, { rng }) {
    const long: Record<string, string> = { 'call-id': 'i', contact: 'm', 'content-length': 'l', 'content-type': 'c', from: 'f', to: 't', via: 'v', supported: 'k', event: 'o' };
    for (const f of shape.fields) {
      const c = canonical(f);
      if (long[c] && rng.chance(0.6)) f.name = rng.chance(0.5) ? long[c]! : long[c]!.toUpperCase();
    }
  },
  whitespaceGame(shape, { rng }) {
    const t = editTarget(shape, rng, false);
    const v = t.get();
    t.set(insertAt(v, rng.int(v.length + 1), rng.pick([' ', '  ', '\t', ' \t ', '\u000b', '\u000c', '\u00a0', ' '.repeat(5000)])));
  },
};

/** Somewhere a number matters: the fields with numeric grammar first, else any. */
function numericTarget(shape: Shape, rng: Rng): { get: () => string; set: (v: string) => void } {
  const numeric = shape.fields.filter((f) => NUMERIC.has(canonical(f)) || /;(?:q|rport|ttl|expires|reg-id)=|:\d/.test(f.value));
  if (numeric.length > 0 && rng.chance(0.8)) {
    const f = rng.pick(numeric);
    return { get: () => f.value, set: (v) => (f.value = v) };
  }
  return editTarget(shape, rng);
}
const NUMERIC = new Set(['cseq', 'content-length', 'max-forwards', 'expires', 'min-expires', 'retry-after', 'session-expires', 'min-se', 'rseq', 'rack', 'via', 'contact', 'timestamp', 'max-breadth']);

const byteOperators: Record<string, ByteOperator> = {
  truncate(bytes, { rng }) {
    return bytes.subarray(0, rng.int(bytes.length + 1));
  },
  randomBytes(bytes, { rng }) {
    const at = rng.int(bytes.length + 1);
    return Buffer.concat([bytes.subarray(0, at), rng.bytes(rng.count(0.2, 64)), bytes.subarray(at)]);
  },
  overwriteBytes(bytes, { rng }) {
    const out = Buffer.from(bytes);
    const n = rng.count(0.3, 16);
    for (let i = 0; i < n && out.length > 0; i++) out[rng.int(out.length)] = rng.int(256);
    return out;
  },
  flipBits(bytes, { rng }) {
    const out = Buffer.from(bytes);
    const n = rng.count(0.3, 8);
    for (let i = 0; i < n && out.length > 0; i++) out[rng.int(out.length)]! ^= 1 << rng.int(8);
    return out;
  },
  nul(bytes, { rng }) {
    const at = rng.int(bytes.length + 1);
    return Buffer.concat([bytes.subarray(0, at), Buffer.alloc(rng.count(0.5, 8)), bytes.subarray(at)]);
  },
  crlfGame(bytes, { rng }) {
    const text = bytes.toString('latin1');
    let out: string;
    switch (rng.int(9)) {
      case 0:
        out = text.replace(/\r\n/g, '\n');
        break;
      case 1:
        out = text.replace(/\r\n/g, '\r');
        break;
      case 2:
        out = replaceOne(text, '\r\n', rng.pick(['\n', '\r', '\r\r\n', '\n\r', '\r\n\r\n']), rng);
        break;
      case 3:
        // Fold a line at a random point (§7.3.1): legal inside a value, not in a name or the start line.
        out = insertAt(text, rng.int(text.length + 1), rng.pick(['\r\n ', '\r\n\t', '\n ', '\r\n \r\n ']));
        break;
      case 4:
        // No empty line at the end of the header section.
        out = text.replace(/\r?\n\r?\n(?![\s\S]*\r?\n\r?\n)/, '\r\n');
        break;
      case 5:
        out = rng.pick(['\r\n', '\r\n\r\n', '\n', '\r\n\r\n\r\n\r\n']) + text;
        break;
      case 6:
        out = text + rng.pick(['\r\n', '\r\n\r\n', '\r', '\n\n\n']);
        break;
      case 7:
        // An empty line too early: the rest of the headers becomes the body.
        out = replaceOne(text, '\r\n', '\r\n\r\n', rng);
        break;
      default:
        out = text.replace(/\r?\n$/, '');
    }
    return Buffer.from(out, 'latin1');
  },
  duplicateRange(bytes, { rng }) {
    const a = rng.int(bytes.length + 1);
    const b = Math.min(bytes.length, a + rng.count(0.05, 400));
    const times = rng.count(0.3, 50);
    return Buffer.concat([bytes.subarray(0, b), ...Array.from({ length: times }, () => bytes.subarray(a, b)), bytes.subarray(b)]);
  },
  deleteRange(bytes, { rng }) {
    const a = rng.int(bytes.length + 1);
    const b = Math.min(bytes.length, a + rng.count(0.1, 200));
    return Buffer.concat([bytes.subarray(0, a), bytes.subarray(b)]);
  },
  highBytes(bytes, { rng }) {
    const at = rng.int(bytes.length + 1);
    const junk = rng.pick(['\u00ff', '\u00c0\u0080', '\u00ed\u00a0\u0080', '\u00ef\u00bb\u00bf', '\u00e2\u0080\u00ae', '\u0080'.repeat(100), '\u00f4\u0090\u0080\u0080']);
    return Buffer.concat([bytes.subarray(0, at), Buffer.from(junk, 'latin1'), bytes.subarray(at)]);
  },
  pureNoise(_bytes, { rng }) {
    return rng.bytes(rng.pick([0, 1, 2, 4, 16, 100, 1400, 9000]));
  },
};

function replaceOne(text: string, what: string, by: string, rng: Rng): string {
  const positions: number[] = [];
  for (let i = text.indexOf(what); i >= 0 && positions.length < 200; i = text.indexOf(what, i + 1)) positions.push(i);
  if (positions.length === 0) return text;
  const at = rng.pick(positions);
  return text.slice(0, at) + by + text.slice(at + what.length);
}

const SHAPE_NAMES = Object.keys(shapeOperators);
const BYTE_NAMES = Object.keys(byteOperators);

export interface Mutant {
  bytes: Buffer;
  /** The operators applied, in order, for a failure report. */
  operators: string[];
}

export interface MutatorOptions {
  /** The largest mutant (a UDP datagram cannot carry more than 65,507 octets). */
  maxSize?: number;
  /**
   * The share of mutants whose branches and Call-ID are made unique first (default 0.85): a server rightly takes a
   * repeated branch for a retransmission and answers it from the transaction, so mutants of one seed would mostly
   * meet the same transaction. The rest stay as they are and test exactly that.
   */
  freshIds?: number;
}

/** Mutates seed messages deterministically: the same seed number and calls give the same mutants. */
export class Mutator {
  readonly rng: Rng;
  private readonly shapes: Shape[];
  private readonly maxSize: number;
  private readonly freshIds: number;
  private serial = 0;

  constructor(
    seed: number,
    readonly seeds: readonly Buffer[],
    options: MutatorOptions = {},
  ) {
    this.rng = new Rng(seed);
    this.shapes = seeds.map(readShape);
    this.maxSize = options.maxSize ?? 65507;
    this.freshIds = options.freshIds ?? 0.85;
  }

  /** A mutant of a random seed (or of `seed` when given). */
  mutate(seed?: Buffer): Mutant {
    const rng = this.rng;
    const shape = cloneShape(seed ? readShape(seed) : rng.pick(this.shapes));
    const ctx: Context = { rng, lengthTouched: false, seeds: this.shapes };
    const operators: string[] = [];
    if (rng.chance(this.freshIds)) this.makeIdsUnique(shape);
    // Mostly grammar-level edits (they keep the message recognisable, so it gets past the first checks), then
    // sometimes octet-level damage on top.
    const shapeEdits = rng.chance(0.1) ? 0 : rng.count(0.45, 8);
    for (let i = 0; i < shapeEdits; i++) {
      const name = rng.pick(SHAPE_NAMES);
      operators.push(name);
      shapeOperators[name]!(shape, ctx);
    }
    if (!ctx.lengthTouched && rng.chance(0.85)) fixContentLength(shape);
    let bytes = writeShape(shape);
    const byteEdits = shapeEdits === 0 ? rng.count(0.5, 6) : rng.chance(0.3) ? rng.count(0.6, 4) : 0;
    for (let i = 0; i < byteEdits; i++) {
      const name = rng.pick(BYTE_NAMES);
      operators.push(name);
      bytes = byteOperators[name]!(bytes, ctx);
    }
    if (bytes.length > this.maxSize) bytes = bytes.subarray(0, this.maxSize);
    return { bytes, operators };
  }

  private makeIdsUnique(shape: Shape): void {
    const n = `${this.rng.seed.toString(36)}.${(++this.serial).toString(36)}`;
    for (const f of shape.fields) {
      const name = canonical(f);
      if (name === 'via') f.value = f.value.replace(/(branch=z9hG4bK)([^;,\s]*)/gi, `$1$2.${n}`);
      else if (name === 'call-id') f.value = `${n}.${f.value}`;
    }
  }

  /**
   * A byte stream of `messages` as a TCP peer might write it: pipelined, with keep-alive CRLFs between some, cut at
   * random offsets into the chunks to write (single octets, a few octets, whole messages, several at once).
   */
  streamChunks(messages: readonly Buffer[]): Buffer[] {
    const rng = this.rng;
    const parts: Buffer[] = [];
    for (const m of messages) {
      if (rng.chance(0.1)) parts.push(Buffer.from(rng.pick(['\r\n', '\r\n\r\n', '\n'])));
      parts.push(m);
    }
    const stream = Buffer.concat(parts);
    const chunks: Buffer[] = [];
    const style = rng.int(4);
    for (let pos = 0; pos < stream.length; ) {
      const size =
        style === 0
          ? stream.length // everything in one write
          : style === 1
            ? rng.range(1, 3) // a trickle
            : style === 2
              ? rng.range(1, 1500)
              : rng.pick([1, 2, 13, 100, 536, 1460, 4096, 65536]);
      chunks.push(stream.subarray(pos, pos + size));
      pos += size;
    }
    return chunks;
  }
}
