import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DOMAIN, contactsOf, harness, torture } from './harness.js';

/** RFC 4475 §3.3 registrar cases, read from the shared conformance directory. */
describe('RFC 4475 at the registrar', () => {
  it('cparam01: a parameter after an addr-spec Contact is a contact-param, not a URI parameter', async () => {
    const h = harness();
    const res = await h.answer(torture('cparam01'));
    assert.equal(res.status, 200);
    const [b] = await h.location.lookup(`sip:watson@${DOMAIN}`);
    assert.equal(b!.contact, 'sip:+19725552222@gw1.example.net');
    assert.deepEqual(b!.contactParams, { unknownparam: null });
    const listed = contactsOf(res).get('sip:+19725552222@gw1.example.net');
    assert.ok(listed, 'the 200 lists the URI without the parameter');
    assert.equal(listed.params.get('unknownparam'), null);
  });

  it('cparam02: inside <> the parameter stays a URI parameter of the bound contact', async () => {
    const h = harness();
    const res = await h.answer(torture('cparam02'));
    assert.equal(res.status, 200);
    const [b] = await h.location.lookup(`sip:watson@${DOMAIN}`);
    assert.equal(b!.contact, 'sip:+19725552222@gw1.example.net;unknownparam');
    assert.deepEqual(b!.contactParams, {});
    assert.ok(contactsOf(res).has('sip:+19725552222@gw1.example.net;unknownparam'));
  });

  it('regescrt: the escaped Route header in the contact URI is kept intact', async () => {
    const h = harness();
    const res = await h.answer(torture('regescrt'));
    assert.equal(res.status, 200);
    const uri = 'sip:user@example.com?Route=%3Csip:sip.example.com%3E';
    assert.equal((await h.location.lookup(`sip:user@${DOMAIN}`))[0]!.contact, uri);
    assert.match(res.headers.get('contact')!, /^<sip:user@example\.com\?Route=%3Csip:sip\.example\.com%3E>;expires=3600$/);
    assert.deepEqual((await h.registrar.lookup(`sip:user@${DOMAIN}`)).targets.map((t) => t.binding.contact), [uri]);
  });

  it('unksm2: a To that is not a sip or sips URI is a 400 naming it', async () => {
    const h = harness();
    const res = await h.answer(torture('unksm2'));
    assert.equal(res.status, 400);
    assert.match(res.reason, /To must be a sip or sips URI, not isbn/);
    assert.deepEqual(await h.location.listAors(), []);
  });

  it('escnull: escaped NULs neither cut the AOR nor merge the two contacts', async () => {
    const h = harness();
    const res = await h.answer(torture('escnull'));
    assert.equal(res.status, 200);
    assert.deepEqual(await h.location.listAors(), [`sip:null-%00-null@${DOMAIN}`]);
    assert.equal(res.contacts.length, 2);
  });

  it('regaut01: an Authorization in an unknown scheme is ignored: without auth 200, with auth a Digest challenge', async () => {
    assert.equal((await harness().answer(torture('regaut01'))).status, 200);
    const res = await harness({ auth: true }).answer(torture('regaut01'));
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate')!, /^Digest /);
  });
});
