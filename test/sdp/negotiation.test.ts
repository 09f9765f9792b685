import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  PCMA,
  PCMU,
  TELEPHONE_EVENT,
  agreedStream,
  allRejected,
  codecsOf,
  createAnswer,
  createOffer,
  direction,
  effectiveConnection,
  fmtp,
  getAttribute,
  nextVersion,
  parseSdp,
  rejectingAnswer,
  rtpmap,
  type AnswerOutcome,
  type Codec,
  type MediaDescription,
  type MediaOffer,
  type SessionDescription,
} from '../../src/sdp/index.js';

const crlf = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

function parseOk(text: string): SessionDescription {
  const r = parseSdp(text);
  if (!r.ok) assert.fail(`unexpected parse error at line ${r.error.line}: ${r.error.message}`);
  return r.sdp;
}

function media(sdp: SessionDescription, index: number): MediaDescription {
  const m = sdp.media[index];
  assert.ok(m, `m= line ${index} exists`);
  return m;
}

function accepted(outcome: AnswerOutcome): Extract<AnswerOutcome, { ok: true }> {
  if (!outcome.ok) assert.fail(`expected an answer, got ${outcome.status} ${outcome.reason}`);
  return outcome;
}

const OURS: MediaOffer = { address: '203.0.113.5', port: 40000, codecs: [PCMU, TELEPHONE_EVENT], sessionId: '1000' };

/** An offer as a softphone sends it: PCMA preferred, PCMU second, telephone-event on a dynamic number. */
const PCMA_PCMU_TE96 = crlf(
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 198.51.100.7',
  's=-',
  'c=IN IP4 198.51.100.7',
  't=0 0',
  'm=audio 49170 RTP/AVP 8 0 96',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:96 telephone-event/8000',
  'a=fmtp:96 0-15',
  'a=ptime:20',
);

/** Shaped after a baresip offer: opus and wideband codecs first, static types later, rtcp-mux, ssrc lines. */
const BARESIP = crlf(
  'v=0',
  'o=- 1193183468 3420412893 IN IP4 192.168.1.55',
  's=-',
  'c=IN IP4 192.168.1.55',
  't=0 0',
  'm=audio 10692 RTP/AVP 96 97 9 0 8 101',
  'b=AS:128',
  'a=rtpmap:96 opus/48000/2',
  'a=fmtp:96 stereo=1;sprop-stereo=1',
  'a=rtpmap:97 G7221/16000',
  'a=fmtp:97 bitrate=32000',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-15',
  'a=rtcp-mux',
  'a=sendrecv',
  'a=label:1',
  'a=ssrc:2553212167 cname:45c1dbdd-a8cf-4e38-9c8b-ab1a3f1a2e4d',
);

describe('createOffer (RFC 3264 §5)', () => {
  it('offers one audio stream with an rtpmap per codec, fmtp for telephone-event, ptime and direction', () => {
    const text = createOffer({ address: '192.0.2.1', port: 4000, codecs: [PCMU, PCMA, TELEPHONE_EVENT] });
    assert.ok(text.endsWith('\r\n'));
    assert.ok(text.split('\r\n').every((l) => !l.includes('\n')), 'every line ends in CRLF');
    const sdp = parseOk(text);
    assert.equal(sdp.origin.sessVersion, '1');
    assert.equal(sdp.origin.username, 'sipway');
    assert.match(sdp.origin.sessId, /^\d+$/);
    assert.deepEqual([sdp.origin.addrType, sdp.origin.unicastAddress], ['IP4', '192.0.2.1']);
    assert.equal(sdp.media.length, 1);
    const m = media(sdp, 0);
    assert.deepEqual([m.type, m.port, m.proto, m.formats], ['audio', 4000, 'RTP/AVP', ['0', '8', '101']]);
    assert.deepEqual(
      rtpmap(m).map((r) => `${r.payloadType} ${r.encoding}/${r.clockRate}`),
      ['0 PCMU/8000', '8 PCMA/8000', '101 telephone-event/8000'],
    );
    assert.equal(fmtp(m, 101), '0-16');
    assert.equal(fmtp(m, 0), undefined);
    assert.equal(getAttribute(m, 'ptime')?.value, '20');
    assert.equal(direction(sdp, m), 'sendrecv');
    assert.equal(effectiveConnection(sdp, m)?.address, '192.0.2.1');
  });

  it('uses IP6 for an IPv6 address and honours direction, session id, user name and ptime', () => {
    const sdp = parseOk(
      createOffer({
        address: '2001:db8::7',
        port: 5004,
        codecs: [PCMA],
        direction: 'sendonly',
        sessionId: '42',
        username: 'carol',
        ptime: 30,
      }),
    );
    assert.deepEqual(sdp.origin, {
      username: 'carol',
      sessId: '42',
      sessVersion: '1',
      netType: 'IN',
      addrType: 'IP6',
      unicastAddress: '2001:db8::7',
    });
    const m = media(sdp, 0);
    assert.deepEqual(effectiveConnection(sdp, m), { netType: 'IN', addrType: 'IP6', address: '2001:db8::7' });
    assert.equal(direction(sdp, m), 'sendonly');
    assert.equal(getAttribute(m, 'ptime')?.value, '30');
  });

  it('writes the channel count of a multi-channel codec', () => {
    const opus: Codec = { encoding: 'opus', clockRate: 48000, channels: 2, payloadType: 111, fmtp: 'useinbandfec=1' };
    const m = media(parseOk(createOffer({ address: '192.0.2.1', port: 4000, codecs: [opus, PCMU] })), 0);
    assert.deepEqual(rtpmap(m)[0], { payloadType: 111, encoding: 'opus', clockRate: 48000, channels: 2 });
    assert.equal(fmtp(m, 111), 'useinbandfec=1');
  });

  it('refuses a description it could not write correctly', () => {
    assert.throws(() => createOffer({ address: '192.0.2.1', port: 4000, codecs: [] }), RangeError);
    assert.throws(() => createOffer({ address: '192.0.2.1', port: 4000, codecs: [PCMU, { ...PCMA, payloadType: 0 }] }), RangeError);
    assert.throws(() => createOffer({ address: '192.0.2.1', port: 0, codecs: [PCMU] }), RangeError);
    assert.throws(() => createOffer({ address: '192.0.2.1', port: 4000, codecs: [PCMU], sessionId: 'abc' }), RangeError);
  });
});

describe('createAnswer (RFC 3264 §6)', () => {
  it('answers PCMA+PCMU+telephone-event/96 with PCMU and DTMF under the offer\'s numbers, in the offer\'s order', () => {
    const { sdp: text, stream } = accepted(createAnswer(PCMA_PCMU_TE96, OURS));
    const sdp = parseOk(text);
    assert.equal(sdp.origin.sessVersion, '1');
    assert.equal(sdp.origin.unicastAddress, '203.0.113.5');
    const m = media(sdp, 0);
    assert.deepEqual([m.type, m.port, m.proto, m.formats], ['audio', 40000, 'RTP/AVP', ['0', '96']]);
    assert.deepEqual(
      rtpmap(m).map((r) => `${r.payloadType} ${r.encoding}/${r.clockRate}`),
      ['0 PCMU/8000', '96 telephone-event/8000'],
    );
    assert.equal(fmtp(m, 96), TELEPHONE_EVENT.fmtp, 'our DTMF events: what we are willing to receive');
    assert.equal(fmtp(m, 101), undefined, 'our preferred number 101 does not appear');
    assert.equal(effectiveConnection(sdp, m)?.address, '203.0.113.5');
    assert.equal(direction(sdp, m), 'sendrecv');
    assert.deepEqual(stream, {
      address: '198.51.100.7',
      port: 49170,
      codec: { encoding: 'PCMU', clockRate: 8000, payloadType: 0 },
      dtmfPayloadType: 96,
      direction: 'sendrecv',
    });
  });

  it('orders the common codecs as the offer does and sends the offerer\'s favourite', () => {
    const { sdp: text, stream } = accepted(createAnswer(PCMA_PCMU_TE96, { ...OURS, codecs: [PCMU, PCMA] }));
    assert.deepEqual(media(parseOk(text), 0).formats, ['8', '0']);
    assert.equal(stream.codec.encoding, 'PCMA');
    assert.equal(stream.codec.payloadType, 8);
    assert.equal(stream.dtmfPayloadType, undefined, 'no telephone-event on our side');
  });

  it('rejects a video stream in place and accepts the audio stream after it', () => {
    const offer = crlf(
      'v=0',
      'o=bob 1 1 IN IP4 198.51.100.9',
      's=-',
      'c=IN IP4 198.51.100.9',
      't=0 0',
      'm=video 51372 RTP/AVP 96 97',
      'a=rtpmap:96 H264/90000',
      'a=rtpmap:97 VP8/90000',
      'm=audio 49172 RTP/AVP 0',
      'c=IN IP4 198.51.100.10',
    );
    const { sdp: text, stream } = accepted(createAnswer(offer, OURS));
    const sdp = parseOk(text);
    assert.equal(sdp.media.length, 2);
    const video = media(sdp, 0);
    assert.deepEqual([video.type, video.port, video.proto, video.formats], ['video', 0, 'RTP/AVP', ['96', '97']]);
    const audio = media(sdp, 1);
    assert.deepEqual([audio.type, audio.port, audio.formats], ['audio', 40000, ['0']]);
    assert.deepEqual([stream.address, stream.port], ['198.51.100.10', 49172], 'the media-level c= wins');
    assert.equal(allRejected(text), false);
  });

  it('mirrors the offered direction: sendonly -> recvonly, recvonly -> sendonly, inactive -> inactive', () => {
    const withDir = (attr: string, level: 'session' | 'media'): string =>
      level === 'media'
        ? PCMA_PCMU_TE96.replace('a=ptime:20\r\n', `a=ptime:20\r\na=${attr}\r\n`)
        : PCMA_PCMU_TE96.replace('t=0 0\r\n', `t=0 0\r\na=${attr}\r\n`);
    const answered = (offer: string, ours: MediaOffer = OURS): [string, string] => {
      const { sdp, stream } = accepted(createAnswer(offer, ours));
      const parsed = parseOk(sdp);
      return [direction(parsed, media(parsed, 0)), stream.direction];
    };
    assert.deepEqual(answered(withDir('sendonly', 'media')), ['recvonly', 'recvonly']);
    assert.deepEqual(answered(withDir('recvonly', 'media')), ['sendonly', 'sendonly']);
    assert.deepEqual(answered(withDir('inactive', 'media')), ['inactive', 'inactive']);
    assert.deepEqual(answered(withDir('sendonly', 'session')), ['recvonly', 'recvonly'], 'a session-level direction counts');
    // What we want narrows what the offer allows, never widens it.
    assert.deepEqual(answered(PCMA_PCMU_TE96, { ...OURS, direction: 'sendonly' }), ['sendonly', 'sendonly']);
    assert.deepEqual(answered(withDir('sendonly', 'media'), { ...OURS, direction: 'sendonly' }), ['inactive', 'inactive']);
  });

  it('answers a G.729-only offer with 488 naming the offered codec, with or without an rtpmap', () => {
    const g729 = crlf('v=0', 'o=p 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 't=0 0', 'm=audio 5000 RTP/AVP 18', 'a=rtpmap:18 G729/8000', 'a=fmtp:18 annexb=no');
    const outcome = createAnswer(g729, OURS);
    assert.equal(outcome.ok, false);
    assert.ok(!outcome.ok);
    assert.equal(outcome.status, 488);
    assert.match(outcome.reason, /^Not Acceptable Here - no common audio codec \(offered: G729\/8000\)$/);
    const bare = createAnswer(g729.replace('a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n', ''), OURS);
    assert.ok(!bare.ok && bare.reason.includes('G729/8000'), 'payload type 18 is known statically');
  });

  it('does not accept a stream whose only common format is telephone-event', () => {
    const offer = PCMA_PCMU_TE96.replace('m=audio 49170 RTP/AVP 8 0 96', 'm=audio 49170 RTP/AVP 8 96');
    const outcome = createAnswer(offer, { ...OURS, codecs: [PCMU, TELEPHONE_EVENT] });
    assert.ok(!outcome.ok);
    assert.equal(outcome.status, 488);
    assert.match(outcome.reason, /offered: PCMA\/8000, telephone-event\/8000\)/);
  });

  it('answers 400 to an unreadable offer and to an audio stream with no address', () => {
    const garbage = createAnswer('hello, this is not SDP', OURS);
    assert.ok(!garbage.ok);
    assert.equal(garbage.status, 400);
    assert.match(garbage.reason, /^Bad Request - unreadable SDP: \S/);
    const noC = createAnswer(crlf('v=0', 'o=p 1 1 IN IP4 198.51.100.1', 's=-', 't=0 0', 'm=audio 5000 RTP/AVP 0'), OURS);
    assert.ok(!noC.ok);
    assert.equal(noC.status, 400);
    assert.match(noC.reason, /no c= line/);
  });

  it('accepts only plain RTP/AVP: an SRTP stream is rejected and a later RTP/AVP one taken', () => {
    const savpOnly = PCMA_PCMU_TE96.replace('RTP/AVP', 'RTP/SAVP');
    const refused = createAnswer(savpOnly, OURS);
    assert.ok(!refused.ok);
    assert.equal(refused.status, 488);
    assert.match(refused.reason, /PCMU\/8000 over RTP\/SAVP/);

    const both = `${PCMA_PCMU_TE96.replace('RTP/AVP', 'RTP/SAVP')}m=audio 49180 RTP/AVP 0\r\n`;
    const { sdp: text, stream } = accepted(createAnswer(both, OURS));
    const sdp = parseOk(text);
    assert.deepEqual(sdp.media.map((m) => [m.port, m.proto]), [[0, 'RTP/SAVP'], [40000, 'RTP/AVP']]);
    assert.equal(stream.port, 49180);
  });

  it('keeps an audio stream the offer itself disabled (port 0) rejected and takes the next one', () => {
    const offer = `${PCMA_PCMU_TE96.replace('m=audio 49170', 'm=audio 0')}m=audio 49200 RTP/AVP 0\r\n`;
    const { sdp: text, stream } = accepted(createAnswer(offer, OURS));
    assert.deepEqual(parseOk(text).media.map((m) => m.port), [0, 40000]);
    assert.equal(stream.port, 49200);
    const onlyDisabled = createAnswer(PCMA_PCMU_TE96.replace('m=audio 49170', 'm=audio 0'), OURS);
    assert.ok(!onlyDisabled.ok);
    assert.equal(onlyDisabled.status, 488);
  });

  it('answers a baresip offer: PCMU and telephone-event/101 picked out, rtcp-mux not echoed, t= copied', () => {
    const { sdp: text, stream } = accepted(createAnswer(BARESIP, { ...OURS, codecs: [PCMU, PCMA, TELEPHONE_EVENT] }));
    const sdp = parseOk(text);
    const m = media(sdp, 0);
    assert.deepEqual(m.formats, ['0', '8', '101']);
    assert.equal(getAttribute(m, 'rtcp-mux'), undefined, 'we do not multiplex RTCP, so we must not agree to it');
    assert.deepEqual(sdp.timings, parseOk(BARESIP).timings);
    assert.deepEqual(stream, {
      address: '192.168.1.55',
      port: 10692,
      codec: { encoding: 'PCMU', clockRate: 8000, payloadType: 0 },
      dtmfPayloadType: 101,
      direction: 'sendrecv',
    });
    // The offerer, reading our answer, agrees on the same stream seen from its side.
    const theirs = agreedStream(BARESIP, text);
    assert.deepEqual(theirs, {
      address: '203.0.113.5',
      port: 40000,
      codec: { encoding: 'PCMU', clockRate: 8000, payloadType: 0 },
      dtmfPayloadType: 101,
      direction: 'sendrecv',
    });
  });
});

describe('agreedStream', () => {
  const ourOffer = createOffer({ address: '192.0.2.1', port: 4000, codecs: [PCMU, TELEPHONE_EVENT], sessionId: '7' });
  const answer = (mLine: string, ...attrs: string[]): string =>
    crlf('v=0', 'o=peer 9 9 IN IP4 198.51.100.20', 's=-', 'c=IN IP4 198.51.100.20', 't=0 0', mLine, ...attrs);

  it('matches the answered codecs by name and clock rate, not by payload number', () => {
    const text = answer(
      'm=audio 30000 RTP/AVP 8 101 97 100',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 speex/8000',
      'a=rtpmap:97 pcmu/8000',
      'a=rtpmap:100 telephone-event/8000',
      'a=fmtp:100 0-15',
      'a=recvonly',
    );
    assert.deepEqual(agreedStream(ourOffer, text), {
      address: '198.51.100.20',
      port: 30000,
      // PCMA was never offered; 101 is speex in the answer whatever it was in our offer; PCMU came back as 97.
      codec: { encoding: 'PCMU', clockRate: 8000, payloadType: 97 },
      dtmfPayloadType: 100,
      direction: 'sendonly',
    });
  });

  it('is undefined for a rejected stream, no common codec, a non-audio counterpart, or unreadable text', () => {
    assert.equal(agreedStream(ourOffer, answer('m=audio 0 RTP/AVP 0')), undefined);
    assert.equal(agreedStream(ourOffer, answer('m=audio 30000 RTP/AVP 8', 'a=rtpmap:8 PCMA/8000')), undefined);
    assert.equal(agreedStream(ourOffer, answer('m=audio 30000 RTP/AVP 101', 'a=rtpmap:101 telephone-event/8000')), undefined);
    const videoOffer = ourOffer.replace('m=audio', 'm=video');
    assert.equal(agreedStream(videoOffer, answer('m=audio 30000 RTP/AVP 0')), undefined);
    assert.equal(agreedStream(ourOffer, 'garbage'), undefined);
    assert.equal(agreedStream('garbage', answer('m=audio 30000 RTP/AVP 0')), undefined);
  });

  it('sees a hold answered: our sendonly offer, their recvonly answer, we send', () => {
    const hold = createOffer({ address: '192.0.2.1', port: 4000, codecs: [PCMU], direction: 'sendonly' });
    const { sdp: their, stream: theirView } = accepted(
      createAnswer(hold, { address: '198.51.100.20', port: 30000, codecs: [PCMA, PCMU] }),
    );
    assert.equal(theirView.direction, 'recvonly');
    const ours = agreedStream(hold, their);
    assert.equal(ours?.direction, 'sendonly');
    assert.equal(ours?.codec.encoding, 'PCMU');
    assert.deepEqual([ours?.address, ours?.port], ['198.51.100.20', 30000]);
  });
});

describe('rejectingAnswer', () => {
  it('rejects every stream in place with port 0 and copies t=', () => {
    const offer = crlf(
      'v=0',
      'o=bob 1 1 IN IP4 198.51.100.9',
      's=-',
      'c=IN IP4 198.51.100.9',
      't=3034423619 3042462419',
      'm=audio 49170 RTP/AVP 0 8',
      'm=video 51372 RTP/AVP 96',
      'm=application 5000 UDP/DTLS/SCTP webrtc-datachannel',
    );
    const text = rejectingAnswer(offer, '2001:db8::1');
    assert.ok(text !== undefined);
    const sdp = parseOk(text);
    assert.deepEqual(
      sdp.media.map((m) => [m.type, m.port, m.proto, m.formats]),
      [
        ['audio', 0, 'RTP/AVP', ['0', '8']],
        ['video', 0, 'RTP/AVP', ['96']],
        ['application', 0, 'UDP/DTLS/SCTP', ['webrtc-datachannel']],
      ],
    );
    assert.deepEqual(sdp.timings, [{ start: 3034423619, stop: 3042462419, repeats: [] }]);
    assert.equal(sdp.connection?.addrType, 'IP6');
    assert.equal(allRejected(text), true);
    assert.equal(agreedStream(offer, text), undefined);
    assert.equal(rejectingAnswer('nonsense', '192.0.2.1'), undefined);
  });
});

describe('nextVersion', () => {
  it('counts the o= version up and changes nothing else', () => {
    const next = nextVersion(PCMA_PCMU_TE96);
    assert.equal(parseOk(next).origin.sessVersion, '2890844527');
    assert.equal(parseOk(next).origin.sessId, '2890844526');
    assert.equal(
      next.split('\r\n').filter((l) => !l.startsWith('o=')).join('\r\n'),
      PCMA_PCMU_TE96.split('\r\n').filter((l) => !l.startsWith('o=')).join('\r\n'),
    );
    assert.equal(parseOk(nextVersion(next)).origin.sessVersion, '2890844528');
  });

  it('counts past 2^64 - 1 exactly and keeps bare-LF text as it is', () => {
    const max = 18446744073709551615n;
    const text = `v=0\no=x 1 ${max} IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n`;
    const next = nextVersion(text);
    assert.equal(BigInt(parseOk(next).origin.sessVersion), max + 1n);
    assert.ok(!next.includes('\r'));
  });

  it('returns unreadable text unchanged', () => {
    assert.equal(nextVersion('not sdp'), 'not sdp');
  });
});

describe('codecsOf', () => {
  it('lists the first audio stream\'s codecs in its order, static types known without rtpmap', () => {
    const text = crlf(
      'v=0',
      'o=p 1 1 IN IP4 198.51.100.1',
      's=-',
      'c=IN IP4 198.51.100.1',
      't=0 0',
      'm=video 6000 RTP/AVP 0',
      'm=audio 5000 RTP/AVP 8 0 18 97 98',
      'a=rtpmap:97 telephone-event/8000',
      'a=fmtp:97 0-15',
      'm=audio 5002 RTP/AVP 3',
    );
    assert.deepEqual(codecsOf(text), [
      { encoding: 'PCMA', clockRate: 8000, payloadType: 8 },
      { encoding: 'PCMU', clockRate: 8000, payloadType: 0 },
      { encoding: 'G729', clockRate: 8000, payloadType: 18 },
      { encoding: 'telephone-event', clockRate: 8000, payloadType: 97, fmtp: '0-15' },
      // 98 is dynamic and has no rtpmap: unknowable, so left out.
    ]);
    assert.deepEqual(codecsOf('garbage'), []);
    assert.deepEqual(codecsOf(crlf('v=0', 'o=p 1 1 IN IP4 198.51.100.1', 's=-', 't=0 0')), []);
  });

  it('lets an rtpmap override the static table and keeps channel counts', () => {
    const text = BARESIP.replace('a=rtpmap:9 G722/8000', 'a=rtpmap:9 G722/16000');
    const codecs = codecsOf(text);
    assert.deepEqual(codecs[0], { encoding: 'opus', clockRate: 48000, channels: 2, payloadType: 96, fmtp: 'stereo=1;sprop-stereo=1' });
    assert.deepEqual(codecs[2], { encoding: 'G722', clockRate: 16000, payloadType: 9 });
  });
});

describe('allRejected', () => {
  it('is true with no m= line or with every port 0, false with one live stream', () => {
    const head = crlf('v=0', 'o=p 1 1 IN IP4 198.51.100.1', 's=-', 'c=IN IP4 198.51.100.1', 't=0 0');
    assert.equal(allRejected(head), true);
    assert.equal(allRejected(`${head}m=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n`), true);
    assert.equal(allRejected(`${head}m=audio 0 RTP/AVP 0\r\nm=audio 4000 RTP/AVP 0\r\n`), false);
    assert.equal(allRejected(createOffer(OURS)), false);
  });
});

describe('PCMU, PCMA, TELEPHONE_EVENT', () => {
  it('carry the RFC 3551 static numbers and the RFC 4733 DTMF events, and cannot be changed by a caller', () => {
    assert.deepEqual([PCMU.payloadType, PCMU.encoding, PCMU.clockRate], [0, 'PCMU', 8000]);
    assert.deepEqual([PCMA.payloadType, PCMA.encoding, PCMA.clockRate], [8, 'PCMA', 8000]);
    assert.deepEqual([TELEPHONE_EVENT.payloadType, TELEPHONE_EVENT.fmtp], [101, '0-16']);
    assert.ok(Object.isFrozen(PCMU) && Object.isFrozen(PCMA) && Object.isFrozen(TELEPHONE_EVENT));
  });
});
