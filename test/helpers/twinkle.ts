/**
 * A headless Twinkle (Debian 12: twinkle-console 1.10.2, package `twinkle-console`) as a child process for interop
 * tests, driven through its command line on stdin (`call URI`, `answer`, `bye`, `hold`, `retrieve`, `transfer URI`,
 * `quit`; `help` lists them) and read from what it prints ("Line 1: incoming call", "Line 1: call established.").
 *
 * How it runs, and why:
 * - twinkle-console has no options: every argument is a user profile file, relative to ~/.twinkle (`--help` is read
 *   as a profile named "--help"). Everything else comes from ~/.twinkle/twinkle.sys, so HOME is a directory of its
 *   own per instance: it also keeps the lock file (twinkle.lck, one running Twinkle per HOME), the call history and
 *   the log apart.
 * - It needs no tty (stdin and stdout are pipes; it prints its prompt "Twinkle> " without a newline) and runs as root.
 * - Audio: a call is refused when no sound device opens ("Critical: Failed to open sound card": no 200 is sent), and
 *   a test machine has no card. ~/.asoundrc makes ALSA's "default" the `file` plugin over the `null` PCM: playback
 *   goes nowhere, capture reads a FIFO that this helper fills with silence in real time. With the bare `null` PCM the
 *   calls work too, but Twinkle's capture loop then never blocks and spins a core at 100 % for every call.
 * - SIP on UDP and TCP on every address at `sip_port` (twinkle.sys; there is no bind address setting), RTP from
 *   `rtp_port` up (two ports per line); the Contact and SDP name 127.0.0.1 because the peer (the proxy) is there.
 * - log_show_sip: every SIP message sent and received goes to ~/.twinkle/twinkle.log; `sipTrace()` reads it back,
 *   which is how a test sees the headers Twinkle put on the wire.
 * - Twinkle 1.10.2 has no session timers (RFC 4028): no profile setting, no Session-Expires anywhere in the binary;
 *   it ignores a Session-Expires offered to it and never puts `timer` in Supported. 100rel (RFC 3262) is the
 *   profile's ext_100rel: `supported` (its default) lists 100rel in Supported and answers reliably only an INVITE
 *   that requires it; `preferred` and `required` both put `Require: 100rel` on its INVITEs and answer reliably
 *   whenever the INVITE supports it; `disabled` answers an INVITE requiring it 420.
 * - With ext_100rel `required` its 180 to an INVITE supporting 100rel is reliable (Require: 100rel, RSeq, no SDP; the
 *   answer comes in the 200), and it PRACKs a reliable 183 and takes a 200 without SDP after it.
 * - Transfers (allow_refer=yes, ask_user_to_refer=no): as transferee it answers a REFER 202, places the call to the
 *   Refer-To target on the same line (with Referred-By as received, and the Replaces of the Refer-To), and reports its
 *   progress in NOTIFYs sent one at a time (100 for the REFER, 100 for each 100 Trying of its INVITE, 180, final):
 *   as soon as the target answers it BYEs the transferor ("End call with referrer."), before the NOTIFYs still
 *   queued (180, 200). As transferor (`transfer URI`, blind; no hold first) its REFER carries Referred-By with its
 *   display name; it prints "Line 1: call successfully referred." at the final NOTIFY and then BYEs the transferee.
 * - Twinkle escapes an upper-case Z as %5a in the user part of every URI it re-encodes (its unreserved character
 *   set in the binary reads "...VWXYX0123..."), e.g. in the Record-Route of its 2xx and in the Route of its in-dialog
 *   requests: equivalent by RFC 3261 §19.1.4, but a flow token of sipway's that contains a Z comes back altered.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs, { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, requireTool } from './process.js';

export type Ext100rel = 'disabled' | 'supported' | 'preferred' | 'required';

export interface TwinkleOptions {
  user: string;
  /** Digest password; the auth name is the user. */
  password: string;
  domain: string;
  /** sipway's UDP port on 127.0.0.1: the registrar and the outbound proxy of the initial requests. */
  proxyPort: number;
  /** RFC 3262 support (profile ext_100rel); default `supported`, Twinkle's own default. */
  ext100rel?: Ext100rel;
  /** Register at start-up (default true; registration_time 600 s). */
  register?: boolean;
  /** How it holds (profile hold_variant): rfc3264 (a=sendonly, the default) or rfc2543 (c=0.0.0.0). */
  holdVariant?: 'rfc3264' | 'rfc2543';
  /** More user profile settings (`key=value` of NAME.cfg), over the ones this helper writes. */
  profile?: Record<string, string>;
  /** More system settings (twinkle.sys), over the ones this helper writes. */
  system?: Record<string, string>;
  /** The directory to run in (its HOME); default a fresh temporary one, removed by stop(). */
  dir?: string;
  /** Name in messages (default the user). */
  name?: string;
}

/** One SIP message from Twinkle's log, as it was sent or received. */
export interface TwinkleSipMessage {
  direction: 'out' | 'in';
  /** `udp:127.0.0.1:5060` */
  peer: string;
  /** The message (start line, headers, body), lines joined with \n. */
  text: string;
}

const MAX_OUTPUT = 1 << 20;
/** 20 ms of 8 kHz 16-bit mono silence: what the capture FIFO gets every 20 ms. */
const SILENCE = Buffer.alloc(320);

export class Twinkle {
  private out = '';
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    /** Twinkle's SIP port (UDP and TCP, every address). */
    readonly sipPort: number,
    /** The first RTP port (line 1; line 2 is two above). */
    readonly rtpPort: number,
    /** Its HOME: ~/.twinkle holds the profile, twinkle.sys and twinkle.log. */
    readonly home: string,
    private readonly child: ChildProcess,
    private readonly pacer: NodeJS.Timeout,
    private readonly fifo: number,
    private readonly ownDir: boolean,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      child.on('exit', (code) => resolve(code));
      child.on('error', () => resolve(null));
    });
    const append = (c: Buffer): void => {
      if (this.out.length < MAX_OUTPUT) this.out += c.toString();
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    child.stdin!.on('error', () => {});
    child.on('error', (e) => append(Buffer.from(`\n[twinkle-console: ${e.message}]\n`)));
  }

  /**
   * Writes the profile, twinkle.sys and ~/.asoundrc, starts `twinkle-console NAME.cfg` with HOME set and waits for its
   * first prompt, then (unless `register: false`) for "registration succeeded" (each bounded by `timeoutMs`).
   */
  static async start(options: TwinkleOptions, timeoutMs = 10000): Promise<Twinkle> {
    const binary = requireTool('twinkle-console');
    const name = options.name ?? options.user;
    const ownDir = options.dir === undefined;
    const home = options.dir ?? mkdtempSync(path.join(os.tmpdir(), `sipway-twinkle-${name}-`));
    let fifo = -1;
    let pacer: NodeJS.Timeout | undefined;
    let twinkle: Twinkle | undefined;
    try {
      const config = path.join(home, '.twinkle');
      mkdirSync(config, { recursive: true });
      const sipPort = await freePort();
      const rtpPort = await freeRtpBase();
      writeFileSync(path.join(config, 'twinkle.sys'), settings(systemSettings(sipPort, rtpPort), options.system));
      writeFileSync(path.join(config, `${options.user}.cfg`), settings(profileSettings(options), options.profile));
      const mic = path.join(home, 'mic.fifo');
      execFileSync('mkfifo', [mic]);
      // Read and write ends in this process: opening never blocks, and a full pipe (no call capturing) only makes a
      // write fail with EAGAIN, never stalls the test.
      fifo = fs.openSync(mic, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      const fd = fifo;
      pacer = setInterval(() => {
        try {
          fs.writeSync(fd, SILENCE);
        } catch {
          // EAGAIN: nobody is capturing right now.
        }
      }, 20);
      pacer.unref();
      writeFileSync(path.join(home, '.asoundrc'), asoundrc(mic));
      const child = spawn(binary, [`${options.user}.cfg`], {
        cwd: home,
        env: { ...process.env, HOME: home, TERM: 'dumb', LANG: 'C', LC_ALL: 'C' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      twinkle = new Twinkle(name, sipPort, rtpPort, home, child, pacer, fifo, ownDir);
      await twinkle.waitFor(/Twinkle> /, timeoutMs);
      if (options.register !== false) await twinkle.waitFor(new RegExp(`${escapeRegExp(options.user)}: registration succeeded`), timeoutMs);
      return twinkle;
    } catch (e) {
      if (twinkle) await twinkle.stop();
      else {
        if (pacer !== undefined) clearInterval(pacer);
        if (fifo >= 0) fs.closeSync(fifo);
        if (ownDir) rmSync(home, { recursive: true, force: true });
      }
      throw e;
    }
  }

  /** One command line (see call() for `call`): `answer`, `bye`, `hold`, `retrieve`, `transfer URI`, ... */
  send(command: string): void {
    this.child.stdin!.write(command + '\n');
  }

  /**
   * `call URI`, sent again every 500 ms until Twinkle's INVITE to `uri` is in its log (bounded by `timeoutMs`): Twinkle
   * silently ignores a call while its active line is not idle yet, which it stays for a moment after a call ended
   * (after "far end ended call." is printed, too). A repeated command is harmless: the line is busy once one went out.
   */
  async call(uri: string, timeoutMs = 5000): Promise<void> {
    const line = new RegExp(`^INVITE ${escapeRegExp(uri)} SIP/2\\.0\\r?$`, 'gm');
    const invites = (): number => this.log().match(line)?.length ?? 0;
    const before = invites();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.send(`call ${uri}`);
      const retry = Math.min(Date.now() + 500, deadline);
      while (Date.now() < retry) {
        if (invites() > before) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      if (Date.now() >= deadline) throw new Error(`twinkle ${this.name}: no INVITE to ${uri} within ${timeoutMs} ms\n${this.transcript()}`);
    }
  }

  /** Where the output ends now: `waitFor(re, ms, mark)` then looks only at what comes after. */
  mark(): number {
    return this.out.length;
  }

  /** Everything Twinkle printed (stdout and stderr, its prompts and the commands it echoes included). */
  output(): string {
    return this.out;
  }

  /**
   * Resolves with the match once the output from `since` on matches `re`; throws after `timeoutMs`, or at once if
   * Twinkle exited, with its output and the tail of its SIP log.
   */
  async waitFor(re: RegExp, timeoutMs: number, since = 0): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.out.slice(since));
      if (m) return m;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`twinkle ${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${re}\n${this.transcript()}`);
      }
      if (Date.now() > deadline) throw new Error(`twinkle ${this.name}: output did not match ${re} within ${timeoutMs} ms\n${this.transcript()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Twinkle's log (~/.twinkle/twinkle.log): SIP messages both ways (their lines end in CRLF), audio and registration events. */
  log(): string {
    try {
      return readFileSync(path.join(this.home, '.twinkle', 'twinkle.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** The SIP messages Twinkle sent and received so far, in order, from its log. */
  sipTrace(): TwinkleSipMessage[] {
    const messages: TwinkleSipMessage[] = [];
    // A log entry: "+++ date time LEVEL SIP function", its lines, then "---".
    for (const entry of this.log().split(/^\+\+\+ /m)) {
      const lines = entry.split(/\r?\n/);
      if (!/ SIP /.test(lines[0] ?? '')) continue;
      const where = /^(Send to|Received from): (\S+)/.exec(lines[1] ?? '');
      if (!where) continue;
      const end = lines.lastIndexOf('---');
      const body = lines.slice(2, end < 0 ? undefined : end);
      while (body.length > 0 && body[body.length - 1] === '') body.pop();
      messages.push({ direction: where[1] === 'Send to' ? 'out' : 'in', peer: where[2]!, text: body.join('\n') });
    }
    return messages;
  }

  /** Its output and the tail of its SIP log: what a failure message needs. */
  transcript(logChars = 6000): string {
    return `--- twinkle ${this.name} output (tail) ---\n${this.out.slice(-4000)}\n--- twinkle ${this.name} log (tail) ---\n${this.log().slice(-logChars)}`;
  }

  /**
   * `quit` (Twinkle unregisters first, so stop it before the server), then SIGTERM, then SIGKILL, each bounded;
   * removes its directory when this helper made it. Always resolves.
   */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.send('quit');
      const term = setTimeout(() => this.child.kill('SIGTERM'), 3000);
      const kill = setTimeout(() => this.child.kill('SIGKILL'), 6000);
      await this.exited;
      clearTimeout(term);
      clearTimeout(kill);
    }
    clearInterval(this.pacer);
    try {
      fs.closeSync(this.fifo);
    } catch {
      // closed already
    }
    if (this.ownDir) rmSync(this.home, { recursive: true, force: true });
  }
}

/** `startTwinkle(options)`: Twinkle.start. */
export function startTwinkle(options: TwinkleOptions, timeoutMs?: number): Promise<Twinkle> {
  return Twinkle.start(options, timeoutMs);
}

/** One entry of Twinkle's buddy list: a SIP address it may subscribe to (`subscribe`, default true) for its presence. */
export interface TwinkleBuddy {
  name: string;
  /** `sip:alice@example.com` (a short form without the domain is expanded with the profile's domain). */
  uri: string;
  subscribe?: boolean;
}

/**
 * Writes Twinkle's buddy list for user profile `profile` into `home` (~/.twinkle/PROFILE.bud, which
 * src/presence/buddy.cpp reads at start-up: a `# name|sip_address|subscribe` header, then one `name|uri|y` record a
 * line, `|` separated, `#` starting a comment). Start Twinkle with `dir: home` then; its log says "PROFILE: buddy list
 * loaded.", and after its first successful REGISTER it subscribes (Event: presence, pres_subscription_time) to each
 * buddy marked `y`. The console has no buddy command and prints no buddy state: see buddyStates().
 */
export function writeBuddyList(home: string, profile: string, buddies: TwinkleBuddy[]): void {
  const dir = path.join(home, '.twinkle');
  mkdirSync(dir, { recursive: true });
  const records = buddies.map((b) => [b.name, b.uri, b.subscribe === false ? 'n' : 'y'].map((f) => f.replace(/[\\|]/g, '\\$&')).join('|'));
  writeFileSync(path.join(dir, `${profile}.bud`), ['# name|sip_address|subscribe', ...records, ''].join('\n'));
}

/**
 * The presence states Twinkle gave buddy `uri` so far, in order (open, closed, unknown, failed, rejeceted [sic]), from
 * its log: t_presence_state::set_basic_state writes "Presence state changed to: STATE" and the buddy's address as
 * written in the buddy list, at log level DEBUG, so only with `log_show_debug: 'yes'` in TwinkleOptions.system.
 * This is Twinkle's own reading of the PIDF <basic> of each NOTIFY (and "unknown" when it unsubscribes or its
 * subscription ends); twinkle-console shows buddy state nowhere else.
 */
export function buddyStates(twinkle: Twinkle, uri: string): string[] {
  const states: string[] = [];
  for (const m of twinkle.log().matchAll(/^Presence state changed to: (\S+)\r?\n(\S+)\r?$/gm)) {
    if (m[2] === uri) states.push(m[1]!);
  }
  return states;
}

/**
 * The final response (the last one, 2xx-6xx) in `trace` to `request` from the same trace: the other direction, same
 * Call-ID and CSeq (number and method); undefined while there is none.
 */
export function responseTo(trace: TwinkleSipMessage[], request: TwinkleSipMessage): TwinkleSipMessage | undefined {
  const callId = headerOf(request, 'Call-ID');
  const cseq = headerOf(request, 'CSeq');
  const finals = trace.filter(
    (m) => m.direction !== request.direction && /^SIP\/2\.0 [2-6]\d\d /.test(m.text) && headerOf(m, 'Call-ID') === callId && headerOf(m, 'CSeq') === cseq,
  );
  return finals.at(-1);
}

/** The status code of a traced response (`SIP/2.0 200 OK` → 200); undefined for a request or nothing. */
export function statusOf(message: TwinkleSipMessage | undefined): number | undefined {
  const m = message && /^SIP\/2\.0 (\d{3}) /.exec(message.text);
  return m ? Number(m[1]) : undefined;
}

/** The value of header `name` (case-insensitive, full names only) in a traced message, undefined when absent. */
export function headerOf(message: TwinkleSipMessage, name: string): string | undefined {
  const head = message.text.split('\n\n')[0] ?? '';
  const re = new RegExp(`^${escapeRegExp(name)}[ \\t]*:[ \\t]*(.*)$`, 'im');
  return re.exec(head)?.[1]?.trim();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function settings(base: Record<string, string>, extra: Record<string, string> = {}): string {
  const lines = Object.entries({ ...base, ...extra }).map(([k, v]) => `${k}=${v}`);
  return lines.join('\n') + '\n';
}

/** twinkle.sys: the ports, no audio device check, no ring tones, SIP messages in the log. */
function systemSettings(sipPort: number, rtpPort: number): Record<string, string> {
  return {
    sip_port: String(sipPort),
    rtp_port: String(rtpPort),
    validate_audio_dev: 'no',
    dev_ringtone: 'alsa:default',
    dev_speaker: 'alsa:default',
    dev_mic: 'alsa:default',
    play_ringtone: 'no',
    play_ringback: 'no',
    log_show_sip: 'yes',
    log_show_stun: 'no',
    log_show_memory: 'no',
    log_show_debug: 'no',
    log_max_size: '20',
    ab_lookup_name: 'no',
    ab_lookup_photo: 'no',
    call_waiting: 'yes',
  };
}

/**
 * The user profile: digest credentials, sipway as registrar and outbound proxy, G.711 only, UDP only (the default,
 * `auto`, switches to TCP for a message above 1300 bytes; `udp` also puts ;transport=udp into its Contact), no
 * presence PUBLISH at start-up (the call tests need none; test/interop/presence-twinkle.test.ts turns it on), redirections and transfers (REFER) followed without asking
 * (the console would wait for a y/n), and no voice activity detection: RTP then flows in silence too, 50 packets a
 * second paced by the capture FIFO (with VAD it sends none at all).
 */
function profileSettings(o: TwinkleOptions): Record<string, string> {
  const server = `127.0.0.1:${o.proxyPort}`;
  return {
    user_name: o.user,
    user_domain: o.domain,
    user_display: o.user,
    auth_name: o.user,
    auth_pass: o.password,
    outbound_proxy: server,
    registrar: server,
    register_at_startup: o.register === false ? 'no' : 'yes',
    registration_time: '600',
    codecs: 'g711u,g711a',
    speex_dsp_vad: 'no',
    ext_100rel: o.ext100rel ?? 'supported',
    hold_variant: o.holdVariant ?? 'rfc3264',
    allow_redirection: 'yes',
    ask_user_to_redirect: 'no',
    allow_refer: 'yes',
    ask_user_to_refer: 'no',
    pres_publish_startup: 'no',
    mwi_sollicited: 'no',
    im_send_iscomposing: 'no',
    sip_transport: 'udp',
  };
}

/** ALSA's default device for this HOME: playback into nothing, capture from `mic` (the paced FIFO). */
function asoundrc(mic: string): string {
  return ['pcm.!default {', '  type file', '  slave.pcm "null"', '  file "/dev/null"', `  infile "${mic}"`, '  format "raw"', '}', ''].join('\n');
}

/** An even UDP port with the seven above it free on every address: RTP and RTCP of line 1, line 2 and a spare. */
async function freeRtpBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = (await freePort()) & ~1;
    if (candidate + 8 > 65535) continue;
    if (await allBindable(candidate, 8)) return candidate;
  }
  throw new Error('no free run of 8 UDP ports for Twinkle RTP');
}

async function allBindable(first: number, count: number): Promise<boolean> {
  const sockets: dgram.Socket[] = [];
  try {
    for (let port = first; port < first + count; port++) {
      const s = dgram.createSocket('udp4');
      sockets.push(s);
      const ok = await new Promise<boolean>((resolve) => {
        s.once('error', () => resolve(false));
        s.bind(port, '0.0.0.0', () => resolve(true));
      });
      if (!ok) return false;
    }
    return true;
  } finally {
    const closed = sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          try {
            s.close(() => resolve());
          } catch {
            resolve();
          }
        }),
    );
    await Promise.all(closed);
  }
}
