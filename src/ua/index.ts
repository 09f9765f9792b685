export * from './registration.js';
export * from './exchange.js';
export * from './user-agent.js';
export * from './invite-session.js';
export * from './ua-core.js';
export * from './offer-answer.js';
export * from './reliable-provisional.js';
export * from './session-timer.js';
