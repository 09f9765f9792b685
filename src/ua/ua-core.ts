import type { Dialog, Dialogs } from '../dialog/index.js';
import type { SipRequest, SipResponse } from '../message/index.js';
import type { InviteServerTransaction, TransactionLayer } from '../transaction/index.js';
import type { Destination, MessageSender } from '../transport/types.js';
import type { Clock } from '../util/clock.js';

/** What the UA tells a session about messages in its dialog (the session is the dialog's usage, RFC 5057). */
export interface SessionUsage {
  /** The ACK for our 2xx arrived. */
  acked(): void;
  /** The peer sent BYE (already answered 200). */
  byeReceived(): void;
  /** A re-INVITE in the dialog, for the usage to answer through `st`. */
  reinvited(request: SipRequest, st: InviteServerTransaction): void;
}

/** What a session needs from the user agent it belongs to. */
export interface UaCore {
  readonly sender: MessageSender;
  readonly transactions: TransactionLayer;
  readonly clock: Clock;
  /** T1 and T2 (ms) for the 2xx retransmissions of §13.3.1.4. */
  readonly timers: { T1: number; T2: number };
  readonly dialogs: Dialogs;
  /** Sessions by dialog key, for the ACKs and BYEs that arrive in their dialogs. */
  readonly sessions: Map<string, SessionUsage>;
  /** Our Contact. */
  readonly contact: string;
  /** The request to send again after a 401/407, with our credentials; undefined when we cannot answer it. */
  withCredentials(request: SipRequest, challenge: SipResponse): SipRequest | undefined;
  /** Where a request within `dialog` goes (the outbound proxy, else its first route or remote target). */
  destinationOf(dialog: Dialog): Destination;
}
