export * from './event-package.js';
export * from './subscription.js';
export * from './notifier.js';
export * from './publications.js';
export * from './pidf.js';
export * from './presence-service.js';
export * from './offline-messages.js';
export * from './services.js';
