import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerDirection, audioDirection, withDirection } from '../../src/sdp/index.js';

const SDP = 'v=0\r\no=bob 7 41 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\na=sendrecv\r\nm=audio 40002 RTP/AVP 0\r\n';

test('RFC 3264 §6.1: an answer mirrors sendonly and recvonly and keeps sendrecv and inactive', () => {
  assert.deepEqual(['sendonly', 'recvonly', 'sendrecv', 'inactive'].map((d) => answerDirection(d as never)), ['recvonly', 'sendonly', 'sendrecv', 'inactive']);
});

test('withDirection sets every stream\'s direction, drops the session-level one, and counts the origin version up', () => {
  const held = withDirection(SDP, 'sendonly');
  assert.equal(audioDirection(held), 'sendonly');
  assert.match(held, /^o=bob 7 42 IN IP4 192\.0\.2\.2$/m);
  assert.doesNotMatch(held, /a=sendrecv/);
  assert.equal(audioDirection(SDP), 'sendrecv', 'the session-level attribute applies when the stream says nothing');
  assert.equal(audioDirection(undefined), 'sendrecv');
  assert.equal(withDirection('not sdp', 'inactive'), 'not sdp');
});
