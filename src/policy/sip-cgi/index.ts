export * from './apply.js';
export * from './environment.js';
export * from './output.js';
export * from './runner.js';
