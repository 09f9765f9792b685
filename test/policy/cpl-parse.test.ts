import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCplError, parseCpl } from '../../src/policy/cpl/parse.js';
import type { CplError, LocationNode, LookupNode, ProxyNode, RejectNode } from '../../src/policy/cpl/types.js';

const NS = 'urn:ietf:params:xml:ns:cpl';
const cpl = (body: string): string => `<?xml version="1.0" encoding="UTF-8"?>\n<cpl xmlns="${NS}">\n${body}\n</cpl>`;

function errorsOf(xml: string, limits?: Parameters<typeof parseCpl>[1]): CplError[] {
  const r = parseCpl(xml, limits);
  assert.equal(r.ok, false, 'expected the script to be refused');
  return r.ok ? [] : r.errors;
}

/** The errors as "line:column: message", the way the CLI prints them (without the file name). */
function lines(xml: string, limits?: Parameters<typeof parseCpl>[1]): string[] {
  return errorsOf(xml, limits).map((e) => formatCplError('', e).slice(1));
}

describe('parseCpl: well-formedness and structure', () => {
  it('reports malformed XML at its position', () => {
    assert.deepEqual(lines(cpl('  <incoming>\n    <proxy>\n  </incoming>')), ['5:13: unexpected close tag.']);
    assert.deepEqual(lines(`<cpl xmlns="${NS}"><incoming><reject status="busy"></incoming></cpl>`)[0]?.split(':').slice(0, 2), ['1', '83']);
    assert.match(lines('')[0]!, /^1:1: /);
    assert.match(lines(`<cpl xmlns="${NS}" a="1" a="2"/>`)[0]!, /duplicate attribute/);
  });

  it('refuses a DOCTYPE (no entity expansion) and a root that is not <cpl> in the CPL namespace', () => {
    assert.match(lines(`<!DOCTYPE cpl [<!ENTITY a "aaaa">]><cpl xmlns="${NS}"/>`)[0]!, /DOCTYPE is not allowed/);
    assert.deepEqual(lines('<cpl>\n<incoming/></cpl>'), [`1:1: the root element must be <cpl xmlns="${NS}">, not <cpl> without a namespace`]);
    assert.match(lines('<cpl xmlns="urn:example:other"/>')[0]!, /not <cpl> in namespace 'urn:example:other'/);
  });

  it('reports an unknown node, a misplaced output and an extension element where they are', () => {
    assert.deepEqual(lines(cpl('  <incoming>\n    <forward url="sip:x@example.com"/>\n  </incoming>')), ['4:5: unknown element <forward>']);
    assert.deepEqual(lines(cpl('  <incoming>\n    <busy/>\n  </incoming>')), ["4:5: <incoming> output 'busy' is not valid here"]);
    assert.deepEqual(lines(cpl('  <incoming xmlns:x="urn:example:ext">\n    <x:route/>\n  </incoming>')), [
      "4:5: <x:route> is not a CPL element (namespace 'urn:example:ext'); CPL extensions are not supported",
    ]);
    assert.deepEqual(lines(cpl('  <incoming><redirect/></incoming>\n  <incoming/>')), ['4:3: <incoming> appears twice in <cpl> (first at line 3)']);
    assert.deepEqual(lines(cpl('  <incoming><location url="sip:a@example.com"><incoming/></location></incoming>')), ['3:47: <incoming> is only allowed directly inside <cpl>']);
  });

  it('reports outputs that are not valid for their node, repeated, or after otherwise', () => {
    const xml = cpl(`  <incoming>
    <proxy>
      <busy/>
      <success/>
      <busy/>
    </proxy>
  </incoming>
  <outgoing>
    <string-switch field="subject">
      <otherwise/>
      <string is="urgent"/>
    </string-switch>
  </outgoing>`);
    assert.deepEqual(lines(xml), [
      "6:7: <proxy> output 'success' is not valid (it takes busy, noanswer, redirection, failure, default)",
      "7:7: <proxy> output 'busy' appears twice (first at line 5)",
      '12:7: <otherwise> must be the last output of <string-switch>',
    ]);
  });

  it('reports missing and unknown attributes, and bad values at the attribute', () => {
    const xml = cpl(`  <incoming>
    <location>
      <proxy timout="10" ordering="random"/>
    </location>
  </incoming>`);
    assert.deepEqual(lines(xml), [
      "4:5: <location> needs a 'url' attribute",
      "5:14: <proxy> has no attribute 'timout' (it takes timeout, recurse, ordering)",
      "5:26: <proxy> ordering 'random' must be one of parallel, sequential, first-only",
    ]);
    assert.deepEqual(lines(cpl('<incoming><reject status="302"/></incoming>')), ["3:19: <reject> status '302' must be busy, notfound, reject, error or a 4xx, 5xx or 6xx status code"]);
    assert.deepEqual(lines(cpl('<incoming><location url="sip:a@example.com" priority="1.5" clear="true"/></incoming>')), [
      "3:45: <location> priority '1.5' must be a number from 0.0 to 1.0",
      "3:60: <location> clear 'true' must be 'yes' or 'no'",
    ]);
    assert.deepEqual(lines(cpl('<incoming><mail url="http://example.com/"/></incoming>')), ["3:17: <mail> url 'http://example.com/' must be a mailto: URL"]);
    assert.deepEqual(lines(cpl('<incoming><address-switch field="from"/></incoming>')), ["3:27: <address-switch> field 'from' must be one of origin, destination, original-destination"]);
  });

  it('checks address-switch output operators against the subfield', () => {
    const xml = cpl(`<incoming><address-switch field="origin" subfield="user">
  <address contains="bob"/>
  <address subdomain-of="example.com"/>
  <address is="a" contains="b"/>
</address-switch></incoming>`);
    assert.deepEqual(lines(xml), [
      "4:12: <address> contains 'bob' is only for subfield 'display'",
      "5:12: <address> subdomain-of 'example.com' is only for subfield 'host' or 'tel'",
      "6:3: <address> needs exactly one of 'is', 'contains', 'subdomain-of'",
    ]);
  });

  it('resolves subaction references and refuses loops, direct or through other subactions', () => {
    const loop = cpl(`  <subaction id="a"><sub ref="b"/></subaction>
  <subaction id="b"><location url="sip:b@example.com"><sub ref="c"/></location></subaction>
  <subaction id="c"><sub ref="a"/></subaction>
  <subaction id="self"><sub ref="self"/></subaction>
  <incoming><sub ref="a"/></incoming>`);
    assert.deepEqual(lines(loop), [
      '5:21: <sub ref="a"> makes a loop (a -> b -> c -> a); CPL scripts may not recurse',
      '6:24: <sub ref="self"> makes a loop (self -> self); CPL scripts may not recurse',
    ]);
    assert.deepEqual(lines(cpl('<incoming><sub ref="nowhere"/></incoming>')), ["3:11: <sub> refers to subaction 'nowhere', which is not defined"]);
    assert.deepEqual(lines(cpl('<subaction id="x"><redirect/></subaction><subaction id="x"><redirect/></subaction>')), ["3:42: subaction id 'x' is already used at line 3"]);
    // A subaction used from two places, and one defined after its use, are fine.
    const shared = parseCpl(cpl(`<incoming><address-switch field="origin"><address is="sip:a@example.com"><sub ref="vm"/></address>
      <otherwise><sub ref="vm"/></otherwise></address-switch></incoming><subaction id="vm"><location url="sip:vm@example.com"><redirect/></location></subaction>`));
    assert.ok(shared.ok);
  });

  it('refuses text inside CPL elements and content after leaf nodes', () => {
    assert.deepEqual(lines(cpl('<incoming>\n  call me <redirect/></incoming>')), ['4:3: text is not allowed inside <incoming>']);
    assert.deepEqual(lines(cpl('<incoming><reject status="busy"><redirect/></reject></incoming>')), ['3:33: <reject> ends the script here; it cannot contain <redirect>']);
    assert.deepEqual(lines(cpl('<incoming><redirect/><reject status="busy"/></incoming>')), ['3:22: <incoming> holds more than one node; an output leads to exactly one node']);
  });

  it('bounds the size, the number of elements and the nesting depth', () => {
    const nested = (n: number): string => cpl(`<incoming>${'<location url="sip:a@example.com">'.repeat(n)}<redirect/>${'</location>'.repeat(n)}</incoming>`);
    assert.ok(parseCpl(nested(20)).ok);
    assert.match(lines(nested(20), { maxDepth: 10 })[0]!, /^3:\d+: elements nest deeper than 10 levels$/);
    assert.match(lines(nested(20), { maxNodes: 15 })[0]!, /more than 15 elements/);
    assert.match(lines(nested(20), { maxBytes: 200 })[0]!, /^1:1: script is larger than 200 bytes$/);
  });

  it('validates time-switch values (RFC 3880 §4.4, RFC 2445 syntax)', () => {
    const xml = cpl(`<incoming><time-switch tzid="Europe/Atlantis">
  <time dtstart="2025-01-06 09:00" duration="PT8H"/>
  <time dtstart="20250106T090000" dtend="20250106T080000"/>
  <time dtstart="20250106T090000" dtend="20250106T100000" duration="PT1H"/>
  <time dtstart="20250106T090000"/>
  <time dtstart="20250106T090000" duration="8 hours"/>
  <time dtstart="20250106T090000" duration="PT1H" freq="fortnightly"/>
  <time dtstart="20250106T090000" duration="PT1H" freq="weekly" until="20250201" count="3"/>
  <time dtstart="20250106T090000" duration="PT1H" freq="weekly" byday="1MO"/>
  <time dtstart="20250106T090000" duration="PT1H" freq="monthly" bymonth="13" bymonthday="0"/>
  <time dtstart="20250106T090000" duration="PT1H" freq="monthly" bysetpos="1"/>
  <time dtstart="20250106T090000" duration="PT1H" freq="daily" interval="0" wkst="XX"/>
  <time dtstart="20250230T090000" duration="PT1H"/>
</time-switch></incoming>`);
    assert.deepEqual(lines(xml), [
      "3:24: <time-switch> tzid 'Europe/Atlantis' is not a time zone this server knows (use an IANA name such as Europe/Berlin)",
      "4:9: <time> dtstart '2025-01-06 09:00' is not an RFC 2445 DATE-TIME (e.g. 20250106T090000, or ...Z for UTC)",
      "5:35: <time> dtend '20250106T080000' must be after 'dtstart'",
      "6:59: <time> duration 'PT1H' cannot be given together with 'dtend'",
      "7:3: <time> needs 'dtend' or 'duration'",
      "8:35: <time> duration '8 hours' is not a positive RFC 2445 DURATION (e.g. PT8H, P1D, P1W)",
      "9:51: <time> freq 'fortnightly' must be one of secondly, minutely, hourly, daily, weekly, monthly, yearly",
      "10:82: <time> count '3' cannot be given together with 'until'",
      "11:65: <time> byday '1MO' has '1MO': ordinal weekdays need freq monthly or yearly",
      "12:66: <time> bymonth '13' has '13': values are 1 to 12",
      "12:79: <time> bymonthday '0' has '0': values are 1 to 31 or -1 to -31",
      "13:66: <time> bysetpos '1' only selects among the instances of another BYxxx rule",
      "14:64: <time> interval '0' must be a positive integer",
      "14:77: <time> wkst 'XX' must be a weekday (MO, TU, WE, TH, FR, SA, SU)",
      "15:9: <time> dtstart '20250230T090000' is not an RFC 2445 DATE-TIME (e.g. 20250106T090000, or ...Z for UTC)",
    ]);
    assert.match(lines(cpl('<incoming><time-switch tzurl="http://tz.example.com/Berlin"/></incoming>'))[0]!, /tzurl .* cannot be resolved by this server/);
    // RFC 3880 §4.4: without freq, recurrence parameters are accepted and ignored.
    const plain = parseCpl(cpl('<incoming><time-switch tzid="/Europe/Berlin"><time dtstart="20250106T090000" duration="PT1H" byday="MO"/></time-switch></incoming>'));
    assert.ok(plain.ok);
  });

  it('builds the model with the RFC defaults', () => {
    const r = parseCpl(cpl(`<incoming>
  <lookup source="registration">
    <success><location url="sip:cell@example.com" priority="0.5"><proxy><busy><reject status="busy"/></busy></proxy></location></success>
    <notfound><reject status="notfound" reason="Gone fishing"/></notfound>
  </lookup>
</incoming>`));
    assert.ok(r.ok);
    const lookup = r.script.incoming as LookupNode;
    assert.equal(lookup.kind, 'lookup');
    assert.equal(lookup.timeout, 30);
    assert.equal(lookup.clear, false);
    assert.equal(lookup.failure, undefined);
    const location = lookup.success as LocationNode;
    assert.deepEqual([location.url, location.priority, location.clear], ['sip:cell@example.com', 0.5, false]);
    const proxy = location.next as ProxyNode;
    assert.deepEqual([proxy.timeout, proxy.recurse, proxy.ordering], [undefined, true, 'parallel']);
    assert.equal((proxy.outputs.busy as RejectNode).status, 486);
    assert.deepEqual([(lookup.notfound as RejectNode).status, (lookup.notfound as RejectNode).reason], [404, 'Gone fishing']);
    assert.equal(r.script.nodeCount, 10);
    for (const [symbol, code] of [['reject', 603], ['error', 500], ['480', 480]] as const) {
      const s = parseCpl(cpl(`<incoming><reject status="${symbol}"/></incoming>`));
      assert.ok(s.ok);
      assert.equal((s.script.incoming as RejectNode).status, code);
    }
  });

  it('accepts an empty script, empty outputs, ancillary, and attributes of other namespaces', () => {
    assert.ok(parseCpl(`<cpl xmlns="${NS}"/>`).ok);
    const r = parseCpl(`<cpl xmlns="${NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="${NS} cpl.xsd">
  <ancillary/>
  <incoming><proxy><busy/><default/></proxy></incoming>
</cpl>`);
    assert.ok(r.ok);
    assert.deepEqual(Object.keys((r.script.incoming as ProxyNode).outputs), ['busy', 'default']);
  });
});
