export * from './registration.js';
export * from './exchange.js';
export * from './user-agent.js';
