import { natDetect } from '../policy/plugins.js';
import type { RequestContext, Target } from '../policy/types.js';
import type { SbcCalls } from './config.js';

/**
 * The default policy's choice of calls for the SBC (`sbc.calls`): every initial INVITE (`all`), or only those with a
 * party behind NAT (`nat`): the caller (natDetect: its Via or Contact names another address than it sent from) or a
 * binding of the callee registered from another address than its Contact names. Hands the call over and returns
 * true, or returns false for the default routing.
 */
export function sbcSelector(calls: SbcCalls): (ctx: RequestContext) => Promise<boolean> {
  return async (ctx) => {
    if (calls === 'all' || natDetect(ctx)) return ctx.sbc();
    const found = await ctx.lookup().catch(() => undefined);
    if (found?.found && found.targets.some(behindNat)) return ctx.sbc();
    return false;
  };
}

/** A binding reached at another address than its Contact: the phone registered from behind a NAT. */
export function behindNat(target: Target): boolean {
  const to = target.destination;
  const uri = target.uri;
  if (to === undefined || uri.type !== 'sip') return false;
  return to.address !== uri.hostname || (to.transport === 'udp' && to.port !== (uri.port ?? 5060));
}
