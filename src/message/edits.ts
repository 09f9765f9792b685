import type { AnyMessage, SipRequest } from './message.js';
import type { Via } from './via.js';

/**
 * The edits a proxy makes when forwarding (§16.6). Each touches one header field and leaves every other field a
 * slice of the received bytes, so forwarding serialises once without rebuilding the message (Kamailio's "lumps").
 */

/** §16.6 step 8: the proxy's Via goes on top. */
export function prependVia(m: AnyMessage, via: Via | string): void {
  m.headers.prepend('via', via.toString());
}

/** §16.7 step 3: a response loses the top Via (ours) before it is forwarded. */
export function removeTopVia(m: AnyMessage): string | undefined {
  return m.headers.removeFirstValue('via');
}

/** §16.6 step 3: decrement Max-Forwards, adding it with the default if absent. Returns the new value. */
export function decrementMaxForwards(req: SipRequest, initial = 70): number {
  const current = req.maxForwards;
  const next = current === undefined ? initial : Math.max(0, current - 1);
  req.headers.set('max-forwards', String(next));
  return next;
}

/** §16.4: remove the top Route value (the one naming this proxy). */
export function removeTopRoute(req: SipRequest): string | undefined {
  return req.headers.removeFirstValue('route');
}

/** §16.6 step 4: Record-Route goes on top of any existing ones. */
export function addRecordRoute(req: SipRequest, value: string): void {
  req.headers.prepend('record-route', value);
}
