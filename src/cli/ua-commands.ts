import { parseUri, type Uri } from '../message/index.js';
import { parseListen } from '../server/config.js';
import { advertisedHostname, hostPort, type Destination, type ListenSpec } from '../transport/index.js';
import { ConfigError } from '../util/errors.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { decodeUlaw, encodeUlaw, pcmuDescription, pcmuTarget, readWav, RtpStream, writeWav } from '../media/index.js';
import { SystemClock } from '../util/clock.js';
import { UserAgent, type InviteSession, type UserAgentOptions } from '../ua/index.js';
import { parseCommandLine } from './args.js';
import { CommandFailed, UsageError } from './usage-error.js';

const ACCOUNT_HELP = `  --proxy TARGET   where requests go: udp:HOST:PORT or tcp:HOST:PORT (required)
  --user NAME      the digest user name (default: the user part of the address-of-record)
  --password PW    the digest password; better in the environment as SIPWAY_PASSWORD (flags show in ps)
  --listen SPEC    our listener (default: the proxy's transport on any free port; on loopback when the proxy is)`;

export const REGISTER_HELP = `Usage: sipway register AOR --proxy TARGET [--expires S] [account options]

Registers this machine's listener as a Contact of AOR (sip:alice@example.com) at the registrar, answering a digest
challenge, prints what the registrar granted and exits; the binding stays until it expires. --expires 0 removes it.
Exit 0 on a 2xx, 1 with the status otherwise (or when nothing answers).

  --expires S      seconds asked for (default 3600)
${ACCOUNT_HELP}`;

export const MESSAGE_HELP = `Usage: sipway message URI TEXT --from AOR --proxy TARGET [account options]

Sends TEXT in a MESSAGE (RFC 3428, text/plain) to URI from AOR, answering a digest challenge, and prints the final
status. Exit 0 on a 2xx, 1 with the status otherwise (or when nothing answers).

  --from AOR       our address-of-record (sip:alice@example.com)
${ACCOUNT_HELP}`;

const MEDIA_HELP = `  --play FILE      a WAV (16-bit PCM, mono, 8000 Hz) sent as G.711 µ-law RTP, then silence
  --record FILE    what the peer sends, written as a WAV of the same format when the call ends
  --duration S     seconds the call lasts before we hang up (default: the --play file's length + 1 s, else 10)`;

export const CALL_HELP = `Usage: sipway call URI --from AOR --proxy TARGET [media options] [account options]

Calls URI from AOR with a G.711 (PCMU) offer, answering a digest challenge; once answered, sends and receives RTP,
hangs up after --duration (or when the callee does), and prints the answer and the RTP counters. Exit 0 when the
call was answered, 1 with the status otherwise.

  --from AOR       our address-of-record (sip:alice@example.com)
${MEDIA_HELP}
${ACCOUNT_HELP}`;

export const ANSWER_HELP = `Usage: sipway answer AOR --proxy TARGET [--calls N] [media options] [account options]

Registers AOR, answers the next N calls (default 1) with G.711 (PCMU), sends and receives RTP, hangs up after
--duration unless the caller does first, prints a line per call, unregisters and exits 0.

  --calls N        how many calls to answer before exiting (default 1)
${MEDIA_HELP}
${ACCOUNT_HELP}`;

const MEDIA_OPTIONS = {
  play: { type: 'string' },
  record: { type: 'string' },
  duration: { type: 'string' },
} as const;

interface Media {
  audio: Uint8Array;
  record: string | undefined;
  durationMs: number;
}

function media(values: { play?: string; record?: string; duration?: string }): Media {
  let audio: Uint8Array = new Uint8Array(0);
  if (values.play !== undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(values.play);
    } catch (e) {
      throw new ConfigError('--play', `cannot read ${values.play}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      audio = encodeUlaw(readWav(bytes));
    } catch (e) {
      throw new ConfigError('--play', `${values.play}: ${(e as Error).message}`);
    }
  }
  if (values.duration !== undefined && !/^\d+(\.\d+)?$/.test(values.duration)) throw new ConfigError('--duration', `'${values.duration}' is not a number of seconds`);
  const durationMs = values.duration !== undefined ? Number(values.duration) * 1000 : audio.length > 0 ? (audio.length / 8000) * 1000 + 1000 : 10_000;
  return { audio, record: values.record, durationMs };
}

/** Runs the media of an answered call until `durationMs` or the peer's BYE; returns the RTP counters line. */
async function runMedia(session: InviteSession, rtp: RtpStream, m: Media, remoteSdp: string | undefined): Promise<string> {
  const remote = pcmuTarget(remoteSdp);
  if (remote) rtp.start(remote, m.audio, new SystemClock());
  let timer: NodeJS.Timeout | undefined;
  const hungUp = await Promise.race([
    session.ended.then(() => 'by the peer'),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('by us'), m.durationMs))),
  ]);
  clearTimeout(timer);
  if (hungUp === 'by us') await session.bye();
  rtp.stop();
  if (m.record !== undefined) writeFileSync(m.record, writeWav(decodeUlaw(rtp.recorded())));
  const c = rtp.counters;
  rtp.close();
  return `${remote ? '' : 'no PCMU in the peer\'s SDP; '}hung up ${hungUp}; RTP sent ${c.sent}, received ${c.received}`;
}

const ACCOUNT_OPTIONS = {
  proxy: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  listen: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Account {
  aor: string;
  proxy: Destination;
  listen: ListenSpec | undefined;
  username: string;
  password: string | undefined;
}

/** A URI from the command line, or the error naming its argument. */
function uriArgument(text: string, field: string): Uri {
  try {
    return parseUri(text);
  } catch (e) {
    throw new ConfigError(field, `'${text}' is not a SIP URI (${(e as Error).message})`);
  }
}

function account(command: string, aor: string, values: { proxy?: string; user?: string; password?: string; listen?: string }, field = 'AOR'): Account {
  const uri = uriArgument(aor, field);
  if (uri.type !== 'sip' || uri.user === undefined) throw new ConfigError(field, `'${aor}' is not a sip: address-of-record with a user (sip:alice@example.com)`);
  if (values.proxy === undefined) throw new UsageError(`${command}: --proxy is required (udp:HOST:PORT or tcp:HOST:PORT)`);
  const target = parseListen(values.proxy, '--proxy');
  if (target.transport !== 'udp' && target.transport !== 'tcp') throw new ConfigError('--proxy', `${command} speaks udp and tcp, not ${target.transport}`);
  return {
    aor,
    proxy: { transport: target.transport, address: target.host, port: target.port },
    // Without --listen the user agent picks its own (the proxy's transport, on loopback when the proxy is).
    listen: values.listen === undefined ? undefined : parseListen(values.listen, '--listen'),
    username: values.user ?? uri.user,
    password: values.password ?? process.env.SIPWAY_PASSWORD,
  };
}

async function userAgentFor(a: Account, onInvite?: UserAgentOptions['onInvite']): Promise<UserAgent> {
  return UserAgent.start({
    aor: a.aor,
    proxy: a.proxy,
    listen: a.listen,
    credentials: a.password === undefined ? undefined : { username: a.username, password: a.password },
    onInvite,
  });
}

/** An RTP stream on the UA's listening address and the SDP describing it, with the address peers reach it at. */
async function pcmuStream(ua: UserAgent): Promise<{ rtp: RtpStream; sdp: string }> {
  const l = ua.transport.listeners()[0]!;
  const rtp = await RtpStream.open(l.host);
  return { rtp, sdp: pcmuDescription(advertisedHostname(l), rtp.port) };
}

function shown(d: Destination): string {
  return `${d.transport}:${hostPort(d.address, d.port)}`;
}

/** `sipway register AOR --proxy TARGET`. */
export async function registerCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('register', { args, allowPositionals: true, options: { ...ACCOUNT_OPTIONS, expires: { type: 'string' } } });
  if (values.help) {
    console.log(REGISTER_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`register: needs exactly one AOR (run 'sipway register --help')`);
  const expires = values.expires === undefined ? 3600 : Number(values.expires);
  if (!/^\d+$/.test(values.expires ?? '0') || expires > 2 ** 31 - 1) throw new ConfigError('--expires', `'${values.expires}' is not a number of seconds`);
  const a = account('register', positionals[0]!, values);
  const ua = await userAgentFor(a);
  try {
    const registration = ua.registration({ expires });
    const r = expires === 0 ? await registration.unregister() : await registration.register();
    registration.stop();
    if (r.status < 200 || r.status >= 300) throw new CommandFailed(`register: ${a.aor} at ${shown(a.proxy)}: ${r.status} ${r.reason}`);
    console.log(expires === 0 ? `unregistered ${ua.contact} of ${a.aor} at ${shown(a.proxy)} (${r.status} ${r.reason})` : `registered ${ua.contact} for ${a.aor} at ${shown(a.proxy)} for ${r.expires} s (${r.status} ${r.reason})`);
    return 0;
  } finally {
    await ua.stop();
  }
}

/** `sipway message URI TEXT --from AOR --proxy TARGET`. */
export async function messageCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('message', { args, allowPositionals: true, options: { ...ACCOUNT_OPTIONS, from: { type: 'string' } } });
  if (values.help) {
    console.log(MESSAGE_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`message: needs URI and TEXT (run 'sipway message --help')`);
  const [to, text] = positionals as [string, string];
  uriArgument(to, 'URI');
  if (values.from === undefined) throw new UsageError(`message: --from is required (our address-of-record)`);
  const a = account('message', values.from, values, '--from');
  const ua = await userAgentFor(a);
  try {
    const r = await ua.request('MESSAGE', to, { body: Buffer.from(text, 'utf8'), contentType: 'text/plain;charset=utf-8' });
    if (r.status < 200 || r.status >= 300) throw new CommandFailed(`message: to ${to}: ${r.status} ${r.reason}`);
    console.log(`${to}: ${r.status} ${r.reason}`);
    return 0;
  } finally {
    await ua.stop();
  }
}

/** `sipway call URI --from AOR --proxy TARGET`. */
export async function callCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('call', { args, allowPositionals: true, options: { ...ACCOUNT_OPTIONS, ...MEDIA_OPTIONS, from: { type: 'string' } } });
  if (values.help) {
    console.log(CALL_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`call: needs exactly one URI (run 'sipway call --help')`);
  const to = positionals[0]!;
  uriArgument(to, 'URI');
  if (values.from === undefined) throw new UsageError(`call: --from is required (our address-of-record)`);
  const m = media(values);
  const a = account('call', values.from, values, '--from');
  const ua = await userAgentFor(a);
  const { rtp, sdp } = await pcmuStream(ua);
  try {
    const session = await ua.call(to, { sdp });
    const answer = await session.answered;
    if (answer.status < 200 || answer.status >= 300) {
      rtp.close();
      throw new CommandFailed(`call: ${to}: ${answer.status} ${answer.reason}`);
    }
    console.log(`${to}: ${answer.status} ${answer.reason}; ${await runMedia(session, rtp, m, session.remoteSdp)}`);
    return 0;
  } finally {
    await ua.stop();
  }
}

/** `sipway answer AOR --proxy TARGET`. */
export async function answerCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('answer', { args, allowPositionals: true, options: { ...ACCOUNT_OPTIONS, ...MEDIA_OPTIONS, calls: { type: 'string' } } });
  if (values.help) {
    console.log(ANSWER_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`answer: needs exactly one AOR (run 'sipway answer --help')`);
  const calls = values.calls === undefined ? 1 : Number(values.calls);
  if (!/^\d+$/.test(values.calls ?? '1') || calls < 1) throw new ConfigError('--calls', `'${values.calls}' is not a positive number`);
  const m = media(values);
  const a = account('answer', positionals[0]!, values);
  let answeredCalls = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const ua = await userAgentFor(a, (session) => {
    void (async () => {
      const { rtp, sdp } = await pcmuStream(ua);
      session.ring();
      session.accept(sdp);
      const from = session.invite.from.uri.toString();
      console.log(`${from}: answered; ${await runMedia(session, rtp, m, session.remoteSdp)}`);
      if (++answeredCalls >= calls) done();
    })().catch((e: unknown) => {
      console.error(`sipway: answer: call failed: ${(e as Error).message}`);
      session.reject(500);
    });
  });
  const registration = ua.registration();
  try {
    const r = await registration.register();
    if (r.status < 200 || r.status >= 300) throw new CommandFailed(`answer: ${a.aor} at ${shown(a.proxy)}: ${r.status} ${r.reason}`);
    console.log(`registered ${ua.contact} for ${a.aor}; waiting for ${calls} call(s)`);
    await finished;
    await registration.unregister();
    return 0;
  } finally {
    registration.stop();
    await ua.stop();
  }
}
