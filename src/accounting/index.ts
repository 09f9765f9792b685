export {
  type AccountingOptions,
  type CallAccounting,
  type CalleePresence,
  Accounting,
  DEFAULT_CALL_SWEEP_INTERVAL_MS,
  DEFAULT_MAX_CALL_DURATION_MS,
  DEFAULT_MAX_OPEN_CALLS,
  missedCause,
} from './accounting.js';
