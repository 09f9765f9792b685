import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { serialize, type SipRequest, type SipResponse } from '../../message/index.js';
import { SystemClock, type Clock, type TimerHandle } from '../../util/clock.js';
import { ConfigError } from '../../util/errors.js';
import { silentLogger, type Logger } from '../../util/logger.js';
import { requestEnvironment, responseEnvironment, type SipCgiContext, type SipCgiResponseContext } from './environment.js';
import { parseSipCgiOutput, SipCgiOutputError, type Invocation, type SipCgiOutput } from './output.js';

export interface SipCgiConfig {
  /** Path of the script; relative paths are taken from the current directory. It runs in its own directory, as CGI scripts do. */
  script: string;
  /** Program and arguments that run the script (e.g. ['python3'] or ['/bin/sh']); without one the script is executed itself. */
  interpreter?: readonly string[];
  /** Wall time a script may take before it is stopped and its message answered 500. Default 5000. */
  timeoutMs?: number;
  /** After a stop, SIGTERM gets this long before SIGKILL. Default 1000. */
  killGraceMs?: number;
  /** Bytes of stdout accepted; more stops the script. Default 64 KiB. */
  maxOutputBytes?: number;
  /** Scripts running at once; the message that would start one more is answered 503 at once. Default 16. */
  maxConcurrent?: number;
  /** Extra environment (e.g. a service's settings); the RFC 3050 metavariables win over it. */
  env?: Readonly<Record<string, string>>;
  /** SERVER_SOFTWARE. Default 'sipway'. */
  serverSoftware?: string;
  logger?: Logger;
  clock?: Clock;
}

/** What the server should do: the script's actions, or an error status to answer the message with. */
export type SipCgiResult =
  | ({ kind: 'actions' } & SipCgiOutput)
  /** `reason` says what went wrong, for the log (and a reason phrase, if the server wants to disclose it). */
  | { kind: 'error'; status: 500 | 503; reason: string };

type Outcome = { ok: true; stdout: Buffer } | { ok: false; reason: string };

interface RunningScript {
  /** Ends the script at once (SIGKILL to its process group). */
  kill(reason: string): void;
  /** Settles when the script's process and pipes are closed. */
  closed: Promise<void>;
}

const DEFAULTS = { timeoutMs: 5000, killGraceMs: 1000, maxOutputBytes: 64 * 1024, maxConcurrent: 16 } as const;
/** Stderr kept for the log line of a failed script. */
const STDERR_KEPT = 2048;

/**
 * Runs a SIP-CGI script (RFC 3050) for a request or for a response of a transaction it asked to see again: the
 * message on stdin exactly as serialised, the metavariables in the environment, the output parsed into actions.
 * Nothing a script does can throw out of here or stall the caller: a script that cannot start, exits non-zero or by
 * a signal, runs past `timeoutMs`, writes more than `maxOutputBytes` or writes something unparsable becomes a 500
 * result; past `maxConcurrent` a 503. Each script runs in its own process group, so a stop also ends what it started.
 */
export class SipCgiRunner {
  private readonly script: string;
  private readonly command: string;
  private readonly args: string[];
  private readonly timeoutMs: number;
  private readonly killGraceMs: number;
  private readonly maxOutputBytes: number;
  private readonly maxConcurrent: number;
  private readonly extraEnv: Readonly<Record<string, string>>;
  private readonly serverSoftware: string;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly running = new Set<RunningScript>();
  private closed = false;

  constructor(config: SipCgiConfig) {
    this.timeoutMs = positiveInt(config.timeoutMs ?? DEFAULTS.timeoutMs, 'timeoutMs');
    this.killGraceMs = positiveInt(config.killGraceMs ?? DEFAULTS.killGraceMs, 'killGraceMs');
    this.maxOutputBytes = positiveInt(config.maxOutputBytes ?? DEFAULTS.maxOutputBytes, 'maxOutputBytes');
    this.maxConcurrent = positiveInt(config.maxConcurrent ?? DEFAULTS.maxConcurrent, 'maxConcurrent');
    const interpreter = config.interpreter;
    if (interpreter !== undefined && (interpreter.length === 0 || interpreter.some((a) => a.length === 0))) {
      throw new ConfigError('sipCgi.interpreter', 'must be a program followed by its arguments, none empty');
    }
    if (!config.script) throw new ConfigError('sipCgi.script', 'missing');
    this.script = path.resolve(config.script);
    try {
      // Run by an interpreter the script need only be readable; run itself it must be executable.
      accessSync(this.script, interpreter ? constants.R_OK : constants.X_OK);
    } catch (e) {
      throw new ConfigError('sipCgi.script', `${this.script}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not ' + (interpreter ? 'readable' : 'executable')}`);
    }
    [this.command, ...this.args] = interpreter ? [...interpreter, this.script] : [this.script];
    this.extraEnv = { ...config.env };
    this.serverSoftware = config.serverSoftware ?? 'sipway';
    this.logger = config.logger ?? silentLogger();
    this.clock = config.clock ?? new SystemClock();
  }

  /** Scripts running now. */
  get active(): number {
    return this.running.size;
  }

  /** First invocation, for a request the server received (RFC 3050: no SCRIPT_COOKIE yet). */
  runForRequest(req: SipRequest, ctx: SipCgiContext): Promise<SipCgiResult> {
    return this.invoke('request', req, () => [serialize(req), requestEnvironment(req, ctx, this.serverSoftware)]);
  }

  /** Later invocation, for a response to `req`, when the previous run said `CGI-AGAIN yes`; `cookie` is its last cookie. */
  runForResponse(req: SipRequest, res: SipResponse, cookie: string | undefined, ctx: SipCgiResponseContext): Promise<SipCgiResult> {
    return this.invoke('response', req, () => [serialize(res), responseEnvironment(req, res, cookie, ctx, this.serverSoftware)]);
  }

  /** Kills every running script and waits until they are gone; later invocations answer 500. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.running];
    for (const r of all) r.kill('the SIP-CGI runner was closed');
    await Promise.all(all.map((r) => r.closed));
  }

  private async invoke(invocation: Invocation, req: SipRequest, prepare: () => [Buffer, Record<string, string>]): Promise<SipCgiResult> {
    if (this.closed) return this.fail(500, 'the SIP-CGI runner is closed', req);
    if (this.running.size >= this.maxConcurrent) return this.fail(503, `${this.running.size} SIP-CGI scripts already running (maxConcurrent)`, req);
    let outcome: Outcome;
    try {
      const [input, cgiEnv] = prepare();
      outcome = await this.execute(input, { PATH: process.env.PATH ?? '/usr/bin:/bin', ...this.extraEnv, ...cgiEnv });
    } catch (e) {
      outcome = { ok: false, reason: `cannot run the script: ${(e as Error).message}` };
    }
    if (!outcome.ok) return this.fail(500, outcome.reason, req);
    try {
      return { kind: 'actions', ...parseSipCgiOutput(outcome.stdout, req, invocation) };
    } catch (e) {
      const what = e instanceof SipCgiOutputError ? e.message : `parser failure: ${(e as Error).message}`;
      return this.fail(500, `unparsable script output: ${what}`, req);
    }
  }

  private fail(status: 500 | 503, reason: string, req: SipRequest): SipCgiResult {
    this.logger.warn({ script: this.script, method: req.method, callId: req.callId, status, reason }, 'SIP-CGI script failed');
    return { kind: 'error', status, reason };
  }

  private execute(input: Buffer, env: Record<string, string>): Promise<Outcome> {
    let child: ChildProcess;
    try {
      // detached: the script leads a process group of its own, so that signals reach whatever it started too.
      child = spawn(this.command, this.args, { cwd: path.dirname(this.script), env, stdio: 'pipe', detached: true });
    } catch (e) {
      return Promise.resolve({ ok: false, reason: `cannot start ${this.command}: ${(e as Error).message}` });
    }
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      let finished = false;
      let stopping = false;
      let graceTimer: TimerHandle | undefined;
      let markClosed!: () => void;
      const stdout: Buffer[] = [];
      let stdoutBytes = 0;
      let stderr = '';

      const settle = (o: Outcome): void => {
        if (settled) return;
        settled = true;
        resolve(o);
      };
      const signalGroup = (signal: NodeJS.Signals): void => {
        if (finished || child.pid === undefined) return;
        try {
          process.kill(-child.pid, signal);
        } catch {
          // ESRCH: the group is already gone.
        }
      };
      const forceKill = (): void => {
        graceTimer?.cancel();
        signalGroup('SIGKILL');
        // A descendant that left the group may still hold the pipes; the runner does not wait for it.
        child.stdout?.destroy();
        child.stderr?.destroy();
      };
      /** Answers now; the script gets SIGTERM and, if it is still there after the grace time, SIGKILL. */
      const stop = (reason: string): void => {
        settle({ ok: false, reason });
        if (stopping) return;
        stopping = true;
        signalGroup('SIGTERM');
        graceTimer = this.clock.setTimer(this.killGraceMs, forceKill);
      };
      const timer = this.clock.setTimer(this.timeoutMs, () => stop(`timed out after ${this.timeoutMs} ms`));
      const run: RunningScript = {
        kill: (reason) => {
          settle({ ok: false, reason });
          forceKill();
        },
        closed: new Promise<void>((r) => (markClosed = r)),
      };
      this.running.add(run);
      const finish = (): void => {
        if (finished) return;
        finished = true;
        timer.cancel();
        graceTimer?.cancel();
        this.running.delete(run);
        markClosed();
      };

      child.stdout!.on('data', (chunk: Buffer) => {
        if (settled) return;
        stdoutBytes += chunk.length;
        if (stdoutBytes > this.maxOutputBytes) stop(`output larger than ${this.maxOutputBytes} bytes`);
        else stdout.push(chunk);
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        if (stderr.length < STDERR_KEPT) stderr += chunk.toString('utf8').slice(0, STDERR_KEPT - stderr.length);
      });
      // A script need not read its input: writing to a pipe it closed is EPIPE, which is no fault of the script.
      child.stdin!.on('error', () => {});
      child.stdin!.end(input);

      child.on('error', (e) => {
        // Spawn failures (ENOENT, EACCES) come here and may not be followed by 'close'.
        settle({ ok: false, reason: `cannot start ${this.command}: ${e.message}` });
        if (child.pid === undefined) finish();
      });
      child.on('close', (code, signal) => {
        finish();
        const detail = stderr.trim().split('\n')[0];
        if (signal) settle({ ok: false, reason: `script killed by ${signal}` });
        else if (code !== 0) settle({ ok: false, reason: `script exited with status ${code}${detail ? ` (${detail})` : ''}` });
        else settle({ ok: true, stdout: Buffer.concat(stdout) });
        if (stderr) this.logger.debug({ script: this.script, stderr }, 'SIP-CGI script stderr');
      });
    });
  }
}

function positiveInt(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`sipCgi.${field}`, `must be a positive integer, not ${value}`);
  return value;
}
