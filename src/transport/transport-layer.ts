import { channel } from 'node:diagnostics_channel';
import type { RemoteInfo } from 'node:dgram';
import {
  parseMessage,
  resolveLimits,
  serialize,
  type AnyMessage,
  type MessageLimits,
  type MessageSource,
  type ParseError,
  type SipRequest,
} from '../message/index.js';
import { SystemClock, type Clock } from '../util/clock.js';
import { ConfigError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { addressFamily, bracketed, hostPort, isWildcard, normalizeAddress } from './address.js';
import type { Flow } from './flow-token.js';
import { ListenerSet } from './listener-set.js';
import { listenerSecureContext, clientTls } from './tls-settings.js';
import { WorkerFlows } from './worker-flows.js';
import { Verdict, type FloodGuard } from './flood-guard.js';
import { ConnectionAdmission } from './connection-admission.js';
import { ConnectionTable, peerKey } from './connection-table.js';
import { isOnlyNewlines, type Connection, type ConnectionContext, type ConnectionEvents, type StreamTransport } from './connection.js';
import { DEFAULT_PORTS, isReliableTransport, viaTransport } from './response-route.js';
import { faultAnswer, rateLimitedAnswer } from './fault-answer.js';
import { dial, type ClientTls } from './stream-client.js';
import { StreamListener } from './stream-listener.js';
import {
  TransportError,
  type BoundListener,
  type Destination,
  type ListenSpec,
  type MessageReceiver,
  type MessageSender,
  type TlsOptions,
  type TransportName,
} from './types.js';
import { transportCounters, type TransportStats } from './transport-stats.js';
import { UdpEndpoint, type DatagramHandler } from './udp-endpoint.js';
import { noop, pathKeys, PathWatchers } from './path-watchers.js';
import { DestinationLookup, type Resolved } from './destination-lookup.js';
import type { PathFault } from './udp-probes.js';
import { replaceTopVia, stampVia, viaDestination } from './via-stamp.js';
import type { FlowInfo, WorkerLink } from './worker-bus.js';
import { ownerWorker } from '../message/steering.js';

export interface TransportLayerOptions {
  listen: ListenSpec[];
  receiver?: MessageReceiver;
  clock?: Clock;
  logger?: Logger;
  limits?: Partial<MessageLimits>;
  /** Certificates and verification for tls: and wss: listeners and the connections we open (docs/transports.md). */
  tls?: TlsOptions;
  /** Overrides tls.verifyServer (tests and labs with self-signed peers). */
  tlsRejectUnauthorized?: boolean;
  /** Via sent-by host for listeners bound to 0.0.0.0 / :: (a public name or the NAT's public address). */
  advertisedHost?: string;
  /** Fill rport even when the client did not ask (Kamailio's force_rport), for clients behind NAT. */
  forceRport?: boolean;
  /** Per-source budgets and bans, applied before parsing (src/transport/flood-guard.ts). */
  flood?: FloodGuard;
  /** Called with every destination IP address before sending; false refuses it ('refused-destination'). */
  destinationFilter?: (address: string) => boolean;
  maxConnectionsPerSource?: number;
  maxConnections?: number;
  /** Of maxConnections, the places kept for addresses with an established flow (default a tenth). */
  reservedConnections?: number;
  /** From the first byte of a stream message until it is complete (and from accept to the first one), default 10 s. */
  messageReadTimeoutMs?: number;
  /** UDP socket receive/send buffer asked of the kernel; default 4 MiB (see UdpEndpoint). */
  udpBufferBytes?: number;
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
  /**
   * One worker of several sharing the listeners (`serve --workers`): messages are passed to the worker owning their
   * Call-ID, and writes to connections other workers hold go through them (src/transport/worker-bus.ts).
   */
  workers?: WorkerLink;
  /**
   * With several workers: the first of the workers' own UDP ports. Beside shared UDP listener i, worker k binds
   * port `workerPorts + i * count + k` on the same address and sends the requests it originates or forwards (those
   * not bound to a flow) from there, naming that port in Via. Their responses then come straight to the worker
   * holding the transaction: no wake-up of every worker on the shared socket and no pass over the worker bus.
   * Requests to a flow (a registered UA) and all responses still leave from the shared port. Every worker knows
   * every worker's ports, so a Via naming any of them is ours (§16.3 loop detection, §16.11, §18.1.2).
   */
  workerPorts?: number;
}

export type { TransportStats } from './transport-stats.js';

export const RECEIVE_CHANNEL = 'sipway:transport:receive';
export const SEND_CHANNEL = 'sipway:transport:send';

/** Published on RECEIVE_CHANNEL for every received message, parsed (`message`) or not. */
export interface ReceiveEvent {
  message?: AnyMessage;
  bytes: Buffer;
  source: MessageSource;
}

/** Published on SEND_CHANNEL for every message handed to a socket. */
export interface SendEvent {
  message: AnyMessage;
  bytes: Buffer;
  destination: Destination;
}

const receiveChannel = channel(RECEIVE_CHANNEL);
const sendChannel = channel(SEND_CHANNEL);

/**
 * §18.1.1: a request within 200 bytes of the path MTU (1500, so over 1300 bytes) must not go over UDP; it is sent
 * over TCP when we listen on TCP, with the top Via rewritten to say so.
 */
const MAX_UDP_REQUEST = 1300;

/**
 * The SIP transport layer (RFC 3261 §18): UDP, TCP, TLS, WS and WSS listeners over IPv4 and IPv6, a connection table
 * of flows, the NAT stamping of requests (RFC 3581), stateless answers to requests that cannot be parsed, and the
 * choice of socket for each outgoing message. Nothing thrown below a socket callback escapes it: faults are counted
 * and the message dropped.
 */
export class TransportLayer implements MessageSender {
  private receiver: MessageReceiver | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly limits: MessageLimits;
  private readonly table: ConnectionTable;
  private readonly admission: ConnectionAdmission;
  private readonly ctx: ConnectionContext;
  private readonly connectTimeoutMs: number;
  private readonly counters = transportCounters();
  /** Set when this is one of several workers. */
  private readonly workers: WorkerLink | undefined;
  /** Other workers' connections (with workers only). */
  private readonly remote: WorkerFlows | undefined;
  private udp: UdpEndpoint[] = [];
  /** This worker's own UDP ports (workerPorts), one per shared UDP listener, at the same index as `udp`. */
  private ownUdp: UdpEndpoint[] = [];
  /** Every UDP socket, shared or a worker's own, hands its datagrams here. */
  private readonly datagram: DatagramHandler = (bytes, remote, endpoint) => this.onDatagram(bytes, remote, endpoint);
  private streams: StreamListener[] = [];
  /** What the bound sockets advertise, and which one sends to a destination. */
  private readonly bound: ListenerSet;
  private readonly clientTls: ClientTls;
  /** Outbound connections being opened, so that concurrent sends to one peer share one connection. */
  private readonly connecting = new Map<string, Promise<Connection>>();
  private readonly targets: DestinationLookup;
  /** Transactions waiting on a stream connection (watchPath). */
  private readonly paths = new PathWatchers();
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(private readonly options: TransportLayerOptions) {
    this.receiver = options.receiver;
    this.clock = options.clock ?? new SystemClock();
    this.logger = options.logger ?? silentLogger();
    this.limits = resolveLimits(options.limits);
    this.targets = new DestinationLookup(options.destinationFilter);
    this.connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, 5000);
    this.bound = new ListenerSet(this.clock, options.advertisedHost);
    this.clientTls = clientTls(options.tls, options.tlsRejectUnauthorized);
    this.workers = options.workers && options.workers.count > 1 ? options.workers : undefined;
    const maxConnections = positive('maxConnections', options.maxConnections, 10_000);
    const reservedConnections = options.reservedConnections ?? Math.floor(maxConnections / 10);
    if (!Number.isInteger(reservedConnections) || reservedConnections < 0 || reservedConnections >= maxConnections) {
      throw new ConfigError('reservedConnections', `must be a whole number from 0 to maxConnections - 1 (${maxConnections - 1}), not ${reservedConnections}`);
    }
    const maxConnectionsPerSource = positive('maxConnectionsPerSource', options.maxConnectionsPerSource, 32);
    this.admission = new ConnectionAdmission({ maxConnections, maxConnectionsPerSource, reservedConnections }, this.clock, this.counters);
    this.table = new ConnectionTable(this.workers ? (conn, open) => this.workers!.announceFlow(open, flowInfo(conn)) : undefined);
    this.remote = this.workers ? new WorkerFlows(this.workers, this.table) : undefined;
    const events: ConnectionEvents = {
      message: (conn, bytes) => {
        const source = this.sourceOf(conn);
        if (this.admitted(bytes, source)) this.receive(bytes, source, conn.transport === 'tcp' || conn.transport === 'tls');
        else if (this.options.flood?.isBanned(source.address)) conn.destroy();
      },
      framingError: (conn, error, head) => this.onFramingError(conn, error, head),
      closed: (conn) => {
        this.table.remove(conn);
        this.paths.fail(pathKeys(conn.transport, conn.remoteAddress, conn.remotePort, conn.flowId), conn.lostError());
      },
    };
    this.ctx = {
      events,
      clock: this.clock,
      idleTimeoutMs: positive('idleTimeoutMs', options.idleTimeoutMs, 120_000),
      messageReadTimeoutMs: positive('messageReadTimeoutMs', options.messageReadTimeoutMs, 10_000),
      limits: this.limits,
      counters: this.counters,
      flowTag: this.workers ? `w${this.workers.index}.` : undefined,
    };
  }

  /** The transaction layer is built on top of the transport layer, so it is attached after construction. */
  setReceiver(receiver: MessageReceiver): void {
    this.receiver = receiver;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('TransportLayer.start() may be called once');
    const secureContext = listenerSecureContext(this.options.listen, this.options.tls);
    for (const [i, spec] of this.options.listen.entries()) {
      // Workers share each UDP socket, so they must name it alike: a binding's flow is then alive on all of them.
      const flowId = this.workers ? `udp-${this.workers.instance}-${i}` : undefined;
      if (spec.transport === 'udp') this.udp.push(new UdpEndpoint(spec, this.datagram, this.options.udpBufferBytes, flowId));
      else {
        this.streams.push(
          new StreamListener(spec, {
            ctx: this.ctx,
            admission: this.admission,
            secureContext,
            verifyClient: this.options.tls?.verifyClient ?? 'none',
            handshakeTimeoutMs: this.connectTimeoutMs,
            accepted: (conn) => this.table.add(conn),
          }),
        );
      }
    }
    const base = this.workers ? this.options.workerPorts : undefined;
    if (base !== undefined && this.workers) {
      const ports = this.udp.length * this.workers.count;
      if (!Number.isInteger(base) || base < 1 || base + ports - 1 > 65535) {
        throw new ConfigError('transport.workerPorts', `${base} leaves no room for ${ports} worker ports below 65536`);
      }
      for (const [i, shared] of this.udp.entries()) {
        const port = base + this.workerPortIndex(i, this.workers.index);
        const flowId = `udp-${this.workers.instance}-${i}-w${this.workers.index}`;
        this.ownUdp.push(new UdpEndpoint({ ...shared.spec, port }, this.datagram, this.options.udpBufferBytes, flowId));
      }
    }
    const results = await Promise.allSettled([
      ...this.udp.map((u) => u.bind()),
      ...this.ownUdp.map((u) => u.bind(true)),
      ...this.streams.map((s) => s.listen()),
    ]);
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) {
      await this.closeListeners();
      this.state = 'stopped';
      throw (results[failed] as PromiseRejectedResult).reason;
    }
    const count = this.workers?.count ?? 0;
    const workerPorts =
      base === undefined
        ? []
        : this.udp.flatMap((shared, i) =>
            Array.from({ length: count }, (_, k) => ({ spec: { ...shared.spec, port: base + this.workerPortIndex(i, k) }, localAddress: shared.localAddress, localPort: base + this.workerPortIndex(i, k) })),
          );
    this.bound.set(this.udp, this.streams, workerPorts);
    this.state = 'running';
  }

  /** Stops listening and closes every connection (gracefully, then forcibly after a grace period). */
  async stop(): Promise<void> {
    if (this.state !== 'running') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    const conns = this.table.all();
    for (const c of conns) c.close();
    await Promise.all([this.closeListeners(), ...conns.map((c) => c.closed)]);
  }

  /**
   * Whether a flow can still carry a message (RFC 5626 §5.3): a stream connection that is still open, or a UDP
   * socket we still listen on (a UDP "flow" cannot be known dead from here; keep-alives decide that).
   */
  isFlowAlive(flowId: string): boolean {
    if (this.table.flow(flowId)) return true;
    // Another worker's connection: only that worker knows; a dead one shows when the write is dropped there.
    if (this.remote?.owner(flowId) !== undefined) return true;
    return this.udp.some((u) => u.flowId === flowId);
  }

  listeners(): BoundListener[] {
    return this.bound.listeners();
  }

  listenerFor(destination: Destination | TransportName, family?: 4 | 6): BoundListener | undefined {
    if (typeof destination === 'string') return this.bound.first(destination, family);
    return this.sendingListener(destination);
  }

  /**
   * Learns which local address the kernel sends from to each of these destinations, where that decides between
   * listeners (several bound to specific addresses): call before building a request's Via for them.
   */
  learnRoutes(destinations: readonly Destination[]): Promise<void> | undefined {
    return this.bound.learnRoutes(destinations);
  }

  /**
   * Where a request for `flow` goes (RFC 5626 §5.3): over its connection while that is open, or for UDP from the
   * socket it reached to the address and port its datagrams came from. Undefined when the flow is gone.
   */
  flowDestination(flow: Flow): Destination | undefined {
    const to = { transport: flow.transport, address: flow.address, port: flow.port };
    if (flow.connectionId !== undefined) return this.isFlowAlive(flow.connectionId) ? { ...to, flowId: flow.connectionId } : undefined;
    const socket = this.udp.find((u) => u.localPort === flow.localPort && normalizeAddress(u.localAddress) === flow.localAddress);
    return socket ? { ...to, flowId: socket.flowId } : undefined;
  }

  /**
   * The bound listener that sends to `dest`: a stream's open connection is the listener it came in on (or, for one
   * we opened, the listener of its transport on its local address); otherwise the choice of `udpEndpointFor` and
   * `dial`, which this must agree with.
   */
  private sendingListener(dest: Destination): BoundListener | undefined {
    const address = dest.address.startsWith('[') ? dest.address.slice(1, -1) : dest.address;
    if (dest.transport === 'udp') {
      const i = this.udpIndexFor(dest, address);
      return i === undefined ? undefined : this.bound.udpEntry(i)?.listener;
    }
    const conn = (dest.flowId !== undefined ? this.table.flow(dest.flowId) : undefined) ?? this.table.peer(dest.transport, normalizeAddress(address), dest.port);
    return ((conn && this.bound.entryOfConnection(conn)) ?? this.bound.streamEntryFor(dest.transport, address))?.listener;
  }

  /** The listeners, and with workerPorts every worker's own ports: everything our Vias may name. */
  viaListeners(): BoundListener[] {
    return this.bound.viaListeners();
  }

  viaSentBy(destination: Destination, listener: BoundListener): string {
    if (!this.workers || this.ownUdp.length === 0 || destination.transport !== 'udp' || destination.flowId !== undefined) return listener.advertised;
    const i = this.listeners().indexOf(listener);
    const own = i >= 0 && i < this.udp.length ? this.bound.workerEntry(this.workerPortIndex(i, this.workers.index)) : undefined;
    return own?.listener.advertised ?? listener.advertised;
  }

  /** Where worker `worker`'s own port beside UDP listener `listener` is, counted from transport.workerPorts. */
  private workerPortIndex(listener: number, worker: number): number {
    return listener * this.workers!.count + worker;
  }

  isReliable(transport: string): boolean {
    return isReliableTransport(transport);
  }

  stats(): TransportStats {
    const udpProbesOpen = [...this.udp, ...this.ownUdp].reduce((n, u) => n + u.probes.size, 0);
    return { ...this.counters, connectionsOpen: this.table.size, socketsOpen: this.admission.sockets, udpProbesOpen, pathsWatched: this.paths.size };
  }

  async send(message: AnyMessage, destination?: Destination, serialized?: Buffer): Promise<void> {
    if (this.state !== 'running') throw new TransportError('no-listener', 'the transport layer is not running', destination);
    const dest = destination ?? this.defaultDestination(message);
    // An IP literal, as nearly every hop of a proxy is, needs no lookup: no promise to wait for.
    const target = this.targets.literal(dest) ?? (await this.targets.resolve(dest));
    const bytes = serialized ?? serialize(message);
    if (dest.transport !== 'udp') {
      const remoteFlow = this.remote?.remoteFlowFor(dest, target.address);
      if (remoteFlow !== undefined) {
        this.remote!.write(remoteFlow.owner, remoteFlow.flowId, bytes);
        this.sent(message, bytes, { transport: dest.transport, address: target.address, port: dest.port, flowId: remoteFlow.flowId });
        return;
      }
      const conn = await this.connectionFor(message, dest, target);
      await conn.write(bytes);
      this.sent(message, bytes, { transport: dest.transport, address: conn.remoteAddress, port: conn.remotePort, flowId: conn.flowId });
      return;
    }
    if (message.isRequest && bytes.length > MAX_UDP_REQUEST && dest.flowId === undefined && (await this.sendOverTcp(message, dest, target))) return;
    const endpoint = this.udpEndpointFor(dest, target.address, message.isRequest);
    await endpoint.send(bytes, target.address, dest.port);
    this.sent(message, bytes, { transport: 'udp', address: target.address, port: dest.port, flowId: endpoint.flowId });
  }

  async resend(bytes: Buffer, destination: Destination): Promise<void> {
    if (this.state !== 'running') throw new TransportError('no-listener', 'the transport layer is not running', destination);
    if (destination.transport !== 'udp') {
      // Retransmissions are a datagram matter (§17); over a stream only the connection it went out on will do.
      const owner = this.remote?.owner(destination.flowId);
      if (owner !== undefined) {
        this.remote!.write(owner, destination.flowId!, bytes);
        this.counters.sent++;
        return;
      }
      const conn = destination.flowId !== undefined ? this.table.flow(destination.flowId) : undefined;
      if (!conn) throw new TransportError('write', 'the connection is gone', destination);
      await conn.write(bytes);
    } else {
      const target = this.targets.literal(destination) ?? (await this.targets.resolve(destination));
      await this.udpEndpointFor(destination, target.address, !isResponseBytes(bytes)).send(bytes, target.address, destination.port);
    }
    this.counters.sent++;
  }

  // ---- receive path ----

  private onDatagram(bytes: Buffer, remote: RemoteInfo, endpoint: UdpEndpoint): void {
    // CRLF datagrams are NAT keep-alives some UAs send over UDP too; there is nothing to parse or answer.
    if (isOnlyNewlines(bytes)) return;
    const source: MessageSource = {
      transport: 'udp',
      address: normalizeAddress(remote.address),
      port: remote.port,
      localAddress: normalizeAddress(endpoint.localAddress),
      localPort: endpoint.localPort,
      flowId: endpoint.flowId,
      receivedAt: this.clock.now(),
    };
    if (this.admitted(bytes, source)) this.receive(bytes, source, false);
  }

  /**
   * The flood guard's say on a message, before any parsing: over its source's budget it is dropped (or answered
   * 503 with Retry-After, flood.action), from a banned source dropped unread.
   */
  private admitted(bytes: Buffer, source: MessageSource): boolean {
    const flood = this.options.flood;
    if (!flood) return true;
    const verdict = flood.check(source.address, bytes);
    if (verdict === Verdict.Pass) return true;
    this.counters.floodDropped++;
    if (verdict === Verdict.Refuse && flood.config.action === '503') this.refuse(bytes, source, flood.retryAfter(source.address, bytes));
    return false;
  }

  /** 503 + Retry-After to a request over its source's budget (flood.action '503'). */
  private refuse(bytes: Buffer, source: MessageSource, retryAfter: number): void {
    const answer = rateLimitedAnswer(bytes, source, retryAfter, this.limits, this.options.forceRport === true);
    if (answer) this.send(answer.response, answer.destination).catch(() => undefined);
  }

  /** A message another worker received for a call this worker owns (WorkerBusHandler.delivered). */
  receivePassed(bytes: Buffer, source: MessageSource, stream: boolean): void {
    if (this.state !== 'running') {
      this.counters.dropped++;
      return;
    }
    source.receivedAt = this.clock.now();
    this.receive(bytes, source, stream, false);
  }

  /** Writes what another worker sent on a connection this worker holds (WorkerBusHandler.write). */
  writePassed(flowId: string, bytes: Buffer): void {
    const conn = this.table.flow(flowId);
    if (!conn) {
      this.counters.dropped++;
      this.logger.debug({ flowId }, 'write for another worker dropped: the connection is gone');
      return;
    }
    this.counters.sent++;
    conn.write(bytes).catch((err: unknown) => this.logger.debug({ err, flowId }, 'write for another worker failed'));
  }

  /** Another worker opened or lost a connection (WorkerBusHandler.flow). */
  flowPassed(open: boolean, flow: FlowInfo): void {
    this.remote?.passed(open, flow);
    if (!open) this.paths.fail(pathKeys(flow.transport, flow.address, flow.port, flow.flowId), new TransportError('unreachable', `${flow.transport} connection to ${hostPort(flow.address, flow.port)} lost before an answer`));
  }

  /**
   * MessageSender.watchPath: over UDP a connected probe socket learns the destination's ICMP errors (UdpProbes); over
   * a stream the connection's loss is reported. A destination by name, or one no socket serves, is not watched.
   */
  watchPath(dest: Destination, onFault: PathFault): () => void {
    try {
      const target = this.targets.literal(dest);
      if (!target || this.state !== 'running') return noop;
      if (dest.transport === 'udp') return this.udpEndpointFor(dest, target.address, true).watch(target.address, dest.port, onFault);
      return this.paths.add(pathKeys(dest.transport, target.address, dest.port, dest.flowId), onFault);
    } catch {
      return noop;
    }
  }

  /** Workers were replaced: forget their connections and tell the new ones about this worker's (WorkerBusHandler.peersChanged). */
  peersChanged(changed: number[]): void {
    this.remote?.forget(changed);
    for (const conn of this.table.all()) if (conn.isOpen) this.workers?.announceFlow(true, flowInfo(conn));
  }

  /**
   * `stream`: Content-Length framed (TCP, TLS); datagrams and WebSocket messages are one message each. `steer`: pass
   * a message owned by another worker on (before parsing it: the owner parses).
   */
  private receive(bytes: Buffer, source: MessageSource, stream: boolean, steer = true): void {
    const workers = this.workers;
    if (steer && workers) {
      const owner = ownerWorker(bytes, workers.count);
      // A stream's framer may reuse its buffer once this returns, and the bus sends asynchronously: copy those.
      if (owner !== undefined && owner !== workers.index && workers.deliver(owner, source.transport === 'udp' ? bytes : Buffer.from(bytes), source, stream)) {
        this.counters.passedToWorkers++;
        return;
      }
    }
    try {
      const result = parseMessage(bytes, { stream, limits: this.limits });
      if (receiveChannel.hasSubscribers) receiveChannel.publish({ message: result.message, bytes, source } satisfies ReceiveEvent);
      if (!result.ok) {
        this.counters.parseErrors++;
        this.logger.debug({ error: result.error.toString(), source }, 'unparsable message');
        void this.answerOrDrop(result.message, result.error, source);
        return;
      }
      const message = result.message;
      message.source = source;
      if (message.isRequest) stampVia(message, source.address, source.port, this.options.forceRport === true);
      else if (!this.isOurVia(message)) {
        // §18.1.2: a response whose top Via we did not write is discarded.
        this.counters.dropped++;
        this.logger.debug({ via: message.via.sentBy, source }, 'response dropped: top Via sent-by is not ours');
        return;
      }
      this.counters.received++;
      if (!this.receiver) {
        this.counters.dropped++;
        return;
      }
      this.receiver.onMessage(message);
    } catch (err) {
      this.counters.dropped++;
      this.logger.warn({ err, source }, 'message dropped: error on the receive path');
    }
  }

  private onFramingError(conn: Connection, error: ParseError, head: Buffer | undefined): void {
    this.counters.parseErrors++;
    this.logger.debug({ error: error.toString(), flowId: conn.flowId }, 'stream cannot be framed; closing the connection');
    try {
      const message = head ? parseMessage(head, { limits: this.limits }).message : undefined;
      void this.answerOrDrop(message, error, this.sourceOf(conn)).finally(() => conn.close());
    } catch (err) {
      this.logger.warn({ err, flowId: conn.flowId }, 'error while answering an unframeable stream');
      conn.close();
    }
  }

  /** A request read far enough gets the stateless answer its fault calls for (faultAnswer); anything else is dropped. */
  private answerOrDrop(message: AnyMessage | undefined, error: ParseError, source: MessageSource): Promise<void> {
    const answer = faultAnswer(message, error, source, this.options.forceRport === true);
    if (!answer) {
      this.counters.dropped++;
      return Promise.resolve();
    }
    this.counters.badRequestsAnswered++;
    return this.send(answer.response, answer.destination).catch((err: unknown) => {
      this.logger.debug({ err, destination: answer.destination }, 'could not answer an unparsable request');
    });
  }

  /** §18.1.2: the top Via of a response must carry the sent-by of one of our listeners. */
  private isOurVia(response: AnyMessage): boolean {
    const via = response.via;
    return this.bound.isOurSentBy(via.hostname, via.port ?? DEFAULT_PORTS[viaTransport(via.transport) ?? 'udp']);
  }

  private sourceOf(conn: Connection): MessageSource {
    return {
      transport: conn.transport,
      address: conn.remoteAddress,
      port: conn.remotePort,
      localAddress: conn.localAddress,
      localPort: conn.localPort,
      flowId: conn.flowId,
      receivedAt: this.clock.now(),
    };
  }

  // ---- send path ----

  private defaultDestination(message: AnyMessage): Destination {
    if (message.isRequest) throw new TransportError('refused-destination', `a ${message.method} request needs a destination`);
    try {
      return viaDestination(message);
    } catch (err) {
      throw new TransportError('refused-destination', `no destination: the response has no usable Via (${(err as Error).message})`);
    }
  }

  /**
   * The flow named by the destination, else any open connection to that peer (inbound ones too, §18.2.2), else a
   * new one. A response whose connection has closed goes over a new connection to the Via's received address and
   * sent-by port (§18.2.2), not to the source port of the old connection.
   */
  private async connectionFor(message: AnyMessage, dest: Destination, target: Resolved): Promise<Connection> {
    const transport = dest.transport as StreamTransport;
    const existing = (dest.flowId && this.table.flow(dest.flowId)) || this.table.peer(transport, target.address, dest.port);
    if (existing) return existing;
    if (!message.isRequest && dest.flowId !== undefined) {
      const fallback = viaDestination(message);
      if (isReliableTransport(fallback.transport)) {
        const t = fallback.transport as StreamTransport;
        const resolved = await this.targets.resolve(fallback);
        return this.table.peer(t, resolved.address, fallback.port) ?? this.open(t, resolved, fallback.port);
      }
    }
    return this.open(transport, target, dest.port);
  }

  private open(transport: StreamTransport, target: Resolved, port: number): Promise<Connection> {
    const key = peerKey(transport, target.address, port);
    const pending = this.connecting.get(key);
    if (pending) return pending;
    const opening = this.dial(transport, target, port).finally(() => this.connecting.delete(key));
    this.connecting.set(key, opening);
    return opening;
  }

  private async dial(transport: StreamTransport, target: Resolved, port: number): Promise<Connection> {
    // Connections we open are established from the start, so never evicted.
    const slot = this.admission.admit(undefined, () => undefined);
    if (!slot) throw new TransportError('connect', 'connection limit (maxConnections) reached', { transport, address: target.address, port });
    const listener = this.bound.streamEntryFor(transport, target.address);
    let conn: Connection;
    try {
      conn = await dial({
        transport,
        address: target.address,
        port,
        servername: target.servername,
        localAddress: listener && !isWildcard(listener.localAddress) ? listener.localAddress : undefined,
        tls: this.clientTls,
        timeoutMs: this.connectTimeoutMs,
        ctx: this.ctx,
        slot,
      });
    } catch (err) {
      slot.release();
      throw err;
    }
    if (this.state !== 'running' || !conn.isOpen) {
      conn.destroy();
      throw new TransportError('connect', `${transport} connection to ${hostPort(target.address, port)} closed while it was being set up`);
    }
    this.table.add(conn);
    return conn;
  }

  /**
   * §18.1.1: sends an oversized request over TCP, rewriting our top Via to the TCP listener. Returns false (Via
   * restored) when there is no TCP listener or the connection cannot be made, so that the caller falls back to UDP.
   */
  private async sendOverTcp(request: SipRequest, dest: Destination, target: Resolved): Promise<boolean> {
    const tcp = this.bound.streamEntryFor('tcp', target.address);
    if (!tcp) return false;
    const udpVia = request.via;
    const tcpVia = udpVia.clone();
    tcpVia.transport = 'TCP';
    tcpVia.host = bracketed(tcp.host);
    tcpVia.port = tcp.advertisedPort;
    replaceTopVia(request, tcpVia);
    let conn: Connection;
    try {
      conn = await this.connectionFor(request, { transport: 'tcp', address: target.address, port: dest.port }, target);
    } catch (err) {
      if (!(err instanceof TransportError && err.kind === 'connect')) throw err;
      replaceTopVia(request, udpVia);
      return false;
    }
    const bytes = serialize(request);
    await conn.write(bytes);
    this.sent(request, bytes, { transport: 'tcp', address: conn.remoteAddress, port: conn.remotePort, flowId: conn.flowId });
    return true;
  }

  /**
   * The socket named by the destination's flow id, else the UDP socket chosen for the address (see chooseListener).
   * `request`: a request, which leaves from the worker's own port when it has one and no flow is named (viaSentBy).
   */
  private udpEndpointFor(dest: Destination, address: string, request: boolean): UdpEndpoint {
    const index = this.udpIndexFor(dest, address);
    if (index === undefined) throw new TransportError('no-listener', `no udp listener for IPv${addressFamily(address) ?? '?'} destination ${address}`, dest);
    return (request && dest.flowId === undefined ? this.ownUdp[index] : undefined) ?? this.udp[index]!;
  }

  /** Index into `udp` (and `bound`, whose UDP entries come first in the same order) of the socket for `dest`. */
  private udpIndexFor(dest: Destination, address: string): number | undefined {
    if (dest.flowId !== undefined) {
      const i = this.udp.findIndex((u) => u.flowId === dest.flowId);
      if (i >= 0) return i;
    }
    return this.bound.udpIndexFor(address);
  }

  private sent(message: AnyMessage, bytes: Buffer, destination: Destination): void {
    this.counters.sent++;
    if (sendChannel.hasSubscribers) sendChannel.publish({ message, bytes, destination } satisfies SendEvent);
  }

  // ---- lifecycle helpers ----

  private async closeListeners(): Promise<void> {
    await Promise.all([...this.udp.map((u) => u.close()), ...this.ownUdp.map((u) => u.close()), ...this.streams.map((s) => s.close())]);
  }
}

/** A response starts with its status line, `SIP/2.0 ...`; no request method starts with `SIP/`. */
function isResponseBytes(bytes: Buffer): boolean {
  return bytes.length > 4 && bytes[0] === 0x53 && bytes[1] === 0x49 && bytes[2] === 0x50 && bytes[3] === 0x2f;
}

function positive(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(field, `must be a positive number, not ${value}`);
  return value;
}

function flowInfo(conn: Connection): FlowInfo {
  return { flowId: conn.flowId, transport: conn.transport, address: conn.remoteAddress, port: conn.remotePort };
}
