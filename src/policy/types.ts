/**
 * The public API of routing policies (`sipway/policy`): the hooks a policy module exports, in pipeline order, and
 * the contexts they get. A policy reads like a Kamailio script (request_route = onRequest, branch_route = onBranch,
 * onreply_route = onResponse, failure_route = onFailure), typed so that a wrong verb or argument is a compile error.
 */
import type { SipRequest, SipResponse } from '../message/index.js';
import type { Target } from '../proxy/index.js';

export type { Target } from '../proxy/index.js';

/** Where a request came from. */
export interface Source {
  /** udp, tcp, tls, ws, wss. */
  transport: string;
  address: string;
  port: number;
}

/** Header access on one message: names are case-insensitive, compact forms included. */
export interface HeaderAccess {
  /** The first value, or undefined. */
  get(name: string): string | undefined;
  getAll(name: string): string[];
  has(name: string): boolean;
  /** Replaces every field of that name with one. */
  set(name: string, value: string): void;
  /** Adds a field after the existing ones. */
  add(name: string, value: string): void;
  /** Removes every field of that name; returns how many went. */
  remove(name: string): number;
}

export type ForkMode = 'parallel' | 'serial';

type Awaitable<T> = T | Promise<T>;

export interface RelayOptions {
  /** All targets at once, or one after another (by the order given). Default: the `proxy.forking` setting. */
  fork?: ForkMode;
  /** Branch no-answer limit in ms (INVITE): a branch still unanswered by then is cancelled (408) and the next tried. */
  timeout?: number;
  /** Stay in the path of the dialog (Record-Route). Default: the `proxy.recordRoute` setting. */
  recordRoute?: boolean;
  /** Forward without a transaction (§16.11): first target only, no onBranch/onResponse/onFailure. */
  stateless?: boolean;
  /**
   * This relay's own hooks, in place of the policy's hooks of the same name (Kamailio's t_on_branch, t_on_reply and
   * t_on_failure armed for one relay): a plugin can follow the requests it forwards without the policy's help.
   */
  onBranch?: (ctx: BranchContext) => Awaitable<void>;
  onResponse?: (ctx: ResponseContext) => void;
  onFailure?: (ctx: FailureContext) => Awaitable<void>;
  /** The forwarding has ended with this final status (whatever ended it: an answer, a CANCEL, a failure hook). */
  onFinal?: (status: number) => void;
  /**
   * An asynchronous say over each response of this relay (not 100, not a 2xx retransmission, not once a final
   * response has gone upstream), after onResponse: RFC 3050's response invocations, an HTTP lookup. A hook that returns
   * without a promise decides at once. While its promise is pending the response is held and the later responses of
   * the same branch wait behind it; other branches and requests go on. Without a verb the response goes on as usual.
   * The promise must settle (bound your own work); one that rejects is logged and the response goes on as usual.
   * A 2xx to an INVITE always goes upstream (RFC 3261 §16.7 step 5): only `forward(edited)` applies to it.
   */
  interceptResponse?: (ctx: InterceptContext) => Awaitable<void>;
}

/** How a failure hook's new targets are tried; without them, as before. */
export type FailoverOptions = Pick<RelayOptions, 'fork' | 'timeout'>;

/** A target given to relay/redirect: a URI string, or a Target from lookup(). */
export type TargetSpec = string | Target;

/** The outcome of lookup(): the bindings of the Request-URI, or the status that says why there are none. */
export type LookupResult = { found: true; targets: Target[] } | { found: false; status: number };

/** What every context shares: the request and per-request state. */
export interface MessageView {
  readonly method: string;
  /** The Request-URI as it stands now (after rewriteUri, and after §16.4 removed our own Route). */
  readonly ruri: string;
  /** From/To URIs and tags as received. */
  readonly from: { uri: string; user: string | undefined; host: string | undefined; tag: string | undefined };
  readonly to: { uri: string; user: string | undefined; host: string | undefined; tag: string | undefined };
  readonly callId: string;
  readonly source: Source | undefined;
  /** The request has a To tag. */
  readonly inDialog: boolean;
  /** The user name the caller proved with digest (authenticate or challenge admitted it), or undefined. */
  readonly authenticatedUser: string | undefined;
  /** The parsed request as received (read it; edit through the contexts' verbs). */
  readonly request: SipRequest;
  /** Free per-request state, shared by every hook of this request. */
  readonly vars: Map<string, unknown>;
  /** A log line with the request's Call-ID and method. */
  log(message: string, fields?: Record<string, unknown>): void;
}

/** onRequest: what to do with a request (Kamailio's request_route). */
export interface RequestContext extends MessageView {
  /** Header fields of the request that is forwarded. */
  readonly headers: HeaderAccess;
  /** Whether a final decision (reply, relay, redirect) has been made. */
  readonly decided: boolean;
  /** Answers the request; nothing is forwarded. */
  reply(status: number, reason?: string, headers?: Record<string, string>): void;
  /**
   * Forwards the request: to `targets`, or without them to what the default routing finds (location lookup for
   * served domains, the Request-URI otherwise, redirect domains, 404/480 when nobody is there).
   */
  relay(targets?: readonly TargetSpec[], options?: RelayOptions): Promise<void>;
  /**
   * §16.3 steps 3-4: Max-Forwards exhausted (483) or a loop (482, our own Via with the same request hash) answers
   * the request and returns false.
   */
  validate(): boolean;
  /** No open relay: an out-of-dialog request neither from nor to a served domain is answered 403 (false). */
  checkRelay(): boolean;
  /**
   * The location service for the current Request-URI, or for `uri` (Path route sets, NAT source routing included).
   * A URI outside the served domains is found as itself. Throws on a URI that does not parse.
   */
  lookup(uri?: string): Promise<LookupResult>;
  /**
   * Digest authentication of a caller from a served domain (407). True when admitted (or when the caller is not
   * ours to verify); false when the challenge or a 403 has been sent.
   */
  authenticate(): Promise<boolean>;
  /** Like authenticate(), but also in-dialog and whatever the `proxy.authenticateCallers` setting says. */
  challenge(): Promise<boolean>;
  /** 302 with these contacts (§8.3). */
  redirect(contacts: readonly TargetSpec[]): void;
  /** Replaces the Request-URI of the forwarded request. Throws on a URI that does not parse. */
  rewriteUri(uri: string): void;
  /** Whether the final response of this request is written to call records (default: INVITE and BYE). */
  account(enabled?: boolean): void;
  /**
   * Runs a user's CPL script on this INVITE (docs/cpl.md): `outgoing`, the caller's (only for a caller of ours who
   * authenticated), or `incoming`, the script of the Request-URI's user. True when the script handled the call
   * (answered, redirected or relayed it); false without a script, or when it ended without a signalling action.
   */
  callScript(direction: 'incoming' | 'outgoing'): Promise<boolean>;
  /**
   * Hands a SUBSCRIBE of an event the presence server serves (presence) or a PUBLISH to it (Kamailio's
   * handle_presence, docs/presence.md): it answers and notifies. False when there is no presence server or the
   * request is not one it takes (a SUBSCRIBE to another event goes on to the user's phones as before).
   */
  presence(): boolean;
  /**
   * Topology hiding for this request and the dialog it starts, the proxy's stateless mode (Kamailio's topoh;
   * docs/sbc.md#stateless-topology-hiding-in-the-proxy): each side sees only itself and this server (Via,
   * Record-Route, Contact; the callee's side an encoded Call-ID), nothing stored. `false`: not hidden, whatever
   * `topologyHiding.outside` says. Call it before relay(). Requests within a hidden dialog are recognised by what we
   * put in them and are hidden without a call. Returns whether the request is hidden: false when topology hiding is
   * off (`topologyHiding.enabled`).
   */
  hideTopology(hide?: boolean): boolean;
  /**
   * Hands an initial INVITE to the SBC (docs/sbc.md): a back-to-back user agent that answers the caller, places a
   * new call (Call-ID, tags, Via, Contact of its own) through this server's proxy, hides each side's topology from the
   * other and anchors the media in its relay. False, with nothing decided, when the SBC is off (`sbc.enabled`), the
   * request is not an initial INVITE, or it is the SBC's own second leg (`fromSbc`: it is routed like any call).
   * Throws on a `target` that is not a SIP or tel URI.
   */
  sbc(options?: SbcOptions): boolean;
  /**
   * The request is the SBC's own (the second leg of a call it anchors, or a request within it) coming back through
   * the proxy: its caller was admitted on the first leg, so authenticate(), challenge() and checkRelay() admit it.
   */
  readonly fromSbc: boolean;
}

/**
 * What `ctx.sbc()` may decide for one call (docs/sbc.md); the config's `sbc` section gives everything else.
 */
export interface SbcOptions {
  /** The second leg's Request-URI; default the Request-URI as it stands now (after rewriteUri). */
  target?: string;
  /** What the per-account limits count this call against; default the authenticated user@domain, else the source address. */
  account?: string;
  /** What the per-trunk limit counts this call against; default the target's host. */
  trunk?: string;
  /** Header fields of the caller's INVITE passed on to the second leg, besides the config's `sbc.headers.pass`. */
  passHeaders?: readonly string[];
  /** The target is inside the trust domain (RFC 3325): P-Asserted-Identity goes to it. Default: its host is in `sbc.identity.trusted`. */
  trusted?: boolean;
  /** The longest the call may last, seconds (0: no limit); default `sbc.maxCallSeconds`. */
  maxCallSeconds?: number;
  /** A REFER from either party: carried out by the SBC (`transfer`) or refused 603 (`decline`); default `sbc.refer`. */
  refer?: 'transfer' | 'decline';
}

/** onBranch: one copy of the request, about to be sent to one target (Kamailio's branch_route). */
export interface BranchContext extends MessageView {
  /** The Request-URI of this branch. */
  readonly target: string;
  /** Header fields of this branch's copy. */
  readonly headers: HeaderAccess;
}

/** onResponse: a response from a branch, before it goes upstream (Kamailio's onreply_route). */
export interface ResponseContext extends MessageView {
  readonly status: number;
  readonly reason: string;
  /** The Request-URI of the branch that answered. */
  readonly target: string;
  readonly response: SipResponse;
  /** Header fields of the response that is forwarded. */
  readonly headers: HeaderAccess;
}

/** interceptResponse: a response held until the hook has decided its fate. */
export interface InterceptContext extends ResponseContext {
  /** Lets this response go on as usual, or `response` in its place: an edited copy (same status). */
  forward(response?: SipResponse): void;
  /** Does not forward it; a final one counts for the best response (§16.7 step 6) only if no other is left. */
  withhold(): void;
  /** Sends a response upstream first: a provisional one, or a final one that answers the request (pending branches are cancelled). */
  send(response: SipResponse): void;
  /** New branches to these targets, forked as the relay forks (unless a 2xx, 6xx or CANCEL has ended the search). */
  relay(targets: readonly TargetSpec[]): void;
}

/** onFailure: every branch failed (>= 300) and nothing is left to try (Kamailio's failure_route). */
export interface FailureContext extends MessageView {
  /** The best response so far (§16.7 step 6). */
  readonly status: number;
  readonly reason: string;
  readonly response: SipResponse;
  /** Tries new targets (forked as the relay was, unless `options` say otherwise); if they fail too, back here. */
  relay(targets: readonly TargetSpec[], options?: FailoverOptions): void;
  /** Answers with this instead of the best response. */
  reply(status: number, reason?: string, headers?: Record<string, string>): void;
}

/**
 * A routing policy. Every hook may be async without holding up other requests. A hook that throws answers 500 (a
 * log line carries the stack). An onRequest that returns without reply, relay or redirect gets
 * `500 Server Internal Error - policy made no decision`.
 */
export interface RoutingPolicy {
  onRequest(ctx: RequestContext): Awaitable<void>;
  onBranch?(ctx: BranchContext): Awaitable<void>;
  /** Synchronous: responses are forwarded in the order they arrive. */
  onResponse?(ctx: ResponseContext): void;
  onFailure?(ctx: FailureContext): Awaitable<void>;
}

/** Identity, for type inference and checking of a policy object: `export default definePolicy({ ... })`. */
export function definePolicy<P extends RoutingPolicy>(policy: P): P {
  return policy;
}
