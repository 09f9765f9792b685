import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCpl } from '../../src/policy/cpl/interpreter.js';
import { parseCpl } from '../../src/policy/cpl/parse.js';
import type { CplRequest, CplScript } from '../../src/policy/cpl/types.js';
import { projectRoot } from '../helpers/paths.js';
import { FakeEnvironment } from './cpl-fake-env.js';

const dir = path.join(projectRoot, 'examples', 'cpl');

function example(name: string): CplScript {
  const r = parseCpl(readFileSync(path.join(dir, name), 'utf8'));
  assert.ok(r.ok, `${name}: ${JSON.stringify(!r.ok && r.errors)}`);
  return r.script;
}

describe('examples/cpl', () => {
  it('every example is a valid script', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.xml'));
    assert.ok(files.length >= 5);
    for (const f of files) example(f);
  });

  it('screen-monica-business-hours: Monica is declined on weekdays 9-17 Berlin time, in winter and in summer', async () => {
    const s = example('screen-monica-business-hours.xml');
    const call = (from: string, now: string) => runCpl(s, 'incoming', new FakeEnvironment({ from }, now));
    const declined = { action: 'reject', status: 603, reason: 'Not during business hours' };
    assert.deepEqual(await call('"Monica" <sip:monica@example.net>;tag=a1', '2025-03-28T08:30:00Z'), declined, 'Friday 09:30 CET');
    assert.deepEqual(await call('sip:monica@example.net', '2025-03-31T07:30:00Z'), declined, 'Monday 09:30 CEST');
    assert.deepEqual(await call('sip:monica@example.net', '2025-03-28T16:30:00Z'), { action: 'default' }, 'Friday 17:30');
    assert.deepEqual(await call('sip:monica@example.net', '2025-03-29T09:30:00Z'), { action: 'default' }, 'Saturday');
    assert.deepEqual(await call('sip:monica@example.net', '2025-03-31T06:30:00Z'), { action: 'default' }, 'Monday 08:30 CEST');
    assert.deepEqual(await call('sip:bob@example.com', '2025-03-28T08:30:00Z'), { action: 'default' }, 'someone else');
  });

  it('friends-to-cell-others-to-secretary: only authenticated friends reach the cell phone', async () => {
    const s = example('friends-to-cell-others-to-secretary.xml');
    const call = (request: Partial<CplRequest>) => runCpl(s, 'incoming', new FakeEnvironment(request));
    const cell = { action: 'redirect', permanent: false, locations: [{ uri: 'tel:+15555550123', q: 1 }] };
    const secretary = { action: 'redirect', permanent: false, locations: [{ uri: 'sip:secretary@example.com', q: 1 }] };
    assert.deepEqual(await call({ from: 'sip:bob@example.com', authenticated: true }), cell);
    assert.deepEqual(await call({ from: '<sip:carol@example.com>;tag=9', authenticated: true }), cell);
    assert.deepEqual(await call({ from: 'sip:bob@example.com', authenticated: false }), secretary, 'a From that was not verified');
    assert.deepEqual(await call({ from: 'sip:mallory@example.org', authenticated: true }), secretary);
  });

  it('forward-busy-noanswer: registered phones, then voicemail on busy, the cell and then voicemail on no answer', async () => {
    const s = example('forward-busy-noanswer.xml');
    const registered = (env: FakeEnvironment): FakeEnvironment => {
      env.lookupResult = { result: 'success', locations: [{ uri: 'sip:alice@192.0.2.7:5062' }] };
      return env;
    };
    const targets = (env: FakeEnvironment) => env.proxies.map((p) => [p.locations.map((l) => l.uri), p.timeout]);

    const answered = registered(new FakeEnvironment());
    assert.deepEqual(await runCpl(s, 'incoming', answered), { action: 'proxied', status: 200 });
    assert.deepEqual(targets(answered), [[['sip:alice@192.0.2.7:5062'], 20]]);

    const busy = registered(new FakeEnvironment());
    busy.proxyResults = [{ outcome: 'busy', status: 486 }];
    assert.deepEqual(await runCpl(s, 'incoming', busy), { action: 'proxied', status: 200 });
    assert.deepEqual(targets(busy), [[['sip:alice@192.0.2.7:5062'], 20], [['sip:alice@voicemail.example.com'], 180]]);

    const noAnswer = registered(new FakeEnvironment());
    noAnswer.proxyResults = [{ outcome: 'noanswer', status: 408 }, { outcome: 'noanswer', status: 480 }];
    assert.deepEqual(await runCpl(s, 'incoming', noAnswer), { action: 'proxied', status: 200 });
    assert.deepEqual(targets(noAnswer), [
      [['sip:alice@192.0.2.7:5062'], 20],
      [['tel:+15555550123'], 30],
      [['sip:alice@voicemail.example.com'], 180],
    ]);

    const offline = new FakeEnvironment();
    assert.deepEqual(await runCpl(s, 'incoming', offline), { action: 'proxied', status: 200 });
    assert.deepEqual(targets(offline), [[['sip:alice@voicemail.example.com'], 180]]);
  });

  it('forward-unconditional: logs and proxies every call to the home phone', async () => {
    const env = new FakeEnvironment();
    assert.deepEqual(await runCpl(example('forward-unconditional.xml'), 'incoming', env), { action: 'proxied', status: 200 });
    assert.deepEqual(env.logs, [['forwarding', 'forwarded to home']]);
    assert.deepEqual(env.proxies[0]!.locations, [{ uri: 'sip:alice@home.example.com', q: 1 }]);
  });

  it('block-premium-numbers: outgoing calls to +1 900 are refused with a mail; others proceed', async () => {
    const s = example('block-premium-numbers.xml');
    const premium = new FakeEnvironment({ requestUri: 'sip:+1-900-555-0199@gw.example.com;user=phone' });
    assert.deepEqual(await runCpl(s, 'outgoing', premium), { action: 'reject', status: 403, reason: 'Premium-rate numbers are blocked' });
    assert.deepEqual(premium.mails, ['mailto:alice@example.com?subject=Premium-rate%20call%20blocked']);
    assert.deepEqual(await runCpl(s, 'outgoing', new FakeEnvironment({ requestUri: 'tel:+15555550100' })), { action: 'default' });
    assert.deepEqual(await runCpl(s, 'incoming', new FakeEnvironment()), { action: 'default' }, 'no incoming script');
  });
});
