import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sharedPath } from '../helpers/paths.js';
import {
  direction,
  effectiveConnection,
  fmtp,
  getAttribute,
  getAttributes,
  parseSdp,
  rewriteConnection,
  rtpmap,
  serializeSdp,
  setDirection,
  type SessionDescription,
} from '../../src/sdp/index.js';

const RFC5118_WIRE = sharedPath('conformance', 'rfc5118', 'wire');

const crlf = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

const OFFER = crlf(
  'v=0',
  'o=alice 2890844526 2890844527 IN IP4 192.0.2.10',
  's=-',
  'c=IN IP4 192.0.2.10',
  'b=AS:512',
  't=0 0',
  'a=sendrecv',
  'm=audio 49170 RTP/AVP 0 8 101',
  'b=TIAS:64000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=rtcp:49171',
  'm=video 51372 RTP/AVP 96 97',
  'c=IN IP4 192.0.2.11',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 profile-level-id=42e01f;packetization-mode=1',
  'a=rtpmap:97 opus/48000/2',
  'a=fingerprint:sha-256 AB:CD:EF',
  'a=recvonly',
);

/** The SDP body of an RFC 5118 wire message: the bytes after the empty line ending the header section. */
function sdpBody(name: string): Buffer {
  const msg = readFileSync(`${RFC5118_WIRE}/${name}.dat`);
  const end = msg.indexOf('\r\n\r\n');
  assert.ok(end > 0);
  return msg.subarray(end + 4);
}

function parseOk(input: Buffer | string): SessionDescription {
  const r = parseSdp(input);
  if (!r.ok) assert.fail(`unexpected parse error at line ${r.error.line}: ${r.error.message}`);
  return r.sdp;
}

function parseError(input: string): { line: number; message: string } {
  const r = parseSdp(input);
  if (r.ok) assert.fail('expected a parse error');
  return r.error;
}

describe('parseSdp: a typical audio+video offer', () => {
  const sdp = parseOk(OFFER);

  it('reads the session section', () => {
    assert.equal(sdp.version, 0);
    assert.deepEqual(sdp.origin, {
      username: 'alice',
      sessId: '2890844526',
      sessVersion: '2890844527',
      netType: 'IN',
      addrType: 'IP4',
      unicastAddress: '192.0.2.10',
    });
    assert.equal(sdp.sessionName, '-');
    assert.deepEqual(sdp.connection, { netType: 'IN', addrType: 'IP4', address: '192.0.2.10' });
    assert.deepEqual(sdp.bandwidths, [{ type: 'AS', value: 512 }]);
    assert.deepEqual(sdp.timings, [{ start: 0, stop: 0, repeats: [] }]);
    assert.deepEqual(sdp.attributes, [{ name: 'sendrecv' }]);
    assert.equal(sdp.media.length, 2);
  });

  it('reads the media sections', () => {
    const [audio, video] = sdp.media;
    assert.ok(audio && video);
    assert.equal(audio.type, 'audio');
    assert.equal(audio.port, 49170);
    assert.equal(audio.portCount, undefined);
    assert.equal(audio.proto, 'RTP/AVP');
    assert.deepEqual(audio.formats, ['0', '8', '101']);
    assert.deepEqual(audio.bandwidths, [{ type: 'TIAS', value: 64000 }]);
    assert.deepEqual(audio.connections, []);
    assert.deepEqual(getAttribute(audio, 'ptime'), { name: 'ptime', value: '20' });
    assert.equal(getAttributes(audio, 'rtpmap').length, 3);
    assert.equal(getAttribute(audio, 'absent'), undefined);
    // Attribute values keep their own colons.
    assert.deepEqual(getAttribute(video, 'fingerprint'), { name: 'fingerprint', value: 'sha-256 AB:CD:EF' });
    assert.deepEqual(video.connections, [{ netType: 'IN', addrType: 'IP4', address: '192.0.2.11' }]);
  });

  it('gives each stream its effective c= (media-level wins)', () => {
    assert.equal(effectiveConnection(sdp, sdp.media[0]!)?.address, '192.0.2.10');
    assert.equal(effectiveConnection(sdp, sdp.media[1]!)?.address, '192.0.2.11');
  });

  it('accepts bare LF line ends and a missing final line end', () => {
    const lf = parseOk(OFFER.replaceAll('\r\n', '\n').trimEnd());
    assert.deepEqual(lf, sdp);
    assert.equal(serializeSdp(lf), OFFER);
  });

  it('accepts a Buffer', () => {
    assert.deepEqual(parseOk(Buffer.from(OFFER)), sdp);
  });
});

describe('parseSdp: IPv6 (RFC 5118)', () => {
  it('§4.6 ipv6-in-sdp: IP6 origin and session c= without brackets', () => {
    const body = sdpBody('ipv6-in-sdp');
    const sdp = parseOk(body);
    assert.equal(sdp.origin.addrType, 'IP6');
    assert.equal(sdp.origin.unicastAddress, '2001:db8::20');
    assert.equal(sdp.origin.sessId, '971731711378798081', 'kept exactly, beyond 2^53');
    assert.equal(sdp.sessionName, "Live video feed for today's meeting");
    assert.deepEqual(sdp.connection, { netType: 'IN', addrType: 'IP6', address: '2001:db8::20' });
    assert.deepEqual(sdp.timings, [{ start: 3338481189, stop: 3370017201, repeats: [] }]);
    assert.deepEqual(
      sdp.media.map((m) => [m.type, m.port, effectiveConnection(sdp, m)?.address]),
      [
        ['audio', 6000, '2001:db8::20'],
        ['video', 6024, '2001:db8::20'],
      ],
    );
    assert.deepEqual(rtpmap(sdp.media[0]!), [{ payloadType: 2, encoding: 'G726-32', clockRate: 8000 }]);
    assert.deepEqual(rtpmap(sdp.media[1]!), [{ payloadType: 107, encoding: 'H263-1998', clockRate: 90000 }]);
    assert.equal(serializeSdp(sdp), body.toString('utf8'));
  });

  it('§4.8 mult-ip-in-sdp: no session c=, one IP4 and one IP6 stream, empty s=', () => {
    const body = sdpBody('mult-ip-in-sdp');
    const sdp = parseOk(body);
    assert.equal(sdp.connection, undefined);
    assert.equal(sdp.sessionName, '');
    assert.deepEqual(effectiveConnection(sdp, sdp.media[0]!), {
      netType: 'IN',
      addrType: 'IP4',
      address: '192.0.2.1',
    });
    assert.deepEqual(effectiveConnection(sdp, sdp.media[1]!), {
      netType: 'IN',
      addrType: 'IP6',
      address: '2001:db8::1',
    });
    assert.equal(serializeSdp(sdp), body.toString('utf8'));
  });

  it('§4.9 ipv4-mapped-ipv6: an IPv4-mapped address in IN IP6', () => {
    const sdp = parseOk(sdpBody('ipv4-mapped-ipv6'));
    assert.deepEqual(sdp.connection, { netType: 'IN', addrType: 'IP6', address: '::ffff:192.0.2.2' });
  });
});

describe('parseSdp: the rest of RFC 4566', () => {
  const FULL = crlf(
    'v=0',
    'o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5',
    's=SDP Seminar',
    'i=A Seminar on the session description protocol',
    'u=http://www.example.com/seminars/sdp.pdf',
    'e=j.doe@example.com (Jane Doe)',
    'p=+1 617 555-6011',
    'c=IN IP4 224.2.17.12/127',
    'b=CT:1000',
    't=2873397496 2873404696',
    'r=7d 1h 0 25h',
    't=3034423619 3042462419',
    'z=2882844526 -1h 2898848070 0',
    'k=prompt',
    'a=recvonly',
    'm=audio 49170 RTP/AVP 0',
    'i=the audio stream',
    'c=IN IP4 224.2.1.1/127/3',
    'c=IN IP6 FF15::101/3',
    'k=clear:secret',
    'm=video 51372/2 RTP/AVP 99',
    'a=rtpmap:99 h263-1998/90000',
    'y=0100000001',
    'f=v/2/4///a///',
  );
  const sdp = parseOk(FULL);

  it('reads i= u= e= p= k= and multicast c=', () => {
    assert.equal(sdp.information, 'A Seminar on the session description protocol');
    assert.equal(sdp.uri, 'http://www.example.com/seminars/sdp.pdf');
    assert.deepEqual(sdp.emails, ['j.doe@example.com (Jane Doe)']);
    assert.deepEqual(sdp.phones, ['+1 617 555-6011']);
    assert.equal(sdp.key, 'prompt');
    assert.deepEqual(sdp.connection, { netType: 'IN', addrType: 'IP4', address: '224.2.17.12', ttl: 127 });
    const [audio, video] = sdp.media;
    assert.equal(audio?.information, 'the audio stream');
    assert.equal(audio?.key, 'clear:secret');
    assert.deepEqual(audio?.connections, [
      { netType: 'IN', addrType: 'IP4', address: '224.2.1.1', ttl: 127, count: 3 },
      { netType: 'IN', addrType: 'IP6', address: 'FF15::101', count: 3 },
    ]);
    assert.equal(video?.port, 51372);
    assert.equal(video?.portCount, 2);
  });

  it('reads t= r= z=', () => {
    assert.deepEqual(sdp.timings, [
      { start: 2873397496, stop: 2873404696, repeats: [{ interval: '7d', duration: '1h', offsets: ['0', '25h'] }] },
      { start: 3034423619, stop: 3042462419, repeats: [] },
    ]);
    assert.deepEqual(sdp.zones, [
      { time: 2882844526, offset: '-1h' },
      { time: 2898848070, offset: '0' },
    ]);
  });

  it('keeps lines of unknown type so that they round-trip', () => {
    assert.deepEqual(sdp.media[1]?.unknownLines, [
      { type: 'y', value: '0100000001' },
      { type: 'f', value: 'v/2/4///a///' },
    ]);
    const session = parseOk(crlf('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 't=0 0', 'x=vendor'));
    assert.deepEqual(session.unknownLines, [{ type: 'x', value: 'vendor' }]);
  });

  it('round-trips every line type byte for byte', () => {
    assert.equal(serializeSdp(sdp), FULL);
    assert.equal(serializeSdp(parseOk(OFFER)), OFFER);
  });

  it('serialises in RFC 4566 order whatever the input order', () => {
    const shuffled = crlf(
      'v=0',
      'o=- 1 1 IN IP4 192.0.2.1',
      't=0 0',
      'a=tool:x',
      'c=IN IP4 192.0.2.1',
      's=-',
      'm=audio 4000 RTP/AVP 0',
      'a=ptime:20',
      'c=IN IP4 192.0.2.2',
    );
    assert.equal(
      serializeSdp(parseOk(shuffled)),
      crlf(
        'v=0',
        'o=- 1 1 IN IP4 192.0.2.1',
        's=-',
        'c=IN IP4 192.0.2.1',
        't=0 0',
        'a=tool:x',
        'm=audio 4000 RTP/AVP 0',
        'c=IN IP4 192.0.2.2',
        'a=ptime:20',
      ),
    );
  });
});

describe('rtpmap and fmtp', () => {
  const [audio, video] = parseOk(OFFER).media;

  it('lists the rtpmap entries with optional channels', () => {
    assert.deepEqual(rtpmap(audio!), [
      { payloadType: 0, encoding: 'PCMU', clockRate: 8000 },
      { payloadType: 8, encoding: 'PCMA', clockRate: 8000 },
      { payloadType: 101, encoding: 'telephone-event', clockRate: 8000 },
    ]);
    assert.deepEqual(rtpmap(video!), [
      { payloadType: 96, encoding: 'H264', clockRate: 90000 },
      { payloadType: 97, encoding: 'opus', clockRate: 48000, channels: 2 },
    ]);
  });

  it('skips malformed rtpmap values', () => {
    const head = ['v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 't=0 0', 'm=audio 4000 RTP/AVP 0 8'];
    const m = parseOk(crlf(...head, 'a=rtpmap:x', 'a=rtpmap:0 PCMU', 'a=rtpmap:8 PCMA/8000')).media[0]!;
    assert.deepEqual(rtpmap(m), [{ payloadType: 8, encoding: 'PCMA', clockRate: 8000 }]);
  });

  it('finds fmtp parameters by payload type', () => {
    assert.equal(fmtp(audio!, 101), '0-16');
    assert.equal(fmtp(video!, '96'), 'profile-level-id=42e01f;packetization-mode=1');
    assert.equal(fmtp(video!, 97), undefined);
    assert.equal(fmtp(audio!, 10), undefined, 'a prefix of 101 is not 101');
  });
});

describe('direction', () => {
  const base = ['v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0'];

  it('defaults to sendrecv (RFC 3264 §5.1)', () => {
    const sdp = parseOk(crlf(...base, 'm=audio 4000 RTP/AVP 0'));
    assert.equal(direction(sdp), 'sendrecv');
    assert.equal(direction(sdp, sdp.media[0]), 'sendrecv');
  });

  it('inherits the session-level direction; media-level overrides it', () => {
    const sdp = parseOk(crlf(...base, 'a=sendonly', 'm=audio 4000 RTP/AVP 0', 'm=video 4002 RTP/AVP 96', 'a=inactive'));
    assert.equal(direction(sdp), 'sendonly');
    assert.equal(direction(sdp, sdp.media[0]), 'sendonly');
    assert.equal(direction(sdp, sdp.media[1]), 'inactive');
  });

  it('setDirection replaces the direction in place or appends one', () => {
    const sdp = parseOk(OFFER);
    const video = sdp.media[1]!;
    setDirection(video, 'sendonly');
    assert.equal(direction(sdp, video), 'sendonly');
    assert.deepEqual(getAttributes(video, 'sendonly'), [{ name: 'sendonly' }]);
    assert.deepEqual(getAttributes(video, 'recvonly'), []);
    const audio = sdp.media[0]!;
    setDirection(audio, 'inactive');
    assert.deepEqual(audio.attributes.at(-1), { name: 'inactive' });
    setDirection(sdp, 'recvonly');
    assert.deepEqual(sdp.attributes, [{ name: 'recvonly' }]);
    assert.equal(direction(sdp, audio), 'inactive');
    const attrs = serializeSdp(sdp).split('\r\n').filter((l) => /^a=(sendrecv|sendonly|recvonly|inactive)$/.test(l));
    assert.deepEqual(attrs, ['a=recvonly', 'a=inactive', 'a=sendonly']);
  });
});

describe('rewriteConnection', () => {
  it('rewrites session and media c= and maps active ports, leaving rejected streams at 0', () => {
    const sdp = parseOk(
      crlf(
        'v=0',
        'o=alice 1 1 IN IP4 10.0.0.5',
        's=-',
        'c=IN IP4 10.0.0.5',
        't=0 0',
        'm=audio 49170 RTP/AVP 0',
        'a=rtcp:49171',
        'm=video 0 RTP/AVP 96',
        'm=audio 49180 RTP/AVP 8',
        'c=IN IP4 224.2.1.1/127/3',
      ),
    );
    const calls: number[] = [];
    rewriteConnection(sdp, '203.0.113.7', (m, i) => {
      calls.push(i);
      return 30000 + m.port - 49170;
    });
    assert.deepEqual(calls, [0, 2]);
    assert.equal(
      serializeSdp(sdp),
      crlf(
        'v=0',
        'o=alice 1 1 IN IP4 10.0.0.5',
        's=-',
        'c=IN IP4 203.0.113.7',
        't=0 0',
        'm=audio 30000 RTP/AVP 0',
        'm=video 0 RTP/AVP 96',
        'm=audio 30010 RTP/AVP 8',
        'c=IN IP4 203.0.113.7',
      ),
    );
  });

  it('gives every stream a c= when there is no session c=, and picks IP6 for an IPv6 relay', () => {
    const sdp = parseOk(sdpBody('mult-ip-in-sdp'));
    rewriteConnection(sdp, '2001:db8::99');
    assert.equal(sdp.connection, undefined);
    for (const m of sdp.media) {
      assert.deepEqual(m.connections, [{ netType: 'IN', addrType: 'IP6', address: '2001:db8::99' }]);
    }
    assert.deepEqual(
      sdp.media.map((m) => m.port),
      [22334, 6024],
      'ports untouched without a mapper',
    );
  });

  it('without a mapper, keeps a=rtcp ports and rewrites their addresses', () => {
    const sdp = parseOk(
      crlf(
        'v=0',
        'o=- 1 1 IN IP4 10.0.0.5',
        's=-',
        't=0 0',
        'm=audio 49170 RTP/AVP 0',
        'c=IN IP4 10.0.0.5',
        'a=rtcp:53020 IN IP4 10.0.0.5',
        'm=audio 49180 RTP/AVP 0',
        'c=IN IP4 10.0.0.5',
        'a=rtcp:49181',
      ),
    );
    rewriteConnection(sdp, '198.51.100.1');
    assert.deepEqual(getAttribute(sdp.media[0]!, 'rtcp'), { name: 'rtcp', value: '53020 IN IP4 198.51.100.1' });
    assert.deepEqual(getAttribute(sdp.media[1]!, 'rtcp'), { name: 'rtcp', value: '49181' });
    assert.equal(effectiveConnection(sdp, sdp.media[1]!)?.address, '198.51.100.1');
  });
});

describe('parseSdp: errors and liberal acceptance', () => {
  const head = ['v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 't=0 0'];

  it('rejects a missing v=', () => {
    assert.deepEqual(parseError(''), { line: 1, message: 'missing v= line: the description is empty' });
    assert.equal(parseError(crlf(...head.slice(1))).line, 1);
    assert.match(parseError(crlf(...head.slice(1))).message, /missing v=/);
  });

  it('rejects a missing o= or s=, pointing at the end of the session section', () => {
    const noOrigin = parseError(crlf('v=0', 's=-', 't=0 0', 'm=audio 4000 RTP/AVP 0'));
    assert.deepEqual(noOrigin, { line: 4, message: 'missing o= line' });
    const noName = parseError(crlf('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 't=0 0'));
    assert.deepEqual(noName, { line: 4, message: 'missing s= line' });
  });

  it('accepts a missing t= as t=0 0', () => {
    const sdp = parseOk(crlf('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'm=audio 4000 RTP/AVP 0'));
    assert.deepEqual(sdp.timings, [{ start: 0, stop: 0, repeats: [] }]);
    assert.match(serializeSdp(sdp), /\r\nt=0 0\r\n/);
  });

  it('rejects lines not of the form <type>=<value>', () => {
    for (const bad of ['hello', 'a = b', '=x', 'a', '1=2', ' a=b']) {
      const err = parseError(crlf(...head, bad));
      assert.equal(err.line, 5, bad);
      assert.match(err.message, /not of the form/);
    }
    assert.equal(parseError(crlf(...head, '', 'a=x')).line, 5, 'an empty line inside the description');
  });

  it('rejects a bad m= port', () => {
    for (const port of ['abc', '70000', '-1', '4000/0', '4000/x', '']) {
      const err = parseError(crlf(...head, 'c=IN IP4 192.0.2.1', `m=audio ${port} RTP/AVP 0`));
      assert.equal(err.line, 6, port);
      assert.match(err.message, /bad m= (port|line)/);
    }
  });

  it('rejects a bad c= line', () => {
    const cases = [
      'IN IP4',
      'IN IP4 192.0.2.1 extra',
      'IN IP4 224.2.1.1/256',
      'IN IP4 224.2.1.1/127/3/1',
      'IN IP4 224.2.1.1/ttl',
      'IN IP4 224.2.1.1/127/0',
      'IN IP4 2001:db8::1',
      'IN IP6 [2001:db8::1]',
      'IN IP6 FF15::101/3/1',
    ];
    for (const c of cases) {
      const err = parseError(crlf(...head, `c=${c}`));
      assert.equal(err.line, 5, c);
      assert.match(err.message, /^bad c= line/, c);
    }
    assert.match(parseError(crlf(...head, 'm=audio 4000 RTP/AVP 0', 'c=IN IP6 ::1/x')).message, /^bad c= line/);
  });

  it('keeps c= lines of other network types opaque', () => {
    const sdp = parseOk(crlf(...head, 'c=ATM NSAP 47.0091.8100.0000.0060.3e64.fd01'));
    assert.deepEqual(sdp.connection, { netType: 'ATM', addrType: 'NSAP', address: '47.0091.8100.0000.0060.3e64.fd01' });
  });

  it('rejects other malformed structured lines, duplicates and misplaced lines', () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['v=x', ...head.slice(1)], 1, /bad v=/],
      [['v=0', 'o=- 1 1 IN IP4', 's=-'], 2, /bad o=.*6 fields/],
      [[...head, 'b=AS'], 5, /bad b=/],
      [[...head, 'b=AS:fast'], 5, /bad b=/],
      [[...head.slice(0, 3), 't=0'], 4, /bad t=/],
      [[...head.slice(0, 3), 'r=7d 1h 0'], 4, /without a preceding t=/],
      [[...head, 'r=7d 1h'], 5, /bad r=/],
      [[...head, 'z=2882844526'], 5, /bad z=/],
      [[...head, 'a='], 5, /without an attribute name/],
      [[...head, 's=again'], 5, /duplicate s=/],
      [[...head, 'v=0'], 5, /duplicate v=/],
      [[...head, 'm=audio 4000 RTP/AVP 0', 't=0 0'], 6, /t= line is not allowed in a media/],
      [[...head, 'm=audio 4000 RTP/AVP 0', 'i=a', 'i=b'], 7, /duplicate i=/],
      [[...head, 'm=audio 4000'], 5, /bad m= line/],
    ];
    for (const [lines, line, message] of cases) {
      const err = parseError(crlf(...lines));
      assert.equal(err.line, line, lines.join('|'));
      assert.match(err.message, message, lines.join('|'));
    }
  });

  it('accepts sloppy but unambiguous input', () => {
    const sdp = parseOk(
      'v=0\n' +
        'o=-  1 1  IN IP4 192.0.2.1 \n' +
        's=\n' +
        't=0 0\n' +
        'm=audio 0 RTP/AVP\r\n' +
        'c=IN IP4 192.0.2.1\n\n\n',
    );
    assert.equal(sdp.origin.unicastAddress, '192.0.2.1');
    assert.deepEqual(sdp.media[0]?.formats, []);
  });

  it('never throws, whatever prefix or byte of a description it is given', () => {
    const text = serializeSdp(parseOk(OFFER));
    for (let i = 0; i <= text.length; i++) {
      assert.doesNotThrow(() => parseSdp(text.slice(0, i)));
      const mutated = Buffer.from(text);
      mutated[i % mutated.length] = (i * 37) & 0xff;
      assert.doesNotThrow(() => parseSdp(mutated));
    }
  });
});
