import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from '../helpers/process.js';

/** A throwaway redis-server on a free loopback port, in its own temp dir; persistence off unless asked for. */
export interface RedisServer {
  url: string;
  stop(): Promise<void>;
  /** kill -9, as a crash would (the temp dir stays, for a restart). */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (what it persisted comes back). */
  restart(): Promise<void>;
}

export interface RedisServerOptions {
  /** Append-only file with this fsync policy; without it, no persistence at all. */
  appendfsync?: 'always' | 'everysec';
}

const READY_DEADLINE_MS = 10_000;

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sipway-redis-'));
  const persistence = options.appendfsync ? ['--appendonly', 'yes', '--appendfsync', options.appendfsync] : ['--appendonly', 'no'];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir];
  let current = await launch(args, port);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await current.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    kill: () => current.kill(),
    restart: async () => {
      await current.kill();
      current = await launch(args, port);
    },
  };
}

async function launch(args: string[], port: number): Promise<{ stop(): Promise<void>; kill(): Promise<void> }> {
  const child = spawn(requireTool('redis-server'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<Error>((resolve) => {
    child.once('error', resolve);
    child.once('exit', (code) => resolve(new Error(`redis-server exited (code ${code}) before answering PING:\n${output}`)));
  });
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await new Promise((resolve) => child.once('exit', resolve));
    }
  };
  const stop = (): Promise<void> => end('SIGTERM');
  const polling = new AbortController();
  try {
    const failure = await Promise.race([waitForPong(port, polling.signal).then(() => undefined), exited]);
    if (failure) throw failure;
  } catch (err) {
    await stop();
    throw err;
  } finally {
    polling.abort();
  }
  return { stop, kill: () => end('SIGKILL') };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls with a raw PING until the server answers +PONG (process start-up: real time is what we wait for). */
async function waitForPong(port: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  while (Date.now() < deadline && !signal.aborted) {
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${READY_DEADLINE_MS} ms`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG'));
      }
    });
    socket.once('error', () => resolve(false));
  });
}
