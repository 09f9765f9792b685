import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DOMAIN, lab, until, within } from './harness.js';

/** What the policy below saw, per INVITE: its Request-URI, fromSbc, and what ctx.sbc() said. */
interface Seen {
  ruri: string;
  fromSbc: boolean;
  handed: boolean;
}

const seen = (): Seen[] => ((globalThis as { sbcPolicySeen?: Seen[] }).sbcPolicySeen ??= []);

/**
 * A policy that offers every initial INVITE to the SBC (calls to support@ with a target, a passed header and options
 * of their own) and relays whatever it does not take: the SBC's own second leg comes back here as `fromSbc` and
 * ctx.sbc() refuses it (the loop guard), so it is relayed.
 */
const POLICY = `
export default {
  async onRequest(ctx) {
    if (ctx.method === 'INVITE' && !ctx.inDialog) {
      const support = ctx.ruri.startsWith('sip:support@');
      const handed = support ? ctx.sbc({ target: 'sip:bob@${DOMAIN}', passHeaders: ['X-Ticket'], trunk: 'helpdesk' }) : ctx.sbc();
      (globalThis.sbcPolicySeen ??= []).push({ ruri: ctx.ruri, fromSbc: ctx.fromSbc, handed });
      if (handed) return;
    }
    await ctx.relay();
  },
};
`;

function policyFile(): { file: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-sbc-policy-'));
  const file = path.join(dir, 'routing.mjs');
  writeFileSync(file, POLICY);
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

test('ctx.sbc() hands an initial INVITE to the SBC with options of its own; the second leg comes back fromSbc and is relayed, not handed over again', async () => {
  const policy = policyFile();
  const l = await lab({ policy: policy.file });
  try {
    seen().length = 0;
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:support@${DOMAIN}`, { sdp: alice.sdp(), headers: [['X-Ticket', 'T-77'], ['X-Other', 'no']] });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    const bobCall = bob.incoming[0]!;
    assert.equal(bobCall.invite.headers.get('x-ticket'), 'T-77', 'the policy passed X-Ticket on');
    assert.equal(bobCall.invite.headers.get('x-other'), undefined);
    assert.deepEqual(
      seen().map((s) => [s.ruri, s.fromSbc, s.handed]),
      [
        [`sip:support@${DOMAIN}`, false, true],
        [`sip:bob@${DOMAIN}`, true, false],
      ],
      'the first leg was handed over, the second (ours) relayed',
    );
    const [listed] = await l.ts.server.sbcCalls();
    assert.equal(listed!.trunk, 'helpdesk');
    assert.equal(listed!.target, `sip:bob@${DOMAIN}`);
    assert.ok(await until(() => !call.awaitingAck && !bobCall.awaitingAck, 2000));
    assert.equal(await call.bye(), 200);
    await within(bobCall.ended, 'Bob', 3000);
  } finally {
    await l.close();
    policy.remove();
  }
});

test('ctx.sbc() is false when the SBC is off: the same policy then relays the call itself', async () => {
  const policy = policyFile();
  const l = await lab({ policy: policy.file }, { enabled: false });
  try {
    seen().length = 0;
    const alice = await l.phone('alice', { register: false });
    const bob = await l.phone('bob');
    const call = await alice.ua.call(`sip:bob@${DOMAIN}`, { sdp: alice.sdp() });
    assert.equal((await within(call.answered, 'the answer', 5000)).status, 200);
    assert.equal(bob.incoming[0]!.invite.callId, call.invite.callId, 'proxied');
    assert.deepEqual(seen().map((s) => s.handed), [false]);
    assert.ok(await until(() => !call.awaitingAck, 2000));
    assert.equal(await call.bye(), 200);
  } finally {
    await l.close();
    policy.remove();
  }
});
