import { startTestServer, type TestServer } from '../helpers/server.js';
import type { ServerOverrides } from '../../src/server/server.js';
import { TestUa } from './ua.js';

export const DOMAIN = 'sipway.test';

/**
 * A server on loopback serving sipway.test, with registration unauthenticated (most tests are about routing) and
 * callers unauthenticated unless the test asks for it. Closes the UAs it hands out when stopped.
 */
export async function startProxy(proxy: Record<string, unknown> = {}, config: Record<string, unknown> = {}, overrides: ServerOverrides = {}) {
  const ts: TestServer = await startTestServer(
    { domains: [DOMAIN], auth: { register: false }, proxy: { authenticateCallers: false, ...proxy }, ...config },
    overrides,
  );
  const uas: TestUa[] = [];
  return {
    ts,
    port: ts.port,
    proxy: () => ts.server.proxy,
    /** A UDP UA that closes with the server. */
    async ua(name: string): Promise<TestUa> {
      const ua = await TestUa.udp(name);
      uas.push(ua);
      return ua;
    },
    async tcpUa(name: string): Promise<TestUa> {
      const ua = await TestUa.tcp(ts.tcpPort!, name);
      uas.push(ua);
      return ua;
    },
    async stop(): Promise<void> {
      for (const ua of uas) ua.close();
      await ts.stop();
    },
  };
}

export type ProxyHarness = Awaited<ReturnType<typeof startProxy>>;
