export * from './registration.js';
export * from './exchange.js';
export * from './user-agent.js';
export * from './invite-session.js';
export * from './ua-core.js';
