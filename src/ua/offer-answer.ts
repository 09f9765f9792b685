/**
 * Where a session's offer/answer exchange stands (RFC 3264 §4, RFC 6337 §2): stable (no offer outstanding), or an
 * offer of ours or the peer's waiting for its answer. One INVITE session runs its exchanges one at a time (RFC 3261
 * §14, RFC 3311 §5.1): an offer while another is outstanding is refused (491 for UPDATE and re-INVITE, 500 for an
 * offer in a PRACK). An offer that is refused (a non-2xx answer to the request that carried it) rolls back.
 */
export type OfferAnswerPhase = 'stable' | 'local-offer' | 'remote-offer';

/**
 * The application's answer to an offer from the peer: an SDP answer, or a refusal (488 Not Acceptable Here when no
 * stream can be taken, 400 when the offer cannot be read).
 */
export type OfferReply = string | { status: number; reason: string };

/** What carried the peer's offer: a re-INVITE, an UPDATE, or a response to our INVITE (its 2xx or a reliable 1xx). */
export type OfferCarrier = 'INVITE' | 'UPDATE' | 'response';

/** May answer later (a B2BUA asks the other leg first): the request waits, a response's ACK or PRACK waits. */
export type OfferHandler = (offer: string, carriedBy: OfferCarrier) => OfferReply | Promise<OfferReply>;

export class OfferAnswer {
  private phaseOf: OfferAnswerPhase = 'stable';
  private localSdp: string | undefined;
  private remoteSdp: string | undefined;
  private pending: string | undefined;

  get phase(): OfferAnswerPhase {
    return this.phaseOf;
  }

  /** Our description in force: the offer or answer of ours the last completed exchange agreed. */
  get local(): string | undefined {
    return this.localSdp;
  }

  /** The peer's description in force. */
  get remote(): string | undefined {
    return this.remoteSdp;
  }

  /** The offer waiting for its answer (ours in local-offer, the peer's in remote-offer). */
  get pendingOffer(): string | undefined {
    return this.pending;
  }

  offerSent(sdp: string): void {
    this.phaseOf = 'local-offer';
    this.pending = sdp;
  }

  answerReceived(sdp: string): void {
    if (this.phaseOf !== 'local-offer') return;
    this.localSdp = this.pending;
    this.remoteSdp = sdp;
    this.settle();
  }

  offerReceived(sdp: string): void {
    this.phaseOf = 'remote-offer';
    this.pending = sdp;
  }

  answerSent(sdp: string): void {
    if (this.phaseOf !== 'remote-offer') return;
    this.remoteSdp = this.pending;
    this.localSdp = sdp;
    this.settle();
  }

  /** The offer was refused or its transaction failed: the descriptions in force stay as they were. */
  rollBack(): void {
    this.settle();
  }

  private settle(): void {
    this.phaseOf = 'stable';
    this.pending = undefined;
  }
}
