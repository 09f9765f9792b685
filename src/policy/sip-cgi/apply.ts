import { HeaderField, SipRequest, SipResponse, type Headers } from '../../message/index.js';
import type { HeaderEdit, SipCgiAction } from './output.js';

/**
 * Applies a script's header edits: the fields of each named header are replaced, where the first of them stood, by
 * the edit's values (appended when the message had none); an edit without values removes them. Untouched fields
 * stay slices of the received bytes.
 */
export function applyHeaderEdits(headers: Headers, edits: readonly HeaderEdit[]): void {
  for (const edit of edits) {
    const at = headers.fields.findIndex((f) => f.name === edit.name);
    headers.remove(edit.name);
    if (edit.values.length === 0) continue;
    const fields = edit.values.map((v) => HeaderField.of(edit.name, v));
    headers.fields.splice(at < 0 ? headers.fields.length : at, 0, ...fields);
    headers.version++;
  }
}

/** The request a `proxy` action sends to its target: a copy with the new Request-URI, the edits and any new body. */
export function proxiedRequest(req: SipRequest, action: Extract<SipCgiAction, { type: 'proxy' }>): SipRequest {
  const copy = new SipRequest(req.method, action.uri, req.headers.clone(), action.body ?? req.body, req.version);
  copy.source = req.source;
  applyHeaderEdits(copy.headers, action.edits);
  return copy;
}

/** The response a `forward-response` action forwards: a copy of the named response with the edits and any new body. */
export function forwardedResponse(res: SipResponse, action: Extract<SipCgiAction, { type: 'forward-response' }>): SipResponse {
  const copy = new SipResponse(res.status, res.reason, res.headers.clone(), action.body ?? res.body, res.version);
  copy.source = res.source;
  applyHeaderEdits(copy.headers, action.edits);
  return copy;
}
