import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProxy } from '../proxy/harness.js';
import { projectRoot } from '../helpers/paths.js';

/** Where policies written by tests import the API from (the package's own `sipway/policy` entry point, built). */
export const POLICY_API = path.join(projectRoot, 'dist', 'src', 'policy', 'index.js');

/** A policy module's text: the API imported as `P`, then `body` (which exports the policy). */
export function policySource(body: string): string {
  return `import * as P from ${JSON.stringify(POLICY_API)};\n${body}\n`;
}

/** A proxy harness (test/proxy/harness.ts) routing with the policy `body` written to a file of its own. */
export async function startWithPolicy(body: string, o: { ext?: string; proxy?: Record<string, unknown> } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-policy-'));
  const file = path.join(dir, `routing${o.ext ?? '.mjs'}`);
  writeFileSync(file, policySource(body));
  const h = await startProxy(o.proxy ?? {}, { policy: file, admin: false });
  return {
    ...h,
    file,
    /** Replaces the policy file's text (the running policy stays until a reload). */
    rewrite: (next: string) => writeFileSync(file, policySource(next)),
    async stop(): Promise<void> {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
