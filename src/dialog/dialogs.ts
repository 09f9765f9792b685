import type { SipRequest, SipResponse } from '../message/index.js';
import { Dialog, dialogKey } from './dialog.js';

/**
 * The dialogs of one user agent, by dialog ID (§12). A forked dialog-creating request gets one early dialog per To
 * tag in its provisional responses (§12.1.2, §13.2.2.4), and a 2xx confirms the one of its tag (or makes it); the
 * others stay early until the caller ends them. A request that names a dialog (To tag) this index does not know is
 * the caller's to answer 481 (§12.2.2). Terminated dialogs leave the index.
 */
export class Dialogs {
  private readonly byKey = new Map<string, Dialog>();

  get size(): number {
    return this.byKey.size;
  }

  /**
   * The UAC's dialog a response to its dialog-creating `request` belongs to: the existing one of the response's To
   * tag, or a new one (early for a 101-199 with a To tag, confirmed for a 2xx). Undefined for a response that makes
   * no dialog (100, a provisional without a To tag, a final non-2xx: that one ends every early dialog of the request).
   */
  fromResponse(request: SipRequest, response: SipResponse): Dialog | undefined {
    const status = response.status;
    const localTag = request.fromTag;
    if (localTag === undefined) return undefined;
    if (status >= 300) {
      // §13.2.2.3/§12.3: a non-2xx final response ends the early dialogs the request made (none is confirmed).
      for (const d of this.byKey.values()) {
        if (d.callId === request.callId && d.localTag === localTag && d.state === 'Early') this.end(d);
      }
      return undefined;
    }
    const remoteTag = response.toTag;
    if (status === 100 || remoteTag === undefined) return undefined;
    const existing = this.byKey.get(dialogKey(request.callId, localTag, remoteTag));
    if (existing) {
      existing.receiveResponse(request, response);
      return existing;
    }
    if (response.contacts.length === 0) return undefined;
    return this.add(Dialog.asUac(request, response));
  }

  /** The UAS's dialog for a dialog-creating request answered with `localTag` (provisional: early). */
  fromRequest(request: SipRequest, localTag: string, early = false): Dialog {
    return this.add(Dialog.asUas(request, localTag, early));
  }

  /** The dialog a request received within a dialog belongs to (its To tag is ours, its From tag the peer's). */
  match(request: SipRequest): Dialog | undefined {
    const local = request.toTag;
    const remote = request.fromTag;
    if (local === undefined || remote === undefined) return undefined;
    return this.byKey.get(dialogKey(request.callId, local, remote));
  }

  get(callId: string, localTag: string, remoteTag: string): Dialog | undefined {
    return this.byKey.get(dialogKey(callId, localTag, remoteTag));
  }

  /** Every dialog of a Call-ID and local tag: the early dialogs of one forked request, and the confirmed one. */
  ofRequest(request: SipRequest): Dialog[] {
    const out: Dialog[] = [];
    for (const d of this.byKey.values()) if (d.callId === request.callId && d.localTag === request.fromTag) out.push(d);
    return out;
  }

  /** Takes a dialog made elsewhere (restored from a store) into the index. */
  adopt(dialog: Dialog): Dialog {
    return this.add(dialog);
  }

  /** Terminates a dialog and forgets it. */
  end(dialog: Dialog): void {
    dialog.terminate();
    this.forget(dialog);
  }

  /** Forgets a dialog that has terminated (after a BYE, a 481 or 408 to a request within it). */
  forget(dialog: Dialog): void {
    if (this.byKey.get(dialog.key) === dialog) this.byKey.delete(dialog.key);
  }

  private add(dialog: Dialog): Dialog {
    this.byKey.set(dialog.key, dialog);
    return dialog;
  }
}
