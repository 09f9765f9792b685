import dgram from 'node:dgram';
import net from 'node:net';
import { newBranch, newCallId, newTag } from '../util/ids.js';
import { ConfigError } from '../util/errors.js';
import { parseMessage, StreamFramer, type SipResponse } from '../message/index.js';
import { hostPort } from '../transport/index.js';
import { parseListen } from '../server/config.js';
import { parseCommandLine } from './args.js';
import { CommandFailed, UsageError } from './usage-error.js';

export const PING_HELP = `Usage: sipway ping [TARGET] [--timeout MS]

Sends one OPTIONS request to a SIP server and prints its answer and how long it took: a health check (the
Dockerfile's HEALTHCHECK uses it). Exit 0 when the server answers with a final response below 500, 1 when it
answers 5xx/6xx or not at all within the timeout.

  TARGET         udp:HOST:PORT or tcp:HOST:PORT (default udp:127.0.0.1:5060)
  --timeout MS   how long to wait for the answer (default 2000); over UDP the request is resent after
                 500 ms, 1 s, 2 s... (RFC 3261 Timer A)`;

const DEFAULT_TIMEOUT_MS = 2000;
/** RFC 3261 T1: the first retransmission interval over UDP. */
const T1_MS = 500;

export async function pingCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('ping', { args, allowPositionals: true, options: { timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(PING_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`ping: unexpected argument '${positionals[1]}' (run 'sipway ping --help')`);
  const target = parseListen(positionals[0] ?? 'udp:127.0.0.1:5060', 'TARGET');
  if (target.transport !== 'udp' && target.transport !== 'tcp') throw new ConfigError('TARGET', `ping speaks udp and tcp, not ${target.transport}`);
  const timeoutMs = values.timeout === undefined ? DEFAULT_TIMEOUT_MS : Number(values.timeout);
  if (!/^\d+$/.test(values.timeout ?? '1') || timeoutMs < 1) throw new ConfigError('--timeout', `'${values.timeout}' is not a positive number of milliseconds`);
  const shown = `${target.transport}:${hostPort(target.host, target.port)}`;
  const started = Date.now();
  const res = await (target.transport === 'udp' ? overUdp : overTcp)(target.host, target.port, timeoutMs).catch((e: NodeJS.ErrnoException) => {
    throw new CommandFailed(`ping: ${shown}: ${e.code === 'ECONNREFUSED' ? 'refused (nothing listens there)' : e.message}`);
  });
  if (!res) throw new CommandFailed(`ping: no answer from ${shown} within ${timeoutMs} ms`);
  const line = `${shown}: ${res.status} ${res.reason} (${Date.now() - started} ms)`;
  if (res.status >= 500) throw new CommandFailed(`ping: ${line}`);
  console.log(line);
  return 0;
}

function options(transport: 'UDP' | 'TCP', host: string, port: number, local: { address: string; port: number }): { bytes: Buffer; callId: string } {
  const callId = newCallId();
  const target = hostPort(host, port);
  const text = [
    `OPTIONS sip:${target} SIP/2.0`,
    `Via: SIP/2.0/${transport} ${hostPort(local.address, local.port)};branch=${newBranch()};rport`,
    'Max-Forwards: 70',
    `From: <sip:ping@sipway.invalid>;tag=${newTag()}`,
    `To: <sip:${target}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 OPTIONS',
    'Accept: application/sdp',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return { bytes: Buffer.from(text), callId };
}

/** The final response to our OPTIONS, or undefined at the timeout. */
function finalResponse(bytes: Buffer, callId: string): SipResponse | undefined {
  const parsed = parseMessage(bytes);
  if (!parsed.ok || parsed.message.isRequest) return undefined;
  const res = parsed.message;
  return res.callId === callId && res.status >= 200 ? res : undefined;
}

function overUdp(host: string, port: number, timeoutMs: number): Promise<SipResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIP(host) === 6 ? 'udp6' : 'udp4');
    const timers: NodeJS.Timeout[] = [];
    let finished = false;
    const done = (res: SipResponse | undefined, err?: Error): void => {
      if (finished) return;
      finished = true;
      timers.forEach(clearTimeout);
      socket.close();
      if (err) reject(err);
      else resolve(res);
    };
    socket.on('error', (err) => done(undefined, err));
    // Connected, so that the kernel picks the local address our Via names, and an ICMP refusal ends the wait.
    // A failed connect (no route, a bad address) reaches the callback with its error, not the 'error' event.
    socket.connect(port, host, ((err?: Error) => {
      if (err) return done(undefined, err);
      const { bytes, callId } = options('UDP', host, port, socket.address());
      socket.on('message', (msg) => {
        const res = finalResponse(msg, callId);
        if (res) done(res);
      });
      const send = (): void => socket.send(bytes);
      send();
      for (let at = T1_MS, gap = T1_MS; at < timeoutMs; gap *= 2, at += gap) timers.push(setTimeout(send, at));
      timers.push(setTimeout(() => done(undefined), timeoutMs));
    }) as () => void);
  });
}

function overTcp(host: string, port: number, timeoutMs: number): Promise<SipResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let callId = '';
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const done = (res: SipResponse | undefined, err?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(res);
    };
    const framer = new StreamFramer({
      message: (msg) => {
        const res = finalResponse(msg, callId);
        if (res) done(res);
      },
      ping: () => undefined,
      error: (e) => done(undefined, new Error(`unreadable answer: ${e.reason}`)),
    });
    socket.on('error', (err) => done(undefined, err));
    socket.on('data', (chunk) => framer.push(chunk));
    socket.on('connect', () => {
      const sent = options('TCP', host, port, { address: socket.localAddress ?? host, port: socket.localPort ?? 0 });
      callId = sent.callId;
      socket.write(sent.bytes);
    });
  });
}
