import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyConfigObject, defaultConfig, finishConfig } from '../../src/server/config.js';
import { ConfigError } from '../../src/util/errors.js';

const config = (sbc: unknown, rest: Record<string, unknown> = {}) => finishConfig(applyConfigObject(defaultConfig(), { ...rest, sbc }));

const refused = (sbc: unknown, field: string, rest: Record<string, unknown> = {}): void => {
  assert.throws(
    () => config(sbc, rest),
    (e: unknown) => e instanceof ConfigError && e.field === field,
    `${JSON.stringify(sbc)} is refused naming ${field}`,
  );
};

test('sbc config: off by default; the settings read, every field checked and named when wrong', () => {
  const off = defaultConfig().sbc;
  assert.equal(off.enabled, false);
  assert.equal(off.calls, 'all');
  assert.deepEqual(off.headers.deny, ['Server', 'User-Agent', 'Warning']);
  const c = config(
    {
      enabled: true,
      calls: 'nat',
      media: { engine: 'embedded', address: '0.0.0.0', advertise: '203.0.113.7', portMin: 40000, portMax: 40999, inactivityMs: 30000, codecs: ['PCMU', 'telephone-event'] },
      headers: { pass: ['X-Account'], deny: ['User-Agent'] },
      identity: { trusted: ['PSTN.example.net'], trustedSources: ['198.51.100.7'] },
      limits: { perAccount: 2, perTrunk: 30, callsPerSecond: 1, burst: 3, retryAfterS: 10 },
      maxCallSeconds: 3600,
      refer: 'transfer',
    },
    { listen: ['udp:0.0.0.0:5060'] },
  ).sbc;
  assert.equal(c.media.advertise, '203.0.113.7');
  assert.deepEqual(c.identity.trusted, ['pstn.example.net']);
  assert.equal(c.limits.perTrunk, 30);
  assert.equal(c.refer, 'transfer');

  refused({ enable: true }, 'sbc.enable');
  refused({ calls: 'some' }, 'sbc.calls');
  refused({ media: { engine: 'kernel' } }, 'sbc.media.engine');
  refused({ media: { advertise: 'sbc.example.com' } }, 'sbc.media.advertise');
  refused({ media: { portMin: 80 } }, 'sbc.media.portMin');
  refused({ headers: { pass: ['Via'] } }, 'sbc.headers.pass[0]');
  refused({ headers: { pass: ['Record-Route'] } }, 'sbc.headers.pass[0]');
  refused({ limits: { perAccount: -1 } }, 'sbc.limits.perAccount');
  refused({ refer: 'forward' }, 'sbc.refer');
  refused({ media: { rtpengine: { host: '127.0.0.1', socket: '/run/ng' } } }, 'sbc.media.rtpengine.socket');
});

test('sbc config: the embedded relay on every interface needs an address to advertise, unless the server names one', () => {
  refused({ enabled: true }, 'sbc.media.advertise', { listen: ['udp:0.0.0.0:5060'] });
  assert.equal(config({ enabled: true }, { listen: ['udp:0.0.0.0:5060'], advertisedHost: '203.0.113.7' }).sbc.enabled, true);
  assert.equal(config({ enabled: true }, { listen: ['udp:192.0.2.10:5060'] }).sbc.enabled, true);
  assert.equal(config({ enabled: true, media: { engine: 'rtpengine' } }, { listen: ['udp:0.0.0.0:5060'] }).sbc.media.engine, 'rtpengine');
  refused({ enabled: true, media: { address: '127.0.0.1', portMin: 40000, portMax: 40001 } }, 'sbc.media.portMax');
});
