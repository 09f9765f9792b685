import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUri, type SipUri } from '../../src/message/index.js';
import { TempGruuCodec } from '../../src/registrar/index.js';
import { DOMAIN, contactsOf, harness, register, UA_SOURCE } from './harness.js';

const AOR = `sip:alice@${DOMAIN}`;
const PHONE = 'sip:alice@192.0.2.10:50000;transport=tcp';
const INSTANCE = 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6';
const OTHER_INSTANCE = 'urn:uuid:0000aaaa-0000-0000-0000-000000000002';
const instanceParam = (urn: string) => `+sip.instance="<${urn}>"`;

describe('Path (RFC 3327)', () => {
  const path = ['<sip:p2.example.com;lr>', '<sip:edge.example.com;lr>'];

  it('stores the Path values in order and echoes them when the UA supports path', async () => {
    const h = harness();
    const res = await h.answer(register({ proxies: 2, path, supported: 'path' }));
    assert.equal(res.status, 200);
    assert.deepEqual(res.headers.getAll('path'), path);
    assert.deepEqual((await h.location.lookup(AOR))[0]!.path, path);
    const [target] = (await h.registrar.lookup(AOR)).targets;
    assert.deepEqual(target!.binding.path, path);
  });

  it('stores but does not echo the Path when the UA did not say it supports path', async () => {
    const h = harness();
    const res = await h.answer(register({ proxies: 1, path: [path.join(', ')] }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.has('path'), false);
    assert.deepEqual((await h.location.lookup(AOR))[0]!.path, path);
  });

  it('a malformed Path is a 400', async () => {
    const h = harness();
    assert.equal((await h.answer(register({ proxies: 1, path: ['<sip:edge.example.com;lr'] }))).status, 400);
  });
});

describe('GRUU (RFC 5627)', () => {
  const gruuRegister = (cseq = 1, extra: Parameters<typeof register>[0] = {}) =>
    register({ supported: 'gruu, path', contacts: [`<${PHONE}>;${instanceParam(INSTANCE)}`], cseq, ...extra });

  it('hands out pub-gruu and temp-gruu for a contact with an instance when the UA supports gruu', async () => {
    const h = harness();
    const res = await h.answer(gruuRegister());
    const contact = contactsOf(res).get(PHONE)!;
    assert.equal(contact.params.getUnquoted('pub-gruu'), `${AOR};gr=${INSTANCE}`);
    const temp = contact.params.getUnquoted('temp-gruu')!;
    assert.match(temp, /^sip:tgruu\.[0-9a-f]+@example\.com;gr$/);
    assert.doesNotMatch(temp, /alice|f81d4fae/, 'a temporary GRUU reveals neither the AOR nor the instance');
    assert.notEqual(contactsOf(await h.answer(gruuRegister(2))).get(PHONE)!.params.getUnquoted('temp-gruu'), temp);

    const without = await h.answer(register({ contacts: [`<${PHONE}>;${instanceParam(INSTANCE)}`], cseq: 3 }));
    assert.equal(contactsOf(without).get(PHONE)!.params.has('pub-gruu'), false);
    const noInstance = await h.answer(register({ supported: 'gruu', contacts: ['<sip:alice@192.0.2.20>'], callId: 'x' }));
    assert.equal(contactsOf(noInstance).get('sip:alice@192.0.2.20')!.params.has('pub-gruu'), false);
  });

  it('resolves both GRUUs to the bindings of that instance only', async () => {
    const h = harness();
    const res = await h.answer(gruuRegister());
    await h.answer(
      register({ callId: 'desk', contacts: [`<sip:alice@192.0.2.20>;${instanceParam(OTHER_INSTANCE)}`], supported: 'gruu' }),
    );
    const contact = contactsOf(res).get(PHONE)!;
    const pub = await h.registrar.lookup(contact.params.getUnquoted('pub-gruu')!);
    assert.deepEqual([pub.aor, pub.gruu], [AOR, 'public']);
    assert.deepEqual(pub.targets.map((t) => t.binding.contact), [PHONE]);
    const upper = await h.registrar.lookup(`${AOR};gr=${INSTANCE.toUpperCase().replace('URN:UUID', 'urn:uuid')}`);
    assert.deepEqual(upper.targets.map((t) => t.binding.contact), [PHONE], 'urn:uuid compares case-insensitively');

    const temp = await h.registrar.lookup(parseUri(contact.params.getUnquoted('temp-gruu')!) as SipUri);
    assert.deepEqual([temp.aor, temp.gruu], [AOR, 'temporary']);
    assert.deepEqual(temp.targets.map((t) => t.binding.contact), [PHONE]);
    assert.equal((await h.registrar.lookup(AOR)).targets.length, 2);
  });

  it('a temporary GRUU stays valid across refreshes and dies with the registration', async () => {
    const h = harness();
    const temp = contactsOf(await h.answer(gruuRegister(1))).get(PHONE)!.params.getUnquoted('temp-gruu')!;
    h.clock.advance(1800_000);
    await h.answer(gruuRegister(2));
    assert.equal((await h.registrar.lookup(temp)).targets.length, 1, 'a refresh keeps it');

    await h.answer(gruuRegister(3, { expires: 0 }));
    await h.answer(gruuRegister(4));
    assert.deepEqual((await h.registrar.lookup(temp)).targets, [], 'a new registration does not revive it');
  });

  it('a forged, altered or foreign temporary GRUU resolves to nothing', async () => {
    const h = harness({ gruuSecret: 'a secret of at least sixteen bytes' });
    const temp = contactsOf(await h.answer(gruuRegister())).get(PHONE)!.params.getUnquoted('temp-gruu')!;
    const token = /tgruu\.([0-9a-f]+)@/.exec(temp)![1]!;
    const flipped = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
    const foreign = new TempGruuCodec('another secret, also long enough').encode({
      aor: AOR,
      instanceId: INSTANCE,
      registeredAt: h.clock.now(),
    });
    for (const uri of [
      `sip:tgruu.${flipped}@${DOMAIN};gr`,
      `sip:tgruu.${foreign}@${DOMAIN};gr`,
      `sip:tgruu.zz@${DOMAIN};gr`,
      temp.replace(DOMAIN, 'other.example.org'),
    ]) {
      const result = await h.registrar.lookup(uri);
      assert.deepEqual([result.aor, result.targets], [undefined, []], uri);
    }
    const same = new TempGruuCodec('a secret of at least sixteen bytes');
    assert.deepEqual(same.decode(token), { aor: AOR, instanceId: INSTANCE, registeredAt: h.clock.now() });
  });
});

describe('Outbound (RFC 5626)', () => {
  const flowRegister = (extra: Parameters<typeof register>[0] = {}) =>
    register({
      supported: 'outbound, path',
      contacts: [`<${PHONE};ob>;${instanceParam(INSTANCE)};reg-id=1`],
      ...extra,
    });

  it('registers a flow: instance, reg-id and flow stored, Require: outbound in the 200', async () => {
    const h = harness();
    const res = await h.answer(flowRegister());
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('require'), 'outbound');
    const [b] = await h.location.lookup(AOR);
    assert.deepEqual([b!.instanceId, b!.regId, b!.flowId], [INSTANCE, 1, UA_SOURCE.flowId]);
  });

  it('a new REGISTER for the same instance and reg-id replaces the flow, whatever its Contact', async () => {
    const h = harness();
    await h.answer(flowRegister());
    const source = { ...UA_SOURCE, port: 50_100, flowId: 'tcp:192.0.2.10:50100' };
    await h.answer(
      flowRegister({ callId: 'new-call', contacts: [`<sip:alice@192.0.2.10:50100;transport=tcp;ob>;${instanceParam(INSTANCE)};reg-id=1`], source }),
    );
    const bindings = await h.location.lookup(AOR);
    assert.deepEqual(bindings.map((b) => [b.contact, b.flowId]), [['sip:alice@192.0.2.10:50100;transport=tcp;ob', source.flowId]]);
    await h.answer(flowRegister({ callId: 'second-flow', contacts: [`<${PHONE};ob>;${instanceParam(INSTANCE)};reg-id=2`] }));
    assert.equal((await h.location.lookup(AOR)).length, 2);
  });

  it('ignores reg-id when the UA did not put outbound in Supported, or gave no instance', async () => {
    const h = harness();
    const plain = await h.answer(flowRegister({ supported: 'path' }));
    assert.equal(plain.headers.has('require'), false);
    const noInstance = await h.answer(flowRegister({ callId: 'b', contacts: ['<sip:alice@192.0.2.20>;reg-id=1'] }));
    assert.equal(noInstance.headers.has('require'), false);
    assert.ok((await h.location.lookup(AOR)).every((b) => b.regId === undefined));
  });

  it('through a proxy, the first hop must have put ob in its Path URI, else 439', async () => {
    const h = harness();
    const noPath = await h.answer(flowRegister({ proxies: 1 }));
    assert.deepEqual([noPath.status, noPath.reason], [439, 'First Hop Lacks Outbound Support']);
    const noOb = await h.answer(flowRegister({ proxies: 1, path: ['<sip:edge.example.com;lr>'] }));
    assert.equal(noOb.status, 439);
    const lastHopOnly = await h.answer(flowRegister({ proxies: 2, path: ['<sip:core.example.com;lr;ob>', '<sip:edge.example.com;lr>'] }));
    assert.equal(lastHopOnly.status, 439, 'the first hop is the bottom Path value');
    assert.deepEqual(await h.location.lookup(AOR), []);

    const ok = await h.answer(flowRegister({ proxies: 2, path: ['<sip:core.example.com;lr>', '<sip:edge.example.com;lr;ob>'] }));
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('require'), 'outbound');
    assert.equal((await h.answer(flowRegister({ proxies: 1, supported: 'path', callId: 'plain' }))).status, 200);
  });

  it('a REGISTER with reg-id carries one Contact only', async () => {
    const h = harness();
    const res = await h.answer(
      register({ supported: 'outbound', contacts: [`<${PHONE}>;${instanceParam(INSTANCE)};reg-id=1`, '<sip:alice@192.0.2.20>'] }),
    );
    assert.equal(res.status, 400);
    assert.equal((await h.answer(flowRegister({ contacts: [`<${PHONE}>;${instanceParam(INSTANCE)};reg-id=0`] }))).status, 400);
  });

  it('lookup marks Outbound bindings whose flow is gone, so that a proxy can answer 430', async () => {
    const alive = new Set<string>([UA_SOURCE.flowId]);
    const h = harness({ isFlowAlive: (flowId) => alive.has(flowId) });
    await h.answer(flowRegister());
    let result = await h.registrar.lookup(AOR);
    assert.deepEqual(result.targets.map((t) => [t.outbound, t.flowFailed]), [[true, false]]);
    assert.equal(result.allFlowsFailed, false);

    alive.clear();
    result = await h.registrar.lookup(AOR);
    assert.deepEqual(result.targets.map((t) => [t.outbound, t.flowFailed]), [[true, true]]);
    assert.equal(result.allFlowsFailed, true);

    // A plain binding on the same dead connection is still a target, and a flow behind an edge proxy is the edge's.
    await h.answer(register({ callId: 'plain', contacts: ['<sip:alice@192.0.2.20>'] }));
    await h.answer(
      flowRegister({
        callId: 'via-edge',
        proxies: 1,
        path: ['<sip:edge.example.com;lr;ob>'],
        contacts: [`<sip:alice@192.0.2.30;ob>;${instanceParam(OTHER_INSTANCE)};reg-id=1`],
      }),
    );
    result = await h.registrar.lookup(AOR);
    assert.deepEqual(
      result.targets.map((t) => [t.binding.contact, t.outbound, t.flowFailed]).sort(),
      [
        ['sip:alice@192.0.2.10:50000;transport=tcp;ob', true, true],
        ['sip:alice@192.0.2.20', false, false],
        ['sip:alice@192.0.2.30;ob', true, false],
      ],
    );
    assert.equal(result.allFlowsFailed, false);
  });
});
