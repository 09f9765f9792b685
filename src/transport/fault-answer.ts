import { createResponse, parseMessage, reasonPhrase, type AnyMessage, type MessageLimits, type MessageSource, type ParseError, type SipResponse } from '../message/index.js';
import { responseDestination } from './response-route.js';
import type { Destination, TransportName } from './types.js';
import { stampVia } from './via-stamp.js';

const MAX_REASON_LENGTH = 100;

/**
 * The stateless answer to a request that could be read far enough despite its fault: the status the fault calls for
 * and a reason phrase naming it (like Kamailio's sanity module), so that the sender learns what is wrong, sent where
 * §18.2.2 says or, without a usable top Via, where the packet came from. Undefined for anything that is not to be
 * answered (a response, an ACK (§17), bytes that are no request at all).
 */
export function faultAnswer(
  message: AnyMessage | undefined,
  error: ParseError,
  source: MessageSource,
  forceRport: boolean,
): { response: SipResponse; destination: Destination } | undefined {
  if (!message?.isRequest || message.method === 'ACK') return undefined;
  message.source = source;
  let destination: Destination;
  try {
    stampVia(message, source.address, source.port, forceRport);
    destination = responseDestination(message);
  } catch {
    destination = { transport: source.transport as TransportName, address: source.address, port: source.port, flowId: source.flowId };
  }
  return { response: createResponse(message, error.status, { reason: faultReason(error) }), destination };
}

/**
 * 503 + Retry-After to a request its source sent over its flood budget (flood.action '503'); undefined for what is
 * not to be answered (a response, an ACK, what does not parse, a request without a usable top Via).
 */
export function rateLimitedAnswer(
  bytes: Buffer,
  source: MessageSource,
  retryAfter: number,
  limits: MessageLimits,
  forceRport: boolean,
): { response: SipResponse; destination: Destination } | undefined {
  const parsed = parseMessage(bytes, { limits });
  const req = parsed.ok ? parsed.message : undefined;
  if (!req?.isRequest || req.method === 'ACK') return undefined;
  req.source = source;
  try {
    stampVia(req, source.address, source.port, forceRport);
    const response = createResponse(req, 503, { reason: 'Service Unavailable - rate limited', headers: [['Retry-After', String(retryAfter)]] });
    return { response, destination: responseDestination(req) };
  } catch {
    return undefined;
  }
}

/** `Bad Request - missing Call-ID`: printable ASCII only (the fault text may quote the peer's bytes), at most 100 chars. */
function faultReason(error: ParseError): string {
  const text = `${reasonPhrase(error.status)} - ${error.reason}`.replace(/[^\x20-\x7e]+/g, '?');
  return text.length > MAX_REASON_LENGTH ? text.slice(0, MAX_REASON_LENGTH) : text;
}
