import { performance } from 'node:perf_hooks';
import {
  addRecordRoute,
  createResponse,
  decrementMaxForwards,
  parseMessage,
  removeTopVia,
  serialize,
  type AnyMessage,
  type SipRequest,
} from '../message/index.js';
import { addVia, TransactionLayer, type ClientTransactionHandlers, type ClientTransaction } from '../transaction/index.js';
import type { BoundListener, Destination, MessageSender, TransportName } from '../transport/types.js';
import { SystemClock } from '../util/clock.js';

/**
 * Runs synthetic calls (INVITE, 180, 200, ACK, BYE, 200) and registrations through the message and transaction layers
 * of this process, without sockets, before the server takes traffic. V8 compiles the hot path only after it has run
 * many times: a server started under 1,000 calls/s otherwise spends its first half second interpreting, and the
 * calls of that backlog waited up to 90 ms (../shared/bench run.sh: the whole of the p99). Bounded by `budgetMs`.
 * Returns the number of calls run.
 */
export function warmUp(budgetMs = 600, maxCalls = 5000): number {
  const sender = new DiscardSender();
  const layer = new TransactionLayer({ sender, clock: new SystemClock() });
  const downstream: Destination = { transport: 'udp', address: '127.0.0.2', port: 5070 };
  const ignore: ClientTransactionHandlers<ClientTransaction> = { onResponse() {}, onTimeout() {}, onTransportError() {} };
  layer.setUser({
    onRequest(req, st) {
      if (req.method === 'REGISTER') {
        st.respond(createResponse(req, 200, { headers: [['Contact', `${req.headers.get('contact')};expires=3600`]] }));
        return;
      }
      const out = relayed(req);
      addVia(out, sender, downstream);
      const ct = layer.sendRequest(out, downstream, {
        ...ignore,
        onResponse(res) {
          removeTopVia(res);
          st.respond(res);
        },
      });
      // What the next hop answers, as it would arrive: serialised, parsed again, matched to the client transaction.
      for (const status of req.method === 'INVITE' ? [180, 200] : [200]) {
        const res = createResponse(ct.request, status, { toTag: 'warm', headers: [['Contact', '<sip:callee@127.0.0.2:5070>']] });
        layer.receive(received(serialize(res)));
      }
    },
    onAck(ack) {
      const out = relayed(ack);
      addVia(out, sender, downstream);
      serialize(out);
    },
    onStrayResponse() {},
  });

  const started = performance.now();
  let calls = 0;
  try {
    while (calls < maxCalls && performance.now() - started < budgetMs) {
      const id = `warm-${calls}`;
      layer.receive(received(Buffer.from(request('INVITE', id, 1, sdp))));
      layer.receive(received(Buffer.from(request('ACK', id, 1, ''))));
      layer.receive(received(Buffer.from(request('BYE', id, 2, ''))));
      layer.receive(received(Buffer.from(request('REGISTER', id, 1, ''))));
      calls++;
    }
  } finally {
    layer.close();
  }
  return calls;
}

/** §16.6 as a proxy would do it, on a copy parsed from the received bytes. */
function relayed(req: SipRequest): SipRequest {
  const copy = received(serialize(req)) as SipRequest;
  decrementMaxForwards(copy);
  if (copy.method === 'INVITE') addRecordRoute(copy, '<sip:127.0.0.1:5060;lr>');
  return copy;
}

function received(bytes: Buffer): AnyMessage {
  const r = parseMessage(bytes);
  if (!r.ok) throw new Error(`warm-up message does not parse: ${r.error.reason}`);
  r.message.source = { transport: 'udp', address: '127.0.0.3', port: 5080, localAddress: '127.0.0.1', localPort: 5060, flowId: 'udp-warm-up', receivedAt: 0 };
  return r.message;
}

const sdp = 'v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

function request(method: string, id: string, seq: number, body: string): string {
  const branch = method === 'ACK' || method === 'INVITE' ? `z9hG4bK-${id}-1` : `z9hG4bK-${id}-${method}`;
  const head = [
    `${method} sip:${method === 'REGISTER' ? '' : 'callee@'}example.com SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.3:5080;branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: "Caller" <sip:caller@example.com>;tag=${id}`,
    `To: <sip:${method === 'REGISTER' ? 'caller' : 'callee'}@example.com>${method === 'INVITE' || method === 'REGISTER' ? '' : ';tag=warm'}`,
    `Call-ID: ${id}@127.0.0.3`,
    `CSeq: ${seq} ${method}`,
    'Contact: <sip:caller@127.0.0.3:5080>',
    'User-Agent: sipway warm-up',
  ];
  if (body) head.push('Content-Type: application/sdp');
  head.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return head.join('\r\n');
}

/** Sends nothing; serialises what it is given, as the real transport would. */
class DiscardSender implements MessageSender {
  send(message: AnyMessage, _destination?: Destination, bytes?: Buffer): Promise<void> {
    if (bytes === undefined) serialize(message);
    return Promise.resolve();
  }
  resend(): Promise<void> {
    return Promise.resolve();
  }
  isReliable(transport: string): boolean {
    return transport !== 'udp';
  }
  listenerFor(destination: Destination | TransportName): BoundListener {
    const transport = typeof destination === 'string' ? destination : destination.transport;
    return { transport, host: '127.0.0.1', port: 5060, advertised: '127.0.0.1:5060' };
  }
}
