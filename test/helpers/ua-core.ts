import { Dialogs, type Dialog } from '../../src/dialog/index.js';
import { TransactionLayer, type InviteServerTransaction } from '../../src/transaction/index.js';
import { FakeClock, LoopTransport } from '../../src/testing/index.js';
import { InviteSession, UA_ALLOW, UA_EXTENSIONS, type SessionTimerConfig, type UaCore } from '../../src/ua/index.js';
import { newRequest } from '../../src/transaction/index.js';
import { createResponse, parseUri } from '../../src/message/index.js';

/**
 * A UA core on the loop transport and a fake clock, for session state machines: INVITEs it receives become
 * InviteSessions (or are refused as the UserAgent would), in-dialog requests go to their session, what it sends is
 * recorded with the time. Requests within a dialog go to 192.0.2.1:5060.
 */
export function fakeUaCore(options: { sessionTimer?: SessionTimerConfig | false; contact?: string; clock?: FakeClock; address?: string } = {}) {
  const clock = options.clock ?? new FakeClock(0);
  const sender = new LoopTransport({ clock, address: options.address });
  const transactions = new TransactionLayer({ sender, clock });
  const sessions: InviteSession[] = [];
  const core: UaCore = {
    sender,
    transactions,
    clock,
    timers: { T1: 500, T2: 4000 },
    dialogs: new Dialogs(),
    sessions: new Map(),
    contact: options.contact ?? `<sip:bob@${options.address ?? '192.0.2.10'}:5060>`,
    sessionTimer: options.sessionTimer ?? false,
    withCredentials: () => undefined,
    authorize: () => undefined,
    destinationOf: (_d: Dialog) => ({ transport: 'udp', address: '192.0.2.1', port: 5060 }),
  };
  transactions.setUser({
    onRequest: (req, st) => {
      const dialog = req.toTag === undefined ? undefined : core.dialogs.match(req);
      if (dialog) {
        dialog.receiveRequest(req);
        const session = core.sessions.get(dialog.key);
        if (req.method === 'BYE') {
          st.respond(createResponse(req, 200));
          session?.byeReceived();
          core.dialogs.forget(dialog);
        } else if (req.method === 'INVITE') session?.reinvited(req, st as InviteServerTransaction);
        else session?.inDialog(req, st);
        return;
      }
      if (req.method !== 'INVITE') return;
      const refusal = InviteSession.refusal(core, req);
      if (refusal) st.respond(refusal);
      else sessions.push(InviteSession.incoming(core, req, st as InviteServerTransaction));
    },
    onAck: (ack) => {
      const d = core.dialogs.match(ack);
      if (d) core.sessions.get(d.key)?.acked(ack);
    },
    onStrayResponse: () => undefined,
  });
  const oks = (): number[] => sender.responses(200).map((s) => s.at);
  return { clock, sender, transactions, sessions, core, oks };
}

/**
 * Alice (192.0.2.1) and Bob (192.0.2.10), two fake UA cores on one fake clock whose loop transports deliver to each
 * other: a whole session, both ends, runs on the clock. `call` places an INVITE from Alice; Bob's sessions are in
 * `bob.sessions` as they arrive.
 */
export function fakeUaPair(options: { sessionTimer?: SessionTimerConfig | false; bobSessionTimer?: SessionTimerConfig | false } = {}) {
  const clock = new FakeClock(0);
  const alice = fakeUaCore({ clock, address: '192.0.2.1', contact: '<sip:alice@192.0.2.1:5060>', sessionTimer: options.sessionTimer });
  const bob = fakeUaCore({ clock, address: '192.0.2.10', sessionTimer: options.bobSessionTimer ?? options.sessionTimer });
  alice.sender.deliverTo(bob.transactions);
  bob.sender.deliverTo(alice.transactions);
  const call = (invite: { sdp?: string; headers?: Array<[string, string]> } = {}): InviteSession => {
    const headers: Array<[string, string]> = [['Allow', UA_ALLOW], ['Supported', UA_EXTENSIONS.join(', ')], ...(invite.headers ?? [])];
    const request = newRequest('INVITE', parseUri('sip:bob@192.0.2.10'), {
      from: '<sip:alice@example.com>',
      contact: alice.core.contact,
      headers,
      body: invite.sdp === undefined ? undefined : Buffer.from(invite.sdp),
      contentType: 'application/sdp',
    });
    return InviteSession.call(alice.core, request, { transport: 'udp', address: '192.0.2.10', port: 5060 });
  };
  /**
   * Runs the clock on by `ms`, `step` ms (default 1) at a time with the sessions' promise continuations run after each, so
   * that messages, timers and async steps interleave as they would.
   */
  const run = async (ms: number, step = 1): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await settle();
    }
  };
  return { clock, alice, bob, call, run };
}

/** Lets promise continuations run (the sessions' async steps) without moving the clock. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
