import type { MessageSource, Uri, Via } from '../message/index.js';
import { DEFAULT_PORTS, FlowTokens, normalizeAddress, viaTransport, type BoundListener } from '../transport/index.js';

export interface IdentityOptions {
  /** Domains this server is responsible for. */
  domains: readonly string[];
  /** Whether host[:port] names this server (listener, advertised and local interface addresses). */
  isLocalHost(host: string, port: number | undefined): boolean;
  /** The bound listeners (what our Via and Record-Route values advertise). */
  listeners(): BoundListener[];
  /** What our Vias may name besides: every worker's own port (transport.workerPorts). Default: listeners(). */
  viaListeners?(): BoundListener[];
}

/** What names this proxy: served domains, its own addresses, the sent-by of its Vias and its Record-Route URIs. */
export class ProxyIdentity {
  private readonly domains: Set<string>;

  constructor(private readonly options: IdentityOptions) {
    this.domains = new Set(options.domains.map((d) => d.toLowerCase()));
  }

  isServedDomain(host: string): boolean {
    return this.domains.has(host.toLowerCase());
  }

  isLocalHost(host: string, port: number | undefined): boolean {
    return this.options.isLocalHost(host, port);
  }

  /** §16.4: a URI (Route value) that indicates this proxy: a served domain or one of our addresses. */
  isOurs(uri: Uri): boolean {
    return uri.type === 'sip' && (this.isServedDomain(uri.host) || this.options.isLocalHost(uri.hostname, uri.port));
  }

  /**
   * A URI of the form we put into Record-Route (§16.6 step 4): no user part or a flow token, `lr`, one of our
   * addresses.
   */
  isOurRecordRoute(uri: Uri): boolean {
    return uri.type === 'sip' && (uri.user === undefined || FlowTokens.isToken(uri.user)) && uri.lr && this.options.isLocalHost(uri.hostname, uri.port);
  }

  /** §16.3 step 4: a Via whose sent-by is one we advertise, so a Via this element wrote. */
  isOurSentBy(via: Via): boolean {
    const host = normalizeAddress(via.hostname);
    const port = via.port ?? DEFAULT_PORTS[viaTransport(via.transport) ?? 'udp'];
    return (this.options.viaListeners?.() ?? this.options.listeners()).some((l) => {
      const [h, p] = splitAdvertised(l.advertised);
      return p === port && normalizeAddress(h) === host;
    });
  }

  /** The listener a request arrived on (for the second Record-Route of RFC 5658). */
  inboundListener(source: MessageSource | undefined): BoundListener | undefined {
    if (!source) return undefined;
    return this.options.listeners().find(
      (l) => l.transport === source.transport && l.port === source.localPort && (l.host === source.localAddress || l.host === '0.0.0.0' || l.host === '::'),
    );
  }

  listeners(): BoundListener[] {
    return this.options.listeners();
  }
}

/** `host:port` or `[v6]:port` as advertised, split; the host without brackets. */
function splitAdvertised(advertised: string): [string, number] {
  const colon = advertised.lastIndexOf(':');
  const host = advertised.slice(0, colon);
  return [host.startsWith('[') ? host.slice(1, -1) : host, Number(advertised.slice(colon + 1))];
}
