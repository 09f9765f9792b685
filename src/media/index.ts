export * from './g711.js';
export * from './rtp-stream.js';
export * from './wav.js';
export * from './pcmu-sdp.js';
export * from './media-relay.js';
export * from './rtpengine.js';
