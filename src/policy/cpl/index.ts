export * from './types.js';
export { type CplLimits, DEFAULT_CPL_LIMITS, formatCplError, parseCpl } from './parse.js';
export { type CplRunOptions, DEFAULT_MAX_RING_SECONDS, DEFAULT_MAX_STEPS, runCpl } from './interpreter.js';
export { RECURRENCE_BUDGET, timeRuleMatches } from './recurrence.js';
export { Zone, canonicalZone } from './datetime.js';
export { type CplMailer, type MailMessage, type SmtpRelayOptions, SmtpRelayMailer, parseMailto } from './mail.js';
export { loadCplScript, putCplScript } from './scripts.js';
