import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isRfc1123GmtDate, parseUri, type SipUri } from '../../src/message/index.js';
import { canonicalAor } from '../../src/registrar/index.js';
import { openStores } from '../../src/store/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/util/errors.js';
import { DOMAIN, LEVEL, contactsOf, expiresOf, harness, register, UA_SOURCE } from './harness.js';

const AOR = `sip:alice@${DOMAIN}`;
const PHONE = 'sip:alice@192.0.2.10:50000;transport=tcp';
const DESK = 'sip:alice@192.0.2.20';

describe('registration, refresh, removal', () => {
  it('registers a contact: 200 with the binding, its exact expires and a Date; the binding records the request', async () => {
    const h = harness({ nodeId: 'node-a' });
    const res = await h.answer(register({ cseq: 7 }));
    assert.equal(res.status, 200);
    assert.deepEqual(expiresOf(res), { [PHONE]: 3600 });
    assert.ok(res.toTag, 'the 200 carries a To tag');
    assert.ok(isRfc1123GmtDate(res.headers.get('date')!));
    assert.equal(res.headers.get('require'), undefined);

    const [b] = await h.location.lookup(AOR);
    assert.ok(b);
    assert.equal(b.contact, PHONE);
    assert.equal(b.expiresAt, h.clock.now() + 3600_000);
    assert.deepEqual([b.callId, b.cseq, b.q, b.registeredAt], ['call-1@ua.example.net', 7, 1, h.clock.now()]);
    assert.deepEqual(b.source, {
      transport: 'tcp',
      address: UA_SOURCE.address,
      port: UA_SOURCE.port,
      localAddress: UA_SOURCE.localAddress,
      localPort: UA_SOURCE.localPort,
    });
    assert.equal(b.flowId, UA_SOURCE.flowId);
    assert.equal(b.userAgent, 'test-phone/1.0');
    assert.equal(b.node, 'node-a');
    assert.deepEqual(b.path, []);
  });

  it('refreshes in place: new expiry, CSeq and source; registeredAt kept', async () => {
    const h = harness();
    await h.answer(register({ cseq: 1 }));
    const first = (await h.location.lookup(AOR))[0]!;
    h.clock.advance(600_000);
    const source = { ...UA_SOURCE, port: 50_002, flowId: 'tcp:192.0.2.10:50002' };
    const res = await h.answer(register({ cseq: 2, expires: 1800, source }));
    assert.deepEqual(expiresOf(res), { [PHONE]: 1800 });
    const bindings = await h.location.lookup(AOR);
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0]!.cseq, 2);
    assert.equal(bindings[0]!.source.port, 50_002);
    assert.equal(bindings[0]!.registeredAt, first.registeredAt);
  });

  it('lists remaining seconds exactly as time passes; a binding expiring at T is gone at T', async () => {
    const h = harness();
    await h.answer(register({ contacts: [`<${DESK}>;expires=60`, `<${PHONE}>`], cseq: 1 }));
    h.clock.advance(10_000);
    assert.deepEqual(expiresOf(await h.answer(register({ contacts: [], cseq: 2 }))), { [DESK]: 50, [PHONE]: 3590 });
    h.clock.advance(49_999);
    assert.deepEqual(expiresOf(await h.answer(register({ contacts: [], cseq: 3 }))), { [DESK]: 1, [PHONE]: 3541 });
    h.clock.advance(1);
    assert.deepEqual(expiresOf(await h.answer(register({ contacts: [], cseq: 4 }))), { [PHONE]: 3540 });
  });

  it('removes one binding with expires=0 (parameter or Expires header) and keeps the others', async () => {
    const h = harness();
    await h.answer(register({ contacts: [`<${PHONE}>`, `<${DESK}>`], cseq: 1 }));
    const res = await h.answer(register({ contacts: [`<${DESK}>;expires=0`], cseq: 2 }));
    assert.deepEqual(Object.keys(expiresOf(res)), [PHONE]);
    const last = await h.answer(register({ contacts: [`<${PHONE}>`], expires: 0, cseq: 3 }));
    assert.equal(last.status, 200);
    assert.equal(last.contacts.length, 0);
    assert.deepEqual(await h.location.listAors(), []);
  });

  it('Contact: * with Expires: 0 removes every binding; otherwise, or not alone, it is a 400', async () => {
    const h = harness();
    await h.answer(register({ contacts: [`<${PHONE}>`], cseq: 1 }));
    await h.answer(register({ contacts: [`<${DESK}>`], callId: 'other-call', cseq: 1 }));

    const noZero = await h.answer(register({ contacts: ['*'], expires: 3600, cseq: 2 }));
    assert.equal(noZero.status, 400);
    assert.match(noZero.reason, /Expires: 0/);
    assert.equal((await h.answer(register({ contacts: ['*'], cseq: 2 }))).status, 400);
    const notAlone = await h.answer(register({ contacts: ['*', `<${DESK}>`], expires: 0, cseq: 2 }));
    assert.equal(notAlone.status, 400);
    assert.match(notAlone.reason, /only Contact/);
    assert.equal((await h.location.lookup(AOR)).length, 2);

    const res = await h.answer(register({ contacts: ['*'], expires: 0, cseq: 2 }));
    assert.equal(res.status, 200);
    assert.equal(res.contacts.length, 0);
    assert.deepEqual(await h.location.lookup(AOR), []);
  });

  it('a REGISTER without Contact queries the bindings and changes nothing', async () => {
    const h = harness();
    await h.answer(register({ contacts: [`<${PHONE}>`, `<${DESK}>;q=0.5`] }));
    const res = await h.answer(register({ contacts: [], callId: 'query', cseq: 1 }));
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(expiresOf(res)).sort(), [DESK, PHONE].sort());
    assert.equal((await h.location.lookup(AOR)).length, 2);
  });
});

describe('expiry policy', () => {
  it('423 with Min-Expires for a non-zero interval below the minimum; nothing is stored', async () => {
    const h = harness({ minExpires: 120 });
    const res = await h.answer(register({ contacts: [`<${PHONE}>`, `<${DESK}>;expires=119`] }));
    assert.equal(res.status, 423);
    assert.equal(res.reason, 'Interval Too Brief');
    assert.equal(res.headers.get('min-expires'), '120');
    assert.deepEqual(await h.location.lookup(AOR), []);
    assert.equal((await h.answer(register({ expires: 30 }))).status, 423);
  });

  it('shortens long intervals to the maximum, even beyond 2^32-1; a non-numeric value gets the default', async () => {
    const h = harness({ maxExpires: 7200, defaultExpires: 3600 });
    const res = await h.answer(
      register({
        contacts: [`<${PHONE}>;expires=99999`, `<${DESK}>;expires=soon`, '<sip:alice@192.0.2.30>'],
        expires: '4294967296',
      }),
    );
    assert.deepEqual(expiresOf(res), { [PHONE]: 7200, [DESK]: 3600, 'sip:alice@192.0.2.30': 7200 });
    const header = await h.answer(register({ contacts: [`<${PHONE}>`], expires: '10000000000000000000000000000', cseq: 2 }));
    assert.deepEqual(expiresOf(header), { [PHONE]: 7200, [DESK]: 3600, 'sip:alice@192.0.2.30': 7200 });
  });

  it('configuration is checked', () => {
    assert.throws(() => harness({ minExpires: 600, defaultExpires: 300 }), ConfigError);
    assert.throws(() => harness({ maxExpires: -1 }), ConfigError);
    assert.throws(() => harness({ maxBindingsPerAor: 0 }), ConfigError);
    assert.throws(() => harness({ domains: [] }), ConfigError);
    assert.throws(() => harness({ gruuSecret: 'short' }), ConfigError);
  });
});

describe('RFC 3261 §10.3 step 7 ordering', () => {
  it('same Call-ID with a CSeq not above the stored one aborts with 500 and changes nothing', async () => {
    const h = harness();
    await h.answer(register({ contacts: [`<${PHONE}>`], cseq: 5 }));
    for (const cseq of [5, 4]) {
      const res = await h.answer(register({ contacts: [`<${PHONE}>`, `<${DESK}>`], expires: 0, cseq }));
      assert.equal(res.status, 500);
      assert.match(res.reason, /out of order/);
    }
    const wildcard = await h.answer(register({ contacts: ['*'], expires: 0, cseq: 5 }));
    assert.equal(wildcard.status, 500);
    assert.deepEqual((await h.location.lookup(AOR)).map((b) => b.contact), [PHONE]);
  });

  it('another Call-ID may update the binding whatever its CSeq (a rebooted phone)', async () => {
    const h = harness();
    await h.answer(register({ cseq: 500 }));
    const res = await h.answer(register({ callId: 'after-reboot', cseq: 1, expires: 600 }));
    assert.deepEqual(expiresOf(res), { [PHONE]: 600 });
    assert.equal((await h.location.lookup(AOR))[0]!.callId, 'after-reboot');
  });
});

describe('contacts', () => {
  it('q-values order the bindings; a bad q is a 400', async () => {
    const h = harness();
    const res = await h.answer(
      register({ contacts: [`<${DESK}>;q=0.5`, `<${PHONE}>;q=1.0`, '<sip:alice@192.0.2.30>;q=0'] }),
    );
    const listed = contactsOf(res);
    assert.equal(listed.get(DESK)!.params.get('q'), '0.5');
    assert.equal(listed.get(PHONE)!.params.get('q'), undefined, 'q=1 is the default and not listed');
    assert.equal(listed.get('sip:alice@192.0.2.30')!.params.get('q'), '0');
    const lookup = await h.registrar.lookup(AOR);
    assert.deepEqual(
      lookup.targets.map((t) => [t.binding.contact, t.binding.q]),
      [
        [PHONE, 1],
        [DESK, 0.5],
        ['sip:alice@192.0.2.30', 0],
      ],
    );
    for (const q of ['1.5', '0.1234', 'high']) {
      const bad = await h.answer(register({ contacts: [`<${DESK}>;q=${q}`], cseq: 2 }));
      assert.equal(bad.status, 400, `q=${q}`);
    }
  });

  it('the 200 lists every binding of the AOR, from earlier registrations too, with their parameters', async () => {
    const h = harness();
    await h.answer(register({ contacts: [`<${PHONE}>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>"`] }));
    const res = await h.answer(register({ callId: 'desk', contacts: [`<${DESK}>;video`], expires: 1200 }));
    const listed = contactsOf(res);
    assert.deepEqual([...listed.keys()].sort(), [DESK, PHONE].sort());
    assert.equal(listed.get(PHONE)!.params.get('+sip.instance'), '"<urn:uuid:00000000-0000-0000-0000-000000000001>"');
    assert.equal(listed.get(DESK)!.params.get('video'), null);
    assert.equal(listed.get(DESK)!.params.get('expires'), '1200');
  });

  it('refuses a binding beyond maxBindingsPerAor with 403 Too Many Contacts, refreshes still pass', async () => {
    const h = harness({ maxBindingsPerAor: 2 });
    await h.answer(register({ contacts: [`<${PHONE}>`, `<${DESK}>`] }));
    const res = await h.answer(register({ contacts: ['<sip:alice@192.0.2.30>'], cseq: 2 }));
    assert.deepEqual([res.status, res.reason], [403, 'Too Many Contacts']);
    assert.equal((await h.answer(register({ contacts: [`<${DESK}>`], cseq: 3 }))).status, 200);
  });

  it('accepts sip, sips and tel contacts; other schemes, duplicates and bad syntax are 400', async () => {
    const h = harness();
    const ok = await h.answer(register({ contacts: ['<sips:alice@192.0.2.10>', '<tel:+15551234567>'] }));
    assert.equal(ok.status, 200);
    const mailto = await h.answer(register({ contacts: ['<mailto:alice@example.com>'], cseq: 2 }));
    assert.equal(mailto.status, 400);
    assert.match(mailto.reason, /mailto/);
    const twice = await h.answer(register({ contacts: [`<${DESK}>`, `<${DESK}>;expires=0`], cseq: 3 }));
    assert.equal(twice.status, 400);
    assert.match(twice.reason, /twice/);
    assert.equal((await h.answer(register({ contacts: ['<sip:alice@>'], cseq: 4 }))).status, 400);
  });
});

describe('domains and addresses of record', () => {
  it('refuses a Request-URI outside our domains with 403 and a To domain outside them with 404', async () => {
    const h = harness();
    const foreign = await h.answer(register({ requestUri: 'sip:elsewhere.example.org' }));
    assert.equal(foreign.status, 403);
    const otherAor = await h.answer(register({ to: 'sip:alice@elsewhere.example.org' }));
    assert.equal(otherAor.status, 404);
    assert.equal((await h.answer(register({ requestUri: 'sip:EXAMPLE.com' }))).status, 200);
  });

  it('canonicalises the AOR: unescaped user re-escaped canonically, lower-case host, no port or parameters', async () => {
    const h = harness();
    await h.answer(register({ to: 'sips:%61lice@Example.COM:5061;transport=tls' }));
    assert.deepEqual(await h.location.listAors(), [AOR]);
    const cases: Array<[string, string]> = [
      ['sip:alice@example.com', 'sip:alice@example.com'],
      ['sip:Alice@EXAMPLE.com', 'sip:Alice@example.com'],
      ['sip:%61%6c%69%63%65@example.com;user=ip?subject=x', 'sip:alice@example.com'],
      ['sip:j%20doe%40home@example.com', 'sip:j%20doe%40home@example.com'],
      ['sip:+1-555;phone-context=x@example.com', 'sip:+1-555;phone-context=x@example.com'],
      ['sip:caf%C3%A9@example.com', 'sip:caf%C3%A9@example.com'],
      ['sip:example.com', 'sip:example.com'],
    ];
    for (const [uri, aor] of cases) assert.equal(canonicalAor(parseUri(uri) as SipUri), aor, uri);
  });

  it('a lookup by any spelling of the AOR finds its bindings', async () => {
    const h = harness();
    await h.answer(register());
    const result = await h.registrar.lookup('sip:%61lice@EXAMPLE.COM;transport=udp');
    assert.equal(result.aor, AOR);
    assert.deepEqual(result.targets.map((t) => t.binding.contact), [PHONE]);
    assert.deepEqual(await h.registrar.lookup('tel:+15551234567'), { aor: undefined, targets: [], allFlowsFailed: false });
    assert.deepEqual((await h.registrar.lookup('not a uri')).targets, []);
  });

  it('without authentication anyone registers any AOR of a served domain (lab mode)', async () => {
    const h = harness();
    const res = await h.answer(register({ to: `sip:bob@${DOMAIN}`, from: `sip:mallory@${DOMAIN}` }));
    assert.equal(res.status, 200);
  });
});

describe('operation', () => {
  it('logs one debug line per outcome with the AOR, the contact count and the status', async () => {
    const h = harness();
    await h.answer(register({ contacts: [`<${PHONE}>`, `<${DESK}>`] }));
    await h.answer(register({ expires: 1, cseq: 2 }));
    const lines = h.logs.filter((l) => l.msg === 'REGISTER');
    assert.deepEqual(
      lines.map((l) => [l.level, l.aor, l.contacts, l.status]),
      [
        [LEVEL.debug, AOR, 2, 200],
        [LEVEL.debug, AOR, 1, 423],
      ],
    );
  });

  it('works over the SQLite store, and the bindings survive a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipway-registrar-'));
    const clock = new FakeClock();
    try {
      const stores = await openStores({ dataDir: dir }, clock);
      const h = harness({ clock, location: stores.location, subscribers: stores.subscribers });
      await h.answer(register({ contacts: [`<${PHONE}>`, `<${DESK}>;expires=60`] }));
      await h.answer(register({ contacts: [`<${DESK}>`], expires: 0, cseq: 2 }));
      await stores.close();

      clock.advance(1000);
      const reopened = await openStores({ dataDir: dir }, clock);
      const again = harness({ clock, location: reopened.location, subscribers: reopened.subscribers });
      const res = await again.answer(register({ contacts: [], cseq: 3 }));
      assert.deepEqual(expiresOf(res), { [PHONE]: 3599 });
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('records where an in-process request would be answered when it has no transport source', async () => {
    const h = harness();
    await h.answer(register({ source: null }));
    assert.deepEqual((await h.location.lookup(AOR))[0]!.source, { transport: 'tcp', address: 'ua.example.net', port: 50_000 });
  });
});
