export * from './auth-service.js';
export * from './credentials.js';
export * from './digest.js';
export * from './nonce.js';
export * from './throttle.js';
export * from './verifier.js';
export * from './digest-client.js';
