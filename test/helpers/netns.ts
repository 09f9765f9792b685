/**
 * Private test networks made of Linux network namespaces: each network is a bridge in a namespace of its own, each
 * test host a namespace joined to one or more networks by veth pairs, and a NAT host forwards a private network to a
 * public one behind iptables MASQUERADE. Every interface is created inside a namespace of this lab, never in the
 * machine's own, so deleting the lab's namespaces removes everything it made.
 *
 * Names carry the owning process id (`swt<pid>-<name>`), so a lab left behind by a crashed run is recognised and
 * removed by the next one. Needs root and `ip netns`; `labOrSkip` skips a test without them outside CI and fails it
 * in CI, where they must be present.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';

const PREFIX = 'swt';
const NAME = /^swt(\d+)-/;

export interface Attachment {
  /** The network's name as given to `NetLab.network`. */
  network: string;
  /** This host's IPv4 address on it (the network's prefix length is added). */
  address: string;
}

/** A test host: one namespace, its addresses and the processes started in it. */
export class NetHost {
  constructor(
    private readonly lab: NetLab,
    readonly name: string,
    /** The namespace's name, for `ip netns exec`. */
    readonly ns: string,
    /** Its addresses in the order attached; `addresses[0]` is its main one. */
    readonly addresses: string[],
  ) {}

  get address(): string {
    return this.addresses[0]!;
  }

  /** Starts `command args` inside this host's namespace; the lab kills it on `destroy` if it still runs. */
  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return this.lab.track(spawn('ip', ['netns', 'exec', this.ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options }));
  }

  /** Runs a command to completion inside this host's namespace; throws with its output when it fails. */
  run(command: string, args: string[], timeoutMs = 10000): string {
    return ipRun(['netns', 'exec', this.ns, command, ...args], timeoutMs);
  }

  /**
   * Sends one UDP datagram from a fresh socket of this host to `address:port` and collects what comes back to that
   * socket within `waitMs` (a raw SIP client for hand-made requests).
   */
  async udpExchange(address: string, port: number, message: string, waitMs: number): Promise<Array<{ from: string; data: string }>> {
    const child = this.spawn(process.execPath, ['-e', UDP_EXCHANGE, address, String(port), message, String(waitMs)]);
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    if (code !== 0) throw new Error(`${this.name}: UDP exchange with ${address}:${port} failed (${code}): ${err.trim()}`);
    return out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { from: string; data: string });
  }

  /**
   * A byte stream to `address:port` over TCP inside this namespace (the test process itself stays in the machine's
   * own namespace, which has no route into the lab): a small node relay started in the namespace carries the bytes
   * over its stdin and stdout. Retries until the port accepts or `timeoutMs` pass.
   */
  async connectTcp(port: number, address = '127.0.0.1', timeoutMs = 10000): Promise<Duplex> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      const relay = this.spawn(process.execPath, ['-e', TCP_RELAY, address, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
      const outcome = await new Promise<string>((resolve) => {
        let err = '';
        const timer = setTimeout(() => resolve('relay did not connect in time'), Math.max(100, deadline - Date.now()));
        relay.stderr!.on('data', (c: Buffer) => {
          err += c.toString();
          if (err.includes('connected\n')) {
            clearTimeout(timer);
            resolve('');
          }
        });
        relay.on('exit', (code) => {
          clearTimeout(timer);
          resolve(`relay exited with ${code}: ${err.trim()}`);
        });
      });
      if (outcome === '') {
        const stream = Duplex.from({ readable: relay.stdout!, writable: relay.stdin! });
        stream.on('close', () => relay.kill('SIGKILL'));
        relay.on('exit', () => stream.destroy());
        return stream;
      }
      lastError = outcome;
      relay.kill('SIGKILL');
      await sleep(100);
    }
    throw new Error(`${this.name}: no TCP connection to ${address}:${port} within ${timeoutMs} ms (${lastError})`);
  }
}

/** Sends argv[3] from a fresh UDP socket to argv address:port and prints every datagram received for argv[4] ms, as JSON lines. */
const UDP_EXCHANGE = `
const dgram = require('node:dgram');
const [address, port, message, waitMs] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => process.stdout.write(JSON.stringify({ from: r.address + ':' + r.port, data: m.toString('latin1') }) + '\\n'));
s.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(3); });
s.bind(0, () => s.send(Buffer.from(message, 'latin1'), Number(port), address));
setTimeout(() => process.exit(0), Number(waitMs));
`;

/** Connects to argv address:port and copies stdin to the socket and the socket to stdout; says so on stderr. */
const TCP_RELAY = `
const net = require('node:net');
const [address, port] = process.argv.slice(1);
const s = net.connect(Number(port), address, () => {
  process.stderr.write('connected\\n');
  process.stdin.pipe(s);
  s.pipe(process.stdout);
});
s.on('error', (e) => { process.stderr.write(String(e.message) + '\\n'); process.exit(3); });
s.on('close', () => process.exit(0));
process.stdin.on('end', () => s.end());
`;

interface Network {
  ns: string;
  prefixLength: number;
  ports: number;
}

export class NetLab {
  private readonly networks = new Map<string, Network>();
  private readonly hosts = new Map<string, NetHost>();
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;
  /** Which iptables binary works here (iptables-nft on Debian 12, iptables-legacy on older kernels). */
  private iptables: string | undefined;
  private readonly onExit = (): void => this.destroySync();

  private constructor(readonly id: string) {
    process.on('exit', this.onExit);
  }

  /** Why labs cannot be made on this machine, or undefined when they can. */
  static unavailableReason(): string | undefined {
    if (process.getuid?.() !== 0) return 'network namespaces need root';
    const ip = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    if (ip.error || ip.status !== 0) return `'ip netns' is unavailable (${ip.error?.message ?? ip.stderr.trim()}; Debian package iproute2)`;
    return undefined;
  }

  /** A new, empty lab; first removes labs left behind by processes that no longer run. */
  static create(): NetLab {
    const reason = NetLab.unavailableReason();
    if (reason) throw new Error(reason);
    removeStaleLabs();
    return new NetLab(`${PREFIX}${process.pid}`);
  }

  /** A bridge standing for one IPv4 network, e.g. `network('public', 24)`. */
  network(name: string, prefixLength = 24): void {
    const ns = this.addNamespace(`sw-${name}`);
    ipRun(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    ipRun(['-n', ns, 'link', 'set', 'br0', 'up']);
    this.networks.set(name, { ns, prefixLength, ports: 0 });
  }

  /** A host joined to the given networks (its first attachment is its main address), with an optional default route. */
  host(name: string, attachments: Attachment[], gateway?: string): NetHost {
    const ns = this.addNamespace(name);
    attachments.forEach((a, i) => this.attach(ns, `eth${i}`, a));
    if (gateway) ipRun(['-n', ns, 'route', 'add', 'default', 'via', gateway]);
    const host = new NetHost(this, name, ns, attachments.map((a) => a.address));
    this.hosts.set(name, host);
    return host;
  }

  /**
   * A router that masquerades the `inside` network behind its `outside` address (iptables MASQUERADE with random
   * source ports, so a mapping never keeps the phone's own port). Hosts inside use `inside.address` as gateway.
   */
  nat(name: string, outside: Attachment, inside: Attachment): NetHost {
    const host = this.host(name, [outside, inside]);
    host.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    const rule = ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'eth0', '-j', 'MASQUERADE', '--random-fully'];
    this.iptables ??= pickIptables(host.ns);
    host.run(this.iptables, rule);
    return host;
  }

  /** Counts a child process as the lab's, so `destroy` ends it (a namespace stays alive while a process uses it). */
  track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    child.on('error', () => this.children.delete(child));
    return child;
  }

  /** Kills the lab's processes and deletes its namespaces (and with them every interface); idempotent. */
  async destroy(): Promise<void> {
    const running = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(
      running.map(
        (c) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 3000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            c.kill('SIGKILL');
          }),
      ),
    );
    this.destroySync();
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off('exit', this.onExit);
    for (const c of this.children) c.kill('SIGKILL');
    for (const ns of [...this.namespaces].reverse()) deleteNamespace(ns);
  }

  private addNamespace(name: string): string {
    const ns = `${this.id}-${name}`;
    ipRun(['netns', 'add', ns]);
    this.namespaces.push(ns);
    ipRun(['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  private attach(ns: string, ifname: string, a: Attachment): void {
    const net = this.networks.get(a.network);
    if (!net) throw new Error(`no network '${a.network}' in this lab`);
    const port = `p${net.ports++}`;
    ipRun(['-n', ns, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', port, 'netns', net.ns]);
    ipRun(['-n', net.ns, 'link', 'set', port, 'master', 'br0']);
    ipRun(['-n', net.ns, 'link', 'set', port, 'up']);
    ipRun(['-n', ns, 'addr', 'add', `${a.address}/${net.prefixLength}`, 'dev', ifname]);
    ipRun(['-n', ns, 'link', 'set', ifname, 'up']);
  }
}

/**
 * A lab for this test, or undefined after `t.skip` when this machine cannot make one. In CI (CI=true) a missing
 * capability fails the test instead: CI runs as root with iproute2 and iptables installed.
 */
export function labOrSkip(t: TestContext): NetLab | undefined {
  const reason = NetLab.unavailableReason();
  if (reason === undefined) return NetLab.create();
  if (process.env.CI === 'true') throw new Error(`network namespace tests cannot run: ${reason}`);
  t.skip(`network namespace tests skipped: ${reason}`);
  return undefined;
}

/** Deletes namespaces named by this helper whose owning process is gone (a crashed or killed test run). */
export function removeStaleLabs(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (list.status !== 0) return;
  for (const line of list.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = NAME.exec(name);
    if (m && !alive(Number(m[1]))) deleteNamespace(name);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills what still runs in the namespace (it would keep the namespace alive), then deletes it. */
function deleteNamespace(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  for (const pid of (pids.stdout ?? '').split('\n').filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
}

/** The first iptables binary whose nat table works in the namespace. */
function pickIptables(ns: string): string {
  const tried: string[] = [];
  for (const binary of ['iptables', 'iptables-nft', 'iptables-legacy']) {
    const r = spawnSync('ip', ['netns', 'exec', ns, binary, '-t', 'nat', '-L', 'POSTROUTING', '-n'], { encoding: 'utf8' });
    if (r.status === 0) return binary;
    tried.push(`${binary}: ${r.error?.message ?? r.stderr.trim()}`);
  }
  throw new Error(`no working iptables for NAT (Debian package iptables): ${tried.join('; ')}`);
}

function ipRun(args: string[], timeoutMs = 10000): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.error || r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
