/**
 * What the transport layer counts (TransportLayer.stats()). One object is shared with the connections, their
 * listeners and ConnectionAdmission, which count into it directly.
 */
export interface TransportStats {
  /** Messages parsed and handed to the receiver. */
  received: number;
  sent: number;
  parseErrors: number;
  dropped: number;
  badRequestsAnswered: number;
  /** Messages that arrived here but belong to another worker's call, passed on to it. */
  passedToWorkers: number;
  connectionsOpen: number;
  /** Stream sockets counted against maxConnections, handshakes included. */
  socketsOpen: number;
  connectionsRejected: number;
  /** Connections without a complete message yet, closed to make room (ConnectionAdmission). */
  connectionsEvicted: number;
  /** Connections closed for not completing a message within messageReadTimeoutMs. */
  connectionsTimedOut: number;
  /** Sockets the peer had reset before they were accepted: their address unknown, closed unread. */
  connectionsLostBeforeAccept: number;
  handshakeFailures: number;
  /** WebSocket protocol errors (bad frames, messages over the limits), each closing its connection. */
  streamProtocolErrors: number;
  /** Octets of TCP/TLS messages begun but not yet complete, over all connections (what slow senders hold). */
  partialMessageBytes: number;
  /** Messages the flood guard kept out (over budget, or from a banned source). */
  floodDropped: number;
  /** Connected UDP sockets watching destinations that have not answered yet (UdpProbes), a gauge. */
  udpProbesOpen: number;
  /** Paths being watched for a transaction (connections by peer or flow), a gauge. */
  pathsWatched: number;
}

/** The counters TransportLayer keeps; stats() adds the gauges read from the connection table and admission. */
export function transportCounters(): Omit<TransportStats, 'connectionsOpen' | 'socketsOpen' | 'udpProbesOpen' | 'pathsWatched'> {
  return {
    received: 0,
    sent: 0,
    parseErrors: 0,
    dropped: 0,
    badRequestsAnswered: 0,
    passedToWorkers: 0,
    connectionsRejected: 0,
    connectionsEvicted: 0,
    connectionsTimedOut: 0,
    connectionsLostBeforeAccept: 0,
    handshakeFailures: 0,
    streamProtocolErrors: 0,
    partialMessageBytes: 0,
    floodDropped: 0,
  };
}
