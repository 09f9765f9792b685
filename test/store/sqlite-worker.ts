/**
 * A stand-in for one `serve --workers N` worker, spawned by test/store/sqlite-store.test.ts: opens the stores of
 * a data directory, prints "ready", waits for a line on stdin so every worker starts writing at once, then
 * registers `count` distinct contacts on one shared AOR and prints "done".
 *
 * usage: node sqlite-worker.js <dataDir> <aor> <workerName> <count>
 */
import { createInterface } from 'node:readline';
import { bindingKey, openStores, type Binding } from '../../src/store/index.js';
import { SystemClock } from '../../src/util/clock.js';

const [dataDir, aor, worker, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!dataDir || !aor || !worker || !Number.isSafeInteger(count)) {
  process.stderr.write('usage: sqlite-worker.js <dataDir> <aor> <workerName> <count>\n');
  process.exit(2);
}

const clock = new SystemClock();
const stores = await openStores({ dataDir }, clock);
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

for (let n = 0; n < count; n++) {
  const now = clock.now();
  const b: Binding = {
    aor,
    contact: `sip:${worker}-${n}@192.0.2.10:5060`,
    contactParams: {},
    expiresAt: now + 3_600_000,
    q: 1,
    callId: `${worker}-${n}@192.0.2.10`,
    cseq: 1,
    path: [],
    source: { transport: 'udp', address: '192.0.2.10', port: 5060 },
    registeredAt: now,
    node: worker,
  };
  await stores.location.modify(aor, (current) => ({
    next: [...current.filter((x) => bindingKey(x) !== bindingKey(b)), b],
    result: undefined,
  }));
  // Yields between registrations, as a worker serving SIP does, so the processes' transactions interleave.
  await new Promise((resolve) => setImmediate(resolve));
}
await stores.close();
process.stdout.write('done\n');
