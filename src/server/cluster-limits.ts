import { admitted, CallLimits, type Admitted, type LimitKeeper, type Refused } from '../sbc/index.js';
import type { SbcConfig } from '../sbc/index.js';
import type { Logger } from '../util/logger.js';

/**
 * The SBC's call limits for a whole `serve --workers N` server: the primary counts (one CallLimits for every worker),
 * the workers ask it over the cluster IPC channel. An account's calls are steered to workers by Call-ID, so limits
 * counted per worker would let N times the limit through.
 */

/** Worker -> primary. */
export type LimitRequest = { t: 'limit'; id: number; account: string; trunk: string; now: number } | { t: 'unlimit'; id: number };
/** Primary -> worker. */
export type LimitAnswer = { t: 'limit'; id: number; result: { ok: true } | Refused };

/** The primary's side: one count for every worker; a worker that dies gives back the places of its calls. */
export class PrimaryLimits {
  private readonly limits: CallLimits;
  /** The places held, by worker and the worker's request id. */
  private readonly held = new Map<number, Map<number, Admitted>>();

  constructor(config: SbcConfig['limits']) {
    this.limits = new CallLimits(config);
  }

  /** A worker's request; the answer to send back, if any. */
  handle(worker: number, msg: LimitRequest): LimitAnswer | undefined {
    if (msg.t === 'unlimit') {
      this.held.get(worker)?.get(msg.id)?.release();
      this.held.get(worker)?.delete(msg.id);
      return undefined;
    }
    const admitted = this.limits.admit(msg.account, msg.trunk, msg.now);
    if (!admitted.ok) return { t: 'limit', id: msg.id, result: admitted };
    if (!this.held.has(worker)) this.held.set(worker, new Map());
    this.held.get(worker)!.set(msg.id, admitted);
    return { t: 'limit', id: msg.id, result: { ok: true } };
  }

  /** The worker exited: its calls are gone with it. */
  workerGone(worker: number): void {
    for (const a of this.held.get(worker)?.values() ?? []) a.release();
    this.held.delete(worker);
  }
}

/** How long a worker waits for the primary's answer before it counts the call itself. */
const ASK_TIMEOUT_MS = 1000;

/** A worker's side: asks the primary; counts locally when the primary does not answer in time (and says so). */
export class WorkerLimits implements LimitKeeper {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (r: LimitAnswer['result']) => void; timer: NodeJS.Timeout }>();
  private readonly fallback: CallLimits;

  constructor(
    config: SbcConfig['limits'],
    private readonly send: (msg: LimitRequest) => boolean,
    private readonly logger: Logger,
  ) {
    this.fallback = new CallLimits(config);
  }

  async admit(account: string, trunk: string, now: number): Promise<Admitted | Refused> {
    const id = ++this.seq;
    const answer = await new Promise<LimitAnswer['result'] | undefined>((resolve) => {
      if (!this.send({ t: 'limit', id, account, trunk, now })) return resolve(undefined);
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, ASK_TIMEOUT_MS);
      this.waiting.set(id, { resolve, timer });
    });
    if (answer === undefined) {
      this.logger.warn({ account, trunk }, 'sbc: the primary did not answer for the call limits; counted in this worker');
      return this.fallback.admit(account, trunk, now);
    }
    if (!answer.ok) return answer;
    return admitted(() => this.send({ t: 'unlimit', id }));
  }

  /** The primary's answer. */
  answered(msg: LimitAnswer): void {
    const w = this.waiting.get(msg.id);
    if (!w) {
      // Too late: the call was counted here instead; the place the primary kept for it is given back.
      if (msg.result.ok) this.send({ t: 'unlimit', id: msg.id });
      return;
    }
    clearTimeout(w.timer);
    this.waiting.delete(msg.id);
    w.resolve(msg.result);
  }
}
