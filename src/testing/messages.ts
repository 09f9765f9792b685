import { parseMessage, type AnyMessage, type SipRequest, type SipResponse } from '../message/index.js';

/** Builds wire bytes from readable lines: joins with CRLF and fixes Content-Length to the body. */
export function wire(lines: string[], body = ''): Buffer {
  const head = lines.filter((l) => !/^(content-length|l)\s*:/i.test(l));
  head.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return Buffer.from(head.join('\r\n') + '\r\n\r\n' + body);
}

/** Parses a message written with bare LFs (as in a test source); throws with the parser's reason if it does not parse. */
export function parseText<T extends AnyMessage = AnyMessage>(text: string): T {
  return parseBytes<T>(Buffer.from(text.replace(/\r?\n/g, '\r\n')));
}

/** Parses wire bytes; throws with the parser's reason if they do not parse. */
export function parseBytes<T extends AnyMessage = AnyMessage>(bytes: Buffer): T {
  const r = parseMessage(bytes);
  if (!r.ok) throw new Error(`not a valid SIP message: ${r.error.toString()}`);
  return r.message as T;
}

export interface ScriptedRequestOptions {
  /** A Via to put on it (an outgoing request has none by default: addVia puts ours on top). */
  via?: string;
  /** The To tag of an in-dialog request. */
  toTag?: string;
  cseq?: number;
  route?: string;
}

/**
 * A request from alice@example.org to bob@example.com as a UAC core builds it, before the transaction layer sends
 * it: no Via unless `options.via` gives one.
 */
export function outgoingRequest(method: string, options: ScriptedRequestOptions = {}): SipRequest {
  const to = `<sip:bob@example.com>${options.toTag ? `;tag=${options.toTag}` : ''}`;
  // The parser insists on a Via; a request the UAC core builds has none until addVia.
  const request = parseText<SipRequest>(
    [
      `${method} sip:bob@example.com SIP/2.0`,
      `Via: ${options.via ?? 'SIP/2.0/UDP placeholder.invalid'}`,
      'Max-Forwards: 70',
      ...(options.route ? [`Route: ${options.route}`] : []),
      `From: "Alice" <sip:alice@example.org>;tag=a1`,
      `To: ${to}`,
      'Call-ID: c1@example.org',
      `CSeq: ${options.cseq ?? 1} ${method}`,
      'Contact: <sip:alice@192.0.2.10>',
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
  if (!options.via) request.headers.remove('via');
  return request;
}

/**
 * The same request as received from a peer at 192.0.2.1: its Via (the one the transport has already stamped)
 * names `transport` (default UDP) and `branch`.
 */
export function incomingRequest(method: string, options: ScriptedRequestOptions & { branch?: string; transport?: string } = {}): SipRequest {
  const via = options.via ?? `SIP/2.0/${options.transport ?? 'UDP'} 192.0.2.1:5060;branch=${options.branch ?? 'z9hG4bKclient1'}`;
  return parseText<SipRequest>(
    [
      `${method} sip:bob@example.com SIP/2.0`,
      `Via: ${via}`,
      'Max-Forwards: 70',
      `From: <sip:alice@example.org>;tag=a1`,
      `To: <sip:bob@example.com>${options.toTag ? `;tag=${options.toTag}` : ''}`,
      'Call-ID: c1@example.org',
      `CSeq: ${options.cseq ?? 1} ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

/**
 * A response to `request` as the peer sends it back: its Vias, From, Call-ID and CSeq copied, the To tagged with
 * `toTag` unless the request had one or this is a 100.
 */
export function responseTo(request: SipRequest, status: number, toTag = 'b1'): SipResponse {
  const via = request.headers.getAll('via').map((v) => `Via: ${v}`);
  const to = request.toTag || status === 100 ? request.headers.get('to')! : `${request.headers.get('to')!};tag=${toTag}`;
  return parseText<SipResponse>(
    [
      `SIP/2.0 ${status} Whatever`,
      ...via,
      `From: ${request.headers.get('from')!}`,
      `To: ${to}`,
      `Call-ID: ${request.callId}`,
      `CSeq: ${request.headers.get('cseq')!}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}
