import { Headers, parseUri, type Uri } from '../message/index.js';
import { parseListen } from '../server/config.js';
import { advertisedHostname, hostPort, type Destination, type ListenSpec } from '../transport/index.js';
import { ConfigError } from '../util/errors.js';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { decodeG711, encodeG711, readWav, RtpStream, writeWav, type G711Law } from '../media/index.js';
import { agreedStream, createAnswer, createOffer, PCMA, PCMU, TELEPHONE_EVENT, type AgreedStream, type Codec, type MediaOffer } from '../sdp/index.js';
import { SystemClock } from '../util/clock.js';
import { UserAgent, type InviteSession, type Transfer, type UserAgentOptions } from '../ua/index.js';
import { parseCommandLine } from './args.js';
import { CommandFailed, UsageError } from './usage-error.js';

const ACCOUNT_HELP = `  --proxy TARGET   where requests go: udp:HOST:PORT or tcp:HOST:PORT (required, here or in the profile)
  --user NAME      the digest user name (default: the user part of the address-of-record)
  --password PW    the digest password; better in the environment as SIPWAY_PASSWORD or in a profile (flags show in ps)
  --listen SPEC    our listener (default: the proxy's transport on any free port; on loopback when the proxy is)
  --profile FILE   a JSON account profile: {"aor", "proxy", "user", "password", "listen"}, each optional; flags win.
                   Keep it private (chmod 600): a profile others can read is used with a warning`;

export const REGISTER_HELP = `Usage: sipway register [AOR] --proxy TARGET [--expires S] [account options]

Registers this machine's listener as a Contact of AOR (sip:alice@example.com) at the registrar, answering a digest
challenge, prints what the registrar granted and exits; the binding stays until it expires. --expires 0 removes it.
Exit 0 on a 2xx, 1 with the status otherwise (or when nothing answers).

  --expires S      seconds asked for (default 3600)
${ACCOUNT_HELP}`;

export const MESSAGE_HELP = `Usage: sipway message URI TEXT --from AOR --proxy TARGET [account options]

Sends TEXT in a MESSAGE (RFC 3428, text/plain) to URI from AOR, answering a digest challenge, and prints the final
status. Exit 0 on a 2xx, 1 with the status otherwise (or when nothing answers).

  --from AOR       our address-of-record (sip:alice@example.com), or the profile's "aor"
${ACCOUNT_HELP}`;

const MEDIA_HELP = `  --play FILE      a WAV (16-bit PCM, mono, 8000 Hz) sent as G.711 RTP, then silence
  --record FILE    what the peer sends, written as a WAV of the same format when the call ends
  --duration S     seconds the call lasts before we hang up (default: the --play file's length + 1 s, else 10)
  --codecs LIST    the G.711 laws we take, in our order of preference: pcmu,pcma (default) or one of them
  --dtmf DIGITS    digits (0-9 * # A-D) sent half a second after the answer: as RFC 4733 events when the peer
                   takes telephone-event, else as INFO (application/dtmf-relay)`;

export const CALL_HELP = `Usage: sipway call URI --from AOR --proxy TARGET [media options] [account options]

Calls URI from AOR with a G.711 offer (RFC 3264: PCMU/PCMA and telephone-event), answering a digest challenge; once
answered, sends and receives RTP in the agreed law, hangs up after --duration (or when the callee does), and prints
the answer and the RTP counters. Reliable provisional responses (PRACK), UPDATE, session timers and re-INVITEs from
the callee are handled. Exit 0 when the call was answered, 1 with the status otherwise.

  --from AOR       our address-of-record (sip:alice@example.com), or the profile's "aor"
${MEDIA_HELP}
${ACCOUNT_HELP}`;

export const ANSWER_HELP = `Usage: sipway answer [AOR] --proxy TARGET [--calls N] [media options] [account options]

Registers AOR, answers the next N calls (default 1) with G.711 in the caller's preferred law among --codecs (488
when there is none; an INVITE without an offer gets ours), sends and receives RTP, prints DTMF received, hangs up
after --duration unless the caller does first, prints a line per call, unregisters and exits 0. A transfer (REFER) in
a call is followed: the call to its target is placed (with Replaces for an attended one) and reported back.

  --calls N        how many calls to answer before exiting (default 1)
${MEDIA_HELP}
${ACCOUNT_HELP}`;

export const OPTIONS_HELP = `Usage: sipway options URI --from AOR --proxy TARGET [account options]

Sends OPTIONS (RFC 3261 §11) to URI from AOR, answering a digest challenge, and prints the final status with what the
peer says it allows, supports and accepts. Exit 0 on a 2xx, 1 with the status otherwise.

  --from AOR       our address-of-record (sip:alice@example.com), or the profile's "aor"
${ACCOUNT_HELP}`;

export const TRANSFER_HELP = `Usage: sipway transfer URI TARGET --from AOR --proxy TARGET [--attended] [media options] [account options]

Calls URI, and once it answers transfers it to TARGET with a REFER (RFC 3515): blind, or with --attended after
calling TARGET ourselves, so that URI's call replaces ours with TARGET (Replaces, RFC 3891). Prints the progress the
transferee reports and the outcome, then hangs up. Exit 0 when the transfer succeeded, 1 with the status otherwise.

  --from AOR       our address-of-record (sip:alice@example.com), or the profile's "aor"
  --attended       call TARGET first and hand that call over (default: blind)
${MEDIA_HELP}
${ACCOUNT_HELP}`;

const MEDIA_OPTIONS = {
  play: { type: 'string' },
  record: { type: 'string' },
  duration: { type: 'string' },
  codecs: { type: 'string' },
  dtmf: { type: 'string' },
} as const;

interface Media {
  audio: Int16Array;
  record: string | undefined;
  durationMs: number;
  codecs: Codec[];
  dtmf: string;
}

const LAWS: Record<string, Codec> = { pcmu: PCMU, pcma: PCMA };

function media(values: { play?: string; record?: string; duration?: string; codecs?: string; dtmf?: string }): Media {
  let audio: Int16Array = new Int16Array(0);
  if (values.play !== undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(values.play);
    } catch (e) {
      throw new ConfigError('--play', `cannot read ${values.play}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      audio = readWav(bytes);
    } catch (e) {
      throw new ConfigError('--play', `${values.play}: ${(e as Error).message}`);
    }
  }
  if (values.duration !== undefined && !/^\d+(\.\d+)?$/.test(values.duration)) throw new ConfigError('--duration', `'${values.duration}' is not a number of seconds`);
  const durationMs = values.duration !== undefined ? Number(values.duration) * 1000 : audio.length > 0 ? (audio.length / 8000) * 1000 + 1000 : 10_000;
  const names = (values.codecs ?? 'pcmu,pcma').split(',').map((c) => c.trim().toLowerCase());
  const codecs: Codec[] = [];
  for (const name of names) {
    const codec = LAWS[name];
    if (codec === undefined) throw new ConfigError('--codecs', `'${name}' is not a codec we have (pcmu, pcma)`);
    if (!codecs.includes(codec)) codecs.push(codec);
  }
  const dtmf = values.dtmf ?? '';
  if (!/^[0-9*#A-Da-d]*$/.test(dtmf)) throw new ConfigError('--dtmf', `'${dtmf}' has a character that is not a DTMF digit (0-9 * # A-D)`);
  return { audio, record: values.record, durationMs, codecs, dtmf: dtmf.toUpperCase() };
}

/** A call's RTP stream on the UA's listening address, and the offer describing it. */
async function mediaEndpoint(ua: UserAgent, m: Media): Promise<{ rtp: RtpStream; ours: MediaOffer }> {
  const l = ua.transport.listeners()[0]!;
  const rtp = await RtpStream.open(l.host);
  return { rtp, ours: { address: advertisedHostname(l), port: rtp.port, codecs: [...m.codecs, TELEPHONE_EVENT] } };
}

/** The digit of an INFO application/dtmf-relay body (its Signal= line), as SIP phones send it. */
function relayedDigit(body: string): string | undefined {
  return /^\s*Signal\s*=\s*([0-9*#A-Da-d])\s*$/m.exec(body)?.[1]?.toUpperCase();
}

/**
 * Runs the media of an answered call in the law the offer/answer agreed until `durationMs` or the peer's BYE, sends
 * --dtmf digits and collects the peer's; returns the line that reports it.
 */
async function runMedia(session: InviteSession, rtp: RtpStream, m: Media, stream: AgreedStream | undefined): Promise<string> {
  const digits: string[] = [];
  rtp.onDigit = (d) => digits.push(d);
  session.onInfo = (request) => {
    const d = relayedDigit(request.body.toString('utf8'));
    if (d === undefined) return 415;
    digits.push(d);
    return 200;
  };
  const law: G711Law = stream?.codec.encoding.toUpperCase() === 'PCMA' ? 'pcma' : 'pcmu';
  if (stream) {
    rtp.dtmfPayloadType = stream.dtmfPayloadType;
    rtp.start(stream, encodeG711(law, m.audio), new SystemClock(), { law, payloadType: stream.codec.payloadType });
  }
  let dtmfTimer: NodeJS.Timeout | undefined;
  if (m.dtmf.length > 0 && stream) {
    dtmfTimer = setTimeout(() => {
      if (stream.dtmfPayloadType !== undefined) rtp.sendDigits(m.dtmf);
      else void (async () => {
        for (const d of m.dtmf) await session.info(`Signal=${d}\r\nDuration=160\r\n`, 'application/dtmf-relay');
      })();
    }, 500);
  }
  let timer: NodeJS.Timeout | undefined;
  const hungUp = await Promise.race([
    session.ended.then(() => 'by the peer'),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('by us'), m.durationMs))),
  ]);
  clearTimeout(timer);
  clearTimeout(dtmfTimer);
  if (hungUp === 'by us') await session.bye();
  rtp.stop();
  if (m.record !== undefined) writeFileSync(m.record, writeWav(decodeG711(law, rtp.recorded())));
  const c = rtp.counters;
  rtp.close();
  const what = stream ? `${stream.codec.encoding}` : 'no audio agreed';
  return `${what}; hung up ${hungUp}; RTP sent ${c.sent}, received ${c.received}${digits.length > 0 ? `; DTMF ${digits.join('')}` : ''}`;
}

const ACCOUNT_OPTIONS = {
  proxy: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  listen: { type: 'string' },
  profile: { type: 'string' },
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

type AccountFlags = { proxy?: string; user?: string; password?: string; listen?: string; profile?: string };

const PROFILE_KEYS = ['aor', 'proxy', 'user', 'password', 'listen'] as const;
type Profile = Partial<Record<(typeof PROFILE_KEYS)[number], string>>;

/** An account profile file: a JSON object of strings; every fault names the file and the key. */
function readProfile(file: string): Profile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('--profile', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('--profile', `${file} is not JSON: ${(e as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError('--profile', `${file} must hold a JSON object`);
  const profile: Profile = {};
  for (const [key, value] of Object.entries(data)) {
    if (!(PROFILE_KEYS as readonly string[]).includes(key)) throw new ConfigError('--profile', `${file}: unknown key '${key}' (known: ${PROFILE_KEYS.join(', ')})`);
    if (typeof value !== 'string') throw new ConfigError('--profile', `${file}: '${key}' must be a string`);
    profile[key as keyof Profile] = value;
  }
  if (profile.password !== undefined && (statSync(file).mode & 0o077) !== 0) {
    console.error(`sipway: warning: ${file} holds a password and others can read it (chmod 600 ${file})`);
  }
  return profile;
}

/**
 * The account a command runs as: the address-of-record (`aor`, from the command line or the profile's), the proxy,
 * the digest user and password, our listener. Flags win over the profile, the profile over the environment.
 */
function account(command: string, aor: string | undefined, flags: AccountFlags, field = 'AOR'): Account {
  const profile = flags.profile === undefined ? {} : readProfile(flags.profile);
  const chosen = aor ?? profile.aor;
  if (chosen === undefined) throw new UsageError(`${command}: ${field} is required (our address-of-record, or "aor" in --profile)`);
  const values = { ...profile, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) } as AccountFlags;
  const uri = uriArgument(chosen, field);
  if (uri.type !== 'sip' || uri.user === undefined) throw new ConfigError(field, `'${chosen}' is not a sip: address-of-record with a user (sip:alice@example.com)`);
  if (values.proxy === undefined) throw new UsageError(`${command}: --proxy is required (udp:HOST:PORT or tcp:HOST:PORT), or "proxy" in --profile`);
  const target = parseListen(values.proxy, '--proxy');
  if (target.transport !== 'udp' && target.transport !== 'tcp') throw new ConfigError('--proxy', `${command} speaks udp and tcp, not ${target.transport}`);
  return {
    aor: chosen,
    proxy: { transport: target.transport, address: target.host, port: target.port },
    // Without --listen the user agent picks its own (the proxy's transport, on loopback when the proxy is).
    listen: values.listen === undefined ? undefined : parseListen(values.listen, '--listen'),
    username: values.user ?? uri.user,
    password: values.password ?? process.env.SIPWAY_PASSWORD,
  };
}

async function userAgentFor(a: Account, hooks: Pick<UserAgentOptions, 'onInvite' | 'onRefer'> = {}): Promise<UserAgent> {
  return UserAgent.start({
    aor: a.aor,
    proxy: a.proxy,
    listen: a.listen,
    credentials: a.password === undefined ? undefined : { username: a.username, password: a.password },
    ...hooks,
  });
}

/**
 * Places a call with our G.711 offer; once it is answered (or has failed) returns the session, its RTP stream and the
 * stream the offer/answer agreed. A failure closes the stream and is thrown as the command's failure.
 */
async function placeCall(ua: UserAgent, m: Media, what: string, call: (sdp: string) => Promise<InviteSession>): Promise<{ session: InviteSession; rtp: RtpStream; stream: AgreedStream | undefined }> {
  const { rtp, ours } = await mediaEndpoint(ua, m);
  const offer = createOffer(ours);
  const session = await call(offer);
  const answer = await session.answered;
  if (answer.status < 200 || answer.status >= 300) {
    rtp.close();
    throw new CommandFailed(`${what}: ${answer.status} ${answer.reason}`);
  }
  const remote = session.remoteSdp;
  return { session, rtp, stream: remote === undefined ? undefined : agreedStream(offer, remote) };
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
  if (positionals.length > 1) throw new UsageError(`register: needs one AOR (run 'sipway register --help')`);
  const expires = values.expires === undefined ? 3600 : Number(values.expires);
  if (!/^\d+$/.test(values.expires ?? '0') || expires > 2 ** 31 - 1) throw new ConfigError('--expires', `'${values.expires}' is not a number of seconds`);
  const a = account('register', positionals[0], values);
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
  const m = media(values);
  const a = account('call', values.from, values, '--from');
  const ua = await userAgentFor(a);
  try {
    const { session, rtp, stream } = await placeCall(ua, m, `call: ${to}`, (sdp) => ua.call(to, { sdp }));
    console.log(`${to}: 200 OK; ${await runMedia(session, rtp, m, stream)}`);
    return 0;
  } finally {
    await ua.stop();
  }
}

/** `sipway transfer URI TARGET --from AOR --proxy TARGET [--attended]`. */
export async function transferCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('transfer', { args, allowPositionals: true, options: { ...ACCOUNT_OPTIONS, ...MEDIA_OPTIONS, from: { type: 'string' }, attended: { type: 'boolean' } } });
  if (values.help) {
    console.log(TRANSFER_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`transfer: needs URI and TARGET (run 'sipway transfer --help')`);
  const [to, target] = positionals as [string, string];
  uriArgument(to, 'URI');
  uriArgument(target, 'TARGET');
  const m = media(values);
  const a = account('transfer', values.from, values, '--from');
  const ua = await userAgentFor(a);
  const calls: Array<{ rtp: RtpStream }> = [];
  try {
    const first = await placeCall(ua, m, `transfer: ${to}`, (sdp) => ua.call(to, { sdp }));
    calls.push(first);
    let consultation: InviteSession | undefined;
    if (values.attended) {
      const second = await placeCall(ua, m, `transfer: ${target}`, (sdp) => ua.call(target, { sdp }));
      calls.push(second);
      consultation = second.session;
    }
    const progress: number[] = [];
    const outcome = await first.session.refer(target, { replacing: consultation, onProgress: (status) => progress.push(status) });
    const line = `${to} to ${target} (${values.attended ? 'attended' : 'blind'}): ${outcome.status} ${outcome.reason}; reported ${progress.join(', ') || 'nothing'}`;
    await first.session.bye();
    // An attended transfer's target ends our call with it when the transferee's call replaces it (RFC 3891).
    if (consultation && outcome.status >= 300) await consultation.bye();
    if (outcome.status < 200 || outcome.status >= 300) throw new CommandFailed(`transfer: ${line}`);
    console.log(`transferred ${line}`);
    return 0;
  } finally {
    for (const c of calls) c.rtp.close();
    await ua.stop();
  }
}

/** `sipway options URI --from AOR --proxy TARGET`. */
export async function optionsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('options', { args, allowPositionals: true, options: { ...ACCOUNT_OPTIONS, from: { type: 'string' } } });
  if (values.help) {
    console.log(OPTIONS_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`options: needs exactly one URI (run 'sipway options --help')`);
  const to = positionals[0]!;
  uriArgument(to, 'URI');
  const a = account('options', values.from, values, '--from');
  const ua = await userAgentFor(a);
  try {
    const r = await ua.request('OPTIONS', to, { headers: [['Accept', 'application/sdp']] });
    if (r.status < 200 || r.status >= 300) throw new CommandFailed(`options: ${to}: ${r.status} ${r.reason}`);
    const h = r.response!.headers;
    const facts = (['allow', 'supported', 'accept'] as const).map((name) => `${Headers.spelling(name)}: ${h.list(name).join(', ') || '-'}`);
    console.log(`${to}: ${r.status} ${r.reason}; ${facts.join('; ')}`);
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
  if (positionals.length > 1) throw new UsageError(`answer: needs one AOR (run 'sipway answer --help')`);
  const calls = values.calls === undefined ? 1 : Number(values.calls);
  if (!/^\d+$/.test(values.calls ?? '1') || calls < 1) throw new ConfigError('--calls', `'${values.calls}' is not a positive number`);
  const m = media(values);
  const a = account('answer', positionals[0], values);
  let answeredCalls = 0;
  // Calls in progress, answered or placed for a transfer: we exit when N calls were answered and none is left.
  let running = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const settle = (): void => {
    if (answeredCalls >= calls && running === 0) done();
  };
  const track = (work: () => Promise<string>, failed: (e: Error) => void): void => {
    running++;
    void work()
      .then((line) => console.log(line))
      .catch((e: unknown) => {
        console.error(`sipway: answer: ${(e as Error).message}`);
        failed(e as Error);
      })
      .finally(() => {
        running--;
        settle();
      });
  };
  const onInvite = (session: InviteSession): void =>
    track(
      async () => {
        const { rtp, ours } = await mediaEndpoint(ua, m);
        const from = session.invite.from.uri.toString();
        const offer = session.remoteSdp;
        let stream: AgreedStream | undefined;
        if (offer !== undefined) {
          const answer = createAnswer(offer, ours);
          if (!answer.ok) {
            rtp.close();
            session.reject(answer.status, answer.reason);
            answeredCalls++;
            return `${from}: refused ${answer.status} ${answer.reason}`;
          }
          session.ring();
          session.accept(answer.sdp);
          stream = answer.stream;
        } else {
          // No offer in the INVITE: ours goes in the 2xx, the answer comes in the ACK.
          const ourOffer = createOffer(ours);
          const acked = new Promise<void>((resolve) => (session.onChange = resolve));
          session.ring();
          session.accept(ourOffer);
          await Promise.race([acked, session.ended]);
          const remote = session.remoteSdp;
          stream = remote === undefined ? undefined : agreedStream(ourOffer, remote);
        }
        answeredCalls++;
        const replacing = session.replaces ? ' (replacing a call)' : '';
        return `${from}: answered${replacing}; ${await runMedia(session, rtp, m, stream)}`;
      },
      () => session.reject(500),
    );
  const onRefer = (transfer: Transfer): Promise<InviteSession | undefined> =>
    new Promise((placed) => {
      track(
        async () => {
          const { session, rtp, stream } = await placeCall(ua, m, `transfer to ${transfer.target}`, async (sdp) => {
            const s = await transfer.call({ sdp });
            placed(s);
            return s;
          });
          return `${transfer.target}: called for a transfer${transfer.replaces ? ' (attended)' : ''}: 200 OK; ${await runMedia(session, rtp, m, stream)}`;
        },
        () => placed(undefined),
      );
    });
  const ua = await userAgentFor(a, { onInvite, onRefer });
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
