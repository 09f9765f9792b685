import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage, serialize, SipRequest, SipResponse } from '../../src/message/index.js';
import {
  forwardedResponse,
  parseSipCgiOutput,
  proxiedRequest,
  SipCgiOutputError,
  type SipCgiAction,
} from '../../src/policy/sip-cgi/index.js';
import { wire, INVITE_LINES, OK_LINES, SDP_BODY } from '../helpers/messages.js';

function invite(extra: string[] = []): SipRequest {
  const r = parseMessage(wire([...INVITE_LINES, ...extra], SDP_BODY));
  assert.ok(r.ok && r.message instanceof SipRequest);
  return r.message;
}

function ok(): SipResponse {
  const r = parseMessage(wire(OK_LINES, SDP_BODY));
  assert.ok(r.ok && r.message instanceof SipResponse);
  return r.message;
}

const out = (...lines: string[]): Buffer => Buffer.from(lines.join('\r\n'));

function only<T extends SipCgiAction['type']>(actions: SipCgiAction[], type: T): Extract<SipCgiAction, { type: T }> {
  assert.equal(actions.length, 1, JSON.stringify(actions.map((a) => a.type)));
  const a = actions[0]!;
  assert.equal(a.type, type);
  return a as Extract<SipCgiAction, { type: T }>;
}

function rejects(output: Buffer | string, line: number, pattern: RegExp, invocation: 'request' | 'response' = 'request'): void {
  assert.throws(
    () => parseSipCgiOutput(typeof output === 'string' ? Buffer.from(output) : output, invite(), invocation),
    (e: unknown) => {
      assert.ok(e instanceof SipCgiOutputError, String(e));
      assert.equal(e.line, line, e.message);
      assert.match(e.message, pattern);
      assert.ok(e.message.startsWith(`line ${line}: `));
      return true;
    },
  );
}

test('a Status-Line block becomes a response built from the request (§8.2.6), with the script headers and body', () => {
  const req = invite();
  const body = 'busy until 5pm\r\n';
  const r = parseSipCgiOutput(
    out('SIP/2.0 486 Busy Here', 'Retry-After: 300', 'Content-Type: text/plain', `Content-Length: ${body.length}`, '', body),
    req,
    'request',
  );
  const res = only(r.actions, 'respond').response;
  assert.equal(res.status, 486);
  assert.equal(res.reason, 'Busy Here');
  assert.equal(res.headers.get('via'), req.headers.get('via'));
  assert.equal(res.callId, req.callId);
  assert.deepEqual(res.cseq, req.cseq);
  assert.equal(res.fromTag, req.fromTag);
  assert.ok(res.toTag, 'a To tag is added');
  assert.equal(res.headers.get('retry-after'), '300');
  assert.equal(res.contentType, 'text/plain');
  assert.equal(res.body.toString(), body);
  assert.equal(r.again, false);
  assert.equal(r.cookie, undefined);
});

test('a status line without a reason gets the default phrase; the script may set the To tag; its Via/Call-ID copies are ignored', () => {
  const req = invite();
  const r = parseSipCgiOutput(
    out('SIP/2.0 180', 'To: Bob <sip:bob@biloxi.example.com>;tag=svc1', 'Call-ID: forged@x', 'Via: SIP/2.0/UDP evil;branch=z9hG4bKx', '', ''),
    req,
    'request',
  );
  const res = only(r.actions, 'respond').response;
  assert.equal(res.reason, 'Ringing');
  assert.equal(res.toTag, 'svc1');
  assert.equal(res.callId, req.callId);
  assert.equal(res.headers.count('via'), 1);
  assert.equal(res.via.branch, 'z9hG4bK776asdhds');
});

test('CGI-PROXY-REQUEST: header lines replace, CGI-Remove removes, the rest of the request is untouched', () => {
  const req = invite(['Route: <sip:p1.example.com;lr>', 'Subject: hi', 'X-Old: 1', 'X-Old: 2']);
  const r = parseSipCgiOutput(
    out(
      'CGI-PROXY-REQUEST sip:voicemail@vm.example.com SIP/2.0',
      'Route: <sip:p2.example.com;lr>',
      'route: <sip:p3.example.com;lr>',
      'CGI-Remove: Subject',
      'X-Old: 3',
      'X-New: added',
      '',
      '',
    ),
    req,
    'request',
  );
  const action = only(r.actions, 'proxy');
  assert.equal(action.uri.toString(), 'sip:voicemail@vm.example.com');
  assert.deepEqual(action.edits, [
    { name: 'route', values: ['<sip:p2.example.com;lr>', '<sip:p3.example.com;lr>'] },
    { name: 'subject', values: [] },
    { name: 'x-old', values: ['3'] },
    { name: 'x-new', values: ['added'] },
  ]);
  assert.equal(action.body, undefined);
  const sent = proxiedRequest(req, action);
  assert.equal(sent.uri.toString(), 'sip:voicemail@vm.example.com');
  assert.deepEqual(sent.headers.getAll('route'), ['<sip:p2.example.com;lr>', '<sip:p3.example.com;lr>']);
  assert.equal(sent.headers.has('subject'), false);
  assert.deepEqual(sent.headers.getAll('x-old'), ['3']);
  assert.equal(sent.headers.get('x-new'), 'added');
  assert.equal(sent.body.toString(), SDP_BODY, 'no Content-Length in the block: the body is kept');
  // The replaced Route stands where the old one stood (before Subject), and untouched fields are byte slices.
  const names = sent.headers.fields.map((f) => f.name);
  assert.ok(names.indexOf('route') < names.indexOf('x-old'));
  assert.ok(sent.headers.fields.find((f) => f.name === 'call-id')!.isRaw);
  assert.equal(req.uri.toString(), 'sip:bob@biloxi.example.com', 'the original request is not changed');
  assert.equal(req.headers.get('subject'), 'hi');
  // The copy is a valid message.
  const reparsed = parseMessage(serialize(sent));
  assert.ok(reparsed.ok, reparsed.ok ? '' : reparsed.error.toString());
});

test('several CGI-PROXY-REQUEST blocks fork; a Content-Length in a block replaces the body', () => {
  const req = invite();
  const r = parseSipCgiOutput(
    Buffer.from(
      'CGI-PROXY-REQUEST sip:a@example.com SIP/2.0\n\n' +
        'CGI-PROXY-REQUEST sip:b@example.com SIP/2.0\nContent-Type: text/plain\nContent-Length: 5\n\nhello' +
        'CGI-PROXY-REQUEST tel:+15551234 SIP/2.0\n',
    ),
    req,
    'request',
  );
  assert.deepEqual(
    r.actions.map((a) => (a.type === 'proxy' ? a.uri.toString() : a.type)),
    ['sip:a@example.com', 'sip:b@example.com', 'tel:+15551234'],
  );
  const second = r.actions[1]!;
  assert.ok(second.type === 'proxy');
  assert.equal(second.body?.toString(), 'hello');
  const sent = proxiedRequest(req, second);
  assert.equal(sent.body.toString(), 'hello');
  assert.equal(sent.contentType, 'text/plain');
});

test('CGI-FORWARD-RESPONSE names a response token and may edit the response', () => {
  const r = parseSipCgiOutput(out('CGI-FORWARD-RESPONSE r7 SIP/2.0', 'X-Service: fwd', 'CGI-Remove: Contact', '', ''), invite(), 'response');
  const action = only(r.actions, 'forward-response');
  assert.equal(action.token, 'r7');
  const res = ok();
  const fwd = forwardedResponse(res, action);
  assert.equal(fwd.status, 200);
  assert.equal(fwd.headers.get('x-service'), 'fwd');
  assert.equal(fwd.headers.has('contact'), false);
  assert.equal(fwd.body.toString(), SDP_BODY);
  assert.equal(res.headers.has('contact'), true);
  rejects('CGI-FORWARD-RESPONSE r7 SIP/2.0\r\n\r\n', 1, /no response to forward/, 'request');
});

test('CGI-SET-COOKIE and CGI-AGAIN; with no message action the default action applies', () => {
  const r = parseSipCgiOutput(out('CGI-SET-COOKIE state-1 SIP/2.0', '', 'CGI-AGAIN yes SIP/2.0', '', ''), invite(), 'request');
  assert.deepEqual(r, { actions: [{ type: 'default' }], cookie: 'state-1', again: true });
  assert.deepEqual(parseSipCgiOutput(Buffer.alloc(0), invite(), 'request'), { actions: [{ type: 'default' }], again: false });
  assert.deepEqual(parseSipCgiOutput(Buffer.from('\n\n'), invite(), 'response'), { actions: [{ type: 'default' }], again: false });
  assert.equal(parseSipCgiOutput(Buffer.from('CGI-AGAIN NO SIP/2.0'), invite(), 'response').again, false);
});

test('provisional responses may precede proxying; bare LF line ends; the output may end without the last blank line', () => {
  const r = parseSipCgiOutput(Buffer.from('SIP/2.0 100 Trying\n\nSIP/2.0 182 Queued\n\nCGI-PROXY-REQUEST sip:q@example.com SIP/2.0'), invite(), 'request');
  assert.deepEqual(
    r.actions.map((a) => (a.type === 'respond' ? a.response.status : a.type)),
    [100, 182, 'proxy'],
  );
});

test('faults name the line and what is wrong', () => {
  rejects('hello world\r\n', 1, /'hello world' is not an action line/);
  rejects('SIP/2.0 486 Busy Here\r\n\r\nbusy\r\n', 3, /'busy' is not an action line.*needs a Content-Length/);
  rejects('SIP/2.0 486 Busy Here\r\nCGI-AGAIN yes SIP/2.0\r\n\r\n', 2, /'CGI-AGAIN yes SIP\/2.0' is not a header field/);
  rejects('SIP/3.0 200 OK\r\n\r\n', 1, /malformed Status-Line/);
  rejects('SIP/2.0 99 Low\r\n\r\n', 1, /malformed Status-Line/);
  rejects('\r\n\r\nCGI-PROXY-REQUEST sip:a@b SIP/1.0\r\n\r\n', 3, /must end with SIP\/2.0/);
  rejects('CGI-PROXY-REQUEST  sip:a@b SIP/2.0\r\n\r\n', 1, /not an action line/);
  rejects('CGI-PROXY-REQUEST sip:a@b:99999999 SIP/2.0\r\n\r\n', 1, /not a valid Request-URI/);
  rejects('CGI-BOUNCE x SIP/2.0\r\n\r\n', 1, /unknown action 'CGI-BOUNCE'/);
  rejects('CGI-SET-COOKIE a"b SIP/2.0\r\n\r\n', 1, /CGI-SET-COOKIE takes a token/);
  rejects('CGI-SET-COOKIE a SIP/2.0\r\nX-Y: 1\r\n\r\n', 2, /takes no header fields/);
  rejects('CGI-SET-COOKIE a SIP/2.0\r\n\r\nCGI-SET-COOKIE b SIP/2.0\r\n\r\n', 3, /CGI-SET-COOKIE given twice/);
  rejects('CGI-AGAIN maybe SIP/2.0\r\n\r\n', 1, /"yes" or "no", not 'maybe'/);
  rejects('CGI-AGAIN yes SIP/2.0\n\nCGI-AGAIN no SIP/2.0\n', 3, /CGI-AGAIN given twice/);
  rejects('CGI-PROXY-REQUEST sip:a@b SIP/2.0\r\nCall-ID: x@y\r\n\r\n', 2, /call-id cannot be changed/);
  rejects('CGI-PROXY-REQUEST sip:a@b SIP/2.0\r\nCGI-Remove: Via\r\n\r\n', 2, /via cannot be changed/);
  rejects('CGI-PROXY-REQUEST sip:a@b SIP/2.0\r\nCGI-Remove: A B\r\n\r\n', 2, /CGI-Remove takes one header name/);
  rejects('CGI-PROXY-REQUEST sip:a@b SIP/2.0\r\nSubject: x\r\nCGI-Remove: Subject\r\n\r\n', 3, /both set and removed/);
  rejects('CGI-PROXY-REQUEST sip:a@b SIP/2.0\r\nCGI-Frobnicate: 1\r\n\r\n', 2, /unknown CGI header field/);
  rejects('CGI-PROXY-REQUEST sip:a@b SIP/2.0\r\n continued\r\n\r\n', 2, /continuation line without a header field/);
  rejects('SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nshort', 2, /Content-Length 10 but only 5 bytes follow/);
  rejects('SIP/2.0 200 OK\r\nContent-Length: ten\r\n\r\n', 2, /bad Content-Length/);
  rejects('SIP/2.0 200 OK\r\nContent-Length: 4', 1, /ends before the blank line/);
  rejects('SIP/2.0 200 OK\r\n\r\nSIP/2.0 486 Busy\r\n\r\n', 3, /second final response \(the first is on line 1\)/);
  rejects('SIP/2.0 200 OK\r\n\r\nSIP/2.0 180 Ringing\r\n\r\n', 3, /provisional response after the final/);
  rejects('SIP/2.0 404 Not Found\r\n\r\nCGI-PROXY-REQUEST sip:a@b SIP/2.0\r\n\r\n', 3, /cannot proxy a request answered/);
  rejects('CGI-PROXY-REQUEST sip:a@b SIP/2.0\r\n\r\nSIP/2.0 404 Not Found\r\n\r\n', 3, /proxied on line 1/);
  // Line numbers count the lines of bodies too.
  rejects('SIP/2.0 200 OK\r\nContent-Length: 6\r\n\r\na\r\nb\r\nnonsense\r\n', 6, /'nonsense' is not an action line/);
});
