/**
 * Heap cost per binding of the SQLite-backed location store's in-memory index (target ~1.2 KB).
 * Run: node --expose-gc dist/bench/store-memory.js [count]
 * Bindings look like a softphone behind NAT using Outbound over TLS: one per AOR, with an instance id, a
 * reg-id, one Path entry and a User-Agent drawn from a handful of products.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Binding } from '../src/store/binding.js';
import { openDatabase } from '../src/store/sqlite.js';
import { SqliteLocationStore } from '../src/store/sqlite-location-store.js';
import { SystemClock } from '../src/util/clock.js';
import { randomToken } from '../src/util/ids.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc');
  process.exit(1);
}

const count = Number(process.argv[2] ?? 100_000);
const userAgents = ['Linphone/5.2.5 (belle-sip/5.2.0)', 'Zoiper rv2.10.20.3', 'Bria 6.6.1', 'MicroSIP/3.21.3', 'Obi202/3.2.2'];

function makeBinding(i: number, now: number): Binding {
  const aor = `sip:user${100000 + i}@example.com`;
  const ip = `198.51.${(i >> 8) & 255}.${i & 255}`;
  const port = 1024 + (i % 60000);
  const instance = `<urn:uuid:${randomToken(8)}-${randomToken(4)}-4${randomToken(3)}-a${randomToken(3)}-${randomToken(12)}>`;
  return {
    aor,
    contact: `sip:user${100000 + i}@${ip}:${port};transport=tls;ob`,
    contactParams: { '+sip.instance': `"${instance}"`, 'reg-id': '1' },
    expiresAt: now + 3_600_000,
    q: 1,
    callId: `${randomToken(22)}@${ip}`,
    cseq: 1 + (i % 1000),
    path: ['<sip:edge1.example.net;lr;ob>'],
    instanceId: instance,
    regId: 1,
    source: { transport: 'tls', address: ip, port, localAddress: '203.0.113.1', localPort: 5061 },
    flowId: `tls:${ip}:${port}`,
    userAgent: userAgents[i % userAgents.length]!.slice(0),
    registeredAt: now,
    node: 'node-1',
  };
}

const dir = mkdtempSync(join(tmpdir(), 'sipway-bench-'));
const db = openDatabase(dir);
const clock = new SystemClock();
const store = new SqliteLocationStore(db, clock);

gc();
const before = process.memoryUsage().heapUsed;
const start = performance.now();
for (let i = 0; i < count; i++) {
  const b = makeBinding(i, clock.now());
  await store.modify(b.aor, () => ({ next: [b], result: undefined }));
}
const elapsed = performance.now() - start;
gc();
const after = process.memoryUsage().heapUsed;

console.log(`bindings:            ${count}`);
console.log(`heap delta:          ${((after - before) / 1024 / 1024).toFixed(1)} MiB`);
console.log(`bytes per binding:   ${Math.round((after - before) / count)}`);
console.log(`modify (write-through) rate: ${Math.round(count / (elapsed / 1000))}/s`);

await store.close();
db.close();
rmSync(dir, { recursive: true, force: true });
