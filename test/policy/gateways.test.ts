import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUri } from '../../src/message/uri.js';
import {
  DEFAULT_GATEWAY_CONFIG,
  Dialplan,
  type GatewayConfig,
  GatewayRouting,
  isInternational,
  isNumericDestination,
  normaliseNumber,
  numberOf,
  parseGatewayConfig,
} from '../../src/policy/gateways.js';
import { type Gateway, type GatewayTables, InvalidGatewayError, MemoryGatewayStore, type Route } from '../../src/store/gateway-store.js';
import { ConfigError } from '../../src/util/errors.js';

const gw = (id: string, group: string, extra: Partial<Gateway> = {}): Gateway => ({ id, uri: `sip:${id}.example.net;transport=tcp`, group, enabled: true, ...extra });
const route = (prefix: string, group: string, cost: number): Route => ({ prefix, group, cost });

function config(gateways: Gateway[], routes: Route[], extra: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...DEFAULT_GATEWAY_CONFIG, gateways, routes, ...extra };
}

/** The failover list as "gateway via prefix/group". */
function order(plan: Dialplan, number: string): string[] {
  return plan.route(number).map((c) => `${c.gateway.id} via ${c.route.prefix || 'default'}/${c.route.group}`);
}

describe('number normalisation', () => {
  it('removes visual separators and accepts digits with an optional leading +', () => {
    assert.equal(normaliseNumber('+49 (30) 123-45.67'), '+49301234567');
    assert.equal(normaliseNumber('0049301234567'), '0049301234567');
    for (const bad of ['', '+', '12a4', '*98', '1+2', '#31#', '1'.repeat(33)]) assert.equal(normaliseNumber(bad), undefined, bad);
  });

  it('reads tel: URIs, numeric sip users and user=phone telephone-subscribers', () => {
    const cases: Array<[string, string | undefined]> = [
      ['tel:+1-212-555-0100', '+12125550100'],
      ['tel:7042;phone-context=example.com', '7042'],
      ['sip:+49-30-1234567@example.com;user=phone', '+49301234567'],
      ['sip:+49-30-1234567;isub=12@example.com;user=phone', '+49301234567'],
      ['sip:004930123@example.com', '004930123'],
      ['sip:%2B4930123@example.com', '+4930123'],
      ['sip:4930123;x=1@example.com', undefined],
      ['sip:alice@example.com', undefined],
      ['sip:alice@example.com;user=phone', undefined],
      ['sip:example.com', undefined],
      ['tel:*98;phone-context=example.com', undefined],
      ['mailto:123@example.com', undefined],
    ];
    for (const [text, expected] of cases) {
      const uri = parseUri(text);
      assert.equal(numberOf(uri), expected, text);
      assert.equal(isNumericDestination(uri), expected !== undefined, text);
    }
  });
});

describe('Dialplan.route: the failover list', () => {
  it('tries the longest matching prefix before a shorter, cheaper one', () => {
    const plan = new Dialplan(config([gw('berlin', 'de-berlin'), gw('de', 'de'), gw('any', 'world')], [
      route('+49', 'de', 1),
      route('+4930', 'de-berlin', 5),
      route('', 'world', 0),
    ]));
    assert.deepEqual(order(plan, '+49 30 1234567'), ['berlin via +4930/de-berlin', 'de via +49/de', 'any via default/world']);
    assert.deepEqual(order(plan, '+4940123'), ['de via +49/de', 'any via default/world']);
    assert.deepEqual(order(plan, '+33123'), ['any via default/world']);
  });

  it('orders routes of equal prefix by cost, then by group name', () => {
    const plan = new Dialplan(config([gw('a1', 'a'), gw('b1', 'b'), gw('c1', 'c')], [route('00', 'b', 3), route('00', 'c', 1), route('00', 'a', 3)]));
    assert.deepEqual(order(plan, '0044123'), ['c1 via 00/c', 'a1 via 00/a', 'b1 via 00/b']);
  });

  it('fails over through every gateway of a group, in id order, then to the next group', () => {
    const plan = new Dialplan(config([gw('gw2', 'cheap'), gw('gw1', 'cheap'), gw('gw3', 'backup')], [route('0', 'cheap', 1), route('0', 'backup', 2)]));
    assert.deepEqual(order(plan, '0301234'), ['gw1 via 0/cheap', 'gw2 via 0/cheap', 'gw3 via 0/backup']);
  });

  it('lists a gateway reached by several routes once, at its best place', () => {
    const plan = new Dialplan(config([gw('gw1', 'g'), gw('gw2', 'h')], [route('1', 'g', 1), route('12', 'h', 1), route('', 'g', 0), route('', 'h', 0)]));
    assert.deepEqual(order(plan, '123'), ['gw2 via 12/h', 'gw1 via 1/g']);
  });

  it('skips disabled gateways, and a group with none enabled', () => {
    const plan = new Dialplan(config([gw('gw1', 'g', { enabled: false }), gw('gw2', 'g'), gw('gw3', 'h', { enabled: false })], [route('1', 'h', 0), route('', 'g', 1)]));
    assert.deepEqual(order(plan, '100'), ['gw2 via default/g']);
  });

  it('routes nothing without a matching route, for a group without gateways, or for a non-number', () => {
    const plan = new Dialplan(config([gw('gw1', 'g')], [route('+49', 'g', 0), route('+33', 'nobody', 0)]));
    assert.deepEqual(plan.route('+1555'), []);
    assert.deepEqual(plan.route('+33123'), []);
    assert.deepEqual(plan.route('alice'), []);
  });

  it('builds the request URI from the gateway URI, the number and user=phone', () => {
    const plan = new Dialplan(config([{ id: 'gw', uri: 'sip:192.0.2.7:5080;transport=udp', group: 'g', enabled: true }], [route('', 'g', 0)]));
    const [choice] = plan.route('+49 30 123');
    assert.equal(choice?.requestUri.toString(), 'sip:+4930123@192.0.2.7:5080;transport=udp;user=phone');
    // Each call gets its own URI: a policy editing one does not change the next call's.
    choice!.requestUri.host = 'changed.example';
    assert.equal(plan.route('+4930123')[0]?.requestUri.host, '192.0.2.7');
  });

  it('draws the order inside a weighted group by RFC 2782 selection', () => {
    const gateways = [gw('heavy', 'g', { weight: 3 }), gw('light', 'g', { weight: 1 }), gw('spare', 'g', { weight: 0 })];
    const draw = (r: number): string[] => order(new Dialplan(config(gateways, [route('', 'g', 0)]), undefined, { random: () => r }), '1').map((s) => s.split(' ')[0]!);
    // Running sums in the order spare(0), heavy(3), light(4); the draw is floor(r * (sum + 1)).
    assert.deepEqual(draw(0), ['spare', 'heavy', 'light']);
    assert.deepEqual(draw(0.5), ['heavy', 'light', 'spare']);
    assert.deepEqual(draw(0.99), ['light', 'heavy', 'spare']);
  });

  it('lets store entries replace config entries with the same key', () => {
    const tables: GatewayTables = { gateways: [gw('gw1', 'g', { uri: 'sip:new.example.net' })], routes: [route('', 'g', 9)] };
    const plan = new Dialplan(config([gw('gw1', 'g')], [route('', 'g', 1)]), tables);
    const [choice] = plan.route('5');
    assert.equal(choice?.gateway.uri, 'sip:new.example.net');
    assert.equal(choice?.route.cost, 9);
  });

  it('refuses unchecked entries with InvalidGatewayError', () => {
    assert.throws(() => new Dialplan(config([gw('gw1', 'g', { uri: 'sip:user@host' })], [])), InvalidGatewayError);
    assert.throws(() => new Dialplan(config([], [route('+4x', 'g', 0)])), InvalidGatewayError);
  });
});

describe('international numbers and the privilege to call them', () => {
  it('detects international prefixes, the longest of either list deciding', () => {
    const plan = { internationalPrefixes: ['00', '+'], nationalExceptions: ['+1', '001'] };
    assert.equal(isInternational('+493012', plan), true);
    assert.equal(isInternational('00443012', plan), true);
    assert.equal(isInternational('+12125550100', plan), false);
    assert.equal(isInternational('0012125550100', plan), false);
    assert.equal(isInternational('02125550100', plan), false);
    assert.equal(isInternational('+1876555', { ...plan, internationalPrefixes: ['00', '+', '+1876'] }), true);
  });

  it('lets only subscribers of the international group call international numbers', () => {
    const plan = new Dialplan(config([], [], { nationalExceptions: ['+49', '0049'], internationalGroup: 'world' }));
    assert.equal(plan.mayCall('+44 20 7946 0000', ['staff']), false);
    assert.equal(plan.mayCall('+44 20 7946 0000', ['staff', 'world']), true);
    assert.equal(plan.mayCall('+49 30 1234', []), true);
    assert.equal(plan.mayCall('030 1234', []), true);
    assert.equal(plan.isInternational('0044 20'), true);
  });
});

describe('SMS gateway', () => {
  it('turns a number into a request URI at the SMS gateway, if one is configured', () => {
    const plan = new Dialplan(config([], [], { smsGateway: 'sip:sms.example.net;transport=tcp' }));
    assert.equal(plan.smsTarget('+49 170 1234567')?.toString(), 'sip:+491701234567@sms.example.net;transport=tcp;user=phone');
    assert.equal(plan.smsTarget('bob'), undefined);
    assert.equal(new Dialplan(config([], [])).smsTarget('+49170'), undefined);
  });
});

describe('parseGatewayConfig', () => {
  it('reads the gateways section, defaulting what is missing', () => {
    const c = parseGatewayConfig({
      gateways: [{ id: 'gw1', uri: 'sip:gw1.example.net', group: 'de' }, { id: 'gw2', uri: 'sip:gw2.example.net', group: 'de', weight: 2, enabled: false }],
      routes: [{ prefix: '+49', group: 'de', cost: 0.5, description: 'Germany' }],
      nationalExceptions: ['+49'],
      smsGateway: 'sip:sms.example.net',
    });
    assert.deepEqual(c.gateways, [
      { id: 'gw1', uri: 'sip:gw1.example.net', group: 'de', enabled: true },
      { id: 'gw2', uri: 'sip:gw2.example.net', group: 'de', weight: 2, enabled: false },
    ]);
    assert.deepEqual(c.routes, [{ prefix: '+49', group: 'de', cost: 0.5, description: 'Germany' }]);
    assert.deepEqual([c.internationalPrefixes, c.nationalExceptions, c.internationalGroup, c.smsGateway], [['00', '+'], ['+49'], 'intl', 'sip:sms.example.net']);
    assert.deepEqual(parseGatewayConfig({}), DEFAULT_GATEWAY_CONFIG);
  });

  it('names the field that is wrong', () => {
    const cases: Array<[unknown, RegExp]> = [
      [[], /^gateways: must be an object$/],
      [{ gateways: {} }, /^gateways\.gateways: must be an array$/],
      [{ gateways: [{ id: 'a b', uri: 'sip:h', group: 'g' }] }, /^gateways\.gateways\[0\]: id must be/],
      [{ gateways: [{ id: 'a', uri: 'tel:+1', group: 'g' }] }, /^gateways\.gateways\[0\]: uri 'tel:\+1' is not a sip: or sips: URI$/],
      [{ gateways: [{ id: 'a', uri: 'sip:h', group: 'g', wieght: 1 }] }, /^gateways\.gateways\[0\]\.wieght: unknown setting/],
      [{ gateways: [{ id: 'a', uri: 'sip:h', group: 'g' }, { id: 'a', uri: 'sip:i', group: 'g' }] }, /^gateways\.gateways: duplicate gateway id a$/],
      [{ routes: [{ prefix: '49-', group: 'g', cost: 0 }] }, /^gateways\.routes\[0\]: prefix must be/],
      [{ routes: [{ prefix: '49', group: 'g', cost: -1 }] }, /^gateways\.routes\[0\]: cost must be a number >= 0$/],
      [{ routes: [{ prefix: '', group: 'g', cost: 0 }, { prefix: '', group: 'g', cost: 1 }] }, /^gateways\.routes: duplicate route prefix '' to group g$/],
      [{ internationalPrefixes: ['00', 'x'] }, /^gateways\.internationalPrefixes\[1\]: must be '\+' or digits/],
      [{ nationalExceptions: ['+'] }, /^gateways\.nationalExceptions: '\+' is also an international prefix$/],
      [{ smsGateway: 'sip:me@sms.example.net' }, /^gateways\.smsGateway: uri .* must have no user part/],
      [{ gatways: [] }, /^gateways\.gatways: unknown setting/],
    ];
    for (const [raw, message] of cases) {
      assert.throws(() => parseGatewayConfig(raw), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(raw));
    }
  });
});

describe('GatewayRouting: reload without restart', () => {
  it('swaps in a new immutable dialplan built from the store and the new config', async () => {
    const store = new MemoryGatewayStore();
    await store.putGateway(gw('gw1', 'g'));
    await store.putRoute(route('', 'g', 0));
    const routing = await GatewayRouting.open(config([], []), store);
    const before = routing.dialplan;
    assert.deepEqual(order(before, '1'), ['gw1 via default/g']);

    await store.putGateway(gw('gw0', 'g'));
    await store.putRoute(route('1', 'h', 0));
    await store.putGateway(gw('gw9', 'h'));
    assert.equal(routing.dialplan, before, 'nothing changes until reload');
    await routing.reload();
    assert.notEqual(routing.dialplan, before);
    assert.deepEqual(order(routing.dialplan, '1'), ['gw9 via 1/h', 'gw0 via default/g', 'gw1 via default/g']);
    assert.deepEqual(order(before, '1'), ['gw1 via default/g'], 'a dialplan in use never changes');

    await routing.reload(config([], [], { internationalGroup: 'world' }));
    assert.equal(routing.dialplan.mayCall('+44', ['world']), true);
    await routing.reload();
    assert.equal(routing.dialplan.internationalGroup, 'world', 'a reload without config keeps the last one');
  });

  it('keeps the old dialplan when the store cannot be read, and lets the latest of overlapping reloads win', async () => {
    const tables: GatewayTables[] = [];
    /** While set, each store read waits until the test releases it. */
    let pending: Array<() => void> | undefined;
    let failing = false;
    const store = Object.assign(new MemoryGatewayStore(), {
      load: async (): Promise<GatewayTables> => {
        if (failing) throw new Error('store down');
        const t = tables.shift() ?? { gateways: [], routes: [] };
        if (pending) await new Promise<void>((resolve) => pending!.push(resolve));
        return t;
      },
    });
    const routing = await GatewayRouting.open(config([], []), store);
    const first = routing.dialplan;

    failing = true;
    await assert.rejects(routing.reload(), /store down/);
    assert.equal(routing.dialplan, first);
    failing = false;

    tables.push({ gateways: [gw('old', 'g')], routes: [route('', 'g', 0)] }, { gateways: [gw('new', 'g')], routes: [route('', 'g', 0)] });
    pending = [];
    const older = routing.reload();
    const newer = routing.reload();
    const [releaseOlder, releaseNewer] = pending;
    releaseNewer!(); // the newer read finishes first
    await newer;
    releaseOlder!();
    await older;
    assert.deepEqual(order(routing.dialplan, '1'), ['new via default/g']);
  });
});
