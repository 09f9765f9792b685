import { removeTopRoute, SipRequest } from '../message/index.js';
import type { ProxyIdentity } from './identity.js';

/**
 * A copy of a received request to route and forward, with §16.4 applied. The received request stays as it came
 * (its server transaction answers from it, and loop detection hashes it); forwarded copies are made from this one.
 */
export function routedCopy(req: SipRequest, identity: ProxyIdentity): SipRequest {
  const work = new SipRequest(req.method, req.uri.clone(), req.headers.clone(), req.body, req.version);
  work.source = req.source;
  processRoutes(work, identity);
  return work;
}

/**
 * §16.4 route information preprocessing:
 * - a strict router upstream put a Record-Route URI of ours into the Request-URI and moved the real Request-URI to
 *   the end of the Route set: the last Route value becomes the Request-URI again;
 * - the top Route value, when it names us, is removed; so are the ones right after it that name us too (the two
 *   Record-Route values of RFC 5658 double record-routing both come back as Route values).
 */
export function processRoutes(req: SipRequest, identity: ProxyIdentity): void {
  if (identity.isOurRecordRoute(req.uri)) {
    const routes = req.headers.list('route');
    const last = req.routes[routes.length - 1];
    if (last) {
      req.uri = last.uri;
      if (routes.length > 1) req.headers.set('route', routes.slice(0, -1).join(', '));
      else req.headers.remove('route');
    }
  }
  while (req.headers.has('route')) {
    const top = req.routes[0];
    if (!top || !identity.isOurs(top.uri)) break;
    removeTopRoute(req);
  }
}
