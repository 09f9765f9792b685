import {
  Headers,
  HeaderField,
  NameAddr,
  SipRequest,
  parseNameAddr,
  parseUri,
  type SipResponse,
  type Uri,
} from '../message/index.js';

export type DialogState = 'Early' | 'Confirmed' | 'Terminated';

/**
 * Requests whose Contact replaces the dialog's remote target (§12.2, RFC 3311 §5 UPDATE, RFC 6665 §4.1.2.1/§4.2.1.1
 * SUBSCRIBE and NOTIFY, RFC 3515 via RFC 6665 REFER).
 */
export const TARGET_REFRESH_METHODS: ReadonlySet<string> = new Set(['INVITE', 'UPDATE', 'SUBSCRIBE', 'NOTIFY', 'REFER']);

/** Why an in-dialog request is refused (§12.2.2): the status to answer it with. */
export interface DialogRefusal {
  status: 500;
  reason: string;
}

/** §12: Call-ID, local tag and remote tag, as one string for an index. */
export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\n${localTag}\n${remoteTag}`;
}

/** A dialog as plain data, to be kept in a store and made again after a restart (a subscription outlives its process). */
export interface DialogSnapshot {
  callId: string;
  localTag: string;
  remoteTag: string;
  local: string;
  remote: string;
  remoteTarget: string;
  routeSet: string[];
  localSeq?: number;
  remoteSeq?: number;
  secure: boolean;
  state: DialogState;
}

/**
 * A dialog of RFC 3261 §12, from either side: its identifier, sequence numbers, URIs, remote target and route set,
 * and the state (early on a provisional response with a To tag, confirmed on a 2xx, terminated). It builds the
 * requests sent within it (§12.2.1.1) and checks the ones received (§12.2.2); sessions and subscriptions are its
 * usages (RFC 5057) and live above it. No timers: everything here is a reaction to a message.
 */
export class Dialog {
  private current: DialogState;
  /** The CSeq number of our last request in the dialog (§12.1: from the request that made it, for a UAC). */
  private localSeqNumber: number | undefined;
  private remoteSeqNumber: number | undefined;
  private target: Uri;
  private routes: NameAddr[];

  private constructor(
    readonly callId: string,
    readonly localTag: string,
    readonly remoteTag: string,
    /** Our From (as UAC) or To (as UAS), with our tag. */
    readonly local: NameAddr,
    /** The peer's, with its tag. */
    readonly remote: NameAddr,
    remoteTarget: Uri,
    routeSet: NameAddr[],
    localSeq: number | undefined,
    remoteSeq: number | undefined,
    /** §12.1.1/§12.1.2: a sips Request-URI (or a sips Contact/Record-Route over TLS) makes every request sips. */
    readonly secure: boolean,
    state: DialogState,
  ) {
    this.target = remoteTarget;
    this.routes = routeSet;
    this.localSeqNumber = localSeq;
    this.remoteSeqNumber = remoteSeq;
    this.current = state;
  }

  /**
   * §12.1.2: the UAC's dialog made by a response to its dialog-creating request: a 2xx, or a 101-199 with a To tag
   * (an early dialog). Route set: the response's Record-Route in reverse; remote target: its Contact.
   * Throws when the response cannot make a dialog (no To tag, no Contact, a status outside 101-299).
   */
  static asUac(request: SipRequest, response: SipResponse): Dialog {
    const status = response.status;
    if (status <= 100 || status >= 300) throw new Error(`a ${status} response makes no dialog`);
    const remoteTag = response.toTag;
    const localTag = request.fromTag;
    if (remoteTag === undefined || localTag === undefined) throw new Error('a dialog needs a From tag and a To tag');
    const contact = response.contacts[0];
    if (contact === undefined) throw new Error(`the ${status} response has no Contact: no remote target for a dialog`);
    return new Dialog(
      request.callId,
      localTag,
      remoteTag,
      request.from.clone(),
      response.to.clone(),
      contact.uri.clone(),
      response.recordRoutes.map((r) => r.clone()).reverse(),
      request.cseq.seq,
      undefined,
      isSecure(request.uri),
      status < 200 ? 'Early' : 'Confirmed',
    );
  }

  /**
   * §12.1.1: the UAS's dialog for a dialog-creating request it answers with a 101-299 carrying `localTag` in the To.
   * Route set: the request's Record-Route in order; remote target: its Contact. `early`: the answer is provisional.
   */
  static asUas(request: SipRequest, localTag: string, early = false): Dialog {
    const remoteTag = request.fromTag;
    if (remoteTag === undefined) throw new Error('a request without a From tag makes no dialog (RFC 2543 peers are not supported)');
    const contact = request.contacts[0];
    if (contact === undefined) throw new Error(`the ${request.method} has no Contact: no remote target for a dialog`);
    const local = request.to.clone();
    local.tag = localTag;
    return new Dialog(
      request.callId,
      localTag,
      remoteTag,
      local,
      request.from.clone(),
      contact.uri.clone(),
      request.recordRoutes.map((r) => r.clone()),
      undefined,
      request.cseq.seq,
      isSecure(request.uri),
      early ? 'Early' : 'Confirmed',
    );
  }

  /**
   * The dialog made again from a snapshot. `localSeqAdvance`: how far our CSeq jumps, because requests sent after the
   * snapshot was taken (NOTIFYs are not written to a store one by one) must never be numbered again (§12.2.1.1).
   * Throws on a snapshot whose URIs do not parse.
   */
  static restore(s: DialogSnapshot, localSeqAdvance = 0): Dialog {
    return new Dialog(
      s.callId,
      s.localTag,
      s.remoteTag,
      parseNameAddr(s.local, 'local'),
      parseNameAddr(s.remote, 'remote'),
      parseUri(s.remoteTarget),
      s.routeSet.map((r) => parseNameAddr(r, 'route')),
      // No number kept (the snapshot was taken before our first request): that one was at most MAX_INITIAL_SEQ.
      s.localSeq === undefined && localSeqAdvance === 0 ? undefined : Math.min((s.localSeq ?? MAX_INITIAL_SEQ) + localSeqAdvance, 2 ** 31 - 2),
      s.remoteSeq,
      s.secure,
      s.state,
    );
  }

  snapshot(): DialogSnapshot {
    return {
      callId: this.callId,
      localTag: this.localTag,
      remoteTag: this.remoteTag,
      local: this.local.toString(),
      remote: this.remote.toString(),
      remoteTarget: this.target.toString(),
      routeSet: this.routes.map((r) => r.toString()),
      localSeq: this.localSeqNumber,
      remoteSeq: this.remoteSeqNumber,
      secure: this.secure,
      state: this.current,
    };
  }

  /**
   * RFC 6665 §4.1.2.4: the subscriber's dialog made by a NOTIFY to its `subscribe` — one per notifier when the
   * SUBSCRIBE forked, or one whose NOTIFY came before the 2xx. The NOTIFY is a request received: route set from its
   * Record-Route in order, remote target from its Contact; our CSeq goes on from the SUBSCRIBE's.
   */
  static asSubscriber(subscribe: SipRequest, notify: SipRequest): Dialog {
    const localTag = subscribe.fromTag;
    const remoteTag = notify.fromTag;
    if (localTag === undefined || remoteTag === undefined) throw new Error('a dialog needs a From tag and a To tag');
    const contact = notify.contacts[0];
    if (contact === undefined) throw new Error('the NOTIFY has no Contact: no remote target for a dialog');
    return new Dialog(
      subscribe.callId,
      localTag,
      remoteTag,
      subscribe.from.clone(),
      notify.from.clone(),
      contact.uri.clone(),
      notify.recordRoutes.map((r) => r.clone()),
      subscribe.cseq.seq,
      notify.cseq.seq,
      isSecure(subscribe.uri),
      'Confirmed',
    );
  }

  get key(): string {
    return dialogKey(this.callId, this.localTag, this.remoteTag);
  }

  get state(): DialogState {
    return this.current;
  }

  get remoteTarget(): Uri {
    return this.target;
  }

  get routeSet(): readonly NameAddr[] {
    return this.routes;
  }

  get localSeq(): number | undefined {
    return this.localSeqNumber;
  }

  get remoteSeq(): number | undefined {
    return this.remoteSeqNumber;
  }

  /**
   * §12.2.1.1: a request within the dialog, without Via (the transaction layer's addVia puts ours on top). CSeq is the
   * next local number, except for ACK and CANCEL, which take the number of the request they refer to (`cseq`).
   * Request-URI and Route from the remote target and the route set: loose routing when the first route has `lr`,
   * otherwise the strict-routing form (the first route as Request-URI, the remote target as the last Route).
   */
  createRequest(method: string, options: { cseq?: number; headers?: Array<[string, string]>; body?: Buffer; contentType?: string } = {}): SipRequest {
    if (this.current === 'Terminated') throw new Error(`dialog ${this.callId} is terminated: no ${method} within it`);
    let seq: number;
    if (method === 'ACK' || method === 'CANCEL') {
      if (options.cseq === undefined) throw new Error(`${method} takes the CSeq number of the request it refers to`);
      seq = options.cseq;
    } else {
      // §12.2.1.1: one more than the last; a dialog made as UAS starts from a number of our choosing.
      seq = this.localSeqNumber === undefined ? initialSeq() : this.localSeqNumber + 1;
      this.localSeqNumber = seq;
    }
    const fields: HeaderField[] = [HeaderField.of('max-forwards', '70'), HeaderField.of('to', this.remote.toString()), HeaderField.of('from', this.local.toString())];
    fields.push(HeaderField.of('call-id', this.callId), HeaderField.of('cseq', `${seq} ${method}`));
    let requestUri: Uri;
    const first = this.routes[0];
    if (first === undefined) requestUri = this.target.clone();
    else if (first.uri.type === 'sip' && first.uri.lr) {
      requestUri = this.target.clone();
      for (const r of this.routes) fields.push(HeaderField.of('route', r.toString()));
    } else {
      // §12.2.1.1 strict routing: parameters not allowed in a Request-URI are stripped from the first route's URI.
      requestUri = strictRequestUri(first.uri);
      for (const r of this.routes.slice(1)) fields.push(HeaderField.of('route', r.toString()));
      fields.push(HeaderField.of('route', `<${this.target.toString()}>`));
    }
    for (const [name, value] of options.headers ?? []) fields.push(HeaderField.of(name, value));
    const body = options.body ?? Buffer.alloc(0);
    if (body.length > 0 && options.contentType !== undefined) fields.push(HeaderField.of('content-type', options.contentType));
    return new SipRequest(method, requestUri, new Headers(fields), body);
  }

  /**
   * §12.2.2: a request received within the dialog. Out of order (a CSeq lower than the last one, not ACK or CANCEL):
   * refused with 500, unless the caller takes it anyway (`outOfOrder: 'accept'`, the remote number left as it is). Otherwise the remote sequence number moves on, and a target refresh request's Contact becomes
   * the remote target. Returns the refusal, or undefined when the request may be processed.
   */
  receiveRequest(request: SipRequest, options: { outOfOrder?: 'refuse' | 'accept' } = {}): DialogRefusal | undefined {
    const method = request.method;
    if (method !== 'ACK' && method !== 'CANCEL') {
      const seq = request.cseq.seq;
      if (this.remoteSeqNumber !== undefined && seq < this.remoteSeqNumber) {
        if (options.outOfOrder !== 'accept') return { status: 500, reason: `Server Internal Error - CSeq ${seq} out of order (last ${this.remoteSeqNumber})` };
      } else this.remoteSeqNumber = seq;
    }
    if (TARGET_REFRESH_METHODS.has(method)) {
      const contact = request.contacts[0];
      if (contact !== undefined) this.target = contact.uri.clone();
    }
    if (method === 'BYE') this.current = 'Terminated';
    return undefined;
  }

  /**
   * §12.2.1.2 and §13.2.2.4: a response to a request we sent within the dialog (or to the request that made it). A
   * 2xx confirms an early dialog and recomputes its route set from the 2xx; a 2xx to a target refresh request
   * moves the remote target to its Contact; 481 and 408 end the dialog, as does a final response to our BYE.
   */
  receiveResponse(request: SipRequest, response: SipResponse): void {
    const status = response.status;
    if (this.current === 'Terminated') return;
    if (status === 481 || status === 408) {
      this.current = 'Terminated';
      return;
    }
    if (request.method === 'BYE' && status >= 200) {
      this.current = 'Terminated';
      return;
    }
    if (status < 200 || status >= 300) return;
    if (this.current === 'Early' && request.method === 'INVITE') {
      this.current = 'Confirmed';
      this.routes = response.recordRoutes.map((r) => r.clone()).reverse();
    }
    if (TARGET_REFRESH_METHODS.has(request.method)) {
      const contact = response.contacts[0];
      if (contact !== undefined) this.target = contact.uri.clone();
    }
  }

  /** An early dialog of ours as UAS becomes confirmed when we send the 2xx (§12.1.1). */
  confirm(): void {
    if (this.current === 'Early') this.current = 'Confirmed';
  }

  /** Ends the dialog without a message (a non-2xx final answer to the request that made an early dialog, shutdown). */
  terminate(): void {
    this.current = 'Terminated';
  }
}

/** §8.1.1.5: "The sequence number value MUST be expressible as a 32-bit unsigned integer and MUST be less than 2**31". */
/** The highest CSeq number a dialog made as UAS starts from (§8.1.1.5: below 2**31, room left to count up). */
export const MAX_INITIAL_SEQ = 0x4000_0000;

function initialSeq(): number {
  return 1 + Math.floor(Math.random() * (MAX_INITIAL_SEQ - 1));
}

function isSecure(uri: Uri): boolean {
  return uri.type === 'sip' && uri.scheme === 'sips';
}

/** §12.2.1.1 / §19.1.1 table: a strict router's URI as a Request-URI, without what a Request-URI may not carry. */
function strictRequestUri(uri: Uri): Uri {
  const copy = uri.clone();
  if (copy.type === 'sip') {
    copy.params.delete('method');
    copy.headers = [];
  }
  return copy;
}
