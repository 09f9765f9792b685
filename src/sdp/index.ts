export type {
  Attribute,
  Bandwidth,
  ConnectionData,
  Direction,
  MediaDescription,
  Origin,
  RepeatTimes,
  SdpLine,
  SessionDescription,
  TimeZoneAdjustment,
  Timing,
} from './session-description.js';
export { parseSdp, type SdpParseError, type SdpParseResult } from './parse.js';
export { serializeSdp } from './serialize.js';
export {
  direction,
  fmtp,
  getAttribute,
  getAttributes,
  rtpmap,
  setDirection,
  type AttributeHolder,
  type RtpMap,
} from './attributes.js';
export { effectiveConnection, rewriteConnection, type PortMapper } from './connection.js';
export { answerDirection, audioDirection, withDirection } from './offer-answer.js';
export * from './negotiation.js';
