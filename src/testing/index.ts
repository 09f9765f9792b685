/**
 * `sipway/testing`: what sipway's own tests are built on, for testing code written on sipway (docs/library.md).
 * Time on a fake clock, messages through a transport without sockets, scripted messages, and a whole server
 * in-process on loopback.
 */

/** A clock that moves only when told to (advance): timers of transactions, nonces and bindings without sleeps. */
export { FakeClock } from '../util/clock.js';

/** A socketless transport that records what is sent and can deliver it to a peer layer after a latency. */
export { LoopTransport, type LoopedMessage, type LoopPeer, type LoopTransportOptions } from './loop-transport.js';

/** Scripted messages: wire bytes from readable lines, and parsed requests/responses that throw if they are not valid. */
export {
  incomingRequest,
  outgoingRequest,
  parseBytes,
  parseText,
  responseTo,
  wire,
  type ScriptedRequestOptions,
} from './messages.js';

/** A server in this process on ephemeral loopback ports, and raw clients to talk to it. */
export { callIdOf, loopbackOnly, optionsRequest, startTestServer, tcpExchange, UdpClient, type TestServer } from './server.js';

/** User agents without sockets: whole calls (offer/answer, PRACK, UPDATE, timers, transfer) on a fake clock, scripted callees. */
export { LoopUserAgent, loopUserAgents, settle, type CalleeScript, type LoopUserAgentOptions } from './loop-user-agents.js';
