/**
 * Follows the frame boundaries of a WebSocket byte stream (RFC 6455 §5.2) just far enough to know whether the peer
 * is in the middle of a message: inside a frame's header or payload, or between the fragments of a data message.
 * The ws library parses and validates the frames; this only lets a connection hold a peer to a message read deadline
 * without reaching into the library's state.
 */
export class WsFrameTracker {
  /** Octets of the current frame header read so far, and how long that header is (known after its second octet). */
  private header = new Uint8Array(14);
  private headerRead = 0;
  private headerLength = 2;
  private payloadLeft = 0;
  /** A data frame without FIN was seen: the message continues in later frames (§5.4). */
  private fragmented = false;

  /** Whether a message is unfinished after the bytes seen so far. */
  get inMessage(): boolean {
    return this.headerRead > 0 || this.payloadLeft > 0 || this.fragmented;
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.payloadLeft > 0) {
        const skip = Math.min(this.payloadLeft, chunk.length - i);
        this.payloadLeft -= skip;
        i += skip;
        continue;
      }
      this.header[this.headerRead++] = chunk[i++]!;
      if (this.headerRead === 2) {
        const len7 = this.header[1]! & 0x7f;
        const masked = (this.header[1]! & 0x80) !== 0;
        this.headerLength = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
      }
      if (this.headerRead >= 2 && this.headerRead === this.headerLength) this.frameHeaderDone();
    }
  }

  private frameHeaderDone(): void {
    const h = this.header;
    const len7 = h[1]! & 0x7f;
    let length = len7;
    if (len7 === 126) length = (h[2]! << 8) | h[3]!;
    else if (len7 === 127) {
      length = 0;
      for (let k = 2; k < 10; k++) length = length * 256 + h[k]!;
    }
    const opcode = h[0]! & 0x0f;
    // Control frames (opcode 8 and up) may come between fragments without ending the message.
    if (opcode < 8) this.fragmented = (h[0]! & 0x80) === 0;
    this.payloadLeft = length;
    this.headerRead = 0;
    this.headerLength = 2;
  }
}

/**
 * What one WebSocket message may cost while it arrives, beside maxPayload: the reads ws keeps until a frame is whole
 * and the fragments of one message (ws's defaults, 262,144 and 16,384, would let a peer writing one byte at a time
 * hold that many objects). A whole SIP message arrives in a few reads and one frame.
 */
export const WS_RECEIVE_LIMITS = { maxBufferedChunks: 256, maxFragments: 64 } as const;
