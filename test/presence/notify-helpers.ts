import type { SipRequest, SipResponse } from '../../src/message/index.js';
import { parseText, type LoopTransport } from '../../src/testing/index.js';
import type { TransactionLayer } from '../../src/transaction/index.js';

/** The NOTIFYs a notifier sent on a loop transport, each once (Timer E's retransmissions share a Via and are left out). */
export function sentNotifies(sender: LoopTransport, keep: (m: SipRequest) => boolean = () => true): SipRequest[] {
  const seen = new Set<string>();
  return sender
    .requests('NOTIFY')
    .map((s) => s.message as SipRequest)
    .filter((m) => keep(m) && !seen.has(m.headers.get('via')!) && seen.add(m.headers.get('via')!) !== undefined);
}

/** The watcher answers `notify` with `status` (the response enters the notifier's transaction layer). */
export function answerNotify(transactions: TransactionLayer, notify: SipRequest, status: number): void {
  transactions.receive(
    parseText<SipResponse>(
      [`SIP/2.0 ${status} X`, `Via: ${notify.headers.get('via')}`, `From: ${notify.headers.get('from')}`, `To: ${notify.headers.get('to')}`, `Call-ID: ${notify.callId}`, `CSeq: ${notify.cseq.seq} NOTIFY`, 'Content-Length: 0', '', ''].join('\n'),
    ),
  );
}
