export {
  type AccountingOptions,
  type CallAccounting,
  Accounting,
  DEFAULT_CALL_SWEEP_INTERVAL_MS,
  DEFAULT_MAX_CALL_DURATION_MS,
  DEFAULT_MAX_OPEN_CALLS,
} from './accounting.js';
