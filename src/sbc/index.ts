export * from './config.js';
export * from './identity.js';
export * from './limits.js';
export * from './relay.js';
export * from './sbc.js';
export * from './select.js';
export * from './factory.js';
export * from './sdp.js';
