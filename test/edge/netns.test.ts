/**
 * The lab helper itself: namespaces of a process that died are removed by the next lab, a lab's destroy leaves no
 * namespace or process behind, and the NAT router masquerades a private host behind its public address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { labOrSkip } from '../helpers/netns.js';

function namespaces(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}

/** A pid that no process has now (pid_max on Linux is at most 4194304). */
function deadPid(): number {
  for (let pid = 4194000; pid < 4194304; pid++) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
  throw new Error('no free pid found');
}

test('netns lab: a dead run is cleaned up, destroy removes everything, the NAT hides the private host', { timeout: 30000 }, async (t) => {
  const stale = `swt${deadPid()}-left-behind`;
  spawnSync('ip', ['netns', 'add', stale]);
  const lab = labOrSkip(t);
  if (!lab) {
    spawnSync('ip', ['netns', 'del', stale]);
    return;
  }
  try {
    assert.ok(!namespaces().includes(stale), `the namespace ${stale} of a dead process is removed`);
    lab.network('public');
    lab.network('private');
    const server = lab.host('server', [{ network: 'public', address: '10.213.0.1' }]);
    lab.nat('nat', { network: 'public', address: '10.213.0.254' }, { network: 'private', address: '192.168.77.1' });
    const phone = lab.host('phone', [{ network: 'private', address: '192.168.77.10' }], '192.168.77.1');
    const listener = server.spawn(process.execPath, ['-e', `require('node:net').createServer((s) => { s.end(s.remoteAddress + '\\n'); }).listen(7000, '10.213.0.1', () => console.log('up'))`]);
    await new Promise<void>((resolve) => listener.stdout!.once('data', () => resolve()));
    const seen = phone.run(process.execPath, ['-e', `const s = require('node:net').connect(7000, '10.213.0.1'); s.pipe(process.stdout);`]).trim();
    assert.equal(seen, '10.213.0.254', 'the server sees the private host as the NAT router');
    const unreachable = server.run(process.execPath, ['-e', `const s = require('node:dgram').createSocket('udp4'); s.send('x', 9, '192.168.77.10', (e) => { console.log(e ? e.code : 'sent'); s.close(); })`]).trim();
    assert.equal(unreachable, 'ENETUNREACH', 'the public side has no route to the private network');
  } finally {
    await lab.destroy();
  }
  const ours = namespaces().filter((n) => n.startsWith(`swt${process.pid}-`));
  assert.deepEqual(ours, [], 'destroy removes every namespace of the lab');
});
