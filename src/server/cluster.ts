import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { openDatabase } from '../store/index.js';
import { PolicyLoadError } from '../policy/index.js';
import { WorkerBus } from '../transport/worker-bus.js';
import { checkUdpPortFree } from '../transport/udp-endpoint.js';
import { ConfigError, UnavailableError } from '../util/errors.js';
import { createLogger } from '../util/logger.js';
import { LastResort } from '../util/last-resort.js';
import { AdminEndpoint, type AdminTarget, type BanEntry, type ProcessStats, type ReloadResult } from './admin.js';
import type { ServerConfig } from './config.js';
import { SipwayServer } from './server.js';
import type { PresenceChange } from '../presence/index.js';
import { PrimaryLimits, WorkerLimits, type LimitAnswer, type LimitRequest } from './cluster-limits.js';
import type { SbcCallInfo } from '../sbc/index.js';
import { listenerLogFields, startedLogFields } from './start-line.js';

/**
 * `sipway serve --workers N`: a primary process that owns nothing on the SIP path and N worker processes that each
 * run a whole SipwayServer on the same listeners. Node's cluster module gives every worker the same UDP socket and
 * spreads TCP/TLS/WS connections over them; the worker bus (src/transport/worker-bus.ts) then moves each message to
 * the worker owning its Call-ID. Stores are shared through the database file or Redis; the primary keeps the admin
 * endpoint and relays reloads and signals, and restarts a worker that dies.
 *
 * Primary and workers talk over the cluster IPC channel with the messages below (JSON, off the SIP path).
 */
type ToWorker =
  | { t: 'init'; count: number; instance: string; authSecret: string; gruuSecret: string }
  | { t: 'peers'; ports: number[] }
  | { t: 'admin'; id: number; op: AdminOp }
  | { t: 'presence'; change: PresenceChange }
  | LimitAnswer
  | { t: 'stop' };

/** What the primary's admin endpoint asks every worker (each holds its own policy and flood guard). */
type AdminOp =
  | { op: 'reload' }
  | { op: 'bans' }
  | { op: 'lift'; address: string }
  | { op: 'stats' }
  | { op: 'mwi'; aor: string }
  | { op: 'watchers'; aor: string }
  | { op: 'buddies'; aor: string }
  | { op: 'calls' }
  | { op: 'endCall'; id: string };
type AdminAnswer = ReloadResult | BanEntry[] | number | ProcessStats | SbcCallInfo[];

type ToPrimary =
  | { t: 'hello' }
  | { t: 'bus'; port: number }
  | { t: 'started'; listeners: { listen: string[]; advertised: string[] } }
  | { t: 'failed'; error: StartFailure }
  | { t: 'answer'; id: number; answer: AdminAnswer | undefined }
  | { t: 'presence'; change: PresenceChange }
  | LimitRequest;

const WORKER_INDEX_ENV = 'SIPWAY_WORKER_INDEX';

/** A worker could not start for a reason other than its settings or what they name (e.g. it died). */
export class WorkerStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerStartError';
  }
}

/** Why a worker did not start, sent to the primary, which rejects with the same kind of error a single process would. */
type StartFailure = { kind: 'config' | 'unavailable'; field: string; problem: string } | { kind: 'other'; message: string };

function startFailure(err: unknown): StartFailure {
  if (err instanceof ConfigError) return { kind: 'config', field: err.field, problem: err.problem };
  if (err instanceof PolicyLoadError) return { kind: 'config', field: 'policy', problem: err.message };
  if (err instanceof UnavailableError) return { kind: 'unavailable', field: err.field, problem: err.problem };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

function startError(f: StartFailure): Error {
  if (f.kind === 'other') return new WorkerStartError(f.message);
  return f.kind === 'config' ? new ConfigError(f.field, f.problem) : new UnavailableError(f.field, f.problem);
}
/** A worker that dies is restarted; more than this many deaths within RESTART_WINDOW_MS stop the server instead. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const RESTART_DELAY_MS = 500;
const STOP_GRACE_MS = 10_000;

interface Slot {
  worker: Worker;
  busPort: number | undefined;
  started: boolean;
}

export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_INDEX_ENV] !== undefined;
}

/**
 * Runs the primary: forks the workers, waits until all have started (rejects with the first worker's start error,
 * e.g. a port in use, after stopping the others), then supervises them until SIGTERM/SIGINT.
 */
export async function runPrimary(config: ServerConfig, count: number): Promise<void> {
  const logger = createLogger({ level: config.log.level, destination: config.log.file }).child({ worker: 'primary' });
  new LastResort(logger).install();
  // Schema migrations run once, here, before N workers would race to apply them.
  if (config.store === 'sqlite') openDatabase(config.dataDir).close();
  const init: Omit<Extract<ToWorker, { t: 'init' }>, 't'> = {
    count,
    instance: randomBytes(6).toString('hex'),
    authSecret: randomBytes(32).toString('hex'),
    gruuSecret: randomBytes(32).toString('hex'),
  };
  const slots: Array<Slot | undefined> = new Array<Slot | undefined>(count).fill(undefined);
  // The SBC's call limits count here, for every worker.
  const limits = config.sbc.enabled ? new PrimaryLimits(config.sbc.limits) : undefined;
  const deaths: number[] = [];
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  let askSeq = 0;
  /** Admin requests in progress: the workers still to answer (a worker that exits is no longer waited for). */
  const asks = new Map<number, { waiting: Set<Worker>; answers: AdminAnswer[]; done: (answers: AdminAnswer[]) => void }>();
  const answered = (id: number, worker: Worker, answer?: AdminAnswer): void => {
    const a = asks.get(id);
    if (!a || !a.waiting.delete(worker)) return;
    if (answer !== undefined) a.answers.push(answer);
    if (a.waiting.size > 0) return;
    asks.delete(id);
    a.done(a.answers);
  };
  let failStart: (err: Error) => void = () => undefined;
  let allStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve, reject) => {
    allStarted = resolve;
    failStart = reject;
  });
  let firstListeners = { listen: [] as string[], advertised: [] as string[] };

  const send = (slot: Slot | undefined, msg: ToWorker): void => {
    if (slot && slot.worker.isConnected()) slot.worker.send(msg);
  };
  const broadcast = (msg: ToWorker): void => slots.forEach((s) => send(s, msg));
  /** Bus ports by worker index; 0 for a worker not (yet) there, whose share of calls the others then keep. */
  const announcePeers = (): void => broadcast({ t: 'peers', ports: slots.map((s) => s?.busPort ?? 0) });

  const fork = (index: number): void => {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
    const slot: Slot = { worker, busPort: undefined, started: false };
    slots[index] = slot;
    worker.on('message', (msg: ToPrimary) => {
      switch (msg.t) {
        // Asked for, not pushed at 'online': IPC messages that arrive before the worker's module has loaded are lost.
        case 'hello':
          send(slot, { t: 'init', ...init });
          break;
        case 'bus':
          slot.busPort = msg.port;
          // At start-up, once every worker has its bus: a worker starts serving only when it knows all the others.
          if (phase !== 'starting' || slots.every((s) => s?.busPort !== undefined)) announcePeers();
          break;
        case 'started':
          slot.started = true;
          if (firstListeners.listen.length === 0) firstListeners = msg.listeners;
          if (phase === 'starting' && slots.every((s) => s?.started)) allStarted();
          else if (phase === 'running') logger.info({ index }, 'worker restarted');
          break;
        case 'failed':
          if (phase === 'starting') failStart(startError(msg.error));
          else logger.error({ index, error: startError(msg.error).message }, 'worker failed to start');
          break;
        case 'answer':
          answered(msg.id, worker, msg.answer);
          break;
        case 'presence':
          // To every other worker: each holds its own subscriptions, so each watcher hears of it once.
          slots.forEach((s) => s !== slot && send(s, { t: 'presence', change: msg.change }));
          break;
        case 'limit':
        case 'unlimit': {
          const answer = limits?.handle(index, msg);
          if (answer) send(slot, answer);
          break;
        }
      }
    });
    worker.on('exit', (code, signal) => {
      if (slots[index] === slot) slots[index] = undefined;
      limits?.workerGone(index);
      // Until its replacement is up, the others handle its share of calls themselves rather than pass them to
      // a bus port nobody reads.
      if (phase === 'running') announcePeers();
      // A request waiting for this worker gets its answer from the others.
      for (const id of [...asks.keys()]) answered(id, worker);
      if (phase === 'stopping') return;
      if (phase === 'starting') {
        failStart(new WorkerStartError(`worker ${index} exited (${signal ?? code}) while starting`));
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! < now - RESTART_WINDOW_MS) deaths.shift();
      if (deaths.length > MAX_RESTARTS) {
        logger.fatal({ index, code, signal }, `workers died ${deaths.length} times within ${RESTART_WINDOW_MS / 1000} s; stopping`);
        void stopAll(1);
        return;
      }
      logger.error({ index, code, signal }, 'worker died; restarting it');
      setTimeout(() => {
        if (phase === 'running') fork(index);
      }, RESTART_DELAY_MS);
    });
  };

  /** Asks every running worker; resolves with the answers of those that did not exit meanwhile. */
  const askAll = (op: AdminOp): Promise<AdminAnswer[]> =>
    new Promise((resolve) => {
      const live = slots.filter((s): s is Slot => s !== undefined && s.started);
      if (live.length === 0) return resolve([]);
      const id = ++askSeq;
      asks.set(id, { waiting: new Set(live.map((s) => s.worker)), answers: [], done: resolve });
      for (const s of live) send(s, { t: 'admin', id, op });
    });
  const reloadAll = async (): Promise<ReloadResult> => {
    const results = (await askAll({ op: 'reload' })) as ReloadResult[];
    if (results.length === 0) return { ok: false, error: 'no worker is running' };
    return results.find((r) => !r.ok) ?? { ok: true };
  };
  const target: AdminTarget = {
    reload: reloadAll,
    // A source is banned in each worker that saw it flood: one entry per source, the longest ban.
    bans: async () => {
      const merged = new Map<string, BanEntry>();
      for (const list of (await askAll({ op: 'bans' })) as BanEntry[][]) {
        for (const b of list) if ((merged.get(b.address)?.until ?? 0) < b.until) merged.set(b.address, b);
      }
      return [...merged.values()];
    },
    lift: async (address) => ((await askAll({ op: 'lift', address })) as number[]).reduce((a, b) => a + b, 0),
    mailboxChanged: async (aor) => void (await askAll({ op: 'mwi', aor })),
    watcherRulesChanged: async (aor) => void (await askAll({ op: 'watchers', aor })),
    buddiesChanged: async (aor) => void (await askAll({ op: 'buddies', aor })),
    // Each worker holds the calls whose Call-IDs it owns: the list is all of theirs, an end reaches the one that has it.
    calls: async () => ((await askAll({ op: 'calls' })) as SbcCallInfo[][]).flat(),
    endCall: async (id) => ((await askAll({ op: 'endCall', id })) as number[]).reduce((a, b) => a + b, 0),
    stats: async () => {
      const stats = (await askAll({ op: 'stats' })) as ProcessStats[];
      return { workers: stats.sort((a, b) => (a.worker ?? 0) - (b.worker ?? 0)) };
    },
  };

  let admin: AdminEndpoint | undefined;
  const stopAll = async (exitCode: number): Promise<never> => {
    phase = 'stopping';
    await admin?.stop();
    const exits = slots.filter((s): s is Slot => s !== undefined).map((s) => exited(s.worker));
    broadcast({ t: 'stop' });
    const grace = setTimeout(() => slots.forEach((s) => s?.worker.process.kill('SIGKILL')), STOP_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(grace);
    logger.info('sipway stopped');
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    process.exit(exitCode);
  };

  // Before any worker: a second server on this host stops here, with nothing listening, instead of taking calls
  // while `sipway reload` reaches the first.
  if (config.admin) {
    const endpoint = new AdminEndpoint({ ...target, logger: logger.child({ layer: 'admin' }) });
    await endpoint.start(config.admin.host, config.admin.port);
    admin = endpoint;
  }
  // The workers share each UDP socket with SO_REUSEADDR (src/transport/udp-probes.ts), which a port held by another
  // server would not stop: a plain socket tries each port first.
  try {
    for (const spec of config.listen) if (spec.transport === 'udp' && spec.port !== 0) await checkUdpPortFree(spec);
    for (let i = 0; i < count; i++) fork(i);
    await started;
  } catch (err) {
    await admin?.stop();
    await stopQuietly(slots);
    throw err;
  }
  phase = 'running';
  const onSignal = (signal: string): void => {
    if (phase === 'stopping') return;
    logger.info({ signal }, 'shutting down');
    void stopAll(0);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGHUP', () => {
    void reloadAll().then((r) => (r.ok ? logger.info('workers reloaded') : logger.error({ error: r.error }, 'reload failed in a worker')));
  });
  logger.info({ workers: count, ...startedLogFields(config, firstListeners) }, 'sipway started');
}

/** A worker's answer to the primary's admin request. */
async function workerAnswer(server: SipwayServer | undefined, index: number, op: AdminOp): Promise<AdminAnswer | undefined> {
  switch (op.op) {
    case 'reload':
      return server ? server.reloadPolicy() : { ok: false, error: `worker ${index} is not running` };
    case 'bans':
      return server ? server.flood.bans() : [];
    case 'lift':
      return server?.flood.lift(op.address) ? 1 : 0;
    case 'mwi':
      server?.mailboxChanged(op.aor);
      return 0;
    case 'watchers':
      await server?.watcherRulesChanged(op.aor);
      return 0;
    case 'buddies':
      server?.buddiesChanged(op.aor);
      return 0;
    case 'calls':
      return server ? server.sbcCalls() : [];
    case 'endCall':
      return server?.endSbcCall(op.id) ? 1 : 0;
    case 'stats':
      // A worker not yet running has no counters: the primary answers with those of the others.
      return server?.stats();
  }
}

function stopQuietly(slots: Array<Slot | undefined>): Promise<void> {
  const live = slots.filter((s): s is Slot => s !== undefined && !s.worker.isDead());
  const exits = live.map((s) => exited(s.worker));
  for (const s of live) s.worker.process.kill('SIGKILL');
  return Promise.all(exits).then(() => undefined);
}

/** Resolves once the worker's process has exited (at once if it has). */
function exited(worker: Worker): Promise<void> {
  return new Promise((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve())));
}

/**
 * Runs one worker: binds its bus, learns its peers, starts a SipwayServer sharing the listeners, and then follows
 * the primary's orders. It exits when the primary goes away.
 */
export async function runWorker(config: ServerConfig): Promise<void> {
  const index = Number(process.env[WORKER_INDEX_ENV]);
  const tell = (msg: ToPrimary): void => {
    if (process.connected) process.send!(msg);
  };
  const init = await new Promise<Extract<ToWorker, { t: 'init' }>>((resolve) => {
    const onInit = (msg: ToWorker): void => {
      if (msg.t !== 'init') return;
      process.off('message', onInit);
      resolve(msg);
    };
    process.on('message', onInit);
    tell({ t: 'hello' });
  });
  const bus = new WorkerBus(index, init.count, init.instance);
  const limits = config.sbc.enabled
    ? new WorkerLimits(config.sbc.limits, (msg) => process.connected && process.send!(msg), createLogger({ level: config.log.level, destination: config.log.file }).child({ worker: index, layer: 'sbc' }))
    : undefined;
  let peersKnown: () => void = () => undefined;
  const peers = new Promise<void>((resolve) => (peersKnown = resolve));
  let server: SipwayServer | undefined;
  let stopping = false;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    const done = (): never => {
      bus.close();
      process.exit(code);
    };
    if (server) server.stop().then(done, done);
    else done();
  };
  process.on('message', (msg: ToWorker) => {
    switch (msg.t) {
      case 'peers':
        bus.setPeers(msg.ports);
        peersKnown();
        break;
      case 'admin':
        void workerAnswer(server, index, msg.op).then((answer) => tell({ t: 'answer', id: msg.id, answer }));
        break;
      case 'presence':
        server?.presenceChanged(msg.change);
        break;
      case 'limit':
        limits?.answered(msg);
        break;
      case 'stop':
        stop(0);
        break;
    }
  });
  // The primary speaks for the server: a terminal's Ctrl-C or HUP reaches the whole process group.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.on('SIGTERM', () => stop(0));
  process.on('disconnect', () => stop(0));
  tell({ t: 'bus', port: await bus.bind() });
  await peers;
  try {
    // The constructor too may fail: it reads the TLS files.
    const candidate = new SipwayServer(config, {
      worker: { bus, authSecret: init.authSecret, gruuSecret: init.gruuSecret, announcePresence: (change) => tell({ t: 'presence', change }), limits },
    });
    new LastResort(candidate.logger).install();
    await candidate.start();
    server = candidate;
  } catch (err) {
    bus.close();
    // Exits once the message is out: the primary reports this error rather than a bare "exited while starting".
    if (process.connected) process.send!({ t: 'failed', error: startFailure(err) } satisfies ToPrimary, () => process.exit(1));
    else process.exit(1);
    return;
  }
  tell({ t: 'started', listeners: listenerLogFields(server.listeners()) });
}

