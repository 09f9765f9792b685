import {
  createResponse,
  cseqMatchesMethod,
  optionTags,
  validateRequest,
  type SipRequest,
  type SipResponse,
  type ResponseOptions,
} from '../message/index.js';
import { storeFailure } from '../store/index.js';
import type { Logger } from '../util/logger.js';

/** What the core needs from a server transaction (the transaction layer's ServerTransaction satisfies it). */
export interface RequestResponder {
  readonly request: SipRequest;
  respond(response: SipResponse): void;
}

/** A service that takes over requests the core has validated (registrar, proxy, ...). */
export type RequestHandler<T extends RequestResponder = RequestResponder> = (req: SipRequest, tx: T) => void | Promise<void>;

export const KNOWN_METHODS = new Set([
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE',
]);

export interface CoreOptions {
  domains: string[];
  /** host or host:port forms that name this server (listener addresses, advertised names). */
  isLocalHost: (host: string, port: number | undefined) => boolean;
  supported: string[];
  logger: Logger;
  /** Methods the server itself answers (Allow). */
  serverName?: string;
}

/**
 * The request pipeline of the server before any service runs: RFC 3261 §8.2 checks for requests addressed to the
 * server itself (UAS role), §16.3 request validation for requests it would route (proxy role), then dispatch to the
 * services that are plugged in. Order matters for RFC 4475: a bad CSeq method with an unknown method is 501, not 400
 * (mismatch02), and Max-Forwards 0 is processed by an endpoint but refused by a proxy (zeromf).
 */
export class ServerCore<T extends RequestResponder = RequestResponder> {
  private readonly domains: Set<string>;
  private readonly supported: Set<string>;
  private readonly handlers = new Map<string, RequestHandler<T>>();
  private routeHandler: RequestHandler<T> | undefined;

  constructor(private readonly options: CoreOptions) {
    this.domains = new Set(options.domains.map((d) => d.toLowerCase()));
    this.supported = new Set(options.supported.map((s) => s.toLowerCase()));
  }

  /** Registers the service for a method addressed to a served domain (e.g. REGISTER -> registrar). */
  handle(method: string, handler: RequestHandler<T>): void {
    this.handlers.set(method, handler);
  }

  /** The service that routes requests to users and foreign domains (the proxy). */
  route(handler: RequestHandler<T>): void {
    this.routeHandler = handler;
  }

  get allow(): string {
    return ['OPTIONS', 'ACK', 'CANCEL', ...this.handlers.keys()].join(', ');
  }

  isServedDomain(host: string): boolean {
    return this.domains.has(host.toLowerCase());
  }

  /** True when the Request-URI names this server itself rather than a user or another domain. */
  isForServer(req: SipRequest): boolean {
    const uri = req.uri;
    if (uri.type !== 'sip') return false;
    if (uri.user !== undefined) return false;
    // A strict-routing previous hop puts our Record-Route URI (it carries `lr`) into the Request-URI: that request
    // is for the proxy to repair (§16.4), not for the server itself.
    if (this.routeHandler && uri.params.has('lr')) return false;
    return this.isServedDomain(uri.host) || this.options.isLocalHost(uri.hostname, uri.port);
  }

  onRequest(req: SipRequest, tx: T): void {
    const fault = validateRequest(req);
    if (fault) return this.reply(tx, fault.status, { reason: `Bad Request - ${fault.reason}`.slice(0, 100) });
    if (!cseqMatchesMethod(req)) {
      // mismatch02: an unknown method is reported first; a known one with a wrong CSeq is a plain 400.
      if (!KNOWN_METHODS.has(req.method)) return this.reply(tx, 501);
      return this.reply(tx, 400, { reason: 'Bad Request - CSeq method does not match the request method' });
    }
    const uri = req.uri;
    if (uri.type === 'absolute') return this.reply(tx, 416);
    // Registrations are for the registrar of the To domain, whatever else the request names (§10.3).
    const forServer = this.isForServer(req) || (req.method === 'REGISTER' && this.handlers.has('REGISTER'));
    if (forServer) return this.asUas(req, tx);
    return this.asProxy(req, tx);
  }

  private asUas(req: SipRequest, tx: T): void {
    if (!KNOWN_METHODS.has(req.method)) return this.reply(tx, 501, { headers: [['Allow', this.allow]] });
    const unsupported = optionTags(req, 'require').filter((t) => !this.supported.has(t.toLowerCase()));
    if (unsupported.length > 0 && req.method !== 'CANCEL' && req.method !== 'ACK') {
      return this.reply(tx, 420, { headers: [['Unsupported', unsupported.join(', ')]] });
    }
    const handler = this.handlers.get(req.method);
    if (handler) return this.dispatch(handler, req, tx);
    switch (req.method) {
      case 'OPTIONS':
        return this.reply(tx, 200, {
          headers: [
            ['Allow', this.allow],
            ['Accept', 'application/sdp'],
            ['Accept-Encoding', 'identity'],
            ['Accept-Language', 'en'],
            ['Supported', [...this.supported].join(', ')],
          ],
        });
      case 'CANCEL':
        // The transaction layer answers CANCELs that match an INVITE it holds; any other has nothing to cancel (§9.2).
        return this.reply(tx, 481);
      default:
        return this.reply(tx, 405, { headers: [['Allow', this.allow]] });
    }
  }

  /** §16.3 request validation for requests this server would route onwards. */
  private asProxy(req: SipRequest, tx: T): void {
    const mf = req.maxForwards;
    if (mf === 0) return this.reply(tx, 483);
    const unsupported = optionTags(req, 'proxy-require').filter((t) => !this.supported.has(t.toLowerCase()));
    if (unsupported.length > 0) return this.reply(tx, 420, { headers: [['Unsupported', unsupported.join(', ')]] });
    if (this.routeHandler) return this.dispatch(this.routeHandler, req, tx);
    const uri = req.uri;
    const local = uri.type === 'sip' && this.isServedDomain(uri.host);
    // Without a routing service a user of ours is unknown here and other domains are not relayed.
    if (local || uri.type === 'tel') return this.reply(tx, 404);
    return this.reply(tx, 403, { reason: 'Relaying Denied' });
  }

  private dispatch(handler: RequestHandler<T>, req: SipRequest, tx: T): void {
    try {
      const result = handler(req, tx);
      if (result instanceof Promise) result.catch((e: unknown) => this.fail(req, tx, e));
    } catch (e) {
      this.fail(req, tx, e);
    }
  }

  private fail(req: SipRequest, tx: RequestResponder, e: unknown): void {
    this.options.logger.error({ err: e, method: req.method, callId: req.callId }, 'request handler failed');
    const failure = storeFailure(e);
    try {
      this.reply(tx, 500, failure === undefined ? {} : { reason: `Server Internal Error - ${failure}` });
    } catch {
      // The transaction may already have a final response.
    }
  }

  reply(tx: RequestResponder, status: number, options: ResponseOptions = {}): void {
    const res = createResponse(tx.request, status, options);
    if (this.options.serverName) res.headers.append('Server', this.options.serverName);
    tx.respond(res);
  }
}
