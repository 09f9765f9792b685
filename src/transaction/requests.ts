import { Headers, HeaderField, Params, SipRequest, Via, type SipResponse, type Uri } from '../message/index.js';
import { TransportError, type Destination, type MessageSender } from '../transport/types.js';
import { newBranch, newCallId, newTag } from '../util/ids.js';

/** §8.1.1.6: the value a UAC puts into requests it originates. */
const MAX_FORWARDS = '70';

/**
 * §8.1.1.7 / §18.1.1: puts our Via on top of a request about to be sent to `destination`: the transport token, the
 * advertised sent-by of the listener that will send it, a fresh branch with the magic cookie, and an empty `rport`
 * (RFC 3581) so that responses find their way back through a NAT. Throws TransportError('no-listener') when no
 * listener serves that transport.
 */
export function addVia(request: SipRequest, sender: MessageSender, destination: Destination): Via {
  const listener = sender.listenerFor(destination);
  if (!listener) throw new TransportError('no-listener', `no ${destination.transport} listener to send from`, destination);
  const [host, port] = splitHostPort(sender.viaSentBy?.(destination, listener) ?? listener.advertised);
  const via = new Via(destination.transport.toUpperCase(), host, port, new Params([['branch', newBranch()], ['rport', null]]));
  request.headers.prepend('via', via.toString());
  return via;
}

function splitHostPort(advertised: string): [string, number | undefined] {
  const colon = advertised.lastIndexOf(':');
  // A colon inside an IPv6 reference is not a port separator.
  if (colon < 0 || advertised.lastIndexOf(']') > colon) return [advertised, undefined];
  return [advertised.slice(0, colon), Number(advertised.slice(colon + 1))];
}

/**
 * §17.1.1.3: the ACK for a non-2xx final response. Same Request-URI, Call-ID, From and CSeq number as the INVITE, CSeq
 * method ACK, exactly the INVITE's top Via (so it matches the server transaction), To from the response (its tag
 * identifies the UAS that answered), and the INVITE's Route header fields.
 */
export function buildNon2xxAck(invite: SipRequest, response: SipResponse): SipRequest {
  const to = response.headers.fields.find((f) => f.name === 'to');
  return hopByHopRequest(invite, 'ACK', to);
}

/**
 * §9.1: a CANCEL for `request`. Request-URI, Call-ID, To, From and CSeq number identical to the request, CSeq method
 * CANCEL, a single Via equal to the request's top Via (the same branch, so the UAS can find what it cancels, §9.2),
 * and the same Route header fields so that it takes the same path.
 */
export function buildCancel(request: SipRequest): SipRequest {
  return hopByHopRequest(request, 'CANCEL', request.headers.fields.find((f) => f.name === 'to'));
}

function hopByHopRequest(original: SipRequest, method: 'ACK' | 'CANCEL', to: HeaderField | undefined): SipRequest {
  const fields = [HeaderField.of('via', original.via.toString()), HeaderField.of('max-forwards', MAX_FORWARDS)];
  const routes: HeaderField[] = [];
  for (const f of original.headers.fields) {
    // Copied fields stay slices of the original bytes, like a response built by createResponse.
    if (f.name === 'from' || f.name === 'call-id') fields.push(f);
    else if (f.name === 'route') routes.push(f);
  }
  if (to) fields.push(to);
  fields.push(HeaderField.of('cseq', `${original.cseq.seq} ${method}`), ...routes);
  return new SipRequest(method, original.uri.clone(), new Headers(fields));
}

/** What §8.1.1 needs of a request outside a dialog beyond its method and Request-URI. */
export interface NewRequestOptions {
  /** The From value without tag (a name-addr or URI: `"Alice" <sip:alice@example.com>`); a fresh tag is added (§8.1.1.3). */
  from: string;
  /** The To value (§8.1.1.2): by default the Request-URI; a request outside a dialog has no To tag. */
  to?: string;
  /** §8.1.1.4: a fresh one unless given (a REGISTER refresh and a retry after 401/407 keep theirs, §10.2.4, §22.2). */
  callId?: string;
  /** §8.1.1.5: unless given, 1 (any value below 2^31 will do; a refresh must count up from its previous one). */
  cseq?: number;
  /** §8.1.1.6: 70 unless given. */
  maxForwards?: number;
  /** §8.1.1.8: where we want requests in a dialog this one makes (required for INVITE by §8.1.1.8). */
  contact?: string;
  headers?: Array<[string, string]>;
  body?: Buffer;
  contentType?: string;
}

/**
 * §8.1.1: a request outside any dialog with the header fields every UAC request carries (To, From with a fresh tag,
 * Call-ID, CSeq, Max-Forwards; Contact when given), but no Via: `addVia` puts ours on top when the transaction layer
 * sends it. Throws on an INVITE without a Contact (§8.1.1.8).
 */
export function newRequest(method: string, uri: Uri, options: NewRequestOptions): SipRequest {
  if (method === 'INVITE' && options.contact === undefined) throw new Error('an INVITE needs a Contact (§8.1.1.8)');
  const headers = new Headers()
    .append('Max-Forwards', String(options.maxForwards ?? Number(MAX_FORWARDS)))
    .append('To', options.to ?? `<${uri.toString()}>`)
    .append('From', `${options.from};tag=${newTag()}`)
    .append('Call-ID', options.callId ?? newCallId())
    .append('CSeq', `${options.cseq ?? 1} ${method}`);
  if (options.contact !== undefined) headers.append('Contact', options.contact);
  for (const [name, value] of options.headers ?? []) headers.append(name, value);
  const body = options.body ?? Buffer.alloc(0);
  if (body.length > 0 && options.contentType !== undefined) headers.append('Content-Type', options.contentType);
  return new SipRequest(method, uri.clone(), headers, body);
}
