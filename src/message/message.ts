import { Headers } from './headers.js';
import { parseNameAddr, parseNameAddrList, type NameAddr } from './name-addr.js';
import { parseViaList, type Via } from './via.js';
import { parseCSeq, type CSeq } from './cseq.js';
import type { Uri } from './uri.js';

/** Where a message came from; filled in by the transport layer, plain data here so every layer can read it. */
export interface MessageSource {
  /** Lower-case transport name: udp, tcp, tls, ws, wss. */
  transport: string;
  address: string;
  port: number;
  localAddress: string;
  localPort: number;
  /** Identifies the connection (stream transports) or the listening socket (UDP) it arrived on. */
  flowId: string;
  /** Monotonic receive time (ms) from the transport's clock. */
  receivedAt: number;
}

interface CachedView<T> {
  version: number;
  value: T;
}

/**
 * Common part of requests and responses. Hot headers are parsed eagerly by the parser and cached here; every other
 * typed view is parsed on first access and cached until the header list changes (tracked by `headers.version`).
 */
export abstract class SipMessage {
  source: MessageSource | undefined;
  private views = new Map<string, CachedView<unknown>>();

  constructor(
    public headers: Headers,
    public body: Buffer,
  ) {}

  abstract readonly isRequest: boolean;

  protected view<T>(key: string, compute: () => T): T {
    const cached = this.views.get(key);
    if (cached !== undefined && cached.version === this.headers.version) return cached.value as T;
    const value = compute();
    this.views.set(key, { version: this.headers.version, value });
    return value;
  }

  /** All Via values, top first. Throws HeaderSyntaxError if one is malformed (the parser has validated the top one). */
  get vias(): Via[] {
    return this.view('vias', () => {
      const out: Via[] = [];
      for (const v of this.headers.getAll('via')) out.push(...parseViaList(v));
      return out;
    });
  }

  /** The top Via. The parser guarantees it for accepted messages. */
  get via(): Via {
    return this.view('via', () => {
      const first = this.headers.get('via');
      if (first === undefined) throw new Error('message has no Via');
      return parseViaList(first)[0]!;
    });
  }

  get callId(): string {
    return this.headers.get('call-id') ?? '';
  }

  get cseq(): CSeq {
    return this.view('cseq', () => parseCSeq(this.headers.get('cseq') ?? ''));
  }

  get from(): NameAddr {
    return this.view('from', () => parseNameAddr(this.headers.get('from') ?? '', 'From'));
  }

  get to(): NameAddr {
    return this.view('to', () => parseNameAddr(this.headers.get('to') ?? '', 'To'));
  }

  get fromTag(): string | undefined {
    return this.from.tag;
  }

  get toTag(): string | undefined {
    return this.to.tag;
  }

  /** Undefined when absent (RFC 2543 peers, RFC 4475 inv2543). */
  get maxForwards(): number | undefined {
    const v = this.headers.get('max-forwards');
    return v === undefined ? undefined : Number(v);
  }

  get contacts(): NameAddr[] {
    return this.view('contacts', () => this.nameAddrs('contact', 'Contact'));
  }

  get routes(): NameAddr[] {
    return this.view('routes', () => this.nameAddrs('route', 'Route'));
  }

  get recordRoutes(): NameAddr[] {
    return this.view('record-routes', () => this.nameAddrs('record-route', 'Record-Route'));
  }

  get contentType(): string | undefined {
    return this.headers.get('content-type');
  }

  private nameAddrs(name: string, what: string): NameAddr[] {
    const out: NameAddr[] = [];
    for (const v of this.headers.getAll(name)) out.push(...parseNameAddrList(v, what));
    return out;
  }

  /** Pre-seeds a typed view (used by the parser, which has already parsed the hot headers). */
  seedView(key: string, value: unknown): void {
    this.views.set(key, { version: this.headers.version, value });
  }
}

export class SipRequest extends SipMessage {
  readonly isRequest = true as const;

  constructor(
    public method: string,
    public uri: Uri,
    headers: Headers = new Headers(),
    body: Buffer = EMPTY,
    public version = 'SIP/2.0',
  ) {
    super(headers, body);
  }
}

export class SipResponse extends SipMessage {
  readonly isRequest = false as const;

  constructor(
    public status: number,
    public reason: string,
    headers: Headers = new Headers(),
    body: Buffer = EMPTY,
    public version = 'SIP/2.0',
  ) {
    super(headers, body);
  }
}

export type AnyMessage = SipRequest | SipResponse;

export const EMPTY: Buffer = Buffer.alloc(0);
