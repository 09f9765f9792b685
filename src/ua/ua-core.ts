import type { Dialog, Dialogs } from '../dialog/index.js';
import type { SipRequest, SipResponse } from '../message/index.js';
import type { InviteServerTransaction, ServerTransaction, TransactionLayer } from '../transaction/index.js';
import type { Destination, MessageSender } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import type { SessionTimerConfig } from './session-timer.js';

/** The methods a sipway user agent answers (its Allow header). */
export const UA_ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, PRACK, UPDATE, INFO, REFER, NOTIFY';

/** The extensions a sipway user agent supports (its Supported header): RFC 3262, RFC 4028, RFC 3891. */
export const UA_EXTENSIONS: readonly string[] = ['100rel', 'timer', 'replaces'];

/** What a REFER in a session asks for (RFC 3515): a call to `target`, replacing a dialog there when attended. */
export interface Referral {
  /** The Refer-To URI without its header part. */
  target: string;
  /** The Replaces header value the new INVITE must carry (RFC 3891), for an attended transfer. */
  replaces: string | undefined;
  /** The referrer's identity (Referred-By, RFC 3892), to be passed on in the new INVITE. */
  referredBy: string | undefined;
}

/** A call placed for a REFER, as far as the referrer is told of it (NOTIFYs with its progress). */
export interface ReferredCall {
  readonly answered: Promise<{ status: number; reason: string }>;
  /** Set by the referred session to hear the call's provisional responses (reported as they come). */
  onProvisional: ((response: SipResponse) => void) | undefined;
}

/** What the UA tells a session about messages in its dialog (the session is the dialog's usage, RFC 5057). */
export interface SessionUsage {
  /** The ACK for our 2xx arrived (with the answer when our 2xx carried an offer). */
  acked(ack: SipRequest): void;
  /** The peer sent BYE (already answered 200). */
  byeReceived(bye?: SipRequest): void;
  /** A re-INVITE in the dialog, for the usage to answer through `st`. */
  reinvited(request: SipRequest, st: InviteServerTransaction): void;
  /** UPDATE (RFC 3311), PRACK (RFC 3262), INFO (RFC 6086): answered by the usage through `st`. */
  inDialog(request: SipRequest, st: ServerTransaction): void;
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
  /** The session timer we ask for and accept (RFC 4028), or false for none. */
  readonly sessionTimer: SessionTimerConfig | false;
  /** The request to send again after a 401/407, with our credentials; undefined when we cannot answer it. */
  withCredentials(request: SipRequest, challenge: SipResponse): SipRequest | undefined;
  /** Adds credentials for the realms we have answered before (a request sent again for another reason than a challenge). */
  authorize(request: SipRequest): void;
  /** Where a request within `dialog` goes (the outbound proxy, else its first route or remote target). */
  destinationOf(dialog: Dialog): Destination;
  /**
   * Places the call a REFER received in `session` asks for, or declines it (undefined). Without it every REFER is
   * declined (603): following transfers is the application's choice.
   */
  readonly placeReferredCall?: (referral: Referral, session: SessionUsage) => Promise<ReferredCall | undefined>;
}
