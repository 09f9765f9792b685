import { randomInt } from 'node:crypto';
import type { SipRequest, SipResponse } from '../message/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';

/** RAck (RFC 3262 §7.2): the RSeq of the provisional acknowledged and the CSeq of its request. */
export interface RAck {
  rseq: number;
  cseq: number;
  method: string;
}

const RACK = /^\s*(\d{1,10})\s+(\d{1,10})\s+([A-Za-z!%*_+`'~.-]+)\s*$/;

export function parseRAck(value: string | undefined): RAck | undefined {
  const m = value === undefined ? null : RACK.exec(value);
  if (!m) return undefined;
  const rseq = Number(m[1]);
  const cseq = Number(m[2]);
  if (rseq > 0xffff_ffff || cseq > 0xffff_ffff) return undefined;
  return { rseq, cseq, method: m[3]!.toUpperCase() };
}

/** Does a Supported or Require header of `message` list `tag` (option tags compare case-insensitively)? */
export function hasOptionTag(message: SipRequest | SipResponse, header: 'supported' | 'require', tag: string): boolean {
  return message.headers.list(header).some((t) => t.toLowerCase() === tag);
}

interface Outstanding {
  response: SipResponse;
  rseq: number;
  withSdp: boolean;
}

/**
 * The UAS side of RFC 3262 §3 for one INVITE: reliable provisional responses carry RSeq (counting up by one from a
 * random start) and are sent again at T1, 2·T1, 4·T1 ... until their PRACK; one is outstanding at a time, the later
 * ones wait their turn. A provisional not PRACKed in 64·T1 makes `onUnacknowledged` run (the session rejects the
 * INVITE with a 5xx). The 2xx may not go while a provisional with SDP is unacknowledged: `sdpAcknowledged` tells.
 */
export class ReliableProvisionals {
  private nextRSeq = randomInt(1, 2 ** 31);
  private outstanding: Outstanding | undefined;
  private readonly waiting: Outstanding[] = [];
  private retransmit: TimerHandle | undefined;
  private giveUp: TimerHandle | undefined;
  private settledWaiters: Array<() => void> = [];
  /**
   * Reliable provisionals still unacknowledged when the final response went (allowed without SDP, §3): their late
   * PRACKs are answered 200, not 481, as most stacks do; the caller did nothing wrong.
   */
  private readonly overtaken = new Set<number>();

  constructor(
    private readonly clock: Clock,
    private readonly T1: number,
    private readonly transmit: (response: SipResponse) => void,
    private readonly onUnacknowledged: () => void,
  ) {}

  /** Sends `response` (a 101-199) reliably: Require: 100rel and the next RSeq are added here. */
  send(response: SipResponse, withSdp: boolean): void {
    response.headers.append('Require', '100rel');
    const rseq = this.nextRSeq++;
    response.headers.append('RSeq', String(rseq));
    const entry = { response, rseq, withSdp };
    if (this.outstanding === undefined) this.start(entry);
    else this.waiting.push(entry);
  }

  /**
   * A PRACK's RAck: true when it acknowledges the outstanding provisional of the INVITE of CSeq `inviteSeq` (which
   * then stops and lets the next one go), false for anything else (the PRACK is answered 481, §3).
   */
  acknowledge(rack: RAck, inviteSeq: number): boolean {
    const o = this.outstanding;
    if (rack.method !== 'INVITE' || rack.cseq !== inviteSeq) return false;
    if (this.overtaken.delete(rack.rseq)) return true;
    if (o === undefined || rack.rseq !== o.rseq) return false;
    this.stopTimers();
    this.outstanding = undefined;
    const next = this.waiting.shift();
    if (next) this.start(next);
    // A 2xx held back for this PRACK goes after the PRACK's own 200 (the caller answers that first), not before it.
    if (this.sdpAcknowledged) for (const w of this.settledWaiters.splice(0)) queueMicrotask(w);
    return true;
  }

  /** No provisional with SDP is waiting for its PRACK: a 2xx may be sent (§3). */
  get sdpAcknowledged(): boolean {
    return !(this.outstanding?.withSdp ?? false) && !this.waiting.some((w) => w.withSdp);
  }

  /** Runs `then` once sdpAcknowledged holds (at once if it does). */
  whenSdpAcknowledged(then: () => void): void {
    if (this.sdpAcknowledged) then();
    else this.settledWaiters.push(then);
  }

  /** A final response went: nothing more is sent or waited for. */
  stop(): void {
    if (this.outstanding) this.overtaken.add(this.outstanding.rseq);
    for (const w of this.waiting) this.overtaken.add(w.rseq);
    this.stopTimers();
    this.outstanding = undefined;
    this.waiting.length = 0;
    this.settledWaiters = [];
  }

  private start(entry: Outstanding): void {
    this.outstanding = entry;
    this.transmit(entry.response);
    // §3: the interval doubles with every retransmission; unlike a 2xx's it is not capped at T2.
    const resend = (interval: number): void => {
      this.retransmit = this.clock.setTimer(interval, () => {
        this.transmit(entry.response);
        resend(2 * interval);
      });
    };
    resend(this.T1);
    this.giveUp = this.clock.setTimer(64 * this.T1, () => {
      this.stop();
      this.onUnacknowledged();
    });
  }

  private stopTimers(): void {
    this.retransmit?.cancel();
    this.giveUp?.cancel();
    this.retransmit = undefined;
    this.giveUp = undefined;
  }
}
