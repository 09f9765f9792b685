import assert from 'node:assert/strict';
import { runCli } from './process.js';

export interface ExpectedBinding {
  /** e.g. `sip:alice@localhost` */
  aor: string;
  /** The phone's own SIP port on 127.0.0.1, which its Contact must name. */
  port: number;
}

/**
 * Waits (bounded) until `sipway location --data DIR` shows every expected binding: phones register at start-up,
 * before anything could tell the test so.
 */
export async function waitForBindings(data: string, expected: readonly ExpectedBinding[], timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const loc = runCli(['location', '--data', data, '--json']);
    assert.equal(loc.status, 0, loc.stderr);
    const rows = JSON.parse(loc.stdout) as Array<{ aor: string; contact: string }>;
    const missing = expected.filter((e) => !rows.some((r) => r.aor === e.aor && r.contact.includes(`127.0.0.1:${e.port}`)));
    if (missing.length === 0) return;
    if (Date.now() > deadline) assert.fail(`sipway location lacks ${missing.map((e) => `${e.aor} at 127.0.0.1:${e.port}`).join(', ')}:\n${loc.stdout}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
