import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindingKey, checkBinding } from '../../src/store/binding.js';
import { binding } from './suites.js';

describe('bindingKey', () => {
  const key = (contact: string, extra: { instanceId?: string; regId?: number } = {}) => bindingKey({ contact, ...extra });

  it('compares scheme, host and URI parameters case-insensitively (RFC 3261 §19.1.4)', () => {
    assert.equal(key('SIP:alice@Host.Example.COM:5060'), key('sip:alice@host.example.com:5060'));
    assert.equal(key('sip:alice@h.example;transport=TCP;lr'), key('sip:alice@h.example;LR;transport=tcp'));
  });

  it('keeps the user part case-sensitive, and ports significant', () => {
    assert.notEqual(key('sip:Alice@h.example'), key('sip:alice@h.example'));
    assert.notEqual(key('sip:alice@h.example'), key('sip:alice@h.example:5060'));
  });

  it('finds the host after the last @ even when the user part carries parameters', () => {
    assert.equal(key('sip:+1555;phone-context=X@GW.example'), key('sip:+1555;phone-context=X@gw.example'));
    assert.notEqual(key('sip:+1555;phone-context=X@gw.example'), key('sip:+1555;phone-context=x@gw.example'));
    assert.equal(key('sip:[2001:DB8::1]:5070;transport=udp'), key('sip:[2001:db8::1]:5070;transport=UDP'));
  });

  it('identifies Outbound bindings by instance and reg-id, not by contact (RFC 5626 §6)', () => {
    const instance = '"<urn:uuid:F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6>"';
    assert.equal(
      key('sip:a@192.0.2.1:1111;ob', { instanceId: instance, regId: 1 }),
      key('sip:a@198.51.100.2:2222;ob', { instanceId: '<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>', regId: 1 }),
    );
    assert.notEqual(key('sip:a@h;ob', { instanceId: instance, regId: 1 }), key('sip:a@h;ob', { instanceId: instance, regId: 2 }));
    // GRUU without reg-id (RFC 5627) stays a plain §10.3 contact match.
    assert.equal(key('sip:a@h', { instanceId: instance }), key('sip:a@h'));
  });

  it('copes with strings that are not URIs', () => {
    assert.equal(key('*'), '*');
    assert.equal(key('nonsense'), 'nonsense');
  });
});

describe('checkBinding', () => {
  it('accepts a well-formed binding and names what is wrong otherwise', () => {
    const b = binding('sip:a@example.com', 1, 1_700_000_000_000);
    assert.equal(checkBinding(b), undefined);
    assert.equal(checkBinding(null), 'binding is not an object');
    assert.match(checkBinding({ ...b, contact: '' })!, /contact/);
    assert.match(checkBinding({ ...b, expiresAt: 1.5 })!, /expiresAt/);
    assert.match(checkBinding({ ...b, q: Number.NaN })!, /q must/);
    assert.match(checkBinding({ ...b, regId: 0 })!, /regId/);
    assert.match(checkBinding({ ...b, contactParams: { a: 1 } })!, /contactParams/);
    assert.match(checkBinding({ ...b, path: [1] })!, /path/);
    assert.match(checkBinding({ ...b, source: { transport: 'udp', address: 'x' } })!, /source/);
  });
});
