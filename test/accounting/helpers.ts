import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseMessage, type SipRequest, type SipResponse } from '../../src/message/index.js';
import type { Logger } from '../../src/util/logger.js';

export interface CallParties {
  callId?: string;
  from?: string;
  fromTag?: string;
  to?: string;
  /** Present for a re-INVITE. */
  toTag?: string;
  ruri?: string;
}

function parse(text: string): SipRequest | SipResponse {
  const r = parseMessage(Buffer.from(text));
  if (!r.ok) throw new Error(`test message does not parse: ${r.error.toString()}`);
  return r.message;
}

export function invite(p: CallParties = {}): SipRequest {
  const to = `<${p.to ?? 'sip:bob@example.com'}>${p.toTag ? `;tag=${p.toTag}` : ''}`;
  const req = parse(
    [
      `INVITE ${p.ruri ?? 'sip:bob@example.com;transport=udp'} SIP/2.0`,
      'Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKinv1;rport=5062;received=198.51.100.7',
      'Max-Forwards: 70',
      `From: "Alice" <${p.from ?? 'sip:alice@Example.COM:5062;transport=udp'}>;tag=${p.fromTag ?? 'ftag'}`,
      `To: ${to}`,
      `Call-ID: ${p.callId ?? 'call-1@192.0.2.1'}`,
      'CSeq: 1 INVITE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  ) as SipRequest;
  req.source = { transport: 'udp', address: '198.51.100.7', port: 5062, localAddress: '192.0.2.10', localPort: 5060, flowId: 'udp-1', receivedAt: 0 };
  return req;
}

/** A final response to `req` with the given To tag (the callee's). */
export function response(req: SipRequest, status: number, reason: string, toTag = 'ttag'): SipResponse {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const name of ['via', 'from', 'call-id', 'cseq']) for (const v of req.headers.getAll(name)) lines.push(`${name}: ${v}`);
  const to = req.headers.get('to')!;
  lines.push(`To: ${/;tag=/.test(to) ? to : `${to};tag=${toTag}`}`, 'Content-Length: 0', '', '');
  return parse(lines.join('\r\n')) as SipResponse;
}

/** A BYE in the dialog, sent by the caller (From = caller with its tag) or the callee (From and To swapped). */
export function bye(by: 'caller' | 'callee', p: { callId?: string; fromTag?: string; toTag?: string } = {}): SipRequest {
  const callerTag = p.fromTag ?? 'ftag';
  const calleeTag = p.toTag ?? 'ttag';
  const alice = `<sip:alice@example.com>;tag=${callerTag}`;
  const bob = `<sip:bob@example.com>;tag=${calleeTag}`;
  return parse(
    [
      'BYE sip:peer@192.0.2.99 SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKbye1',
      'Max-Forwards: 70',
      `From: ${by === 'caller' ? alice : bob}`,
      `To: ${by === 'caller' ? bob : alice}`,
      `Call-ID: ${p.callId ?? 'call-1@192.0.2.1'}`,
      'CSeq: 2 BYE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  ) as SipRequest;
}

/** A pino logger whose lines a test can read. */
export function capturingLogger(): { logger: Logger; lines: () => Array<{ level: number; msg: string } & Record<string, unknown>> } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return { logger, lines: () => out.flatMap((s) => s.trim().split('\n')).map((l) => JSON.parse(l)) };
}
