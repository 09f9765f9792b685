import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyConfigObject, defaultConfig, loadConfigFile } from '../../src/server/config.js';
import { ConfigError } from '../../src/util/errors.js';

test('policy: resolved against the config file directory; admin: loopback HOST:PORT, or false', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-policy-config-'));
  try {
    const file = path.join(dir, 'sipway.json');
    writeFileSync(file, JSON.stringify({ policy: './routing.ts', admin: { listen: '[::1]:6090' } }));
    const c = loadConfigFile(file);
    assert.equal(c.policy, path.join(dir, 'routing.ts'));
    assert.deepEqual(c.admin, { host: '::1', port: 6090 });
    assert.deepEqual(defaultConfig().admin, { host: '127.0.0.1', port: 5090 });
    assert.equal(applyConfigObject(defaultConfig(), { admin: false }).admin, false);
    assert.throws(() => applyConfigObject(defaultConfig(), { admin: { listen: '0.0.0.0:5090' } }), (e: unknown) => e instanceof ConfigError && /not a loopback address/.test(e.message));
    assert.throws(() => applyConfigObject(defaultConfig(), { admin: { port: 1 } }), /admin\.port/);
    assert.throws(() => applyConfigObject(defaultConfig(), { policy: '' }), /policy/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
