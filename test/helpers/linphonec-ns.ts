/**
 * A headless linphonec (Debian 12: linphone-cli 5.1) on a lab host (test/helpers/netns.ts): SIP over UDP, TCP or
 * TLS bound to one address of the host's network namespace, no video, WAV files instead of a sound card, control
 * through linphonec's own commands on stdin and its answers on stdout ("Call 1 with sip:bob@sipway.test connected.").
 * liblinphone's log, SIP messages included, goes to a file for failure messages.
 */
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LinphonecConsole, videoAndAccount, type LinphoneAccount } from './linphonec.js';
import { requireTool } from './process.js';
import type { NetHost } from './netns.js';

/** `proxy` is on the lab's network, e.g. `sip:10.213.0.1:5060`. */
export interface LinphonecAccount extends LinphoneAccount {
  /** The only SIP transport it listens on and uses toward the proxy (default udp). */
  transport?: 'udp' | 'tcp' | 'tls';
  /** CA file it trusts for TLS (it verifies the proxy's certificate chain; see configText for the name). */
  caFile?: string;
  /**
   * Behave like a plain phone: no NAT helper (by default liblinphone re-registers with the received/rport its
   * REGISTER's answer names as Contact) and no GRUU (by default its dialogs use the pub-gruu as Contact).
   */
  plain?: boolean;
}

/** The namespace is private to the lab: fixed ports cannot collide. */
const SIP_PORT = 5060;
const RTP_PORTS = '20000-20009';

export class LinphonecNs extends LinphonecConsole {
  private constructor(
    name: string,
    readonly address: string,
    dir: string,
    child: ChildProcess,
  ) {
    super(name, dir, child);
  }

  /** Writes `dir/linphonerc` and starts linphonec on `host` (HOME=dir); it registers at once. */
  static async start(name: string, dir: string, account: LinphonecAccount, host: NetHost, address = host.address): Promise<LinphonecNs> {
    const binary = requireTool('linphonec', 'linphone-cli');
    // liblinphone 5.1 starts no SIP stack at all when it cannot open ~/.local/share/linphone/linphone.db.
    mkdirSync(path.join(dir, '.local', 'share', 'linphone'), { recursive: true });
    const rc = path.join(dir, 'linphonerc');
    writeFileSync(rc, configText(address, account, account.transport ?? 'udp'));
    const args = ['-c', rc, '-d', '6', '-l', path.join(dir, 'linphone.log'), ...(account.autoAnswer ? ['-a'] : [])];
    const child = host.spawn(binary, args, { cwd: dir, env: { ...process.env, HOME: dir, TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const agent = new LinphonecNs(name, address, dir, child);
    await agent.useWavFiles();
    return agent;
  }

  /** What linphonec printed, then the SIP messages of liblinphone's log. */
  output(): string {
    return `${this.out.slice(-4000)}\n--- liblinphone SIP messages (tail) ---\n${this.sipLog().slice(-12000)}`;
  }

  /** The SIP messages liblinphone logged as sent or received, in order (its log has much else). */
  sipLog(): string {
    const log = this.readLog();
    if (log === undefined) return '(no log yet)';
    return log
      .split(/\n(?=\d{4}-\d\d-\d\d )/)
      .filter((entry) => /belle-sip-message-channel \[[^\]]+\]: (?:received \[\d+\] new bytes from|message sent to)/.test(entry))
      .join('\n');
  }

  /** Resolves once the SIP messages it logged, from offset `since` of `sipLog()` on, match `re`, bounded by `timeoutMs`. */
  async waitForSip(re: RegExp, timeoutMs: number, since = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.sipLog().slice(since))) {
      if (Date.now() > deadline) throw new Error(`linphonec ${this.name}: its SIP log did not match ${re} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * SIP over one transport on `address` only (the others off), no host-name guessing or waiting for "network up", no video, one
 * account registering through `proxy` and routing every request there (reg_route). No STUN/ICE: nothing in the
 * configuration helps liblinphone past the NAT, so what it sends is its own default behaviour.
 */
function configText(address: string, a: LinphonecAccount, transport: 'udp' | 'tcp' | 'tls'): string {
  return [
    '[sip]',
    `bind_address=${address}`,
    `sip_port=${transport === 'udp' ? SIP_PORT : 0}`,
    `sip_tcp_port=${transport === 'tcp' ? SIP_PORT : 0}`,
    `sip_tls_port=${transport === 'tls' ? SIP_PORT + 1 : 0}`,
    // The certificate chain is verified, not the name: liblinphone 5.1's mbedtls 2 matches only DNS entries of the
    // subjectAltName ("CN-mismatch" for the lab's proxy, named by its address in an IP entry).
    ...(a.caFile ? [`root_ca=${a.caFile}`, 'verify_server_certs=1', 'verify_server_cn=0'] : []),
    'guess_hostname=0',
    'register_only_when_network_is_up=0',
    'use_ipv6=0',
    'default_proxy=0',
    'inc_timeout=30',
    ...(a.plain ? ['supported=replaces'] : []),
    '',
    '[net]',
    `enable_nat_helper=${a.plain ? 0 : 1}`,
    '',
    '[rtp]',
    `audio_rtp_port=${RTP_PORTS}`,
    '',
    ...videoAndAccount(a, transport),
  ].join('\n');
}
