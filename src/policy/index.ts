export { defaultPolicy } from './default-policy.js';
export { NO_DECISION, PolicyEngine } from './engine.js';
export { PolicyLoadError, PolicyLoader } from './loader.js';
export { authenticate, inDialog, location, maxForwards, natDetect, noOpenRelay, relay, sanity } from './plugins.js';
export {
  definePolicy,
  type BranchContext,
  type FailureContext,
  type ForkMode,
  type HeaderAccess,
  type LookupResult,
  type MessageView,
  type RelayOptions,
  type RequestContext,
  type ResponseContext,
  type RoutingPolicy,
  type Source,
  type Target,
  type TargetSpec,
} from './types.js';
