import { FakeClock, LoopUserAgent, loopUserAgents, settle } from '../../src/testing/index.js';
import type { InviteSession, SessionTimerConfig } from '../../src/ua/index.js';

export { settle };

/**
 * One LoopUserAgent (sipway/testing) seen as the session tests use it: its loop transport (`sender`), transaction
 * layer, the sessions of the INVITEs it received, the UA itself as the sessions' core, and the times its 200s went.
 */
function view(ua: LoopUserAgent) {
  return {
    clock: ua.clock,
    sender: ua.sender,
    transactions: ua.transactions,
    sessions: ua.incoming,
    core: ua,
    oks: (): number[] => ua.sender.responses(200).map((s) => s.at),
  };
}

/** A UA at 192.0.2.10 on a fake clock at 0, its requests within a dialog going to 192.0.2.1:5060. */
export function fakeUaCore(options: { sessionTimer?: SessionTimerConfig | false } = {}) {
  return view(new LoopUserAgent({ clock: new FakeClock(0), user: 'bob', sessionTimer: options.sessionTimer }));
}

/** Alice (192.0.2.1) and Bob (192.0.2.10) wired back to back on one fake clock; `call` is an INVITE from Alice to Bob. */
export function fakeUaPair(options: { sessionTimer?: SessionTimerConfig | false; bobSessionTimer?: SessionTimerConfig | false } = {}) {
  const { clock, alice, bob, run } = loopUserAgents(options);
  const call = (invite: { sdp?: string; headers?: Array<[string, string]> } = {}): InviteSession => alice.call('sip:bob@192.0.2.10', { ...invite, from: '<sip:alice@example.com>' });
  return { clock, alice: view(alice), bob: view(bob), call, run };
}
