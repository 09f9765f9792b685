/**
 * Receiver statistics of one RTP source (RFC 3550 appendix A): packets lost from the sequence numbers (A.1, A.3) and
 * the interarrival jitter (A.8). Written for a forwarding path: `packet` takes numbers only and allocates nothing.
 */

const RTP_SEQ_MOD = 1 << 16;
/** A.1: a jump of more than this many sequence numbers ahead is taken for a restart, not for loss. */
const MAX_DROPOUT = 3000;
/** A.1: a packet up to this many numbers behind the highest is late or duplicated, not a restart. */
const MAX_MISORDER = 100;
/** A.1: sequential packets needed before a new source is believed. */
const MIN_SEQUENTIAL = 2;

export class RtpSourceStats {
  /** The SSRC of the source being counted; -1 before the first packet. */
  ssrc = -1;
  /** Packets counted as received for the current source (A.1 `received`). */
  received = 0;
  private baseSeq = 0;
  private maxSeq = 0;
  private cycles = 0;
  private badSeq = RTP_SEQ_MOD + 1;
  private probation = 0;
  /** Losses of earlier sources (an SSRC change or a sequence restart starts counting afresh). */
  private lostBefore = 0;
  /** A.8 `jitter`, in timestamp units of `rate`. */
  private jitter = 0;
  private rate = 0;
  private lastTs = 0;
  private lastArrival = 0;

  /**
   * One packet of the source: its sequence number, RTP timestamp and SSRC, when it arrived (milliseconds), and the
   * clock rate of its payload type (0: leave the jitter alone, as for RFC 4733 events, whose packets all carry the
   * event's first timestamp).
   */
  packet(seq: number, timestamp: number, ssrc: number, arrivalMs: number, clockRate: number): void {
    if (ssrc !== this.ssrc) {
      this.lostBefore += this.currentLost();
      this.ssrc = ssrc;
      this.initSeq(seq);
      this.maxSeq = (seq - 1) & 0xffff;
      this.probation = MIN_SEQUENTIAL;
      this.rate = 0;
    }
    this.updateSeq(seq);
    if (clockRate <= 0) return;
    if (clockRate === this.rate) {
      // A.8 with the two differences taken apart: the arrival gap in timestamp units minus the timestamp gap, the
      // latter as a signed 32-bit difference so that the timestamp's wrap at 2^32 is no jump.
      let d = ((arrivalMs - this.lastArrival) * clockRate) / 1000 - ((timestamp - this.lastTs) | 0);
      if (d < 0) d = -d;
      this.jitter += (d - this.jitter) / 16;
    } else {
      // A payload of another clock: its timestamps do not compare with the last ones.
      this.rate = clockRate;
    }
    this.lastTs = timestamp;
    this.lastArrival = arrivalMs;
  }

  /** A.3: packets expected minus received, over every source seen; never negative (duplicates can outnumber loss). */
  get lost(): number {
    return this.lostBefore + this.currentLost();
  }

  /** The interarrival jitter in milliseconds (0 before two packets of one clock). */
  get jitterMs(): number {
    return this.rate === 0 ? 0 : (this.jitter * 1000) / this.rate;
  }

  private currentLost(): number {
    if (this.ssrc < 0 || this.received === 0) return 0;
    const expected = this.cycles + this.maxSeq - this.baseSeq + 1;
    return Math.max(0, expected - this.received);
  }

  private initSeq(seq: number): void {
    this.baseSeq = seq;
    this.maxSeq = seq;
    this.badSeq = RTP_SEQ_MOD + 1;
    this.cycles = 0;
    this.received = 0;
  }

  /** A.1 update_seq. */
  private updateSeq(seq: number): void {
    const udelta = (seq - this.maxSeq) & 0xffff;
    if (this.probation > 0) {
      if (seq === ((this.maxSeq + 1) & 0xffff)) {
        this.probation--;
        this.maxSeq = seq;
        if (this.probation === 0) {
          this.initSeq(seq);
          this.received++;
        }
      } else {
        this.probation = MIN_SEQUENTIAL - 1;
        this.maxSeq = seq;
      }
      return;
    }
    if (udelta < MAX_DROPOUT) {
      // In order, with a permissible gap; a smaller number means the sequence wrapped.
      if (seq < this.maxSeq) this.cycles += RTP_SEQ_MOD;
      this.maxSeq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
      // A very large jump: believed only when the next packet follows it (the source restarted).
      if (seq === this.badSeq) {
        this.lostBefore += this.currentLost();
        this.initSeq(seq);
      } else {
        this.badSeq = (seq + 1) & 0xffff;
        return;
      }
    }
    // Otherwise a duplicate or a late packet: counted as received, as A.1 does.
    this.received++;
  }
}
