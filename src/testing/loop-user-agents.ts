import { Dialogs, type Dialog } from '../dialog/index.js';
import { createResponse, parseUri, type SipRequest } from '../message/index.js';
import { newRequest, TransactionLayer, type InviteServerTransaction, type ServerTransaction } from '../transaction/index.js';
import type { Destination } from '../transport/types.js';
import { FakeClock } from '../util/clock.js';
import {
  InviteSession,
  UA_ALLOW,
  UA_EXTENSIONS,
  type CallOptions,
  type ProgressOptions,
  type SessionTimerConfig,
  type SessionUsage,
  type UaCore,
} from '../ua/index.js';
import { LoopTransport } from './loop-transport.js';

/** What a scripted callee does with each call, on the clock: provisional responses, then the final answer. */
export interface CalleeScript {
  /** Provisional responses in order, each `afterMs` after the INVITE (a 183 with `sdp` goes reliably if it can). */
  progress?: Array<{ status: number; afterMs?: number } & ProgressOptions>;
  /** The final answer `afterMs` after the INVITE (default at once): 200 with `sdp`, or a failure `status`. */
  answer?: { status?: number; reason?: string; sdp?: string; afterMs?: number };
  /** A BYE this long after answering. */
  hangUpAfterMs?: number;
}

export interface LoopUserAgentOptions {
  clock: FakeClock;
  /** Our address on the loop (default 192.0.2.10); the Contact is `sip:USER@ADDRESS:5060`. */
  address?: string;
  user?: string;
  /** Session timers asked for and accepted (default none, so that long runs of the clock stay quiet). */
  sessionTimer?: SessionTimerConfig | false;
}

/**
 * A user agent without sockets (sipway/testing): InviteSessions on a LoopTransport and a fake clock, so that a whole
 * call (offer/answer, PRACK, re-INVITE, UPDATE, session timers, transfer) runs on the clock, messages serialised and
 * parsed again on the way. Incoming calls follow `script` (or `onInvite`); every request within a dialog goes to the
 * session, as the real UserAgent routes them. Pair two with `loopUserAgents()`.
 */
export class LoopUserAgent implements UaCore {
  readonly sender: LoopTransport;
  readonly transactions: TransactionLayer;
  readonly clock: FakeClock;
  readonly timers = { T1: 500, T2: 4000 };
  readonly dialogs = new Dialogs();
  readonly sessions = new Map<string, SessionUsage>();
  readonly contact: string;
  readonly sessionTimer: SessionTimerConfig | false;
  readonly address: string;
  /** Calls that came in, in order. */
  readonly incoming: InviteSession[] = [];
  /** What incoming calls do (ignored when onInvite is set). */
  script: CalleeScript | undefined;
  onInvite: ((session: InviteSession) => void) | undefined;
  /** Where our requests go: the peer set by loopUserAgents (default 192.0.2.1:5060). */
  peer: Destination = { transport: 'udp', address: '192.0.2.1', port: 5060 };

  constructor(options: LoopUserAgentOptions) {
    this.clock = options.clock;
    this.address = options.address ?? '192.0.2.10';
    this.sender = new LoopTransport({ clock: this.clock, address: this.address });
    this.transactions = new TransactionLayer({ sender: this.sender, clock: this.clock });
    this.contact = `<sip:${options.user ?? 'ua'}@${this.address}:5060>`;
    this.sessionTimer = options.sessionTimer ?? false;
    this.transactions.setUser({
      onRequest: (request, st) => this.receive(request, st),
      onAck: (ack) => {
        const dialog = this.dialogs.match(ack);
        if (dialog) this.sessions.get(dialog.key)?.acked(ack);
      },
      onStrayResponse: () => undefined,
    });
  }

  /** Calls `uri` (default the peer's `sip:peer@ADDRESS`) with an INVITE saying what we support. */
  call(uri = `sip:peer@${this.peer.address}`, options: CallOptions = {}): InviteSession {
    const invite = newRequest('INVITE', parseUri(uri), {
      from: options.from ?? `<sip:ua@${this.address}>`,
      contact: this.contact,
      headers: [['Allow', UA_ALLOW], ['Supported', UA_EXTENSIONS.join(', ')], ...(options.headers ?? [])],
      body: options.sdp === undefined ? undefined : Buffer.from(options.sdp),
      contentType: 'application/sdp',
    });
    return InviteSession.call(this, invite, this.peer, options.onOffer);
  }

  /** No credentials on the loop: a challenge is the final answer. */
  withCredentials(): undefined {
    return undefined;
  }

  authorize(): void {}

  destinationOf(_dialog: Dialog): Destination {
    return this.peer;
  }

  private readonly ringing = new Map<InviteServerTransaction, InviteSession>();

  private receive(request: SipRequest, st: ServerTransaction): void {
    if (request.method === 'CANCEL') {
      const invite = this.transactions.findInviteForCancel(request);
      const session = invite && this.ringing.get(invite);
      st.respond(createResponse(request, session ? 200 : 481));
      session?.cancelled();
      return;
    }
    const dialog = request.toTag === undefined ? undefined : this.dialogs.match(request);
    if (request.toTag !== undefined) {
      if (dialog === undefined || dialog.receiveRequest(request, { outOfOrder: request.method === 'NOTIFY' ? 'accept' : 'refuse' })) {
        st.respond(createResponse(request, dialog === undefined ? 481 : 500));
        return;
      }
      const session = this.sessions.get(dialog.key);
      if (request.method === 'BYE') {
        st.respond(createResponse(request, 200));
        if (session) session.byeReceived(request);
        else this.dialogs.forget(dialog);
      } else if (session === undefined) st.respond(createResponse(request, 481));
      else if (request.method === 'INVITE') session.reinvited(request, st as InviteServerTransaction);
      else session.inDialog(request, st);
      return;
    }
    if (request.method !== 'INVITE') {
      st.respond(createResponse(request, request.method === 'OPTIONS' ? 200 : 501, { headers: [['Allow', UA_ALLOW]] }));
      return;
    }
    const refusal = InviteSession.refusal(this, request);
    if (refusal) {
      st.respond(refusal);
      return;
    }
    const session = InviteSession.incoming(this, request, st as InviteServerTransaction);
    this.incoming.push(session);
    this.ringing.set(st as InviteServerTransaction, session);
    void session.answered.then(() => this.ringing.delete(st as InviteServerTransaction));
    if (this.onInvite) this.onInvite(session);
    else if (this.script) this.follow(session, this.script);
  }

  private follow(session: InviteSession, script: CalleeScript): void {
    for (const p of script.progress ?? []) this.clock.setTimer(p.afterMs ?? 0, () => session.progress(p.status, p));
    const answer = script.answer;
    if (answer === undefined) return;
    this.clock.setTimer(answer.afterMs ?? 0, () => {
      const status = answer.status ?? 200;
      if (status >= 300) {
        session.reject(status, answer.reason);
        return;
      }
      session.accept(answer.sdp);
      if (script.hangUpAfterMs !== undefined) this.clock.setTimer(script.hangUpAfterMs, () => void session.bye());
    });
  }
}

/**
 * Alice (192.0.2.1) and Bob (192.0.2.10): two LoopUserAgents on one fake clock, each the other's peer. `run(ms)`
 * moves the clock on a step at a time and lets the sessions' promise continuations run after each step.
 */
export function loopUserAgents(options: { sessionTimer?: SessionTimerConfig | false; bobSessionTimer?: SessionTimerConfig | false; clock?: FakeClock } = {}) {
  const clock = options.clock ?? new FakeClock(0);
  const alice = new LoopUserAgent({ clock, address: '192.0.2.1', user: 'alice', sessionTimer: options.sessionTimer });
  const bob = new LoopUserAgent({ clock, address: '192.0.2.10', user: 'bob', sessionTimer: options.bobSessionTimer ?? options.sessionTimer });
  alice.sender.deliverTo(bob.transactions);
  bob.sender.deliverTo(alice.transactions);
  alice.peer = { transport: 'udp', address: bob.address, port: 5060 };
  bob.peer = { transport: 'udp', address: alice.address, port: 5060 };
  const run = async (ms: number, step = 1): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await settle();
    }
  };
  return { clock, alice, bob, run };
}

/** Lets pending promise continuations run without moving the clock. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
