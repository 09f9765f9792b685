import { newTag } from '../util/ids.js';
import { Headers, HeaderField } from './headers.js';
import { SipResponse, type SipRequest } from './message.js';
import { parseNameAddr } from './name-addr.js';

/** Default reason phrases (RFC 3261 §21 and extensions). */
export const REASON_PHRASES: Record<number, string> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted',
  204: 'No Notification',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  421: 'Extension Required',
  422: 'Session Interval Too Small',
  423: 'Interval Too Brief',
  429: 'Provide Referrer Identity',
  430: 'Flow Failed',
  439: 'First Hop Lacks Outbound Support',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event',
  491: 'Request Pending',
  493: 'Undecipherable',
  494: 'Security Agreement Required',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  580: 'Precondition Failure',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
};

export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? (status < 200 ? 'Provisional' : status < 300 ? 'OK' : 'Error');
}

export interface ResponseOptions {
  reason?: string;
  /** To-tag to add when the request's To has none (§8.2.6.2); generated when omitted. Not added to 100 Trying. */
  toTag?: string;
  headers?: ReadonlyArray<readonly [string, string]>;
  body?: Buffer;
  contentType?: string;
}

/**
 * Builds a response per §8.2.6: Via (all values, same order), From, Call-ID, CSeq copied, To copied with a tag
 * added, and Record-Route copied for 2xx/18x responses to dialog-creating requests (§12.1.1). Copied fields stay
 * byte slices of the request, so building a response costs no re-serialisation of those headers.
 * Works on a request that failed validation too (missing headers are simply not copied), so that a 400 can name the fault.
 */
export function createResponse(request: SipRequest, status: number, options: ResponseOptions = {}): SipResponse {
  const vias: HeaderField[] = [];
  const recordRoutes: HeaderField[] = [];
  let from: HeaderField | undefined;
  let to: HeaderField | undefined;
  let callId: HeaderField | undefined;
  let cseq: HeaderField | undefined;
  const copyRecordRoute = status > 100 && status < 300 && (request.method === 'INVITE' || request.method === 'SUBSCRIBE');
  for (const f of request.headers.fields) {
    switch (f.name) {
      case 'via':
        vias.push(f);
        break;
      case 'from':
        from ??= f;
        break;
      case 'to':
        to ??= f;
        break;
      case 'call-id':
        callId ??= f;
        break;
      case 'cseq':
        cseq ??= f;
        break;
      case 'record-route':
        if (copyRecordRoute) recordRoutes.push(f);
        break;
    }
  }
  if (to && status > 100 && !hasToTag(to.value)) {
    try {
      const parsed = parseNameAddr(to.value, 'To');
      parsed.tag = options.toTag ?? newTag();
      to = HeaderField.of('to', parsed.toString());
    } catch {
      // An unparsable To (when answering a 400 about it) is echoed as it is.
    }
  }
  const fields: HeaderField[] = [...vias];
  for (const f of [from, to, callId, cseq]) if (f) fields.push(f);
  fields.push(...recordRoutes);
  const headers = new Headers(fields);
  for (const [name, value] of options.headers ?? []) headers.append(name, value);
  const body = options.body ?? Buffer.alloc(0);
  if (options.contentType && body.length > 0) headers.set('content-type', options.contentType);
  return new SipResponse(status, options.reason ?? reasonPhrase(status), headers, body);
}

function hasToTag(value: string): boolean {
  // Cheap pre-check before parsing; the parse confirms.
  if (!/;\s*tag\s*=/i.test(value)) return false;
  try {
    return parseNameAddr(value, 'To').tag !== undefined;
  } catch {
    return false;
  }
}
