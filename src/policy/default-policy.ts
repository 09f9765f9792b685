import { authenticate, noOpenRelay, relay, sanity } from './plugins.js';
import { definePolicy } from './types.js';

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
