import { tryParseUri } from '../message/index.js';
import type { SubscriberStore } from '../store/index.js';
import { numberOf, type Dialplan } from './gateways.js';
import { authenticate, gatewayAnswer, nextGateway, noOpenRelay, relay, relayToGateways, sanity } from './plugins.js';
import { definePolicy, type RequestContext, type RoutingPolicy } from './types.js';

/**
 * What the proxy does without a policy of its own (Proxy.handleRequest), told with the plugins: a starting point to
 * copy. Loops and used-up Max-Forwards are refused, callers from our domains authenticated, foreign-to-foreign
 * requests refused (no open relay), everything else relayed where the default routing takes it.
 */
export const defaultPolicy = definePolicy({
  async onRequest(ctx) {
    if (!sanity(ctx)) return;
    if (!(await authenticate(ctx))) return;
    if (!noOpenRelay(ctx)) return;
    await relay(ctx);
  },
});

/** What the server's default policy needs to know beyond the request. */
export interface DefaultPolicyEnv {
  /** The dialplan in force, asked once per request: a reload applies from the next request on. */
  dialplan(): Dialplan;
  /** Whether a host is one of the served domains (case-insensitive). */
  isServedDomain(host: string): boolean;
  /** Whether host[:port] names this server. */
  isLocalHost(host: string, port: number | undefined): boolean;
  /** The privileges (groups) of callers. */
  subscribers: Pick<SubscriberStore, 'get'>;
  /** A SIP-CGI script that sees out-of-dialog requests first; true when it handled the request. */
  sipCgi?: (ctx: RequestContext) => Promise<boolean>;
  /** Keeps a MESSAGE for a user of ours who is offline (and answers it); false when the user is online or unknown. */
  keepForOffline?: (ctx: RequestContext) => Promise<boolean>;
  /**
   * Hands an initial INVITE to the SBC when the config says it takes that call (`sbc.calls`, docs/sbc.md); true when
   * it did. The SBC's own second leg comes back here and is routed like any call.
   */
  sbc?: (ctx: RequestContext) => Promise<boolean>;
}

export const NO_INTERNATIONAL = 'Forbidden - no international calls';

/**
 * The server's policy when no policy file is configured: the iptel.org example. REGISTER never gets here (the
 * registrar answers it). Calls from our users to numbers in our domains leave through the PSTN gateways of the
 * dialplan, with failover; international numbers need the privilege group; MESSAGE to a number goes to the SMS
 * gateway. Everything else is the default routing: our users through the location service (404/480 when they are
 * not online; a missed-call record for every call they do not answer), other domains by DNS (RFC 3263). A number
 * no route covers (or every number, with no gateways configured), and MESSAGE with no SMS gateway, is a local user
 * like any other.
 */
export function createDefaultPolicy(env: DefaultPolicyEnv): RoutingPolicy {
  return definePolicy({
    async onRequest(ctx) {
      if (!sanity(ctx)) return;
      if (!(await authenticate(ctx))) return;
      if (!noOpenRelay(ctx)) return;
      if (env.sbc && ctx.method === 'INVITE' && !ctx.inDialog && !ctx.fromSbc && (await env.sbc(ctx))) return;
      // Presence for our users is the presence server's (docs/presence.md); other events go on to their phones.
      if (!ctx.inDialog && forOurUser(ctx.ruri, env) && ctx.presence()) return;
      // A MESSAGE for a user of ours who is offline is kept until they register (docs/presence.md).
      if (env.keepForOffline && ctx.method === 'MESSAGE' && !ctx.inDialog && forOurUser(ctx.ruri, env) && (await env.keepForOffline(ctx))) return;
      if (env.sipCgi && !ctx.inDialog && (await env.sipCgi(ctx))) return;
      // The caller's CPL script first: it may bar numbers before the PSTN routing sees them.
      if (await ctx.callScript('outgoing')) return;
      if (await toPstn(ctx, env)) return;
      if (await ctx.callScript('incoming')) return;
      await relay(ctx);
    },
    onResponse: gatewayAnswer,
    onFailure(ctx) {
      nextGateway(ctx);
    },
  });
}

/** Handles a request for the PSTN (gateways, SMS); false when it is none and the default routing takes it. */
async function toPstn(ctx: RequestContext, env: DefaultPolicyEnv): Promise<boolean> {
  if (ctx.inDialog || (ctx.method !== 'INVITE' && ctx.method !== 'MESSAGE')) return false;
  const from = ctx.from;
  if (from.user === undefined || from.host === undefined || !env.isServedDomain(from.host)) return false;
  const number = ownNumber(ctx.ruri, env);
  if (number === undefined) return false;
  const dialplan = env.dialplan();
  const sms = ctx.method === 'MESSAGE' ? dialplan.smsTarget(number) : undefined;
  const choices = ctx.method === 'INVITE' ? dialplan.route(number) : [];
  if (sms === undefined && choices.length === 0) return false;
  // The PSTN costs money: whatever proxy.authenticateCallers says, the caller proves who it is (§22.3).
  if (!(await ctx.challenge())) return true;
  if (sms !== undefined) {
    await ctx.relay([{ uri: sms, routeSet: [], q: 1 }]);
    return true;
  }
  const caller = await env.subscribers.get(from.user, from.host);
  if (!dialplan.mayCall(number, caller?.groups ?? [])) {
    ctx.reply(403, NO_INTERNATIONAL);
    return true;
  }
  await relayToGateways(ctx, choices);
  return true;
}

/** Whether a Request-URI names a user of one of our domains. */
function forOurUser(ruri: string, env: DefaultPolicyEnv): boolean {
  const uri = tryParseUri(ruri);
  return uri !== undefined && uri.type === 'sip' && uri.user !== undefined && env.isServedDomain(uri.host);
}

/** The number a Request-URI addresses in our own domains (a tel: URI is always ours to route). */
function ownNumber(ruri: string, env: DefaultPolicyEnv): string | undefined {
  const uri = tryParseUri(ruri);
  if (uri === undefined) return undefined;
  if (uri.type === 'sip' && !env.isServedDomain(uri.host) && !env.isLocalHost(uri.hostname, uri.port)) return undefined;
  return numberOf(uri);
}
