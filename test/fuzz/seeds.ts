/**
 * What the fuzzer mutates: every message of the RFC 4475 and RFC 5118 torture corpora (../shared/conformance, read
 * as bytes), and the messages of our own call flows (registration, a call with SDP and its ACK, BYE, CANCEL,
 * provisional and final responses, OPTIONS, SUBSCRIBE, MESSAGE) addressed to a given server from a given peer.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { sharedPath } from '../helpers/paths.js';

export interface Seed {
  name: string;
  bytes: Buffer;
}

/** Every .dat file under rfc4475/ and rfc5118/, their extra/ and wire/ variants included. */
export function corpusSeeds(): Seed[] {
  const out: Seed[] = [];
  const walk = (dir: string, label: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p, `${label}/${name}`);
      else if (name.endsWith('.dat')) out.push({ name: `${label}/${name}`, bytes: readFileSync(p) });
    }
  };
  walk(sharedPath('conformance', 'rfc4475'), 'rfc4475');
  walk(sharedPath('conformance', 'rfc5118'), 'rfc5118');
  return out;
}

export interface FlowAddresses {
  /** The server's domain (users are registered there). */
  domain: string;
  /** The server's address and port. */
  serverHost: string;
  serverPort: number;
  /** The peer's address and port, written into Via and Contact. */
  peerHost: string;
  peerPort: number;
  /** UDP or TCP, for the Via and the Contact's transport parameter. */
  transport: 'UDP' | 'TCP';
}

const SDP = [
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 127.8.7.6',
  's=-',
  'c=IN IP4 127.8.7.6',
  't=0 0',
  'm=audio 49172 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-15',
  'a=sendrecv',
  '',
].join('\r\n');

function message(lines: string[], body = ''): Buffer {
  return Buffer.from([...lines, `Content-Length: ${Buffer.byteLength(body)}`].join('\r\n') + '\r\n\r\n' + body);
}

/** The messages of our own call flows, from the peer to the server. Branches and Call-IDs are fresh per call. */
export function callFlowSeeds(a: FlowAddresses, id = 'seed'): Seed[] {
  const { domain, serverHost, serverPort, peerHost, peerPort, transport } = a;
  const t = transport.toLowerCase();
  const via = (n: string): string => `Via: SIP/2.0/${transport} ${peerHost}:${peerPort};branch=z9hG4bK${id}${n};rport`;
  const contact = `Contact: <sip:alice@${peerHost}:${peerPort};transport=${t}>`;
  const from = `From: "Alice" <sip:alice@${domain}>;tag=fz${id}a`;
  const toBob = `To: <sip:bob@${domain}>`;
  const bobTagged = `${toBob};tag=fz${id}b`;
  const callId = `Call-ID: ${id}-call@${peerHost}`;
  const server = `${serverHost}:${serverPort}`;
  const seeds: Array<[string, Buffer]> = [
    [
      'REGISTER',
      message([
        `REGISTER sip:${domain} SIP/2.0`,
        via('reg'),
        'Max-Forwards: 70',
        `From: <sip:bob@${domain}>;tag=fz${id}r`,
        `To: <sip:bob@${domain}>`,
        `Call-ID: ${id}-reg@${peerHost}`,
        'CSeq: 1 REGISTER',
        `Contact: <sip:bob@${peerHost}:${peerPort};transport=${t}>;expires=600;q=0.7;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00000000${id.padStart(4, '0').slice(-4)}>";reg-id=1`,
        'Expires: 600',
        'Supported: path, outbound, gruu',
        'User-Agent: sipway-fuzz',
      ]),
    ],
    [
      'INVITE',
      message(
        [
          `INVITE sip:bob@${domain} SIP/2.0`,
          via('inv'),
          'Max-Forwards: 70',
          `Route: <sip:${server};lr>`,
          from,
          toBob,
          callId,
          'CSeq: 1 INVITE',
          contact,
          'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY',
          'Supported: timer, 100rel',
          'Session-Expires: 1800',
          'Content-Type: application/sdp',
        ],
        SDP,
      ),
    ],
    ['ACK', message([`ACK sip:bob@${domain} SIP/2.0`, via('ack'), 'Max-Forwards: 70', from, bobTagged, callId, 'CSeq: 1 ACK', contact])],
    ['BYE', message([`BYE sip:bob@${domain} SIP/2.0`, via('bye'), 'Max-Forwards: 70', `Route: <sip:${server};lr>`, from, bobTagged, callId, 'CSeq: 2 BYE'])],
    ['CANCEL', message([`CANCEL sip:bob@${domain} SIP/2.0`, via('inv'), 'Max-Forwards: 70', from, toBob, callId, 'CSeq: 1 CANCEL', 'Reason: SIP;cause=487;text="Request Terminated"'])],
    ['OPTIONS', message([`OPTIONS sip:${server} SIP/2.0`, via('opt'), 'Max-Forwards: 70', from, `To: <sip:${server}>`, `Call-ID: ${id}-opt@${peerHost}`, 'CSeq: 7 OPTIONS', 'Accept: application/sdp'])],
    [
      'SUBSCRIBE',
      message([
        `SUBSCRIBE sip:bob@${domain} SIP/2.0`,
        via('sub'),
        'Max-Forwards: 70',
        from,
        toBob,
        `Call-ID: ${id}-sub@${peerHost}`,
        'CSeq: 1 SUBSCRIBE',
        contact,
        'Event: presence',
        'Accept: application/pidf+xml',
        'Expires: 3600',
      ]),
    ],
    [
      'MESSAGE',
      message(
        [`MESSAGE sip:bob@${domain} SIP/2.0`, via('msg'), 'Max-Forwards: 70', from, toBob, `Call-ID: ${id}-msg@${peerHost}`, 'CSeq: 1 MESSAGE', 'Content-Type: text/plain;charset=utf-8'],
        'Hello \u00e9 \u2603',
      ),
    ],
    // Responses to a request the server might have forwarded to the peer: the server's branch on top, ours below.
    ...(['100 Trying', '180 Ringing', '200 OK', '487 Request Terminated'] as const).map((status): [string, Buffer] => [
      status,
      message(
        [
          `SIP/2.0 ${status}`,
          `Via: SIP/2.0/${transport} ${server};branch=z9hG4bK${id}srv;received=${serverHost}`,
          via('inv'),
          from,
          status.startsWith('100') ? toBob : bobTagged,
          callId,
          'CSeq: 1 INVITE',
          `Contact: <sip:bob@${peerHost}:${peerPort}>`,
          ...(status.startsWith('200') ? ['Content-Type: application/sdp'] : []),
        ],
        status.startsWith('200') ? SDP : '',
      ),
    ]),
  ];
  return seeds.map(([name, bytes]) => ({ name: `flow/${name}`, bytes }));
}
