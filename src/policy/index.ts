export { createDefaultPolicy, defaultPolicy, type DefaultPolicyEnv } from './default-policy.js';
export { NO_DECISION, PolicyEngine } from './engine.js';
export { PolicyLoadError, PolicyLoader } from './loader.js';
export {
  authenticate,
  gatewayAnswer,
  inDialog,
  isGatewayFailure,
  location,
  maxForwards,
  natDetect,
  nextGateway,
  noOpenRelay,
  relay,
  relayToGateways,
  sanity,
} from './plugins.js';
export { sipCgi, type SipCgiServerInfo } from './sip-cgi-plugin.js';
export { Dialplan, GatewayRouting, isInternational, isNumericDestination, normaliseNumber, numberOf, type RouteChoice } from './gateways.js';
export {
  definePolicy,
  type BranchContext,
  type FailureContext,
  type ForkMode,
  type HeaderAccess,
  type InterceptContext,
  type LookupResult,
  type MessageView,
  type RelayOptions,
  type RequestContext,
  type ResponseContext,
  type RoutingPolicy,
  type SbcOptions,
  type Source,
  type Target,
  type TargetSpec,
} from './types.js';
