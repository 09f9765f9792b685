import { removeTopRoute, SipRequest, unescape, type Uri } from '../message/index.js';
import { cameOver, type Flow, type FlowTokens } from '../transport/index.js';
import type { ProxyIdentity } from './identity.js';

/**
 * What the Route values of ours said beyond "this proxy": the flow a request must be sent over (RFC 5626 §5.3: a
 * flow token of ours naming a flow other than the one the request came over), or that a token was forged.
 */
export type RouteFlow = { kind: 'none' } | { kind: 'flow'; flow: Flow } | { kind: 'forged' };

const NO_FLOW: RouteFlow = { kind: 'none' };

/** A received request after §16.4, ready to be routed: the working copy and the flow its route set names. */
export interface RoutedRequest {
  work: SipRequest;
  flow: RouteFlow;
}

/**
 * A copy of a received request to route and forward, with §16.4 applied. The received request stays as it came
 * (its server transaction answers from it, and loop detection hashes it); forwarded copies are made from this one.
 */
export function routedCopy(req: SipRequest, identity: ProxyIdentity, tokens?: FlowTokens): RoutedRequest {
  const work = new SipRequest(req.method, req.uri.clone(), req.headers.clone(), req.body, req.version);
  work.source = req.source;
  const flow = processRoutes(work, identity, tokens);
  return { work, flow };
}

/**
 * §16.4 route information preprocessing:
 * - a strict router upstream put a Record-Route URI of ours into the Request-URI and moved the real Request-URI to
 *   the end of the Route set: the last Route value becomes the Request-URI again;
 * - the top Route value, when it names us, is removed; so are the ones right after it that name us too (the two
 *   Record-Route values of RFC 5658 double record-routing both come back as Route values).
 * Each removed value of ours may carry a flow token (RFC 5626 §5.3): a token naming the flow the request came over
 * marks it "outgoing" (from the phone, routed on as usual); one naming another flow marks it "incoming" (towards
 * the phone), and the request goes over that flow.
 */
export function processRoutes(req: SipRequest, identity: ProxyIdentity, tokens?: FlowTokens): RouteFlow {
  let result = NO_FLOW;
  const take = (uri: Uri): void => {
    if (result.kind === 'forged' || uri.type !== 'sip' || uri.user === undefined || !tokens) return;
    // §19.1.4: an escaped character equals itself, and some phones escape letters of a user part (Twinkle: Z as %5a).
    const decoded = tokens.decode(unescape(uri.user));
    if (!decoded.ok) {
      // A user part that is no token of any kind (a Route naming a served domain's user) is no claim at all.
      if (decoded.reason === 'forged') result = { kind: 'forged' };
      return;
    }
    if (result.kind === 'none' && !cameOver(req.source, decoded.flow)) result = { kind: 'flow', flow: decoded.flow };
  };
  if (identity.isOurRecordRoute(req.uri)) {
    const routes = req.headers.list('route');
    const last = req.routes[routes.length - 1];
    if (last) {
      take(req.uri);
      req.uri = last.uri;
      if (routes.length > 1) req.headers.set('route', routes.slice(0, -1).join(', '));
      else req.headers.remove('route');
    }
  }
  while (req.headers.has('route')) {
    const top = req.routes[0];
    if (!top || !identity.isOurs(top.uri)) break;
    take(top.uri);
    removeTopRoute(req);
  }
  return result;
}
