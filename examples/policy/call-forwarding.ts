/**
 * Call forwarding as a routing policy: unconditional, on busy and on no answer, and "fork to all my phones, then to
 * voicemail when nobody answers". Load it with `sipway serve --policy examples/policy/call-forwarding.ts`.
 *
 * The tables would come from a database in production; here they are constants, with the voicemail URI and the
 * no-answer time taken from the environment so that the test can point them at its own UAs.
 */
import { authenticate, definePolicy, inDialog, location, noOpenRelay, sanity } from 'sipway/policy';

const VOICEMAIL = process.env.SIPWAY_VOICEMAIL ?? 'sip:voicemail@127.0.0.1:5070';
const NO_ANSWER_MS = Number(process.env.SIPWAY_NO_ANSWER_MS ?? 20_000);

/** Forward every call for the key to the value, without ringing the user at all. */
const FORWARD_ALWAYS: Record<string, string> = { carol: 'sip:dave@sipway.test' };
/** Users whose unanswered or busy calls go to voicemail. */
const VOICEMAIL_USERS = new Set(['bob']);

export default definePolicy({
  async onRequest(ctx) {
    if (!sanity(ctx) || !ctx.validate()) return;
    if (await inDialog(ctx)) return;
    if (!(await authenticate(ctx)) || !noOpenRelay(ctx)) return;
    const callee = ctx.to.user ?? '';
    const forwardTo = ctx.method === 'INVITE' ? FORWARD_ALWAYS[callee] : undefined;
    if (forwardTo) {
      ctx.log('unconditional forwarding', { from: callee, to: forwardTo });
      ctx.rewriteUri(forwardTo);
    }
    if (ctx.method === 'INVITE' && VOICEMAIL_USERS.has(callee)) ctx.vars.set('voicemail', true);
    const targets = await location(ctx);
    if (!targets) {
      // Nobody online: straight to voicemail for those who have it.
      if (ctx.vars.has('voicemail')) return ctx.relay([VOICEMAIL]);
      return;
    }
    // All phones ring at once; each gives up after the no-answer time (408 into onFailure).
    await ctx.relay(targets, { fork: 'parallel', timeout: NO_ANSWER_MS });
  },

  onFailure(ctx) {
    // Busy (486/600) or no answer (408/480): voicemail, once.
    const forward = [486, 600, 408, 480].includes(ctx.status);
    if (forward && ctx.vars.get('voicemail') === true) {
      ctx.vars.set('voicemail', false);
      ctx.log('forwarding to voicemail', { status: ctx.status });
      ctx.relay([VOICEMAIL]);
    }
  },
});
