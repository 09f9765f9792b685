/**
 * sipway's side of bench:e2e scenarios 1 and 4: every request after sanity goes to one fixed next hop with
 * Record-Route, as Kamailio's `$du = NEXT_HOP; t_relay()` (bench/kamailio/proxy-static.cfg); in-dialog requests
 * follow their route set. The bench passes the next hop and the mode through the environment of `sipway serve`.
 */
import { definePolicy, inDialog, sanity } from '../../src/policy/index.js';

const NEXT_HOP = process.env.SIPWAY_BENCH_NEXT_HOP ?? 'sip:127.0.0.1:5070';
/** Stateless forwarding (RFC 3261 §16.11) instead of a transaction per request. */
const STATELESS = process.env.SIPWAY_BENCH_STATELESS === '1';

export default definePolicy({
  async onRequest(ctx) {
    if (!sanity(ctx)) return;
    if (await inDialog(ctx, { stateless: STATELESS })) return;
    await ctx.relay([NEXT_HOP], { recordRoute: true, stateless: STATELESS });
  },
});
