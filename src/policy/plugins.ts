/**
 * Building blocks of the usual request pipeline, as functions over the request context: a policy composes them and
 * replaces any of them with its own step. Each one that may answer the request returns whether to go on.
 */
import { isIP } from 'node:net';
import type { Uri } from '../message/index.js';
import { isPrivateAddress } from '../proxy/index.js';
import type { RouteChoice } from './gateways.js';
import type { FailureContext, RelayOptions, RequestContext, ResponseContext, Target } from './types.js';

/** §16.3 steps 3-4: 483 when Max-Forwards is used up, 482 on a loop. */
export function sanity(ctx: RequestContext): boolean {
  return ctx.validate();
}

/** Lowers a Max-Forwards above `limit` to it (Kamailio's maxfwd_process): a bound on how far a request travels. */
export function maxForwards(ctx: RequestContext, limit = 70): boolean {
  const value = Number(ctx.headers.get('max-forwards'));
  if (!Number.isInteger(value) || value > limit) ctx.headers.set('Max-Forwards', String(limit));
  return true;
}

/**
 * Requests inside a dialog (To tag) go along their Route set (loose routing, §16.4/§16.5) or to their Request-URI;
 * returns true when it has relayed the request.
 */
export async function inDialog(ctx: RequestContext, options?: RelayOptions): Promise<boolean> {
  if (!ctx.inDialog) return false;
  await ctx.relay(undefined, options);
  return true;
}

/**
 * Whether the caller sits behind a NAT: the request came from another address than its top Via names, or its
 * Contact names a private address (RFC 1918 and the like). Sets `ctx.vars.nat`. Replies to such callers follow the
 * source anyway (rport, received-based routing of their bindings).
 */
export function natDetect(ctx: RequestContext): boolean {
  const src = ctx.source;
  let nat = false;
  if (src) {
    const via = ctx.request.via;
    const port = via.port ?? 5060;
    if (isIP(via.hostname) !== 0 && (via.hostname !== src.address || (src.transport === 'udp' && port !== src.port))) nat = true;
    for (const c of contacts(ctx)) {
      const host = c.type === 'sip' ? c.hostname : '';
      if (isIP(host) !== 0 && isPrivateAddress(host) && host !== src.address) nat = true;
    }
  }
  ctx.vars.set('nat', nat);
  return nat;
}

function contacts(ctx: RequestContext): Uri[] {
  try {
    return ctx.request.contacts.map((c) => c.uri);
  } catch {
    return [];
  }
}

/** Digest authentication of callers from served domains (407); false when the challenge has been sent. */
export function authenticate(ctx: RequestContext): Promise<boolean> {
  return ctx.authenticate();
}

/** No open relay: 403 for an out-of-dialog request neither from nor to a served domain. */
export function noOpenRelay(ctx: RequestContext): boolean {
  return ctx.checkRelay();
}

/**
 * The location service for the Request-URI: the targets of its bindings, or (after answering 404, 480 or 430)
 * undefined.
 */
export async function location(ctx: RequestContext): Promise<Target[] | undefined> {
  const found = await ctx.lookup();
  if (found.found) return found.targets;
  ctx.reply(found.status);
  return undefined;
}

/** Forwards the request where the default routing takes it (location lookup, Route, Request-URI). */
export function relay(ctx: RequestContext, options?: RelayOptions): Promise<void> {
  return ctx.relay(undefined, options);
}

/** Where the gateways still to try for a request wait between onRequest and onFailure. */
const GATEWAYS_LEFT = 'gateways.left';
/** Set once a gateway gave a final answer that ends the search (see gatewayAnswer). */
const GATEWAY_ANSWERED = 'gateways.answered';

/**
 * Whether a gateway's failure sends the call on to the next gateway, as Kamailio's LCR does: 408 (no answer, or
 * none in time: Timer B/F), 5xx (the gateway's trouble; §8.1.3.1 and §16.9 make transport failures 503). Any other
 * final answer, such as 486 Busy Here, 404 or a 6xx global failure (§21.6), is the callee's and ends the search.
 */
export function isGatewayFailure(status: number): boolean {
  return status === 408 || (status >= 500 && status < 600);
}

/**
 * Relays the request to the first of an ordered list of gateway choices (Dialplan.route); `nextGateway` in
 * onFailure tries the others one after another. The list is the request's own, so a reload meanwhile changes nothing.
 */
export function relayToGateways(ctx: RequestContext, choices: readonly RouteChoice[], options?: RelayOptions): Promise<void> {
  const [first, ...rest] = choices.map((c): Target => ({ uri: c.requestUri, routeSet: [], q: 1 }));
  if (first === undefined) {
    ctx.reply(404, 'Not Found - no route for the number');
    return Promise.resolve();
  }
  ctx.vars.set(GATEWAYS_LEFT, rest);
  return ctx.relay([first], options);
}

/**
 * In onResponse: notes a final answer that ends the search. onFailure sees only the best response of all the
 * gateways tried (§16.7 step 6), where an earlier gateway's 408 outranks a later one's 486.
 */
export function gatewayAnswer(ctx: ResponseContext): void {
  if (ctx.status >= 300 && !isGatewayFailure(ctx.status) && ctx.vars.has(GATEWAYS_LEFT)) ctx.vars.set(GATEWAY_ANSWERED, true);
}

/**
 * In onFailure: after a gateway failure (isGatewayFailure) relays to the next gateway of relayToGateways' list and
 * returns true; false when the failure ends the search or no gateway is left (the best response goes upstream).
 */
export function nextGateway(ctx: FailureContext): boolean {
  const left = ctx.vars.get(GATEWAYS_LEFT) as Target[] | undefined;
  if (ctx.vars.get(GATEWAY_ANSWERED) === true || !isGatewayFailure(ctx.status)) return false;
  const next = left?.shift();
  if (next === undefined) return false;
  ctx.log('gateway failed, trying the next one', { status: ctx.status, next: next.uri.toString() });
  ctx.relay([next]);
  return true;
}
