export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | '6xx';

export interface ProxyStats {
  /** Requests handed to the proxy (ACKs and CANCELs it handles on its own excluded). */
  requests: number;
  /** Requests sent on: statefully (one response context each, however many branches) or statelessly. */
  forwarded: number;
  /** Of `forwarded`, those sent statelessly (§16.11), ACKs for 2xx included. */
  forwardedStateless: number;
  /** Client transactions started (branches, failovers to the next address included). */
  branches: number;
  /** Responses sent upstream, forwarded or generated here, by class. */
  responses: Record<StatusClass, number>;
  /** 482 Loop Detected answered (§16.3 step 4). */
  loops: number;
  /** 483 Too Many Hops answered (§16.3 step 3). */
  tooManyHops: number;
  /** Responses matching no transaction forwarded by their Via (stateless branches, 2xx retransmissions). */
  strayForwarded: number;
  /** Responses matching no transaction that were dropped (not ours, no Via left, broadcast/multicast Via). */
  strayDropped: number;
  /** Of `strayDropped`, those whose next Via named a broadcast, multicast or unspecified address (RFC 4475 bcast). */
  broadcastDropped: number;
  /** Requests refused (403, or an ACK dropped) because their route set carried a flow token we did not issue. */
  forgedFlowTokens: number;
  /** Requests of authenticated accounts over their budget, answered 503 (flood.perAccount). */
  accountLimited: number;
  /** Response contexts alive now. */
  contexts: number;
}

/** The proxy's counters; the response contexts count their branches and responses here. */
export class ProxyCounters {
  requests = 0;
  forwarded = 0;
  forwardedStateless = 0;
  branches = 0;
  loops = 0;
  tooManyHops = 0;
  strayForwarded = 0;
  strayDropped = 0;
  broadcastDropped = 0;
  forgedFlowTokens = 0;
  accountLimited = 0;
  private readonly byClass: Record<StatusClass, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, '6xx': 0 };

  response(status: number): void {
    const key = `${Math.floor(status / 100)}xx` as StatusClass;
    if (key in this.byClass) this.byClass[key]++;
  }

  snapshot(contexts: number): ProxyStats {
    return {
      requests: this.requests,
      forwarded: this.forwarded,
      forwardedStateless: this.forwardedStateless,
      forgedFlowTokens: this.forgedFlowTokens,
      accountLimited: this.accountLimited,
      branches: this.branches,
      responses: { ...this.byClass },
      loops: this.loops,
      tooManyHops: this.tooManyHops,
      strayForwarded: this.strayForwarded,
      strayDropped: this.strayDropped,
      broadcastDropped: this.broadcastDropped,
      contexts,
    };
  }
}
