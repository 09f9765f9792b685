/**
 * A headless linphonec (Debian 12: linphone-cli 5.1, liblinphone 5.1) as a child process for interop tests: a
 * generated configuration in a directory of its own (which is also its HOME), SIP on one loopback UDP port, no
 * video, WAV files instead of a sound card, and control through linphonec's own commands on stdin. What it reports
 * ("Call 1 with sip:bob@localhost connected.") is read from its stdout; liblinphone's log (SIP messages included)
 * goes to a file, for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, requireTool } from './process.js';

export interface LinphoneAccount {
  user: string;
  domain: string;
  /** Digest password (the auth user is the user). */
  password: string;
  /** The registrar and outbound proxy, e.g. `sip:127.0.0.1:5060`: REGISTER goes there, every other request is routed through it. */
  proxy: string;
  /** Answer incoming calls at once (linphonec -a). */
  autoAnswer?: boolean;
}

const MAX_OUTPUT = 1 << 20;

/**
 * A running linphonec driven through its console: commands on stdin, its answers read from stdout, liblinphone's
 * log in `dir/linphone.log`. Linphonec (loopback) and LinphonecNs (a lab host) differ only in how they start it.
 */
export class LinphonecConsole {
  protected out = '';
  private readonly exited: Promise<number | null>;

  protected constructor(
    readonly name: string,
    protected readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', (code) => resolve(code))));
    const append = (c: Buffer): void => {
      if (this.out.length < MAX_OUTPUT) this.out += c.toString();
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    child.stdin!.on('error', () => {});
  }

  /** No sound card on a test machine: play and record WAV files instead. */
  protected async useWavFiles(): Promise<void> {
    this.send('soundcard use files');
    await this.waitForOutput(/Using wav files instead of soundcard/, 10000);
  }

  /** One linphonec command line (`call sip:bob@localhost`, `terminate`, `pause`, `resume`, `status register`, ...). */
  send(command: string): void {
    this.child.stdin!.write(command + '\n');
  }

  /** Where the output ends now: `waitForOutput(re, ms, mark)` then looks only at what comes after. */
  mark(): number {
    return this.out.length;
  }

  /**
   * Resolves once the output from `since` on matches `re` (bounded by `timeoutMs`; linphonec acts on its own
   * timers meanwhile).
   */
  async waitForOutput(re: RegExp, timeoutMs: number, since = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.out.slice(since))) {
      if (this.child.exitCode !== null) throw new Error(`linphonec ${this.name} exited with ${this.child.exitCode} before printing ${re}:\n${this.out}`);
      if (Date.now() > deadline) throw new Error(`linphonec ${this.name}: output did not match ${re} within ${timeoutMs} ms:\n${this.out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Asks `status register` until linphonec reports its account registered (bounded by `timeoutMs`). */
  async waitRegistered(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const since = this.mark();
      this.send('status register');
      try {
        await this.waitForOutput(/(?:^|\s)registered, identity=/, Math.min(500, Math.max(1, deadline - Date.now())), since);
        return;
      } catch (e) {
        if (Date.now() >= deadline) throw new Error(`linphonec ${this.name} did not register within ${timeoutMs} ms`, { cause: e });
      }
    }
  }

  /** `quit` (which unregisters and ends calls), then SIGTERM, then SIGKILL, each bounded; always resolves. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.send('quit');
    const term = setTimeout(() => this.child.kill('SIGTERM'), 3000);
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 6000);
    await this.exited;
    clearTimeout(term);
    clearTimeout(kill);
  }

  /** liblinphone's log as written so far; undefined before it exists. */
  protected readLog(): string | undefined {
    try {
      return readFileSync(path.join(this.dir, 'linphone.log'), 'utf8');
    } catch {
      return undefined;
    }
  }
}

/** linphonec on loopback, for interop tests on this machine. */
export class Linphonec extends LinphonecConsole {
  private constructor(
    name: string,
    readonly sipPort: number,
    dir: string,
    child: ChildProcess,
  ) {
    super(name, dir, child);
  }

  /** Writes `dir/linphonerc` and starts `linphonec -c dir/linphonerc` with HOME=dir. Registration starts at once. */
  static async start(name: string, dir: string, account: LinphoneAccount): Promise<Linphonec> {
    const binary = requireTool('linphonec');
    const sipPort = await freePort();
    // liblinphone 5.1 does not start its SIP stack at all (no listening point, no REGISTER) when it cannot open its
    // database, ~/.local/share/linphone/linphone.db, so that directory must exist.
    mkdirSync(path.join(dir, '.local', 'share', 'linphone'), { recursive: true });
    const rc = path.join(dir, 'linphonerc');
    writeFileSync(rc, configText(sipPort, await rtpPorts(), account));
    const args = ['-c', rc, '-d', '6', '-l', path.join(dir, 'linphone.log'), ...(account.autoAnswer ? ['-a'] : [])];
    const child = spawn(binary, args, { cwd: dir, env: { ...process.env, HOME: dir, TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const agent = new Linphonec(name, sipPort, dir, child);
    await agent.useWavFiles();
    return agent;
  }

  /** What linphonec printed (its prompts, answers and call events). */
  output(): string {
    return this.out;
  }

  /** The tail of liblinphone's log, SIP messages included: what a failure message needs. */
  log(chars = 8000): string {
    return this.readLog()?.slice(-chars) ?? '(no log)';
  }
}

/** A free range of ten loopback UDP ports for RTP and RTCP (liblinphone picks its pair in the range). */
async function rtpPorts(): Promise<string> {
  const first = await freePort(true);
  return `${first}-${first + 9}`;
}

/**
 * SIP on 127.0.0.1 only (bind_address; TCP and TLS off), no guessing of the host name or waiting for a "network up"
 * event, no video, one account that registers through `proxy` and routes every request there (reg_route).
 */
function configText(sipPort: number, audioPorts: string, a: LinphoneAccount): string {
  return [
    '[sip]',
    'bind_address=127.0.0.1',
    `sip_port=${sipPort}`,
    'sip_tcp_port=0',
    'sip_tls_port=0',
    'guess_hostname=0',
    'register_only_when_network_is_up=0',
    'use_ipv6=0',
    'default_proxy=0',
    'inc_timeout=30',
    '',
    '[rtp]',
    `audio_rtp_port=${audioPorts}`,
    '',
    ...videoAndAccount(a, 'udp'),
  ].join('\n');
}

/**
 * The end of a linphonerc for either helper: no video, and one account that registers through `a.proxy` and routes
 * every request there (reg_route), over `transport`.
 */
export function videoAndAccount(a: LinphoneAccount, transport: 'udp' | 'tcp' | 'tls'): string[] {
  const proxy = a.proxy.replace(/^sip:/, '');
  return [
    '[video]',
    'enabled=0',
    'capture=0',
    'display=0',
    '',
    '[proxy_0]',
    `reg_proxy=<sip:${proxy};transport=${transport}>`,
    `reg_route=<sip:${proxy};transport=${transport};lr>`,
    `reg_identity=sip:${a.user}@${a.domain}`,
    'reg_expires=600',
    'reg_sendregister=1',
    'publish=0',
    '',
    '[auth_info_0]',
    `username=${a.user}`,
    `passwd=${a.password}`,
    `realm=${a.domain}`,
    `domain=${a.domain}`,
    '',
  ];
}
