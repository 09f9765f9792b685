/**
 * A headless baresip (Debian 12: baresip 1.0.0) as a child process for interop tests: a generated config directory
 * (SIP and media on loopback only, a sine-wave source and a bridge as player so that no audio device is needed), one
 * account, and control through the ctrl_tcp module (netstring-framed JSON: commands in, responses and events out).
 * Given a `BaresipPlace`, it runs in a test host's network namespace instead, SIP and media bound to one address of
 * that host, over UDP, TCP or TLS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, requireTool } from './process.js';
import type { NetHost } from './netns.js';

export interface BaresipAccount {
  user: string;
  domain: string;
  /** Digest password (auth_user is the user). */
  password?: string;
  /** Every request goes through this URI (a Route with `;lr`), e.g. `sip:127.0.0.1:5060;lr`. */
  outboundProxy?: string;
  /** Answer incoming calls at once (account parameter answermode=auto). */
  autoAnswer?: boolean;
  /** Registration interval in seconds; 0 = do not register. */
  regint: number;
  /** The AOR's `;transport=` (default udp): the transport of the REGISTER and of every request sent. */
  transport?: 'udp' | 'tcp' | 'tls';
  /** More account parameters, e.g. `sipnat=outbound`, `mediaenc=dtls_srtp`, `medianat=ice`. */
  extra?: string[];
}

/** Where a baresip runs when not on the machine's loopback: a lab host and one of its addresses. */
export interface BaresipPlace {
  host: NetHost;
  /** The address SIP and RTP bind to (default the host's main address). */
  address?: string;
  /** SIP port for UDP and TCP (default 5060); baresip listens for TLS one port above. */
  port?: number;
  /** CA file baresip trusts for TLS (sip_cafile). */
  caFile?: string;
  /** Certificate and key in one PEM file that baresip presents (sip_certificate). */
  certificate?: string;
  /**
   * Media a WebRTC peer (a browser) accepts: ICE, DTLS-SRTP and RTCP multiplexed on the RTP port (modules ice and
   * dtls_srtp, account medianat=ice and mediaenc=dtls_srtp, rtcp_mux yes).
   */
  webrtc?: boolean;
}

/** A ctrl_tcp event, e.g. `{ type: 'CALL_ESTABLISHED', class: 'call', peeruri: 'sip:bob@localhost', ... }`. */
export interface BaresipEvent {
  type: string;
  class?: string;
  accountaor?: string;
  peeruri?: string;
  param?: string;
  [key: string]: unknown;
}

interface CommandResponse {
  ok: boolean;
  data?: string;
}

const MODULE_PATH = '/usr/lib/baresip/modules';
const MAX_LOG = 1 << 20;
const STATUS_LINE = /\[\d+:\d\d:\d\d\] audio=\d+\/\d+ \(bit\/s\)\s*/g;

export class Baresip {
  readonly events: BaresipEvent[] = [];
  private log = '';
  private buffer = Buffer.alloc(0);
  private tokens = 0;
  private readonly pending = new Map<string, (r: CommandResponse) => void>();
  private readonly eventWaiters = new Set<() => void>();
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly sipPort: number,
    private readonly child: ChildProcess,
    private readonly ctrl: Duplex,
    /** The address its SIP listeners bind to. */
    readonly address: string,
  ) {
    this.exited = new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', (code) => resolve(code))));
  }

  /**
   * Writes `dir/config` and `dir/accounts`, starts `baresip -f dir` and connects to its ctrl_tcp port (bounded by
   * `timeoutMs`). Throws with baresip's output if it exits or never listens.
   */
  static async start(name: string, dir: string, account: BaresipAccount, timeoutMs = 10000, place?: BaresipPlace): Promise<Baresip> {
    const binary = requireTool('baresip');
    // A lab host's namespace is private: fixed ports there cannot collide with anything else.
    const address = place ? (place.address ?? place.host.address) : '127.0.0.1';
    const sipPort = place ? (place.port ?? 5060) : await freePort();
    const ctrlPort = place ? 4444 : await freePort();
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'silence.wav'), silenceWav());
    writeFileSync(path.join(dir, 'config'), configText(dir, address, sipPort, ctrlPort, place));
    const webrtc = place?.webrtc ? ['medianat=ice', 'mediaenc=dtls_srtp'] : [];
    writeFileSync(path.join(dir, 'accounts'), accountLine({ ...account, extra: [...(account.extra ?? []), ...webrtc] }) + '\n');
    // stdin stays an (idle) pipe: baresip's own stdio module is not loaded, and a pipe keeps it from reading a tty.
    const args = ['-4', '-s', '-f', dir];
    const options = { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'] };
    const child = place ? place.host.spawn(binary, args, options) : spawn(binary, args, options);
    let early = '';
    const collect = (c: Buffer): void => {
      early += c.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const deadline = Date.now() + timeoutMs;
    let socket: Duplex | undefined;
    while (!socket) {
      if (child.exitCode !== null) throw new Error(`baresip ${name} exited with ${child.exitCode} before listening:\n${early}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`baresip ${name}: ctrl_tcp did not listen on 127.0.0.1:${ctrlPort} within ${timeoutMs} ms:\n${early}`);
      }
      socket = await (place ? place.host.connectTcp(ctrlPort, '127.0.0.1', 1000) : connect(ctrlPort)).catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return undefined;
      });
    }
    const b = new Baresip(name, sipPort, child, socket, address);
    b.log = early;
    child.stdout!.off('data', collect);
    child.stderr!.off('data', collect);
    // The menu module redraws a call's bit-rate line many times a second: it would crowd the SIP trace out of the log.
    const append = (c: Buffer): void => {
      if (b.log.length < MAX_LOG) b.log += c.toString().replace(STATUS_LINE, '');
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    socket.on('data', (c: Buffer) => b.receive(c));
    socket.on('error', () => {});
    return b;
  }

  /** Everything baresip printed: its log and its SIP trace (-s), for failure messages. */
  output(): string {
    return this.log;
  }

  /** Sends a command (`dial`, `hangup`, `quit`, ...) and waits for its response. */
  async command(command: string, params = '', timeoutMs = 5000): Promise<CommandResponse> {
    const token = `t${++this.tokens}`;
    const json = Buffer.from(JSON.stringify({ command, params, token }));
    const answer = new Promise<CommandResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new Error(`baresip ${this.name}: no response to '${command} ${params}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(token, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    this.ctrl.write(Buffer.concat([Buffer.from(`${json.length}:`), json, Buffer.from(',')]));
    return answer;
  }

  /** Resolves with the first event (already received or future) of `type` that `match` accepts. */
  async waitForEvent(type: string, timeoutMs: number, match: (e: BaresipEvent) => boolean = () => true): Promise<BaresipEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => e.type === type && match(e));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.events.map((e) => e.type).join(', ') || 'none';
        throw new Error(`baresip ${this.name}: no ${type} event within ${timeoutMs} ms (events: ${seen})\n--- baresip ${this.name} output ---\n${this.log.slice(-6000)}`);
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.eventWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.eventWaiters.add(wake);
      });
    }
  }

  /**
   * Resolves once baresip's output (from offset `since`, e.g. an earlier `output().length`) matches `re` (its log
   * lines trail the ctrl_tcp events a little).
   */
  async waitForOutput(re: RegExp, timeoutMs: number, since = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.log.slice(since))) {
      if (Date.now() > deadline) throw new Error(`baresip ${this.name}: output did not match ${re} within ${timeoutMs} ms\n--- baresip ${this.name} output ---\n${this.log.slice(-6000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** `quit`, then SIGTERM, then SIGKILL, each bounded; always resolves. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      await this.command('quit', '', 1000).catch(() => undefined);
      const killer = setTimeout(() => this.child.kill('SIGTERM'), 2000);
      const last = setTimeout(() => this.child.kill('SIGKILL'), 4000);
      await this.exited;
      clearTimeout(killer);
      clearTimeout(last);
    }
    this.ctrl.destroy();
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const colon = this.buffer.indexOf(':');
      if (colon < 0) return;
      const length = Number(this.buffer.subarray(0, colon).toString());
      if (!Number.isInteger(length) || length < 0) {
        this.buffer = Buffer.alloc(0);
        return;
      }
      if (this.buffer.length < colon + 1 + length + 1) return;
      const text = this.buffer.subarray(colon + 1, colon + 1 + length).toString();
      this.buffer = this.buffer.subarray(colon + 1 + length + 1);
      this.dispatch(text);
    }
  }

  private dispatch(text: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (msg.event === true && typeof msg.type === 'string') {
      this.events.push(msg as BaresipEvent);
      for (const wake of [...this.eventWaiters]) wake();
    } else if (msg.response === true && typeof msg.token === 'string') {
      this.pending.get(msg.token)?.({ ok: msg.ok === true, data: typeof msg.data === 'string' ? msg.data : undefined });
      this.pending.delete(msg.token);
    }
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Loopback only (SIP listener and net_interface 127.0.0.1, so SDP and RTP use 127.0.0.1), no STUN/TURN/ICE, G.711 only.
 * The audio source is a generated file (aufile), the player aubridge (a software device): no sound card is needed.
 */
function configText(dir: string, address: string, sipPort: number, ctrlPort: number, place?: BaresipPlace): string {
  return [
    'poll_method epoll',
    `sip_listen ${address}:${sipPort}`,
    ...(place?.caFile ? [`sip_cafile ${place.caFile}`] : []),
    ...(place?.certificate ? [`sip_certificate ${place.certificate}`] : []),
    `net_interface ${address}`,
    'call_local_timeout 30',
    'call_max_calls 4',
    'audio_player aubridge,sink',
    `audio_source aufile,${path.join(dir, 'silence.wav')}`,
    'audio_alert aubridge,alert',
    'rtp_ports 20000-40000',
    'rtp_timeout 0',
    `module_path ${MODULE_PATH}`,
    'module g711.so',
    'module aufile.so',
    'module aubridge.so',
    ...(place?.webrtc ? ['module ice.so', 'module dtls_srtp.so', 'rtcp_mux yes'] : []),
    'module_tmp account.so',
    'module_app menu.so',
    'module_app ctrl_tcp.so',
    `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
    '',
  ].join('\n');
}

/**
 * 90 seconds of 8 kHz mono 16-bit silence: aufile in baresip 1.0 accepts only the codec's own sample rate, and at the
 * file's end the menu module hangs the call up ("audio error (0,end of file)"), so the file outlasts any test call.
 */
function silenceWav(): Buffer {
  const rate = 8000;
  const data = rate * 2 * 90;
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data, 40);
  return Buffer.concat([h, Buffer.alloc(data)]);
}

function accountLine(a: BaresipAccount): string {
  const params = [
    ...(a.password !== undefined ? [`auth_user=${a.user}`, `auth_pass=${a.password}`] : []),
    ...(a.outboundProxy ? [`outbound="${a.outboundProxy}"`] : []),
    `answermode=${a.autoAnswer ? 'auto' : 'manual'}`,
    `regint=${a.regint}`,
    'audio_codecs=pcmu',
    'mwi=no',
    ...(a.extra ?? []),
  ];
  return `<sip:${a.user}@${a.domain};transport=${a.transport ?? 'udp'}>;${params.join(';')}`;
}
