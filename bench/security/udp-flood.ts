/**
 * A raw UDP flood generator for the security benches, run as a child process (node dist/bench/security/udp-flood.js
 * '<FloodSpec as JSON>') so that its sending does not share an event loop with the bench's measurements. Cheaper
 * than SIPp at thousands of requests per second: each message is a template with a fresh Call-ID, branch and tag.
 *
 *  invite:   unauthenticated INVITEs from a user of the served domain to a number (what a toll-fraud scanner sends;
 *            both servers challenge it).
 *  register: REGISTERs for `user` with digest credentials over wrong passwords ("guess-N"), each computed for a
 *            nonce the server issued to that source address (one REGISTER without credentials first).
 *
 * Sends `rate` messages per second in all, spread round-robin over the source addresses, for `seconds`; the pace is
 * kept by the clock (a late tick sends what is owed, up to 50 ms worth). Answers are read and counted by status.
 * Prints one line of JSON: { sent, seconds, answers: { "401": n, ... } } and exits.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { buildAuthorization, parseDigestChallenge, type DigestChallenge } from '../../src/auth/digest.js';

export interface FloodSpec {
  kind: 'invite' | 'register';
  host: string;
  port: number;
  sources: string[];
  rate: number;
  seconds: number;
  domain: string;
  /** register: whose password is guessed. */
  user?: string;
}

export interface FloodResult {
  sent: number;
  seconds: number;
  answers: Record<string, number>;
}

interface Source {
  socket: dgram.Socket;
  address: string;
  port: number;
  challenge?: DigestChallenge;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as FloodSpec;
const answers: Record<string, number> = {};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let seq = 0;

function message(src: Source): string {
  const n = ++seq;
  const id = `${n}-${randomBytes(4).toString('hex')}`;
  const via = `Via: SIP/2.0/UDP ${src.address}:${src.port};branch=z9hG4bKfl${id};rport`;
  if (spec.kind === 'invite') {
    const sdp = `v=0\r\no=- ${n} 1 IN IP4 ${src.address}\r\ns=-\r\nc=IN IP4 ${src.address}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n`;
    return [
      `INVITE sip:0044${String(n % 100000000).padStart(8, '0')}@${spec.domain} SIP/2.0`,
      via,
      'Max-Forwards: 70',
      `From: <sip:1000@${spec.domain}>;tag=fl${id}`,
      `To: <sip:0044${String(n % 100000000).padStart(8, '0')}@${spec.domain}>`,
      `Call-ID: flood-${id}@${src.address}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:1000@${src.address}:${src.port}>`,
      'Content-Type: application/sdp',
      `Content-Length: ${sdp.length}`,
      '',
      sdp,
    ].join('\r\n');
  }
  const uri = `sip:${spec.domain}`;
  const lines = [
    `REGISTER ${uri} SIP/2.0`,
    via,
    'Max-Forwards: 70',
    `From: <sip:${spec.user}@${spec.domain}>;tag=fl${id}`,
    `To: <sip:${spec.user}@${spec.domain}>`,
    `Call-ID: guess-${id}@${src.address}`,
    `CSeq: ${n} REGISTER`,
    `Contact: <sip:${spec.user}@${src.address}:${src.port}>`,
    'Expires: 3600',
  ];
  if (src.challenge) {
    lines.push(`Authorization: ${buildAuthorization({ challenge: src.challenge, username: spec.user!, password: `guess-${n}`, method: 'REGISTER', uri, nc: 1 })}`);
  }
  return [...lines, 'Content-Length: 0', '', ''].join('\r\n');
}

async function open(address: string): Promise<Source> {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const src: Source = { socket, address, port: socket.address().port };
  socket.on('message', (m: Buffer) => {
    const status = m.toString('latin1', 8, 11);
    answers[status] = (answers[status] ?? 0) + 1;
    if (spec.kind === 'register' && !src.challenge && status === '401') {
      const header = /^WWW-Authenticate:\s*(.*)$/im.exec(m.toString('latin1'));
      const parsed = header ? parseDigestChallenge(header[1]!.trim()) : undefined;
      if (parsed?.ok) src.challenge = parsed.value;
    }
  });
  return src;
}

async function main(): Promise<void> {
  const sources = await Promise.all(spec.sources.map(open));
  if (spec.kind === 'register') {
    // A nonce for each source first, as a guessing tool gets one (the first 401 is not counted as a guess).
    for (let i = 0; i < 20 && sources.some((s) => !s.challenge); i++) {
      for (const s of sources) if (!s.challenge) s.socket.send(message(s), spec.port, spec.host);
      await sleep(100);
    }
    for (const k of Object.keys(answers)) delete answers[k];
  }
  const started = performance.now();
  const end = started + spec.seconds * 1000;
  let sent = 0;
  let next = 0;
  while (performance.now() < end) {
    const owed = Math.min(Math.floor(((performance.now() - started) / 1000) * spec.rate) - sent, Math.ceil(spec.rate / 20));
    for (let i = 0; i < owed; i++) {
      const src = sources[next++ % sources.length]!;
      src.socket.send(message(src), spec.port, spec.host);
      sent++;
    }
    await sleep(2);
  }
  const seconds = (performance.now() - started) / 1000;
  // Answers still on their way (a throttled REGISTER is answered up to 5 s late).
  await sleep(spec.kind === 'register' ? 6000 : 1000);
  for (const s of sources) s.socket.close();
  process.stdout.write(JSON.stringify({ sent, seconds, answers } satisfies FloodResult) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
