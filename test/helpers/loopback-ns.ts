import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { projectRoot } from './paths.js';
import { requireTool } from './process.js';

/**
 * A network namespace of its own with only loopback up: a server in it may bind the wildcard address and the
 * standard ports (0.0.0.0:5060, 127.0.0.1:5090) as a deployment does, without reaching any network and without
 * colliding with servers of other tests. Needs root and iproute2; delete() removes it.
 */
export class Netns {
  private constructor(readonly name: string) {}

  static create(label: string): Netns {
    requireTool('ip', 'iproute2');
    const ns = new Netns(`sipway-${label}-${process.pid}`);
    ns.ip(['netns', 'add', ns.name]);
    ns.ip(['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  private ip(args: string[]): void {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  }

  /** Runs a command in the namespace to completion (bounded by `timeoutMs`). */
  run(argv: string[], timeoutMs = 30000): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', cwd: projectRoot });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Starts a long-running command in the namespace and waits until its output has a line `ready` accepts. */
  async start(argv: string[], ready: (line: string) => boolean, timeoutMs = 20000): Promise<NetnsProcess> {
    const child = spawn('ip', ['netns', 'exec', this.name, ...argv], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = new NetnsProcess(child);
    try {
      await proc.waitFor(ready, timeoutMs);
    } catch (e) {
      await proc.stop('SIGKILL');
      throw e;
    }
    return proc;
  }

  delete(): void {
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

export class NetnsProcess {
  private out = '';
  private readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (c: Buffer) => (this.out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (this.out += c.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  output(): string {
    return this.out;
  }

  /** The first output line `accept` takes, once there is one. */
  async waitFor(accept: (line: string) => boolean, timeoutMs = 20000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.out.split('\n').find(accept);
      if (line !== undefined) return line;
      if (this.child.exitCode !== null) throw new Error(`exited with ${this.child.exitCode}:\n${this.out}`);
      if (Date.now() > deadline) throw new Error(`no such line within ${timeoutMs} ms:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Signals the process (`ip netns exec` passes it on) and waits for its exit; SIGKILL after 10 s. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
