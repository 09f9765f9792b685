import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { projectRoot } from '../helpers/paths.js';
import path from 'node:path';

test('an error that reaches the event loop is logged and counted, and the process goes on', () => {
  const lastResort = path.join(projectRoot, 'dist', 'src', 'util', 'last-resort.js');
  const logger = path.join(projectRoot, 'dist', 'src', 'util', 'logger.js');
  const script = `
    const { LastResort } = await import(${JSON.stringify(lastResort)});
    const { createLogger } = await import(${JSON.stringify(logger)});
    const lr = new LastResort(createLogger({ level: 'info' })).install();
    setTimeout(() => { throw new Error('thrown in a timer'); }, 1);
    setTimeout(() => void Promise.reject(new Error('rejected, unhandled')), 2);
    setTimeout(() => { console.log('still running, count=' + lr.count); }, 50);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /still running, count=2/);
  const lines = r.stdout.split('\n').filter((l) => l.includes('"msg":"uncaught error"'));
  assert.equal(lines.length, 2);
  assert.ok(lines.some((l) => /thrown in a timer/.test(l) && /"origin":"uncaughtException"/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /rejected, unhandled/.test(l) && /"origin":"unhandledRejection"/.test(l)), lines.join('\n'));
});
