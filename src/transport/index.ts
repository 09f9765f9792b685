export * from './types.js';
export * from './response-route.js';
export { advertisedHostname, parseListenSpec, formatListenSpec, hostPort, isInvalidName, normalizeAddress } from './address.js';
export { stampVia, viaDestination } from './via-stamp.js';
export {
  TransportLayer,
  RECEIVE_CHANNEL,
  SEND_CHANNEL,
  type TransportLayerOptions,
  type TransportStats,
  type ReceiveEvent,
  type SendEvent,
} from './transport-layer.js';
export { DnsSipResolver, DNS_RESOLVER_DEFAULTS, type DnsSipResolverOptions, type ResolvedTarget, type SipResolver } from './resolver.js';
export { FlowTokens, flowOf, cameOver, type Flow, type FlowTokenResult } from './flow-token.js';
