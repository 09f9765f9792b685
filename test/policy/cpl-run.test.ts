import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCpl } from '../../src/policy/cpl/interpreter.js';
import type { CplRequest } from '../../src/policy/cpl/types.js';
import { FakeEnvironment, script } from './cpl-fake-env.js';

/** Runs an incoming script that rejects with a distinct status per output, and returns the status taken. */
async function branch(switchXml: string, request: Partial<CplRequest>, now?: string): Promise<number | undefined> {
  const outcome = await runCpl(script(`<incoming>${switchXml}</incoming>`), 'incoming', new FakeEnvironment(request, now), { timeZone: 'UTC' });
  return outcome.action === 'reject' ? outcome.status : undefined;
}

const R = (status: number): string => `<reject status="${status}"/>`;

describe('runCpl: switches', () => {
  it('address-switch compares whole addresses as URIs and reads From, Request-URI and To', async () => {
    const sw = (field: string): string => `<address-switch field="${field}">
      <address is="sip:Monica@EXAMPLE.net;transport=udp">${R(401)}</address>
      <address is="sip:alice@example.com">${R(402)}</address>
      <otherwise>${R(499)}</otherwise></address-switch>`;
    assert.equal(await branch(sw('origin'), { from: '"Monica" <sip:Monica@example.NET;transport=UDP>;tag=12' }), 401);
    assert.equal(await branch(sw('origin'), { from: 'sip:monica@example.net;transport=udp' }), 499, 'the user part is case-sensitive');
    assert.equal(await branch(sw('destination'), {}), 402);
    assert.equal(await branch(sw('original-destination'), { to: '<sip:alice@example.com>' }), 402);
  });

  it('address-switch subfields: user, host (subdomain-of), port, address-type, tel (prefix), display (contains)', async () => {
    const sub = (subfield: string, outputs: string): string => `<address-switch field="origin" subfield="${subfield}">${outputs}<not-present>${R(498)}</not-present><otherwise>${R(499)}</otherwise></address-switch>`;
    assert.equal(await branch(sub('user', `<address is="bob">${R(401)}</address>`), { from: 'sip:b%6Fb@example.net' }), 401);
    const host = sub('host', `<address subdomain-of="example.com">${R(402)}</address>`);
    assert.equal(await branch(host, { from: 'sip:x@pc.sales.Example.COM' }), 402);
    assert.equal(await branch(host, { from: 'sip:x@example.com' }), 402);
    assert.equal(await branch(host, { from: 'sip:x@badexample.com' }), 499);
    assert.equal(await branch(host, { from: 'tel:+15551234' }), 498, 'a tel URI has no host');
    const port = sub('port', `<address is="5060">${R(403)}</address>`);
    assert.equal(await branch(port, { from: 'sip:x@example.com' }), 403, 'the default port');
    assert.equal(await branch(port, { from: 'sips:x@example.com' }), 499, 'sips defaults to 5061');
    assert.equal(await branch(sub('address-type', `<address is="TEL">${R(404)}</address>`), { from: 'tel:+1-555-1234' }), 404);
    const tel = sub('tel', `<address subdomain-of="+1555">${R(405)}</address><address is="+44 20 7946 0000">${R(406)}</address>`);
    assert.equal(await branch(tel, { from: 'tel:+1-555-0100' }), 405);
    assert.equal(await branch(tel, { from: 'sip:+442079460000@gw.example.com;user=phone' }), 406);
    assert.equal(await branch(tel, { from: 'sip:+442079460000@gw.example.com' }), 498, 'not a telephone number without user=phone');
    const display = sub('display', `<address contains="monica">${R(407)}</address>`);
    assert.equal(await branch(display, { from: '"Dr. MONICA Smith" <sip:ms@example.net>' }), 407);
    assert.equal(await branch(display, { from: 'sip:ms@example.net', displayFrom: 'Monica' }), 407);
    assert.equal(await branch(display, { from: 'sip:ms@example.net' }), 498);
  });

  it('address-switch origin is not present when the caller was not authenticated', async () => {
    const sw = `<address-switch field="origin"><address is="sip:bob@example.com">${R(401)}</address><not-present>${R(402)}</not-present></address-switch>`;
    assert.equal(await branch(sw, { from: 'sip:bob@example.com', authenticated: true }), 401);
    assert.equal(await branch(sw, { from: 'sip:bob@example.com' }), 401);
    assert.equal(await branch(sw, { from: 'sip:bob@example.com', authenticated: false }), 402);
  });

  it('string-switch: is and contains, case-insensitive; absent fields and the display field are not present', async () => {
    const sw = (field: string): string => `<string-switch field="${field}">
      <string contains="urgent">${R(401)}</string><string is="Acme Corp">${R(402)}</string>
      <not-present>${R(403)}</not-present><otherwise>${R(499)}</otherwise></string-switch>`;
    assert.equal(await branch(sw('subject'), { subject: 'Re: URGENT: servers down' }), 401);
    assert.equal(await branch(sw('organization'), { organization: 'acme corp' }), 402);
    assert.equal(await branch(sw('organization'), { organization: 'Acme Corporation' }), 499);
    assert.equal(await branch(sw('user-agent'), {}), 403);
    assert.equal(await branch(sw('display'), { subject: 'urgent' }), 403);
  });

  it('language-switch: tags match by prefix either way; q=0 is a refusal; no languages is not-present', async () => {
    const sw = `<language-switch><language matches="de">${R(401)}</language><language matches="en-US">${R(402)}</language>
      <not-present>${R(403)}</not-present><otherwise>${R(499)}</otherwise></language-switch>`;
    assert.equal(await branch(sw, { language: ['fr', 'de-CH;q=0.5'] }), 401);
    assert.equal(await branch(sw, { language: ['en'] }), 402);
    assert.equal(await branch(sw, { language: ['de;q=0', 'fr'] }), 499);
    assert.equal(await branch(sw, { language: [] }), 403);
  });

  it('priority-switch: ordered values, a missing Priority is normal, unknown values only compare equal', async () => {
    const sw = `<priority-switch><priority greater="normal">${R(401)}</priority><priority equal="weird">${R(402)}</priority>
      <priority less="normal">${R(403)}</priority><otherwise>${R(499)}</otherwise></priority-switch>`;
    assert.equal(await branch(sw, { priority: 'Emergency' }), 401);
    assert.equal(await branch(sw, { priority: 'non-urgent' }), 403);
    assert.equal(await branch(sw, { priority: 'weird' }), 402);
    assert.equal(await branch(sw, {}), 499);
    const absent = `<priority-switch><not-present>${R(404)}</not-present><priority equal="normal">${R(405)}</priority></priority-switch>`;
    assert.equal(await branch(absent, {}), 404);
    assert.equal(await branch(`<priority-switch><priority equal="normal">${R(405)}</priority></priority-switch>`, {}), 405);
  });

  it('time-switch: takes the first matching period, else otherwise, using env.now() and the tzid', async () => {
    const sw = `<time-switch tzid="America/New_York">
      <time dtstart="20250106T090000" duration="PT8H" freq="weekly" byday="MO,TU,WE,TH,FR">${R(401)}</time>
      <time dtstart="20250104T000000" duration="P2D" freq="weekly">${R(402)}</time>
      <otherwise>${R(499)}</otherwise></time-switch>`;
    assert.equal(await branch(sw, {}, '2025-03-28T14:00:00Z'), 401, 'Friday 10:00 EDT');
    assert.equal(await branch(sw, {}, '2025-03-29T14:00:00Z'), 402, 'Saturday');
    assert.equal(await branch(sw, {}, '2025-03-28T23:00:00Z'), 499, 'Friday 19:00 EDT');
  });

  it('a switch with no matching output and no otherwise ends the script: default behaviour', async () => {
    const s = script(`<incoming><string-switch field="subject"><string is="x">${R(401)}</string></string-switch></incoming>`);
    assert.deepEqual(await runCpl(s, 'incoming', new FakeEnvironment({ subject: 'y' })), { action: 'default' });
  });
});

describe('runCpl: locations and signalling', () => {
  it('location builds the set (highest priority first, duplicates merged, clear) and redirect returns it', async () => {
    const s = script(`<incoming>
      <location url="sip:desk@example.com" priority="0.5"><location url="sip:cell@example.com" priority="0.9">
      <location url="sip:DESK@example.com" priority="0.2"><redirect permanent="yes"/></location></location></location></incoming>
      <outgoing><location url="sip:a@example.com"><location url="sip:b@example.com" clear="yes"><redirect/></location></location></outgoing>`);
    assert.deepEqual(await runCpl(s, 'incoming', new FakeEnvironment()), {
      action: 'redirect',
      permanent: true,
      locations: [
        { uri: 'sip:cell@example.com', q: 0.9 },
        { uri: 'sip:desk@example.com', q: 0.5 },
        { uri: 'sip:DESK@example.com', q: 0.2 },
      ],
    });
    assert.deepEqual(await runCpl(s, 'outgoing', new FakeEnvironment()), { action: 'redirect', permanent: false, locations: [{ uri: 'sip:b@example.com', q: 1 }] });
  });

  it('lookup adds what it finds (clearing first if asked) and takes success, notfound or failure', async () => {
    const s = script(`<incoming><location url="sip:old@example.com"><lookup source="registration" timeout="5" clear="yes">
      <success><redirect/></success><notfound>${R(404)}</notfound><failure>${R(500)}</failure></lookup></location></incoming>`);
    const env = new FakeEnvironment();
    env.lookupResult = { result: 'success', locations: [{ uri: 'sip:alice@192.0.2.1:5060', q: 0.7 }, { uri: 'sip:alice@192.0.2.2' }] };
    assert.deepEqual(await runCpl(s, 'incoming', env), {
      action: 'redirect',
      permanent: false,
      locations: [
        { uri: 'sip:alice@192.0.2.2', q: 1 },
        { uri: 'sip:alice@192.0.2.1:5060', q: 0.7 },
      ],
    });
    assert.deepEqual(env.lookups, [{ source: 'registration', timeout: 5 }]);
    for (const [result, status] of [['notfound', 404], ['failure', 500]] as const) {
      const e = new FakeEnvironment();
      e.lookupResult = { result, locations: [] };
      assert.deepEqual(await runCpl(s, 'incoming', e), { action: 'reject', status, reason: undefined });
    }
  });

  it('remove-location removes one location (URI equality) or all', async () => {
    const s = script(`<incoming><location url="sip:a@example.com"><location url="sip:b@example.com">
      <remove-location location="sip:a@EXAMPLE.com"><redirect/></remove-location></location></location></incoming>
      <outgoing><remove-location><proxy><failure>${R(480)}</failure></proxy></remove-location></outgoing>`);
    const incoming = await runCpl(s, 'incoming', new FakeEnvironment());
    assert.deepEqual(incoming, { action: 'redirect', permanent: false, locations: [{ uri: 'sip:b@example.com', q: 1 }] });
    const env = new FakeEnvironment();
    assert.deepEqual(await runCpl(s, 'outgoing', env), { action: 'reject', status: 480, reason: undefined });
    assert.equal(env.proxies.length, 0, 'an empty location set fails without a proxy attempt');
  });

  it('proxy: success ends the script; each outcome takes its output; default catches the rest', async () => {
    const s = script(`<incoming><location url="sip:alice@192.0.2.1"><proxy timeout="15" ordering="sequential" recurse="no">
      <busy>${R(486)}</busy><noanswer>${R(408)}</noanswer><redirection><redirect/></redirection><default>${R(503)}</default>
    </proxy></location></incoming>`);
    const run = async (result: FakeEnvironment['proxyResults'][number]): Promise<[unknown, FakeEnvironment]> => {
      const env = new FakeEnvironment();
      env.proxyResults = [result];
      return [await runCpl(s, 'incoming', env), env];
    };
    const [ok, env] = await run({ outcome: 'success', status: 200 });
    assert.deepEqual(ok, { action: 'proxied', status: 200 });
    assert.deepEqual(env.proxies, [{ locations: [{ uri: 'sip:alice@192.0.2.1', q: 1 }], timeout: 15, recurse: false, ordering: 'sequential' }]);
    assert.deepEqual((await run({ outcome: 'busy', status: 486 }))[0], { action: 'reject', status: 486, reason: undefined });
    assert.deepEqual((await run({ outcome: 'noanswer', status: 408 }))[0], { action: 'reject', status: 408, reason: undefined });
    assert.deepEqual((await run({ outcome: 'failure', status: 404 }))[0], { action: 'reject', status: 503, reason: undefined });
    // A 3xx without recursion: the location set becomes the Contacts, for the next node to use.
    assert.deepEqual((await run({ outcome: 'redirection', status: 302, redirectContacts: ['sip:alice@home.example.com'] }))[0], {
      action: 'redirect',
      permanent: false,
      locations: [{ uri: 'sip:alice@home.example.com', q: 1 }],
    });
  });

  it('proxy: an outcome without an output ends the script with the proxy result; timeouts follow RFC 3880 §6.1', async () => {
    const s = script(`<incoming><location url="sip:a@example.com"><proxy><busy><log comment="busy"/></busy></proxy></location></incoming>
      <outgoing><proxy/></outgoing>`);
    const env = new FakeEnvironment();
    env.proxyResults = [{ outcome: 'busy', status: 486 }];
    assert.deepEqual(await runCpl(s, 'incoming', env, { maxRingSeconds: 60 }), { action: 'proxied', status: 486 });
    assert.deepEqual(env.logs, [[undefined, 'busy']]);
    assert.equal(env.proxies[0]!.timeout, 60, 'no noanswer/default output: ring as long as the server allows');
    const withNoanswer = script(`<incoming><location url="sip:a@example.com"><proxy timeout="600"><noanswer/></proxy></location></incoming>
      <outgoing><proxy><default/></proxy></outgoing>`);
    const e2 = new FakeEnvironment({ requestUri: 'sip:bob@example.org' });
    await runCpl(withNoanswer, 'outgoing', e2);
    assert.deepEqual(e2.proxies[0], { locations: [{ uri: 'sip:bob@example.org', q: 1 }], timeout: 20, recurse: true, ordering: 'parallel' });
    const e3 = new FakeEnvironment();
    await runCpl(withNoanswer, 'incoming', e3, { maxRingSeconds: 90 });
    assert.equal(e3.proxies[0]!.timeout, 90, 'the script cannot exceed the server maximum');
  });

  it('forwarding on busy: the tried locations are cleared before the next proxy', async () => {
    const s = script(`<incoming><location url="sip:alice@192.0.2.1"><proxy>
      <busy><location url="sip:voicemail@example.com"><proxy/></location></busy></proxy></location></incoming>`);
    const env = new FakeEnvironment();
    env.proxyResults = [{ outcome: 'busy', status: 486 }, { outcome: 'success', status: 200 }];
    assert.deepEqual(await runCpl(s, 'incoming', env), { action: 'proxied', status: 200 });
    assert.deepEqual(env.proxies.map((p) => p.locations.map((l) => l.uri)), [['sip:alice@192.0.2.1'], ['sip:voicemail@example.com']]);
  });

  it('reject maps symbolic statuses; mail and log reach the environment; sub jumps to the subaction', async () => {
    const s = script(`<subaction id="screen"><log name="screened" comment="call screened"><mail url="mailto:alice@example.com?subject=screened">
      <reject status="reject" reason="Not today"/></mail></log></subaction>
      <incoming><sub ref="screen"/></incoming>`);
    const env = new FakeEnvironment();
    assert.deepEqual(await runCpl(s, 'incoming', env), { action: 'reject', status: 603, reason: 'Not today' });
    assert.deepEqual(env.logs, [['screened', 'call screened']]);
    assert.deepEqual(env.mails, ['mailto:alice@example.com?subject=screened']);
  });

  it('a direction the script does not have, or an empty output, is the default behaviour', async () => {
    const s = script('<incoming><location url="sip:a@example.com"/></incoming>');
    assert.deepEqual(await runCpl(s, 'outgoing', new FakeEnvironment()), { action: 'default' });
    assert.deepEqual(await runCpl(s, 'incoming', new FakeEnvironment()), { action: 'default' });
  });

  it('stops after maxSteps executed nodes', async () => {
    const chain = '<log comment="x">'.repeat(30) + '<redirect/>' + '</log>'.repeat(30);
    const s = script(`<incoming>${chain}</incoming>`);
    const env = new FakeEnvironment();
    assert.deepEqual(await runCpl(s, 'incoming', env, { maxSteps: 10 }), { action: 'default', error: 'the script ran more than 10 nodes' });
    assert.equal(env.logs.length, 10);
    assert.equal((await runCpl(s, 'incoming', new FakeEnvironment())).action, 'redirect');
  });
});
