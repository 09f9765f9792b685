import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { filterCodecs, payloadFormats, rewriteForRelay, sdpStreams, stripIce } from '../../src/media/index.js';
import { getAttribute, getAttributes, parseSdp, serializeSdp, type SessionDescription } from '../../src/sdp/index.js';

const crlf = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

function parse(text: string): SessionDescription {
  const r = parseSdp(text);
  if (!r.ok) throw new Error(`test SDP does not parse: ${r.error.message}`);
  return r.sdp;
}

/** A phone's offer: session-level c=, audio with ICE, rtcp, crypto; video with its own c=. */
const OFFER = crlf(
  'v=0',
  'o=alice 2890844526 7 IN IP4 10.0.0.5',
  's=-',
  'c=IN IP4 10.0.0.5',
  't=0 0',
  'a=ice-options:trickle',
  'a=ice-ufrag:sess',
  'a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4D:B3:4B:B5:4A:1D:94:48:31:7A:C5:E1',
  'm=audio 49170 RTP/SAVP 0 8 101',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=rtcp:49171 IN IP4 10.0.0.5',
  'a=ice-ufrag:F7gI',
  'a=ice-pwd:x9cml/YzichV2+XlhiMu8g',
  'a=candidate:1 1 UDP 2130706431 10.0.0.5 49170 typ host',
  'a=candidate:2 1 UDP 1694498815 203.0.113.7 61000 typ srflx raddr 10.0.0.5 rport 49170',
  'a=end-of-candidates',
  'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32',
  'a=setup:actpass',
  'a=sendrecv',
  'm=video 51372 RTP/AVP 96 97 98',
  'c=IN IP4 10.0.0.6',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 profile-level-id=42e01f',
  'a=rtcp-fb:96 nack',
  'a=rtpmap:97 VP8/90000',
  'a=rtcp-fb:* ccm fir',
  'a=rtpmap:98 rtx/90000',
  'a=fmtp:98 apt=96',
);

describe('sdpStreams: what a relay reads from an SDP', () => {
  it('takes each stream’s address (media c= over session c=), RTCP from a=rtcp or port + 1, formats and mux', () => {
    const [audio, video] = sdpStreams(parse(OFFER));
    assert.equal(audio?.address, '10.0.0.5');
    assert.equal(audio?.port, 49170);
    assert.equal(audio?.rtcpPort, 49171);
    assert.equal(audio?.explicitRtcp, true);
    assert.equal(audio?.rtcpAddress, '10.0.0.5');
    assert.equal(audio?.rtcpMux, false);
    assert.equal(audio?.relayable, true);
    assert.equal(audio?.rtp, true);
    assert.deepEqual(
      audio?.formats.map((f) => [f.payloadType, f.encoding, f.clockRate]),
      [
        [0, 'PCMU', 8000],
        [8, 'PCMA', 8000],
        [101, 'telephone-event', 8000],
      ],
    );
    assert.equal(video?.address, '10.0.0.6');
    assert.equal(video?.rtcpPort, 51373);
    assert.equal(video?.explicitRtcp, false);
  });

  it('marks a hold by 0.0.0.0, a rejected stream, rtcp-mux, and streams a UDP relay cannot carry', () => {
    const streams = sdpStreams(
      parse(
        crlf(
          'v=0',
          'o=- 1 1 IN IP4 192.0.2.1',
          's=-',
          'c=IN IP4 0.0.0.0',
          't=0 0',
          'm=audio 4000 RTP/AVP 0',
          'a=rtcp-mux',
          'a=sendonly',
          'm=video 0 RTP/AVP 31',
          'm=application 9 TCP/BFCP *',
          'm=image 5000 udptl t38',
        ),
      ),
    );
    assert.deepEqual(
      streams.map((s) => [s.held, s.port, s.rtcpMux, s.relayable, s.rtp, s.direction]),
      [
        [true, 4000, true, true, true, 'sendonly'],
        [true, 0, false, false, true, 'sendrecv'],
        [true, 9, false, false, false, 'sendrecv'],
        [true, 5000, false, true, false, 'sendrecv'],
      ],
    );
  });

  it('leaves out a dynamic payload type without an rtpmap', () => {
    const sdp = parse(crlf('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 4000 RTP/AVP 18 99'));
    assert.deepEqual(payloadFormats(sdp.media[0]!), [{ payloadType: 18, encoding: 'G729', clockRate: 8000 }]);
  });
});

describe('rewriteForRelay', () => {
  it('rewrites session and media c=, the m= ports and a=rtcp (address part kept as it was), and strips ICE', () => {
    const sdp = parse(OFFER);
    rewriteForRelay(sdp, { address: '198.51.100.1', ports: [{ rtp: 30000, rtcp: 30001 }, { rtp: 30002, rtcp: 30003 }] });
    const text = serializeSdp(sdp);
    assert.equal(sdp.connection?.address, '198.51.100.1');
    assert.equal(sdp.media[0]!.port, 30000);
    assert.deepEqual(sdp.media[0]!.connections, [], 'the audio stream still uses the session c=');
    assert.equal(getAttribute(sdp.media[0]!, 'rtcp')?.value, '30001 IN IP4 198.51.100.1');
    assert.equal(sdp.media[1]!.port, 30002);
    assert.deepEqual(sdp.media[1]!.connections, [{ netType: 'IN', addrType: 'IP4', address: '198.51.100.1' }]);
    assert.equal(getAttribute(sdp.media[1]!, 'rtcp'), undefined, 'RTCP on port + 1 needs no a=rtcp');
    assert.doesNotMatch(text, /candidate|ice-|end-of-candidates/);
    assert.doesNotMatch(text, /(c=|a=rtcp:).*10\.0\.0\./, 'no c= or a=rtcp names the phone any more');
    // The o= line is the caller's business: left as it was.
    assert.match(text, /^o=alice 2890844526 7 IN IP4 10\.0\.0\.5\r$/m);
  });

  it('passes SRTP and DTLS attributes untouched (a=crypto, a=fingerprint, a=setup)', () => {
    const sdp = parse(OFFER);
    rewriteForRelay(sdp, { address: '198.51.100.1', ports: [{ rtp: 30000, rtcp: 30001 }, { rtp: 30002, rtcp: 30003 }] });
    const text = serializeSdp(sdp);
    for (const line of OFFER.split('\r\n').filter((l) => /^a=(crypto|fingerprint|setup)/.test(l))) {
      assert.ok(text.includes(`${line}\r\n`), `${line} kept`);
    }
    assert.equal(sdp.media[0]!.proto, 'RTP/SAVP');
  });

  it('keeps ICE attributes with ice: keep', () => {
    const sdp = parse(OFFER);
    rewriteForRelay(sdp, { address: '198.51.100.1', ports: [{ rtp: 30000, rtcp: 30001 }, undefined], ice: 'keep' });
    assert.equal(getAttributes(sdp.media[0]!, 'candidate').length, 2);
    assert.ok(getAttribute(sdp, 'ice-ufrag'));
  });

  it('adds a=rtcp when the relay’s RTCP port is not RTP + 1, and names the one port under rtcp-mux', () => {
    const sdp = parse(
      crlf('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'm=audio 4002 RTP/AVP 0', 'a=rtcp-mux'),
    );
    rewriteForRelay(sdp, { address: '198.51.100.1', ports: [{ rtp: 30000, rtcp: 30011 }, { rtp: 30002 }] });
    assert.equal(getAttribute(sdp.media[0]!, 'rtcp')?.value, '30011');
    assert.equal(getAttribute(sdp.media[1]!, 'rtcp')?.value, '30002');
    assert.ok(getAttribute(sdp.media[1]!, 'rtcp-mux'), 'a=rtcp-mux is left for the other side to accept');
  });

  it('keeps a rejected stream at port 0 and a stream it does not relay at its own address', () => {
    const sdp = parse(
      crlf(
        'v=0',
        'o=- 1 1 IN IP4 192.0.2.1',
        's=-',
        'c=IN IP4 192.0.2.1',
        't=0 0',
        'm=audio 4000 RTP/AVP 0',
        'm=video 0 RTP/AVP 31',
        'm=application 9 TCP/BFCP *',
      ),
    );
    rewriteForRelay(sdp, { address: '198.51.100.1', ports: [{ rtp: 30000, rtcp: 30001 }, { rtp: 30002, rtcp: 30003 }, undefined] });
    assert.equal(sdp.media[0]!.port, 30000);
    assert.equal(sdp.media[1]!.port, 0);
    assert.equal(sdp.media[2]!.port, 9);
    assert.deepEqual(sdp.media[2]!.connections, [{ netType: 'IN', addrType: 'IP4', address: '192.0.2.1' }]);
    assert.equal(sdp.connection?.address, '198.51.100.1');
  });

  it('keeps a hold: c=0.0.0.0 stays (session or media level), a=sendonly stays, the port is the relay’s', () => {
    const session = parse(crlf('v=0', 'o=- 1 2 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'a=sendonly'));
    rewriteForRelay(session, { address: '198.51.100.1', ports: [{ rtp: 30000, rtcp: 30001 }] });
    assert.equal(session.connection?.address, '0.0.0.0');
    assert.deepEqual(session.media[0]!.connections, []);
    assert.equal(session.media[0]!.port, 30000);
    assert.ok(getAttribute(session.media[0]!, 'sendonly'));

    const media = parse(crlf('v=0', 'o=- 1 2 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'c=IN IP4 0.0.0.0'));
    rewriteForRelay(media, { address: '198.51.100.1', ports: [{ rtp: 30000, rtcp: 30001 }] });
    assert.equal(media.connection?.address, '198.51.100.1');
    assert.equal(media.media[0]!.connections[0]?.address, '0.0.0.0');
  });

  it('writes IP6 for an IPv6 relay address and adds a c= to a stream that had none anywhere', () => {
    const sdp = parse(crlf('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 't=0 0', 'm=audio 4000 RTP/AVP 0'));
    rewriteForRelay(sdp, { address: '2001:db8::1', ports: [{ rtp: 30000, rtcp: 30001 }] });
    assert.deepEqual(sdp.media[0]!.connections, [{ netType: 'IN', addrType: 'IP6', address: '2001:db8::1' }]);
  });
});

describe('filterCodecs', () => {
  it('keeps the named encodings (static types by number, dynamic by rtpmap) with their rtpmap, fmtp and rtcp-fb', () => {
    const sdp = parse(OFFER);
    const disabled = filterCodecs(sdp, ['pcma', 'telephone-event', 'VP8']);
    assert.equal(disabled, 0);
    assert.deepEqual(sdp.media[0]!.formats, ['8', '101']);
    assert.deepEqual(getAttributes(sdp.media[0]!, 'fmtp').map((a) => a.value), ['101 0-16']);
    assert.deepEqual(sdp.media[1]!.formats, ['97']);
    assert.deepEqual(
      sdp.media[1]!.attributes.map((a) => `${a.name}:${a.value}`),
      ['rtpmap:97 VP8/90000', 'rtcp-fb:* ccm fir'],
      'H264 and its rtx (apt=96) go with their lines; rtcp-fb:* stays',
    );
  });

  it('drops an rtx format whose original is dropped, keeps one whose original stays', () => {
    const sdp = parse(OFFER);
    filterCodecs(sdp, ['PCMU', 'H264', 'rtx']);
    assert.deepEqual(sdp.media[1]!.formats, ['96', '98']);
    const other = parse(OFFER);
    filterCodecs(other, ['PCMU', 'VP8', 'rtx']);
    assert.deepEqual(other.media[1]!.formats, ['97']);
  });

  it('disables a stream left with no format (port 0) and counts it', () => {
    const sdp = parse(OFFER);
    assert.equal(filterCodecs(sdp, ['PCMU']), 1);
    assert.equal(sdp.media[1]!.port, 0);
    assert.deepEqual(sdp.media[0]!.formats, ['0']);
    assert.equal(getAttribute(sdp.media[0]!, 'fmtp'), undefined);
  });
});

describe('stripIce', () => {
  it('removes the ICE attributes at both levels and nothing else', () => {
    const sdp = parse(OFFER);
    stripIce(sdp);
    assert.deepEqual(
      sdp.attributes.map((a) => a.name),
      ['fingerprint'],
    );
    assert.deepEqual(
      sdp.media[0]!.attributes.map((a) => a.name),
      ['rtpmap', 'fmtp', 'rtcp', 'crypto', 'setup', 'sendrecv'],
    );
  });
});
