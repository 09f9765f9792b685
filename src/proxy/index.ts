export { aggregateChallenges, selectBest } from './best-response.js';
export { loopHash, parseBranch, statefulBranch, statelessBranch, type ParsedBranch } from './branch-id.js';
export { checkProxyConfig, defaultProxyConfig, readProxyConfig, type ForkingMode, type ProxyConfig } from './config.js';
export { Forwarder, recordRouteValue, type PreparedBranch, type ProxySender } from './forwarding.js';
export { ProxyIdentity, type IdentityOptions } from './identity.js';
export { Proxy, type CallEnd, type CallStateObserver, type ProxyOptions, type ProxyRequest, type RoutingDecision } from './proxy.js';
export { ResponseContext, type ContextRequest, type FailureOutcome, type RelayHooks, type ResponseContextEnv, type ResponseVerdict } from './response-context.js';
export { processRoutes, routedCopy } from './route-processing.js';
export { forwardStatelessly, isUnroutable, strayVerdict, type StrayVerdict } from './stateless.js';
export { ProxyCounters, type ProxyStats, type StatusClass } from './stats.js';
export {
  CALL_ID_PREFIX,
  CONTACT_PARAM,
  defaultTopologyHidingConfig,
  MAX_PLAINTEXT,
  readTopologyHidingConfig,
  TOPOLOGY_PARAM,
  TopologyCodec,
  TopologyHiding,
  topologyHidingKey,
  type TopologyHidingConfig,
  type TopologyHidingOptions,
  type TopologyHidingStats,
  type TopologyKind,
} from './topology-hiding.js';
export { determineTargets, isPrivateAddress, locate, redirectContacts, type LocationService, type Target, type TargetOptions, type TargetPlan } from './target.js';
export { checkForwardable, isLooped } from './validation.js';
