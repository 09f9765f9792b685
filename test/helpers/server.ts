// The in-process test server is part of the public testing kit (sipway/testing); tests keep this import path.
export { callIdOf, loopbackOnly, optionsRequest, startTestServer, tcpExchange, UdpClient, type TestServer } from '../../src/testing/server.js';
