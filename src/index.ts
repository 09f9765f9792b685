/**
 * `sipway`: the pieces a program composes, from the message parser up to the whole server (docs/library.md).
 * A curated list: what is here is meant for users and kept stable; the rest of src/ is internal. Routing policies
 * import from `sipway/policy`, tests from `sipway/testing`.
 */

// --- Time, errors, logging, ids -----------------------------------------------------------------------------------

/** Time is injected everywhere: SystemClock in production, FakeClock (also in sipway/testing) in tests. */
export { FakeClock, SystemClock, type Clock, type TimerHandle } from './util/clock.js';
/** SipError carries the status a fault should be answered with; ConfigError names the config field at fault. */
export { ConfigError, SipError } from './util/errors.js';
/** The pino logger every layer takes, and one that writes nothing. */
export { createLogger, silentLogger, type Logger, type LoggerConfig } from './util/logger.js';
/** Fresh branch (with the RFC 3261 magic cookie), tag and Call-ID values. */
export { newBranch, newCallId, newTag } from './util/ids.js';

// --- Messages (RFC 3261 §7, §20, §25) -----------------------------------------------------------------------------

/** Bytes to a message: never throws, bad input is a ParseError value with the status to answer it with. */
export { parseMessage, type ParseOptions, type ParseResult } from './message/parser.js';
export { ParseError, type ParseErrorCode } from './message/parse-error.js';
export { SipMessage, SipRequest, SipResponse, type AnyMessage, type MessageSource } from './message/message.js';
/** The header list of a message, read lazily and edited in place. */
export { HeaderField, Headers } from './message/headers.js';
export { AbsoluteUri, parseUri, SipUri, TelUri, tryParseUri, uriEquals, type Uri } from './message/uri.js';
export { NameAddr, parseNameAddr, parseNameAddrList } from './message/name-addr.js';
export { parseVia, parseViaList, Via } from './message/via.js';
export { Params } from './message/params.js';
/** A response to a request as §8.2.6 builds it (Via, From, To with tag, Call-ID, CSeq copied). */
export { createResponse, reasonPhrase, type ResponseOptions } from './message/response.js';
/** Message to bytes: untouched header fields are copied byte for byte. */
export { messageToString, serialize } from './message/serializer.js';
/** Splits a TCP/TLS byte stream into messages by Content-Length (§18.3). */
export { StreamFramer, type FramerSink } from './message/framer.js';
export { DEFAULT_LIMITS, type MessageLimits } from './message/limits.js';
/** The §8.2 checks of a request (mandatory headers, CSeq method, Max-Forwards...). */
export { validateRequest } from './message/validate.js';

// --- SDP (RFC 4566) -----------------------------------------------------------------------------------------------

export { parseSdp, serializeSdp, type MediaDescription, type SessionDescription, type SdpParseResult } from './sdp/index.js';
/** Offer/answer (RFC 3264): offers and answers of audio streams, the stream an exchange agreed, versions, holds. */
export {
  agreedStream,
  allRejected,
  codecsOf,
  createAnswer,
  createOffer,
  nextVersion,
  rejectingAnswer,
  PCMA,
  PCMU,
  TELEPHONE_EVENT,
  type AgreedStream,
  type AnswerOutcome,
  type Codec,
  type MediaOffer,
} from './sdp/index.js';

// --- Transport (RFC 3261 §18, RFC 3263, RFC 3581) -----------------------------------------------------------------

/** UDP, TCP, TLS, WS and WSS listeners and flows, response routing, received/rport. */
export { TransportLayer, type TransportLayerOptions, type TransportStats } from './transport/transport-layer.js';
/** Where a message goes (Destination), what listens (ListenSpec, BoundListener), and the layer interfaces. */
export type { BoundListener, Destination, ListenSpec, MessageReceiver, MessageSender, TransportName } from './transport/types.js';
export { TransportError } from './transport/types.js';
/** `udp:127.0.0.1:5060` to a ListenSpec and back. */
export { formatListenSpec, parseListenSpec } from './transport/address.js';
/** RFC 3263 next-hop resolution (NAPTR, SRV, A/AAAA) with failover order. */
export { DnsSipResolver, type DnsSipResolverOptions, type ResolvedTarget, type SipResolver } from './transport/resolver.js';

// --- Transactions (RFC 3261 §17) ----------------------------------------------------------------------------------

export {
  TransactionLayer,
  TRANSACTION_CHANNEL,
  type ClientTransaction,
  type ServerTransaction,
  type TransactionEvent,
  type TransactionLayerOptions,
  type TransactionStats,
  type TransactionUser,
} from './transaction/transaction-layer.js';
export { TransactionTimeoutError, type ClientTransactionHandlers } from './transaction/transaction.js';
/** The transaction user as an ordered chain of modules: the first that claims a message has it. */
export { TransactionUserChain, type ChainStats, type TransactionUserModule } from './transaction/tu-chain.js';
export type { InviteClientTransaction } from './transaction/invite-client.js';
export type { InviteServerTransaction } from './transaction/invite-server.js';
export type { NonInviteClientTransaction } from './transaction/non-invite-client.js';
export type { NonInviteServerTransaction } from './transaction/non-invite-server.js';
/** Our Via on an outgoing request; the CANCEL (§9.1) and the ACK for a non-2xx (§17.1.1.3) of an INVITE. */
export { addVia, buildCancel, buildNon2xxAck, newRequest, type NewRequestOptions } from './transaction/requests.js';
/** T1, T2, T4 and the timers derived from them. */
export { DEFAULT_TIMER_CONFIG, type TimerConfig } from './transaction/timers.js';

// --- Dialogs (RFC 3261 §12) ---------------------------------------------------------------------------------------

/** A dialog from either end (route set, CSeq, remote target) and the index of a UA's dialogs, forking included. */
export { Dialog, Dialogs, dialogKey, TARGET_REFRESH_METHODS, type DialogRefusal, type DialogState } from './dialog/index.js';
/** A registration kept alive: digest, 423 Min-Expires, refresh at half the granted time, unregister. */
export { RegistrationClient, type RegistrationOptions, type RegistrationResult, type RegistrationState } from './ua/index.js';
/** A user agent on sipway's stack: requests outside a dialog with digest, registrations, MESSAGE and OPTIONS answered. */
export { UserAgent, type RequestOutcome, type Transfer, type UserAgentOptions } from './ua/index.js';
/** The subscriber side of RFC 6665: `ua.subscribe(uri, event)` gives one; NOTIFYs, refresh, unsubscribe. */
export { ClientSubscription, type Notification } from './ua/index.js';
/**
 * A call from either side (§13, §14): offer/answer (RFC 3264, offers in the 2xx too), re-INVITE, UPDATE (RFC 3311),
 * glare, PRACK (RFC 3262), session timers (RFC 4028), INFO (RFC 6086), hold, cancel, BYE.
 */
export { InviteSession, type Answer, type CallOptions, type ProgressOptions, type SessionEnd, type SessionState } from './ua/index.js';
/** The pieces of a session: its offer/answer state, reliable provisionals, session timer and the UA's capabilities. */
export {
  DEFAULT_SESSION_TIMER,
  OfferAnswer,
  parseMinSE,
  parseRAck,
  parseSessionExpires,
  parseReferTo,
  parseReplaces,
  referTo,
  sipfrag,
  sipfragStatus,
  ReliableProvisionals,
  SessionTimer,
  UA_ALLOW,
  UA_EXTENSIONS,
  type OfferAnswerPhase,
  type OfferCarrier,
  type OfferHandler,
  type OfferReply,
  type RAck,
  type ReferTarget,
  type Referral,
  type ReplacesTarget,
  type SessionTimerConfig,
} from './ua/index.js';

// --- Presence (RFC 6665, RFC 3856, RFC 3903, RFC 3863) ---------------------------------------------------------------

/** The presence server and its parts: the notifier with event packages, publications, PIDF composition. */
export {
  basicPidf,
  basicStatuses,
  composePidf,
  decideWatcher,
  messageSummary,
  regInfo,
  Notifier,
  OfflineMessages,
  presenceServices,
  PresenceService,
  Publications,
  Subscription,
  watcherInfo,
  DialogStates,
  dialogInfo,
  dialogPackage,
  isDialogUpdate,
  type DialogDirection,
  type DialogEndEvent,
  type DialogEntry,
  type DialogObserver,
  type DialogPackageOptions,
  type DialogParty,
  type DialogInfoState,
  type DialogStatesOptions,
  type DialogUpdate,
  type EventPackage,
  type EventState,
  type NotifierOptions,
  type OfflineMessagesOptions,
  type PresenceServices,
  type StoreOutcome,
  type PresenceOptions,
  type Publication,
  type PublicationsOptions,
  type SubscriptionState,
  type TerminationReason,
  type WatcherDecision,
  type WatcherEntry,
} from './presence/index.js';

// --- Back-to-back user agent (RFC 7092) ---------------------------------------------------------------------------

/** An incoming call tied to a new outgoing one: provisional, final, CANCEL, offers, INFO and BYE relayed. */
export { Bridge, type BridgeEnd, type BridgeOptions, type Crossing, type SdpKind } from './b2bua/index.js';

// --- SBC (docs/sbc.md) --------------------------------------------------------------------------------------------

/** The B2BUA with topology hiding and media anchoring that `sipway serve` runs when `sbc.enabled`. */
export {
  ANONYMOUS_FROM,
  CallLimits,
  createSbc,
  defaultSbcConfig,
  hideOrigin,
  passedHeaders,
  readSbcConfig,
  Sbc,
  sbcSelector,
  secondLegIdentity,
  type SbcCallInfo,
  type SbcConfig,
  type SbcServiceOptions,
} from './sbc/index.js';

// --- Media (RFC 3550, G.711) ----------------------------------------------------------------------------------------

/** A PCMU RTP stream, its SDP, G.711 µ-law and WAV files: what `sipway call` and `answer` are made of. */
export {
  decodeAlaw,
  decodeG711,
  decodeUlaw,
  encodeAlaw,
  encodeG711,
  encodeUlaw,
  G711_ALAW,
  G711_ULAW,
  pcmuDescription,
  pcmuTarget,
  readWav,
  RtpStream,
  writeWav,
  type G711Codec,
  type G711Law,
  type RtpStartOptions,
  type RtpStats,
} from './media/index.js';

/** The media relay an SBC anchors calls on (RFC 3550): one interface, the embedded engine and rtpengine's. */
export {
  MediaRelayError,
  RtpEngineRelay,
  UdpMediaRelay,
  type MediaRelay,
  type RelayCallStats,
  type RelayLeg,
  type RelayOptions,
  type RtpEngineRelayOptions,
  type UdpMediaRelayOptions,
} from './media/index.js';

// --- Digest authentication (RFC 7616, RFC 8760) -------------------------------------------------------------------

/** Challenges and verifies REGISTER (401) and callers (407): nonces, nonce counts, failure throttle. */
export { AuthService, subscriberCredentials, type AuthResult, type AuthServiceConfig, type AuthServiceOptions, type AuthStats } from './auth/auth-service.js';
/** The digest arithmetic for both ends: HA1, the response, WWW-Authenticate and Authorization values. */
export {
  buildAuthorization,
  buildChallenge,
  computeHa1,
  computeResponse,
  parseDigestChallenge,
  parseDigestCredentials,
  selectChallenge,
  type DigestAlgorithm,
  type DigestChallenge,
  type DigestCredentials,
} from './auth/digest.js';
/** The UAC side: answers 401/407 (one retry, nonce counts), adds credentials to later requests of the same realm. */
export { DigestClient, type ClientCredentials } from './auth/digest-client.js';
/** Where AuthService finds a user's HA1s: a subscriber store, or memory for tests and small set-ups. */
export { credentialsFromPassword, MemoryCredentialStore, type Credentials, type CredentialStore } from './auth/credentials.js';

// --- Stores -------------------------------------------------------------------------------------------------------

/** Bindings and subscribers in memory, in SQLite (one node) or in Redis (a cluster); openStores picks by config. */
export {
  MemoryLocationStore,
  MemorySubscriberStore,
  openStores,
  RedisLocationStore,
  RedisSubscriberStore,
  SqliteLocationStore,
  SqliteSubscriberStore,
  type Binding,
  type LocationStore,
  type StoreConfig,
  type Stores,
  type Subscriber,
  type SubscriberStore,
} from './store/index.js';
/** Message-waiting counts per user (RFC 3842), in the same backends. */
export { MemoryMailboxStore, RedisMailboxStore, SqliteMailboxStore, type MailboxRecord, type MailboxStore } from './store/index.js';
/** Presentities' rules about their watchers, in the same backends. */
export { MemoryWatcherRulesStore, RedisWatcherRulesStore, SqliteWatcherRulesStore, type WatcherRule, type WatcherRulesRecord, type WatcherRulesStore } from './store/index.js';
/** Instant messages kept for offline users (RFC 3428), in the same backends. */
export { MemoryMessageBoxStore, RedisMessageBoxStore, SqliteMessageBoxStore, type MessageBoxRecord, type MessageBoxStore, type StoredMessage } from './store/index.js';
/** Call detail records: attempts, calls, missed calls. */
export { MemoryCdrStore, SqliteCdrStore, type CdrRecord, type CdrStore } from './store/index.js';

// --- Registrar, accounting, proxy ---------------------------------------------------------------------------------

/** REGISTER (§10.3) with Path, GRUU and Outbound, and the location lookup the proxy uses. */
export { Registrar, type RegisterResponder, type RegistrarOptions } from './registrar/registrar.js';
/** The address-of-record of a URI, as bindings are keyed. */
export { aorOf, canonicalAor } from './registrar/aor.js';
/** Keep-alive OPTIONS to phones behind NAT; bindings are dropped when they stop answering. */
export { NatKeepalive, type NatKeepaliveOptions } from './registrar/keepalive.js';
export { Accounting, type AccountingOptions, type CallAccounting } from './accounting/accounting.js';
/** The §16 proxy core: stateful and stateless forwarding, forking, response context, redirect mode. */
export { Proxy, type CallEnd, type CallStateObserver, type ProxyOptions, type ProxyRequest, type RoutingDecision } from './proxy/proxy.js';
export { defaultProxyConfig, type ProxyConfig } from './proxy/config.js';
export { TopologyCodec, TopologyHiding, type TopologyHidingOptions, type TopologyHidingStats } from './proxy/topology-hiding.js';

// --- Routing policy (everything else is in sipway/policy) ---------------------------------------------------------

/** Types a policy module's hooks; the verbs and plugins are in sipway/policy. */
export { definePolicy, type FailureContext, type RequestContext, type RoutingPolicy } from './policy/types.js';

// --- The server ---------------------------------------------------------------------------------------------------

/** The request pipeline before any service: §8.2 checks, §16.3 validation, dispatch to registrar and proxy. */
export { ServerCore, type CoreOptions, type RequestHandler, type RequestResponder } from './server/core.js';
/** The whole server as `sipway serve` runs it, for embedding: start(), stop(), reloadPolicy(). */
export { SipwayServer, type ServerOverrides } from './server/server.js';
/** A ServerConfig from defaults, config-file objects (docs/configuration.md) and files; finishConfig checks the whole. */
export { applyConfigObject, defaultConfig, finishConfig, loadConfigFile, parseListen, type ServerConfig } from './server/config.js';
