export * from './dialog.js';
export * from './dialogs.js';
