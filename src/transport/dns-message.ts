import { isIP } from 'node:net';

/**
 * The DNS wire format (RFC 1035 §4), reduced to what SIP server location needs: A, AAAA (RFC 3596), CNAME, SOA (for
 * negative caching, RFC 2308), SRV (RFC 2782) and NAPTR (RFC 3403). Other record types are skipped on decode. Names are
 * never compressed on encode (RFC 2782 and RFC 3403 forbid it for SRV targets and NAPTR replacements anyway); decoding
 * follows compression pointers.
 */

export const RR_TYPES = { A: 1, CNAME: 5, SOA: 6, AAAA: 28, SRV: 33, NAPTR: 35 } as const;
export type RRType = keyof typeof RR_TYPES;

const TYPE_NAMES = new Map<number, RRType>(Object.entries(RR_TYPES).map(([k, v]) => [v, k as RRType]));
const CLASS_IN = 1;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

interface RecordBase {
  name: string;
  ttl: number;
}
export type DnsRecord = RecordBase &
  (
    | { type: 'A' | 'AAAA'; address: string }
    | { type: 'CNAME'; target: string }
    | { type: 'SOA'; mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number }
    | { type: 'SRV'; priority: number; weight: number; port: number; target: string }
    | { type: 'NAPTR'; order: number; preference: number; flags: string; services: string; regexp: string; replacement: string }
  );
export type RecordOf<T extends RRType> = Extract<DnsRecord, { type: T }>;

export interface DnsQuestion {
  name: string;
  type: RRType;
}

export interface DnsMessage {
  id: number;
  /** QR: a response. */
  response: boolean;
  /** AA, TC, RD, RA (RFC 1035 §4.1.1). */
  authoritative?: boolean;
  truncated?: boolean;
  recursionDesired?: boolean;
  recursionAvailable?: boolean;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

export class DnsFormatError extends Error {
  override name = 'DnsFormatError';
}

/** Lower case without the trailing root dot: the form names are compared and cached in (RFC 4343: case-insensitive). */
export function canonicalName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Whether `name` can go on the wire: labels of 1-63 octets, at most 255 octets in all (RFC 1035 §2.3.4). */
export function isEncodableName(name: string): boolean {
  const n = canonicalName(name);
  if (n === '') return true;
  if (n.length > 253) return false;
  return n.split('.').every((label) => label.length > 0 && label.length <= 63 && /^[\x21-\x7e]+$/.test(label));
}

// ---------------------------------------------------------------------------------------------------- encoding

class Writer {
  private buf = Buffer.alloc(512);
  length = 0;

  private room(n: number): void {
    if (this.length + n > 65535) throw new DnsFormatError('message exceeds 65535 octets');
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }
  u8(v: number): void {
    this.room(1);
    this.buf.writeUInt8(v, this.length++);
  }
  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /** Back-patches a 16-bit value (RDLENGTH once the RDATA is written). */
  patch16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, at);
  }
  name(name: string): void {
    if (!isEncodableName(name)) throw new DnsFormatError(`'${name}' is not a valid domain name`);
    const n = canonicalName(name);
    if (n !== '') for (const label of n.split('.')) this.characterString(label);
    this.u8(0);
  }
  /** <character-string>: a length octet and up to 255 octets (RFC 1035 §3.3). */
  characterString(s: string): void {
    const b = Buffer.from(s, 'latin1');
    if (b.length > 255) throw new DnsFormatError('character-string longer than 255 octets');
    this.u8(b.length);
    this.bytes(b);
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

function ipBytes(address: string, family: 4 | 6): Buffer {
  if (isIP(address) !== family) throw new DnsFormatError(`'${address}' is not an IPv${family} address`);
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  let text = address;
  if (text.includes('.')) {
    // An embedded IPv4 tail (::ffff:192.0.2.1) is the last two groups.
    const cut = text.lastIndexOf(':') + 1;
    const v4 = ipBytes(text.slice(cut), 4);
    text = text.slice(0, cut) + v4.readUInt16BE(0).toString(16) + ':' + v4.readUInt16BE(2).toString(16);
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function writeRecord(w: Writer, r: DnsRecord): void {
  w.name(r.name);
  w.u16(RR_TYPES[r.type]);
  w.u16(CLASS_IN);
  w.u32(r.ttl);
  const lengthAt = w.length;
  w.u16(0);
  switch (r.type) {
    case 'A':
      w.bytes(ipBytes(r.address, 4));
      break;
    case 'AAAA':
      w.bytes(ipBytes(r.address, 6));
      break;
    case 'CNAME':
      w.name(r.target);
      break;
    case 'SOA':
      w.name(r.mname);
      w.name(r.rname);
      for (const v of [r.serial, r.refresh, r.retry, r.expire, r.minimum]) w.u32(v);
      break;
    case 'SRV':
      w.u16(r.priority);
      w.u16(r.weight);
      w.u16(r.port);
      w.name(r.target);
      break;
    case 'NAPTR':
      w.u16(r.order);
      w.u16(r.preference);
      w.characterString(r.flags);
      w.characterString(r.services);
      w.characterString(r.regexp);
      w.name(r.replacement);
      break;
  }
  w.patch16(lengthAt, w.length - lengthAt - 2);
}

export function encodeMessage(m: DnsMessage): Buffer {
  const w = new Writer();
  w.u16(m.id);
  w.u16(
    (m.response ? 0x8000 : 0) |
      (m.authoritative ? 0x0400 : 0) |
      (m.truncated ? 0x0200 : 0) |
      (m.recursionDesired ? 0x0100 : 0) |
      (m.recursionAvailable ? 0x0080 : 0) |
      (m.rcode & 0xf),
  );
  for (const n of [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length]) w.u16(n);
  for (const q of m.questions) {
    w.name(q.name);
    w.u16(RR_TYPES[q.type]);
    w.u16(CLASS_IN);
  }
  for (const r of [...m.answers, ...m.authorities, ...m.additionals]) writeRecord(w, r);
  return w.done();
}

// ---------------------------------------------------------------------------------------------------- decoding

/** At most this many compression pointers per name: more means a loop or a hostile message. */
const MAX_POINTERS = 32;

class Reader {
  offset = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number, at = this.offset): void {
    if (at + n > this.buf.length) throw new DnsFormatError('message truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.offset++);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  characterString(): string {
    return this.bytes(this.u8()).toString('latin1');
  }
  /** A domain name, following compression pointers (RFC 1035 §4.1.4); pointers must point backwards. */
  name(): string {
    const labels: string[] = [];
    let pos = this.offset;
    let resumeAt: number | undefined;
    let pointers = 0;
    for (;;) {
      this.need(1, pos);
      const len = this.buf[pos]!;
      if ((len & 0xc0) === 0xc0) {
        this.need(2, pos);
        const target = ((len & 0x3f) << 8) | this.buf[pos + 1]!;
        if (target >= pos || ++pointers > MAX_POINTERS) throw new DnsFormatError('bad compression pointer');
        resumeAt ??= pos + 2;
        pos = target;
        continue;
      }
      if (len & 0xc0) throw new DnsFormatError('unknown label type');
      if (len === 0) {
        this.offset = resumeAt ?? pos + 1;
        return labels.join('.');
      }
      this.need(1 + len, pos);
      labels.push(this.buf.toString('latin1', pos + 1, pos + 1 + len));
      pos += 1 + len;
    }
  }
}

function formatIPv6(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // RFC 5952 §4.2: the longest run (of two or more) of zero groups becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return hex.slice(0, best).join(':') + '::' + hex.slice(best + bestLen).join(':');
}

function readRecord(r: Reader): DnsRecord | undefined {
  const name = r.name();
  const typeCode = r.u16();
  const klass = r.u16();
  const ttlRaw = r.u32();
  const rdlength = r.u16();
  const end = r.offset + rdlength;
  const type = TYPE_NAMES.get(typeCode);
  if (type === undefined || klass !== CLASS_IN) {
    r.bytes(rdlength);
    return undefined;
  }
  // RFC 2181 §8: a TTL with the top bit set is read as zero.
  const ttl = ttlRaw > 0x7fffffff ? 0 : ttlRaw;
  let record: DnsRecord;
  switch (type) {
    case 'A':
      if (rdlength !== 4) throw new DnsFormatError('A record with RDLENGTH ' + rdlength);
      record = { name, ttl, type, address: [...r.bytes(4)].join('.') };
      break;
    case 'AAAA':
      if (rdlength !== 16) throw new DnsFormatError('AAAA record with RDLENGTH ' + rdlength);
      record = { name, ttl, type, address: formatIPv6(r.bytes(16)) };
      break;
    case 'CNAME':
      record = { name, ttl, type, target: r.name() };
      break;
    case 'SOA':
      record = { name, ttl, type, mname: r.name(), rname: r.name(), serial: r.u32(), refresh: r.u32(), retry: r.u32(), expire: r.u32(), minimum: r.u32() };
      break;
    case 'SRV':
      record = { name, ttl, type, priority: r.u16(), weight: r.u16(), port: r.u16(), target: r.name() };
      break;
    case 'NAPTR':
      record = {
        name,
        ttl,
        type,
        order: r.u16(),
        preference: r.u16(),
        flags: r.characterString(),
        services: r.characterString(),
        regexp: r.characterString(),
        replacement: r.name(),
      };
      break;
  }
  if (r.offset !== end) throw new DnsFormatError(`${type} record RDATA does not match its RDLENGTH`);
  return record;
}

/** Decodes a DNS message; throws DnsFormatError on anything malformed. */
export function decodeMessage(buf: Buffer): DnsMessage {
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  const counts = [r.u16(), r.u16(), r.u16(), r.u16()] as const;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const name = r.name();
    const type = TYPE_NAMES.get(r.u16());
    r.u16();
    if (type) questions.push({ name, type });
  }
  const section = (n: number): DnsRecord[] => {
    const out: DnsRecord[] = [];
    for (let i = 0; i < n; i++) {
      const rec = readRecord(r);
      if (rec) out.push(rec);
    }
    return out;
  };
  return {
    id,
    response: (flags & 0x8000) !== 0,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    questions,
    answers: section(counts[1]),
    authorities: section(counts[2]),
    additionals: section(counts[3]),
  };
}
