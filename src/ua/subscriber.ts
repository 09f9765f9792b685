import { createResponse, SipResponse, type SipRequest } from '../message/index.js';
import type { Dialog } from '../dialog/index.js';
import type { ServerTransaction } from '../transaction/index.js';
import type { TimerHandle } from '../util/clock.js';
import { exchangeWithCredentials } from './exchange.js';
import type { SessionUsage, UaCore } from './ua-core.js';

/** One NOTIFY as the subscriber saw it. */
export interface Notification {
  /** Subscription-State: active, pending or terminated (RFC 6665 §4.1.3). */
  state: string;
  /** The reason parameter of a terminated state. */
  reason: string | undefined;
  contentType: string | undefined;
  body: string;
  /** Its CSeq number (a notifier restarted must go on past the last one). */
  cseq: number;
}

/**
 * The subscriber side of RFC 6665 §4.1: a subscription as a usage of the dialog its SUBSCRIBE's 2xx made, NOTIFYs
 * answered 200 and handed to `onNotify`, refreshed before it runs out (at 90 % of the granted time, as Kamailio's and
 * most phones' stacks do), ended by `unsubscribe()` (Expires 0) or by a NOTIFY saying terminated.
 */
export class ClientSubscription implements SessionUsage {
  private endedResolve!: (n: Notification | undefined) => void;
  /** Resolves when the subscription is over, with the NOTIFY that ended it when one did. */
  readonly ended: Promise<Notification | undefined>;
  readonly notifications: Notification[] = [];
  onNotify: ((n: Notification) => void) | undefined;
  private refreshTimer: TimerHandle | undefined;
  private over = false;

  constructor(
    private readonly core: UaCore,
    readonly dialog: Dialog,
    readonly event: string,
    /** Seconds the notifier granted. */
    public expires: number,
  ) {
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
    core.sessions.set(dialog.key, this);
    this.schedule();
  }

  get active(): boolean {
    return !this.over;
  }

  /** Refreshes with a SUBSCRIBE in the dialog (§4.1.2.2); resolves with its final status. */
  async refresh(expires = this.expires): Promise<number> {
    if (this.over) return 481;
    const request = this.dialog.createRequest('SUBSCRIBE', { headers: [['Event', this.event], ['Expires', String(expires)], ['Contact', this.core.contact]] });
    const { response } = await exchangeWithCredentials(
      this.core.transactions,
      this.core.sender,
      request,
      this.core.destinationOf(this.dialog),
      (r, c) => this.core.withCredentials(r, c),
      2,
    );
    if (response instanceof SipResponse) {
      this.dialog.receiveResponse(request, response);
      const granted = Number(response.headers.get('expires'));
      if (response.status < 300 && Number.isInteger(granted)) this.expires = granted;
    }
    if (response.status === 481 || response.status === 408) this.finish(undefined);
    else if (expires > 0) this.schedule();
    return response.status;
  }

  /** Ends it (Expires 0); the notifier's last NOTIFY, terminated, ends `ended`. */
  unsubscribe(): Promise<number> {
    this.refreshTimer?.cancel();
    return this.refresh(0);
  }

  inDialog(request: SipRequest, st: ServerTransaction): void {
    if (request.method !== 'NOTIFY' || this.over) {
      st.respond(createResponse(request, request.method === 'NOTIFY' ? 481 : 501));
      return;
    }
    st.respond(createResponse(request, 200));
    const header = request.headers.get('subscription-state') ?? '';
    const [state, ...params] = header.split(';').map((p) => p.trim());
    const reason = params.find((p) => p.toLowerCase().startsWith('reason='))?.slice(7);
    const n: Notification = {
      state: (state ?? '').toLowerCase(),
      reason,
      contentType: request.headers.get('content-type'),
      body: request.body.toString('utf8'),
      cseq: request.cseq.seq,
    };
    this.notifications.push(n);
    this.onNotify?.(n);
    if (n.state === 'terminated') this.finish(n);
  }

  acked(): void {}

  byeReceived(): void {}

  reinvited(request: SipRequest, st: ServerTransaction): void {
    st.respond(createResponse(request, 481));
  }

  private schedule(): void {
    this.refreshTimer?.cancel();
    this.refreshTimer = this.core.clock.setTimer(this.expires * 900, () => void this.refresh());
  }

  private finish(n: Notification | undefined): void {
    if (this.over) return;
    this.over = true;
    this.refreshTimer?.cancel();
    this.core.sessions.delete(this.dialog.key);
    this.core.dialogs.forget(this.dialog);
    this.endedResolve(n);
  }
}
